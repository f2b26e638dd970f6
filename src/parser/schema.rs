//! The stage files: every table name and column name that the stages write, stage 2 reads back
//! from stage 1, and `export`, `inspect` and the demo read, defined once. docs/data.md describes
//! them; a contract test (tests/it/contract.rs) checks it against what the stages write.
//!
//! Columns that depend on the seeds are functions ([`df_users::relations`],
//! [`df_subs::subscribers_of`]); everything else is a constant.

/// `df_main_friends` (stage 1): each seed's friends (relation 2) and followers (relation 1).
pub mod df_main_friends {
    /// The table.
    pub const TABLE: &str = "df_main_friends";
    /// The seed.
    pub const MAIN_ID: &str = "main_id";
    /// The user in its list.
    pub const ID: &str = "id";
    /// 2 friend, 1 follower.
    pub const RELATION: &str = "relation";
}

/// `df_main_outgoing` (stage 1): the users each seed follows.
pub mod df_main_outgoing {
    /// The table.
    pub const TABLE: &str = "df_main_outgoing";
    /// The seed.
    pub const MAIN_ID: &str = "main_id";
    /// The user it follows.
    pub const ID: &str = "id";
}

/// `valid_users` (stage 1): the users stage 2 works on.
pub mod valid_users {
    /// The table.
    pub const TABLE: &str = "valid_users";
    /// The user.
    pub const ID: &str = "id";
}

/// `df_subs_raw` (stage 1, SUB_GRAPH): who of the audience subscribes to what.
pub mod df_subs_raw {
    /// The table.
    pub const TABLE: &str = "df_subs_raw";
    /// The subscriber.
    pub const USER_ID: &str = "user_id";
    /// The community.
    pub const GROUP_ID: &str = "group_id";
}

/// `df_connect` (stage 2): the graph's edges.
pub mod df_connect {
    /// The table.
    pub const TABLE: &str = "df_connect";
    /// The edge's source.
    pub const SOURCE: &str = "source";
    /// The edge's target.
    pub const TARGET: &str = "target";
    /// `parser::relations`: 2 friendship, 1 follower, 0 a seed alone.
    pub const RELATION: &str = "relation";
}

/// `df_users`: one row per user, its profile columns then one relation column per seed.
pub mod df_users {
    /// The table.
    pub const TABLE: &str = "df_users";
    /// The user.
    pub const ID: &str = "id";
    /// From users.get.
    pub const FIRST_NAME: &str = "first_name";
    /// From users.get.
    pub const LAST_NAME: &str = "last_name";
    /// From users.get.
    pub const SCREEN_NAME: &str = "screen_name";
    /// From users.get.
    pub const IS_CLOSED: &str = "is_closed";
    /// From users.get.
    pub const CAN_ACCESS_CLOSED: &str = "can_access_closed";
    /// From users.get: `deleted`, `banned` or null.
    pub const DEACTIVATED: &str = "deactivated";
    /// The length of the user's friend list when the report read it, else null.
    pub const FRIENDS_COUNT: &str = "friends_count";
    /// From users.get.
    pub const FOLLOWERS_COUNT: &str = "followers_count";
    /// The user is a seed.
    pub const IS_MAIN_ID: &str = "is_main_id";

    /// The profile columns, in file order.
    pub const PROFILE: [&str; 10] = [
        ID,
        FIRST_NAME,
        LAST_NAME,
        SCREEN_NAME,
        IS_CLOSED,
        CAN_ACCESS_CLOSED,
        DEACTIVATED,
        FRIENDS_COUNT,
        FOLLOWERS_COUNT,
        IS_MAIN_ID,
    ];

    /// What each user is to the seed `main_id`: `main_id`, `mutual`, `friend`, `follower`.
    pub fn relations(main_id: impl std::fmt::Display) -> String {
        format!("relations_{main_id}")
    }
}

/// `df_subs` (stage 2, SUB_GRAPH): one row per community the audience subscribes to.
pub mod df_subs {
    /// The table.
    pub const TABLE: &str = "df_subs";
    /// Subscribers among the whole audience.
    pub const SUBSCRIBERS: &str = "subscribers";

    /// Subscribers among the seed `main_id`'s audience.
    pub fn subscribers_of(main_id: impl std::fmt::Display) -> String {
        format!("subscribers_{main_id}")
    }
}

/// `subscriptions_df` (DEFAULT): one row per seed and community it subscribes to.
pub mod subscriptions_df {
    /// The table.
    pub const TABLE: &str = "subscriptions_df";
    /// The seed.
    pub const MAIN_ID: &str = "main_id";
}

/// The community columns of `subscriptions_df` and `df_subs` (`parser::communities`).
pub mod community {
    /// The community's id.
    pub const ID_GROUP: &str = "id_group";
    /// From groups.getById, null when VK does not say.
    pub const MEMBERS_COUNT: &str = "members_count";
    /// From groups.getById.
    pub const NAME: &str = "name";
    /// From groups.getById.
    pub const SCREEN_NAME: &str = "screen_name";
    /// groups.getById `photo_100`.
    pub const IMAGE_URL: &str = "image_url";
}

/// `df_chains` (stage 2, HANDSHAKES): one row per shortest chain.
pub mod df_chains {
    /// The table.
    pub const TABLE: &str = "df_chains";
    /// The pair's first seed.
    pub const MAIN_A: &str = "main_a";
    /// The pair's second seed.
    pub const MAIN_B: &str = "main_b";
    /// 1 to 3.
    pub const HANDSHAKES: &str = "handshakes";
    /// The ids along the chain, comma-separated.
    pub const PATH: &str = "path";
}

/// `unfiltered_{main_id}` (stage 2, DEFAULT): a seed's lists before any filter.
pub mod unfiltered {
    /// The user.
    pub const ID: &str = "id";
    /// 2 friend, 1 follower.
    pub const RELATION: &str = "relation";

    /// The table of the seed `main_id`.
    pub fn table(main_id: impl std::fmt::Display) -> String {
        format!("unfiltered_{main_id}")
    }
}
