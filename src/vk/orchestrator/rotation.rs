//! Spreading a job over tokens: rotation every 30–40 requests on a leased token, a move to a
//! fresh one after an error burst or on request ([`Session::rotate_now`]), and the standalone
//! decoy requests of `vk.stealth`.

use rand::Rng;

use super::Session;
use crate::vk::tokens::ReleaseReason;

impl Session {
    /// Accounts for `n` requests answered on the current token outside [`Session::call`] (sent
    /// in flight together): the author's token has answered, and rotation counts them.
    pub(in crate::vk) async fn count_answered(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        if self.on_author {
            self.author_ok = true;
        }
        self.requests_on_current += n;
        self.after_real_requests(n).await;
        self.maybe_rotate().await;
    }

    /// Sends a standalone decoy once `decoy_at` real requests went out on the current token.
    /// Its answer is ignored: a decoy must never fail or steer a job.
    pub(super) async fn after_real_requests(&mut self, n: u32) {
        if self.settings.standalone_decoy_every == 0 {
            return;
        }
        self.since_decoy += n;
        if self.since_decoy < self.decoy_at {
            return;
        }
        let Some(token) = self.current.clone() else {
            return;
        };
        let call = crate::vk::execute::decoy(self.decoys_sent);
        self.decoys_sent += 1;
        self.since_decoy = 0;
        self.decoy_at = self.draw_decoy();
        match self.client.call(&token, call.method, &call.form()).await {
            Ok(_) => self.count_calls_on(token.key, [call.method]),
            Err(e) => tracing::debug!(error = %e, "a decoy request failed (ignored)"),
        }
    }

    pub(super) fn draw_decoy(&self) -> u32 {
        let every = self.settings.standalone_decoy_every;
        if every == 0 {
            return u32::MAX;
        }
        rand::rng().random_range((every / 2).max(1)..=every + every / 2)
    }

    /// Records whether an execute had a call that failed for a reason about the token or VK;
    /// after `rotate_after_errors` such executes in a row the job moves to a fresh token.
    pub(in crate::vk) async fn note_execute(&mut self, had_errors: bool) {
        if !had_errors {
            self.error_streak = 0;
            return;
        }
        self.error_streak += 1;
        let burst = self.settings.rotate_after_errors;
        if burst > 0 && self.error_streak >= burst {
            self.error_streak = 0;
            self.rotate_now("error burst").await;
        }
    }

    /// Moves the job to a fresh leased token now: a leased current token is given back
    /// (`rotated`); the author's token is left for the leased one. `false` when the pool has
    /// none to offer, and the job stays where it is.
    pub async fn rotate_now(&mut self, why: &'static str) -> bool {
        // A sender session's work is the sender's own (a campaign's posts): never moved to a
        // leased token, whatever asked for the rotation (an error burst, empty lists).
        if self.sender_only {
            return false;
        }
        let fresh = match self.source.lease(&self.job).await {
            Ok(Some(token)) => token,
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(error = %error, why, "no fresh token to rotate to");
                return false;
            }
        };
        tracing::info!(token = %fresh.suffix(), why, "moved to a fresh global token");
        self.leased.push(fresh.clone());
        if let Some(old) = self.current.replace(fresh) {
            self.release_one(&old, ReleaseReason::Rotated).await;
        }
        self.on_author = false;
        self.requests_on_current = 0;
        self.rotate_at = self.draw_rotation();
        self.error_streak = 0;
        self.rotations.push(why);
        true
    }

    /// Rotates a leased token after its share of requests, if another can be leased.
    pub(super) async fn maybe_rotate(&mut self) {
        if self.on_author || self.requests_on_current < self.rotate_at {
            return;
        }
        let Ok(Some(fresh)) = self.source.lease(&self.job).await else {
            // Nothing to rotate to: keep going on the current token.
            self.requests_on_current = 0;
            return;
        };
        if let Some(old) = self.current.replace(fresh.clone()) {
            self.release_one(&old, ReleaseReason::Rotated).await;
        }
        tracing::debug!(token = %fresh.suffix(), "rotated to a fresh global token");
        self.leased.push(fresh);
        self.requests_on_current = 0;
        self.rotate_at = self.draw_rotation();
    }

    pub(super) fn draw_rotation(&self) -> u32 {
        let (low, high) = self.settings.rotate_every;
        rand::rng().random_range(low.min(high)..=high.max(low))
    }
}
