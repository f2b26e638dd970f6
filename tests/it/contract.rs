//! The seed service's data contract: docs/data.md lists exactly what the stages write, and the
//! stage 2 tables carry what the seed's readers expect (relations per seed, outgoing
//! friendships, the seeds' communities, readable closed profiles, every seed in `df_connect`),
//! checked against the strict vk-sim's truth.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::support::backend::{report_created, stage2_created};
use crate::support::service::Service;
use crate::support::sim::{self, ids_of, pick_seeds, truth};

/// One row of a docs/data.md stage table: a file, the report types writing it, its columns.
#[derive(Debug)]
struct Documented {
    stage: u8,
    file: String,
    types: Vec<String>,
    columns: Vec<(String, String)>,
}

/// The stage tables of docs/data.md (rows of the tables under "### Stage 1" and "### Stage 2").
fn documented() -> Vec<Documented> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/data.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut stage = 0;
    let mut rows = Vec::new();
    for line in text.lines() {
        if line.starts_with("### Stage 1") {
            stage = 1;
        } else if line.starts_with("### Stage 2") {
            stage = 2;
        } else if line.starts_with("### ") || line.starts_with("## ") {
            stage = 0;
        }
        if stage == 0 || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = |cell: &str| cell.trim_end_matches('⁺').trim_matches('`').to_owned();
        let types = match cells[2] {
            "all" => vec!["DEFAULT".into(), "HANDSHAKES".into(), "SUB_GRAPH".into()],
            list => list.split(", ").map(str::to_owned).collect(),
        };
        let columns = cells[3]
            .split(", ")
            .map(|item| {
                let (column, dtype) = item.rsplit_once(' ').expect("`name` dtype");
                (name(column.trim_end_matches('⁺')), dtype.to_owned())
            })
            .collect();
        rows.push(Documented {
            stage,
            file: name(cells[1]),
            types,
            columns,
        });
    }
    rows
}

/// `template` with `{main_id}` replaced by each seed, or itself when it has none.
fn expand(template: &str, mains: &[i64]) -> Vec<String> {
    if template.contains("{main_id}") {
        mains
            .iter()
            .map(|m| template.replace("{main_id}", &m.to_string()))
            .collect()
    } else {
        vec![template.to_owned()]
    }
}

/// The stage under `prefix` wrote exactly the files and columns docs/data.md lists for its
/// report type and stage, in order.
pub(crate) fn assert_documented(service: &Service, prefix: &str) {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(service.files.join(prefix).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let kind = manifest["reportType"].as_str().unwrap();
    let stage = manifest["stage"].as_u64().unwrap() as u8;
    let mains: Vec<i64> = ids_of(&manifest["mainIds"]);
    let mut want: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for row in documented() {
        if row.stage != stage || !row.types.iter().any(|t| t == kind) {
            continue;
        }
        let columns: Vec<(String, String)> = row
            .columns
            .iter()
            .flat_map(|(c, d)| expand(c, &mains).into_iter().map(move |c| (c, d.clone())))
            .collect();
        for file in expand(&row.file, &mains) {
            want.push((format!("{file}.parquet"), columns.clone()));
        }
    }
    let got: Vec<(String, Vec<(String, String)>)> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let columns = f["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_owned(),
                        c["dtype"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (f["name"].as_str().unwrap().to_owned(), columns)
        })
        .collect();
    let sorted = |mut v: Vec<(String, Vec<(String, String)>)>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(got),
        sorted(want),
        "{kind} stage {stage}: the files and columns written differ from docs/data.md"
    );
}

