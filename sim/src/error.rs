//! VK API errors as the simulator sends them: HTTP 200 with
//! `{"error":{"error_code","error_msg","request_params":[...]}}`, the token never echoed.
//! Every code and message the simulator uses is built here, so they stay VK's.

use serde_json::{json, Map, Value};

/// One VK API error.
#[derive(Debug, Clone, PartialEq)]
pub struct VkError {
    pub code: i64,
    pub msg: String,
    /// Extra fields of the error object (`captcha_sid`, `captcha_img`).
    pub extra: Map<String, Value>,
}

impl VkError {
    /// An error with VK's message for this code.
    pub fn new(code: i64, msg: impl Into<String>) -> VkError {
        VkError {
            code,
            msg: msg.into(),
            extra: Map::new(),
        }
    }

    pub fn unknown_method() -> VkError {
        VkError::new(3, "Unknown method passed")
    }
    pub fn no_token() -> VkError {
        VkError::new(5, "User authorization failed: no access_token passed.")
    }
    pub fn invalid_token() -> VkError {
        VkError::new(5, "User authorization failed: invalid access_token (4).")
    }
    pub fn user_blocked() -> VkError {
        VkError::new(5, "User authorization failed: user is blocked.")
    }
    pub fn ip_mismatch() -> VkError {
        VkError::new(
            5,
            "User authorization failed: access_token was given to another ip address.",
        )
    }
    /// An expired token: 1117 from 5.199 on, 5 before.
    pub fn expired(v_minor: u32) -> VkError {
        if v_minor >= 199 {
            VkError::new(1117, "Access token has expired")
        } else {
            VkError::new(5, "User authorization failed: access_token has expired.")
        }
    }
    pub fn too_many() -> VkError {
        VkError::new(6, "Too many requests per second")
    }
    pub fn no_version() -> VkError {
        VkError::new(8, "Invalid request: v (version) is required")
    }
    pub fn bad_version() -> VkError {
        VkError::new(
            8,
            "Invalid request: versions below 5.0 are no longer supported",
        )
    }
    pub fn flood() -> VkError {
        VkError::new(9, "Flood control")
    }
    pub fn internal() -> VkError {
        VkError::new(10, "Internal server error")
    }
    pub fn runtime(detail: &str) -> VkError {
        VkError::new(
            13,
            format!("Runtime error occurred during code invocation: {detail}"),
        )
    }
    pub fn captcha(sid: u64) -> VkError {
        let mut e = VkError::new(14, "Captcha needed");
        e.extra.insert("captcha_sid".into(), json!(sid.to_string()));
        e.extra.insert(
            "captcha_img".into(),
            json!(format!("https://api.vk.com/captcha.php?sid={sid}&s=1")),
        );
        e
    }
    pub fn deleted() -> VkError {
        VkError::new(18, "User was deleted or banned")
    }
    pub fn quota() -> VkError {
        VkError::new(29, "Rate limit reached")
    }
    pub fn private() -> VkError {
        VkError::new(30, "This profile is private")
    }
    /// Error 100 naming the parameter.
    pub fn param(detail: impl AsRef<str>) -> VkError {
        VkError::new(
            100,
            format!(
                "One of the parameters specified was missing or invalid: {}",
                detail.as_ref()
            ),
        )
    }
    pub fn invalid_user_id() -> VkError {
        VkError::new(113, "Invalid user id")
    }
    pub fn invalid_group_id() -> VkError {
        VkError::new(125, "Invalid group id")
    }
    pub fn access_denied() -> VkError {
        VkError::new(15, "Access denied: group hide members")
    }
    /// 15 with subcode 1133 (`method_permission_denied`): the token lacks the method's right.
    pub fn no_method_right() -> VkError {
        let mut e = VkError::new(15, "Access denied: no access to call this method");
        e.extra.insert("error_subcode".into(), json!(1133));
        e
    }
    /// 15 for friends.get / users.getFollowers of a deactivated user (18 elsewhere).
    pub fn user_deactivated() -> VkError {
        VkError::new(15, "Access denied: user deactivated")
    }
    /// 15 for a deleted or banned community.
    pub fn group_deactivated() -> VkError {
        VkError::new(15, "Access denied: community is deactivated")
    }
    /// 12: the execute code is longer than the simulator accepts.
    pub fn code_too_long(limit: usize) -> VkError {
        VkError::new(
            12,
            format!("Unable to compile code: code is too long (at most {limit} bytes)"),
        )
    }
    /// 15 for a wall.post (or an upload server) of a closed or private community the caller
    /// is no member of: the message VK gives for such walls (vknet/vk#672).
    pub fn wall_members_only() -> VkError {
        VkError::new(
            15,
            "Access denied: this wall available only for community members",
        )
    }
    /// 121: photos.saveWallPhoto of an upload that is not this caller's fresh upload for this
    /// community (VK answers "Invalid hash" when the group differs: vknet/vk#260, 7even/vkontakte_api#20).
    pub fn invalid_hash() -> VkError {
        VkError::new(121, "Invalid hash")
    }
    /// 118: photos.saveWallPhoto with a `server` other than the upload's.
    pub fn invalid_server() -> VkError {
        VkError::new(118, "Invalid server")
    }
    /// 105: docs.save of a `file` that is not this caller's fresh upload (errors.json lists
    /// `api_error_save_file` for docs.save).
    pub fn save_file() -> VkError {
        VkError::new(105, "Couldn't save file")
    }
    pub fn post_denied() -> VkError {
        VkError::new(214, "Access to adding post denied")
    }

    /// The JSON body VK sends: `request_params` lists the request's parameters except the
    /// token, then `method` and `oauth`.
    pub fn body(&self, method: &str, params: &[(String, String)]) -> Value {
        let mut request_params: Vec<Value> = params
            .iter()
            .filter(|(k, _)| k != "access_token")
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        request_params.push(json!({"key": "method", "value": method}));
        request_params.push(json!({"key": "oauth", "value": "1"}));
        let mut err = Map::new();
        err.insert("error_code".into(), json!(self.code));
        err.insert("error_msg".into(), json!(self.msg));
        for (k, v) in &self.extra {
            err.insert(k.clone(), v.clone());
        }
        err.insert("request_params".into(), Value::Array(request_params));
        json!({ "error": err })
    }
}
