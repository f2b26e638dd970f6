//! Fuzz target `names`: seeds as people type them ([`SeedRef::parse`], [`SeedRef::from_number`])
//! and VK's answer to `utils.resolveScreenName` ([`resolve::interpret`]).
//!
//! Properties: any text gives a seed or a [`SeedError`](crate::events::SeedError); an accepted
//! seed is canonical (an id is positive, a name is lower-case `[a-z0-9_.]` of at most 64
//! characters) and parses back from its own text; every way of writing an id (`5`, `id5`,
//! `https://vk.com/id5`, `m.vk.ru/id5?from=feed`) gives that id, and every link to a name gives
//! that name; a resolution is a user only for `type: "user"` with a positive `object_id`.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{arb_json, odd_string};
use crate::events::{SeedError, SeedRef};
use crate::ids::{GroupId, VkUserId};
use crate::vk::resolve::{interpret, Resolution};

/// Ways of writing a page on VK around its first path segment.
fn link(segment: String) -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["", "https://", "http://"]);
    let host = prop::sample::select(vec![
        "vk.com/",
        "m.vk.com/",
        "www.vk.com/",
        "VK.COM/",
        "vk.ru/",
        "m.vk.ru/",
        "www.m.vk.ru/",
    ]);
    let tail = prop::sample::select(vec!["", "/", "?from=search", "#wall", "/photos?z=1#x"]);
    let space = prop::sample::select(vec!["", " ", "\t", "\n "]);
    (space.clone(), scheme, host, tail, space).prop_map(move |(lead, scheme, host, tail, trail)| {
        // Without a scheme a bare `vk.com/…` is still a link; a bare segment is not.
        format!("{lead}{scheme}{host}{segment}{tail}{trail}")
    })
}

/// Screen names VK could have: letters first (so never an id form), any case.
fn screen_name() -> impl Strategy<Value = String> {
    // Mapped, not filtered: a filter's rejects add up over a long run and abort it.
    "[A-Za-z_][A-Za-z0-9_.]{0,62}".prop_map(|s| {
        let lower = s.to_ascii_lowercase();
        let id_form = lower
            .strip_prefix("id")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        if id_form {
            format!("x{s}")
        } else {
            s
        }
    })
}

/// Entries as they come: links with odd hosts and paths, arbitrary text, long text.
fn raw_entry() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        prop::sample::select(vec![
            "vk.com",
            "VK.com",
            "vk.com.evil.example",
            "evil.example",
            "vk.com@evil.example",
            "vk.com:443",
            "",
            "www.",
            "xn--vk-com",
            "vk。com",
        ])
        .prop_map(str::to_owned),
        odd_string(),
    ];
    prop_oneof![
        odd_string(),
        any::<String>(),
        (
            prop::sample::select(vec!["", "https://", "http://", "ftp://", "//"]),
            host,
            odd_string(),
            odd_string(),
        )
            .prop_map(|(scheme, host, path, tail)| format!("{scheme}{host}/{path}{tail}")),
        (
            0usize..300,
            prop::sample::select(vec!['a', '1', ' ', 'é', '/'])
        )
            .prop_map(|(n, c)| c.to_string().repeat(n)),
    ]
}

/// What every accepted seed must satisfy.
fn check_accepted(seed: &SeedRef) -> Result<(), TestCaseError> {
    match seed {
        SeedRef::Id(id) => prop_assert!(id.get() > 0),
        SeedRef::ScreenName(name) => {
            prop_assert!(!name.is_empty() && name.len() <= 64, "{:?}", name);
            prop_assert!(
                name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || b == b'.'),
                "{:?}",
                name
            );
        }
    }
    // The canonical text parses back to the same seed (the service logs and stores it so).
    prop_assert_eq!(SeedRef::parse(&seed.to_string()), Ok(seed.clone()));
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_names_any_entry_gives_a_seed_or_an_error(raw in raw_entry()) {
        match SeedRef::parse(&raw) {
            Ok(seed) => check_accepted(&seed)?,
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn fuzz_names_ids_round_trip(id in 1..=i64::MAX, written in 0usize..3) {
        let want = SeedRef::Id(VkUserId::new(id).expect("positive"));
        prop_assert_eq!(SeedRef::from_number(id), Ok(want.clone()));
        let segment = match written {
            0 => id.to_string(),
            1 => format!("id{id}"),
            _ => format!("id{id:0>20}"),
        };
        prop_assert_eq!(SeedRef::parse(&segment), Ok(want.clone()));
        prop_assert_eq!(SeedRef::parse(&want.to_string()), Ok(want));
    }

    #[test]
    fn fuzz_names_id_links_round_trip(
        (id, raw) in (1..=i64::MAX).prop_flat_map(|id| (Just(id), link(format!("id{id}")))),
    ) {
        let want = SeedRef::Id(VkUserId::new(id).expect("positive"));
        prop_assert_eq!(SeedRef::parse(&raw), Ok(want), "{:?}", raw);
    }

    #[test]
    fn fuzz_names_name_links_round_trip(
        (name, raw) in screen_name().prop_flat_map(|n| (Just(n.clone()), link(n))),
        bare in any::<bool>(),
    ) {
        let want = SeedRef::ScreenName(name.to_ascii_lowercase());
        let raw = if bare { name } else { raw };
        prop_assert_eq!(SeedRef::parse(&raw), Ok(want), "{:?}", raw);
    }

    #[test]
    fn fuzz_names_non_positive_numbers_are_refused(n in i64::MIN..=0) {
        prop_assert_eq!(SeedRef::from_number(n), Err(SeedError::BadId));
        prop_assert!(SeedRef::parse(&n.to_string()).is_err());
    }

    #[test]
    fn fuzz_names_resolutions(
        value in prop_oneof![
            arb_json(),
            (arb_json(), arb_json()).prop_map(|(id, kind)| json!({"object_id": id, "type": kind})),
            (any::<i64>(), prop::sample::select(vec!["user", "group", "page", "application", "User"]))
                .prop_map(|(id, kind)| json!({"object_id": id, "type": kind})),
        ],
    ) {
        let object_id = value.get("object_id").and_then(Value::as_i64);
        let kind = value.get("type").and_then(Value::as_str);
        let want = match (kind, object_id) {
            (Some("user"), Some(id)) if id > 0 => {
                Resolution::User(VkUserId::new(id).expect("positive"))
            }
            (Some("user"), Some(_)) => Resolution::NotFound,
            (Some("group" | "page"), Some(id)) if id > 0 => {
                Resolution::Community(GroupId::new(id).expect("positive"))
            }
            (Some("group" | "page"), Some(_)) => Resolution::NotFound,
            (Some(_), Some(_)) => Resolution::Other,
            _ => Resolution::NotFound,
        };
        prop_assert_eq!(interpret(&value), want);
    }
}