#[test]
fn docs_data_md_lists_every_stage_table() {
    let rows = documented();
    for (stage, kind, files) in [
        (1, "DEFAULT", 5),
        (1, "HANDSHAKES", 3),
        (1, "SUB_GRAPH", 5),
        (2, "DEFAULT", 4),
        (2, "HANDSHAKES", 3),
        (2, "SUB_GRAPH", 2),
    ] {
        let n = rows
            .iter()
            .filter(|r| r.stage == stage && r.types.iter().any(|t| t == kind))
            .count();
        assert_eq!(n, files, "{kind} stage {stage}");
    }
    let dtypes: HashSet<&str> = ["int64", "int8", "bool", "string"].into();
    for row in &rows {
        for (column, dtype) in &row.columns {
            assert!(
                dtypes.contains(dtype.as_str()),
                "{}: {column} {dtype}",
                row.file
            );
        }
    }
}

/// Checks every `relations_{seed}` of `users` against the truth's lists (the `unreadable` seed's
/// lists could not be read: only `main_id` for itself); returns how often each value occurs,
/// per seed.
async fn assert_relations(
    sim: &vk_sim::SimHandle,
    users: &vk_parser::tables::Table,
    seeds: &[u32],
    unreadable: u32,
) -> Vec<HashMap<String, usize>> {
    let t = truth(sim, seeds).await;
    let list = |seed: u32, path: &[&str]| -> BTreeSet<i64> {
        let value = path
            .iter()
            .fold(&t["users"][seed.to_string()], |v, k| &v[*k]);
        ids_of(value).into_iter().collect()
    };
    let ids = column(users, "id").to_vec();
    let mut counts = Vec::new();
    for &seed in seeds {
        let values = users.strs(&format!("relations_{seed}")).unwrap();
        let (mutual, outgoing, followers) = (
            list(seed, &["friends"]),
            list(seed, &["subscriptions", "users"]),
            list(seed, &["followers"]),
        );
        let readable = seed != unreadable;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (id, value) in ids.iter().zip(values) {
            let want = if *id == i64::from(seed) {
                Some("main_id")
            } else if readable && mutual.contains(id) {
                Some("mutual")
            } else if readable && outgoing.contains(id) {
                Some("friend")
            } else if readable && followers.contains(id) {
                Some("follower")
            } else {
                None
            };
            assert_eq!(value.as_deref(), want, "relations_{seed} of {id}");
            *seen.entry(want.unwrap_or("null").to_owned()).or_default() += 1;
        }
        counts.push(seen);
    }
    counts
}

fn column<'a>(table: &'a vk_parser::tables::Table, name: &str) -> &'a [i64] {
    table.i64s(name).unwrap()
}

