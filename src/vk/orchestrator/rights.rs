//! Rights a token lacks: a method a token may not call (15/1133) is remembered for it, the job
//! moves once to a leased token for it ([`Session::seek_right`]), and list reads refused as
//! private on a leased token are asked again on the author's ([`Session::to_author`]).

use tokio::time::Instant;

use super::Session;
use crate::vk::tokens::{ReleaseReason, Token, TokenOrigin};

impl Session {
    /// Moves the job to its author's token for a while, returning the token it leaves (to hand
    /// back to [`Session::restore`]); `None` when it is on the author's token already or the
    /// author has none. The author's token may read what the pool's may not: its owner's
    /// closed friends, whom stage 1 kept as readable.
    /// `None` too when the author's token is benched for `method` (its quota spent): moving
    /// there would only move the job on to yet another leased token.
    pub async fn to_author(&mut self, method: &str) -> Option<Token> {
        if self.on_author {
            return None;
        }
        let author = match self.source.user_token(self.author).await {
            Ok(Some(token)) => token,
            _ => return None,
        };
        self.load_spent(&author).await;
        if self
            .benched
            .get(&(author.key, method.to_owned()))
            .is_some_and(|until| *until > Instant::now())
        {
            return None;
        }
        tracing::info!(token = %author.suffix(), "back on the author's token for profiles only it may read");
        self.on_author = true;
        self.current.replace(author)
    }

    /// Goes back to `previous` after [`Session::to_author`].
    pub fn restore(&mut self, previous: Token) {
        self.on_author = matches!(previous.origin, TokenOrigin::User(_));
        self.current = Some(previous);
    }

    /// Records that VK refused `method` to the current token for its rights.
    pub fn note_denied(&mut self, method: &str) {
        if let Some(token) = &self.current {
            tracing::warn!(token = %token.suffix(), method, "method refused to this token (no right)");
            self.denied.insert((token.key, method.to_owned()));
        }
    }

    /// Whether the current token is not known to lack the right for `method`.
    pub fn may_call(&self, method: &str) -> bool {
        self.current
            .as_ref()
            .is_none_or(|t| !self.denied.contains(&(t.key, method.to_owned())))
    }

    /// Makes sure the current token may call `method`: when it is known not to, moves the job
    /// once (per method) to a leased global token. `false` when the job has no token for it;
    /// the caller then uses another method. Never fails the job: an empty pool is an answer.
    pub async fn seek_right(&mut self, method: &str) -> bool {
        if self.may_call(method) {
            return true;
        }
        if !self.sought.insert(method.to_owned()) {
            return false;
        }
        match self.source.lease(&self.job).await {
            Ok(Some(token)) => {
                tracing::info!(token = %token.suffix(), method, "moved to a global token for a method the previous one may not call");
                self.leased.push(token.clone());
                if let Some(old) = self.current.replace(token) {
                    if !matches!(old.origin, TokenOrigin::User(_)) {
                        self.release_one(&old, ReleaseReason::Rotated).await;
                    }
                }
                self.on_author = false;
                self.requests_on_current = 0;
                self.rotate_at = self.draw_rotation();
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(error = %error, method, "no global token for a refused method");
                false
            }
        }
    }
}