/// A DEFAULT report whose seeds are an ordinary user (the author, with closed friends its
/// token may read), the loner (no visible friend) and the closed profile (no list readable),
/// against the truth.
#[tokio::test(flavor = "multi_thread")]
async fn default_stage_2_carries_the_seed_contract() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[]).await;
    let named = sim.named();
    // An author with a closed friend, outgoing friendships and followers, not a friend of the
    // closed profile (so its list stays unreadable).
    let candidates = pick_seeds(&sim, 500, 40).await;
    let t = truth(&sim, &candidates).await;
    let mut author = None;
    for c in candidates {
        let info = &t["users"][c.to_string()];
        let friends: Vec<u32> = ids_of(&info["friends"]).iter().map(|&f| f as u32).collect();
        let tf = truth(&sim, &friends).await;
        let closed_friend = friends.iter().any(|f| {
            let u = &tf["users"][f.to_string()];
            u["is_closed"] == true && u["deactivated"].is_null()
        });
        if closed_friend
            && !friends.contains(&named.closed)
            && !ids_of(&info["subscriptions"]["users"]).is_empty()
            && !ids_of(&info["followers"]).is_empty()
        {
            author = Some(c);
            break;
        }
    }
    let author = author.expect("an author with a closed friend");
    let seeds = [author, named.loner, named.closed];
    let (p1, p2) = service
        .run_report_with(
            "contract",
            report_created("contract", "DEFAULT", &seeds, author),
            stage2_created("contract", "DEFAULT", author),
        )
        .await;
    assert_documented(&service, &p1);
    assert_documented(&service, &p2);

    let t = truth(&sim, &seeds).await;
    let of = |id: u32, list: &str| -> BTreeSet<i64> {
        ids_of(&t["users"][id.to_string()][list])
            .into_iter()
            .collect()
    };
    let following = |id: u32| -> BTreeSet<i64> {
        ids_of(&t["users"][id.to_string()]["subscriptions"]["users"])
            .into_iter()
            .collect()
    };
    assert!(
        of(named.loner, "friends").is_empty(),
        "the loner shows no friend"
    );

    // Readable closed profiles are valid users (canAccessClosed absent: the seed's rule).
    let valid: BTreeSet<i64> = column(&service.table(&p1, "valid_users"), "id")
        .iter()
        .copied()
        .collect();
    let friends: Vec<u32> = of(author, "friends").iter().map(|&f| f as u32).collect();
    let tf = truth(&sim, &friends).await;
    let closed: Vec<i64> = friends
        .iter()
        .filter(|f| {
            let u = &tf["users"][f.to_string()];
            u["is_closed"] == true && u["deactivated"].is_null()
        })
        .map(|&f| i64::from(f))
        .collect();
    assert!(!closed.is_empty());
    for c in &closed {
        assert!(valid.contains(c), "the author's closed friend {c} is kept");
    }

    // relations_{main_id} in stage 2's df_users: the four values, as the lists say.
    let seen = assert_relations(&sim, &service.table(&p2, "df_users"), &seeds, named.closed).await;
    for value in ["main_id", "mutual", "friend", "follower"] {
        assert!(
            seen[0].contains_key(value),
            "{value} occurs for the author: {seen:?}"
        );
    }

    // df_connect: outgoing friendships as directed relation-2 edges; every seed present.
    let connect = service.table(&p2, "df_connect");
    let (source, target) = (column(&connect, "source"), column(&connect, "target"));
    let relation = connect.i8s("relation").unwrap();
    let edges: HashSet<(i64, i64, i8)> = (0..source.len())
        .map(|i| (source[i], target[i], relation[i]))
        .collect();
    for seed in [author, named.loner] {
        let s = i64::from(seed);
        let out: Vec<i64> = following(seed)
            .into_iter()
            .filter(|u| valid.contains(u))
            .collect();
        assert!(seed == named.loner || !out.is_empty());
        for u in out {
            assert!(
                edges.contains(&(s, u, 2)),
                "outgoing {s} -> {u} is relation 2"
            );
            assert!(
                !edges.contains(&(s, u, 1)),
                "outgoing {s} -> {u} is not a follower edge"
            );
        }
    }
    let present: HashSet<i64> = source.iter().chain(target).copied().collect();
    for seed in seeds {
        assert!(
            present.contains(&i64::from(seed)),
            "seed {seed} in df_connect"
        );
    }
    let closed_seed = i64::from(named.closed);
    assert!(
        edges.contains(&(closed_seed, closed_seed, 0)),
        "the closed seed's self-link"
    );
    assert_eq!(
        (0..source.len())
            .filter(|&i| source[i] == target[i])
            .count(),
        1,
        "no other self-loop"
    );

    // subscriptions_df in stage 2: the seeds' communities, with the seed's columns.
    let subs = service.table(&p2, "subscriptions_df");
    let pairs: BTreeSet<(i64, i64)> = column(&subs, "main_id")
        .iter()
        .copied()
        .zip(column(&subs, "id_group").iter().copied())
        .collect();
    let mut want: BTreeSet<(i64, i64)> = BTreeSet::new();
    for seed in [author, named.loner] {
        for g in ids_of(&t["users"][seed.to_string()]["subscriptions"]["groups"]) {
            want.insert((i64::from(seed), g));
        }
    }
    assert_eq!(pairs, want);
    service.stop().await;
}

/// The HANDSHAKES and SUB_GRAPH stages write what docs/data.md lists, with each seed's
/// relations by the truth, and HANDSHAKES keeps seeds without a chain (the loner, the closed
/// profile) in df_connect.
#[tokio::test(flavor = "multi_thread")]
async fn handshakes_and_sub_graph_write_what_the_docs_list() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[]).await;
    let named = sim.named();
    let mut seeds = pick_seeds(&sim, 900, 2).await;
    seeds.extend([named.loner, named.closed]);
    for kind in ["HANDSHAKES", "SUB_GRAPH"] {
        let job = format!("docs-{}", kind.to_lowercase());
        let author = named.open;
        let (p1, p2) = service
            .run_report_with(
                &job,
                report_created(&job, kind, &seeds, author),
                stage2_created(&job, kind, author),
            )
            .await;
        assert_documented(&service, &p1);
        assert_documented(&service, &p2);
        let seen =
            assert_relations(&sim, &service.table(&p2, "df_users"), &seeds, named.closed).await;
        if kind == "SUB_GRAPH" {
            // The whole audience is there: every value occurs for an ordinary seed.
            for value in ["main_id", "mutual", "friend", "follower"] {
                assert!(seen[0].contains_key(value), "{kind}: {value}: {seen:?}");
            }
            // `export` reads the seed's df_subs: one weighted edge per seed and community.
            let manifest: vk_parser::storage::Manifest = serde_json::from_slice(
                &std::fs::read(service.files.join(&p2).join("manifest.json")).unwrap(),
            )
            .unwrap();
            let tables = vec![
                service.table(&p2, "df_subs"),
                service.table(&p2, "df_users"),
            ];
            let graph = vk_parser::export::graph_of(&manifest, &tables).unwrap();
            let subs = service.table(&p2, "df_subs");
            let want: i64 = seeds
                .iter()
                .map(|s| {
                    let n = subs.i64s(&format!("subscribers_{s}")).unwrap();
                    n.iter().filter(|c| **c > 0).count() as i64
                })
                .sum();
            assert_eq!(graph.edges.len() as i64, want);
            assert!(graph.edges.iter().all(|e| e.target < 0 && e.weight > 0));
        }
        if kind == "HANDSHAKES" {
            let connect = service.table(&p2, "df_connect");
            let present: HashSet<i64> = column(&connect, "source")
                .iter()
                .chain(column(&connect, "target"))
                .copied()
                .collect();
            for seed in &seeds {
                assert!(
                    present.contains(&i64::from(*seed)),
                    "seed {seed} in df_connect"
                );
            }
        }
    }
    service.stop().await;
}

/// A Stage2Created without `stage1Prefix` reads stage 1's prefix from its state record in
/// Redis: a stray stage 1 manifest of the same job that a listing would find first (an earlier
/// seed list, sorted before) is not looked at; without the record, the listing still works.
#[tokio::test(flavor = "multi_thread")]
async fn stage_2_finds_stage_1_through_its_state_record() {
    let sim = sim::start(|_| {}).await;
    let service = Service::start(&sim, &[]).await;
    let seeds = pick_seeds(&sim, 600, 1).await;
    let author = sim.named().open;
    for (job, record) in [("o1-record", true), ("o1-listing", false)] {
        let s1 = service.run_stage1(job, "DEFAULT", &seeds, author).await;
        if record {
            let stray = service.files.join(format!("DEFAULT/0/{job}_stage1"));
            std::fs::create_dir_all(&stray).unwrap();
            std::fs::write(stray.join("manifest.json"), b"{not a manifest").unwrap();
        } else {
            let mut conn = service.streams().await.connection();
            let removed: i64 = redis::cmd("DEL")
                .arg(format!("vkp:job:{job}:stage1"))
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(removed, 1, "stage 1's state record exists");
        }
        service
            .publish("Stage2Created", stage2_created(job, "DEFAULT", author))
            .await;
        let s2 = service.final_status(job, 2).await;
        assert_eq!(s2["status"], "COMPLETED", "{job}: {s2}");
        let p1 = s1["artifacts"]["prefix"].as_str().unwrap();
        let p2 = s2["artifacts"]["prefix"].as_str().unwrap();
        assert_eq!(
            p2.replace("_stage2", "_stage1"),
            p1,
            "stage 2 beside the real stage 1"
        );
    }
    service.stop().await;
}
