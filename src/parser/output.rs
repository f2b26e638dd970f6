//! Writing a stage: validate its tables, encode them as parquet off the async threads, and store
//! them with the manifest last.

use chrono::Utc;

use super::relations::{Edge, SeedLists, ALONE};
use super::schema::{df_connect, df_users};
use super::ParserError;
use crate::events::Artifacts;
use std::collections::{BTreeSet, HashMap};

use crate::ids::{ReportId, VkUserId};
use crate::storage::{write_stage, Completeness, StageMeta, StagePrefix, Storage};
use crate::tables::{into_files, ColumnData, Table};
use crate::vk::methods::{Counters, Profile};

/// Fails with EMPTY_RESULT (naming the table) when `table` has no rows.
pub fn require_rows(table: &Table) -> Result<(), ParserError> {
    if table.rows() == 0 {
        return Err(ParserError::Empty(format!("table {} is empty", table.name)));
    }
    Ok(())
}

/// Checks an edge table: ids positive, no self-loops but a seed's [`ALONE`] link to itself.
pub fn check_edges(table: &Table) -> Result<(), ParserError> {
    let (Some(ColumnData::I64(source)), Some(ColumnData::I64(target))) = (
        table.column(df_connect::SOURCE),
        table.column(df_connect::TARGET),
    ) else {
        return Err(ParserError::Empty(format!(
            "table {} lacks its source and target columns",
            table.name
        )));
    };
    let relation: &[i8] = match table.column(df_connect::RELATION) {
        Some(ColumnData::I8(r)) => r,
        _ => &[],
    };
    let alone = |i: usize| relation.get(i) == Some(&ALONE);
    if let Some((_, (s, t))) = source
        .iter()
        .zip(target)
        .enumerate()
        .find(|(i, (s, t))| **s <= 0 || **t <= 0 || (s == t && !alone(*i)))
    {
        return Err(ParserError::Empty(format!(
            "table {} has an invalid edge {s} -> {t}",
            table.name
        )));
    }
    Ok(())
}

/// Encodes `tables` and writes them under `prefix`, manifest last.
pub async fn write(
    storage: &dyn Storage,
    prefix: &StagePrefix,
    report_id: &ReportId,
    main_ids: &[VkUserId],
    tables: Vec<Table>,
    completeness: Completeness,
) -> Result<Artifacts, ParserError> {
    // polars is CPU work that may block: keep it off the async worker threads.
    let files = tokio::task::spawn_blocking(move || into_files(tables))
        .await
        .map_err(|source| ParserError::Task {
            what: "encoding",
            source,
        })??;
    let meta = StageMeta {
        report_id: report_id.clone(),
        main_ids: main_ids.to_vec(),
        created_at: Utc::now(),
        completeness,
    };
    let manifest = write_stage(storage, prefix, meta, files).await?;
    Ok(Artifacts {
        prefix: prefix.to_string(),
        manifest: manifest.to_string(),
    })
}

/// `df_connect` of `edges`: source, target, relation.
pub fn edges_table(edges: &[Edge]) -> Table {
    Table::new(df_connect::TABLE)
        .with(
            df_connect::SOURCE,
            ColumnData::I64(edges.iter().map(|e| e.0).collect()),
        )
        .with(
            df_connect::TARGET,
            ColumnData::I64(edges.iter().map(|e| e.1).collect()),
        )
        .with(
            df_connect::RELATION,
            ColumnData::I8(edges.iter().map(|e| e.2).collect()),
        )
}

/// Stage 2's `df_users`: the profile columns of `profiles`, then each seed's
/// `relations_{main_id}`.
pub fn users_table(
    profiles: &[Profile],
    mains: &BTreeSet<i64>,
    friend_counts: &HashMap<i64, usize>,
    seeds: &SeedLists,
    main_ids: &[VkUserId],
) -> Table {
    let ids: Vec<i64> = profiles.iter().map(|p| p.id).collect();
    seeds.add_columns(
        profiles_table(profiles, mains, friend_counts),
        &ids,
        main_ids,
    )
}

/// `df_users`: the profile columns every stage writes, for `profiles` in order.
/// `friend_counts` are the lengths of the friend lists the report read (VK gives friend counts
/// only to a one-user users.get); a count nobody knows is a null.
pub fn profiles_table<'a>(
    profiles: impl IntoIterator<Item = &'a Profile>,
    mains: &BTreeSet<i64>,
    friend_counts: &HashMap<i64, usize>,
) -> Table {
    let rows: Vec<&Profile> = profiles.into_iter().collect();
    let counter = |p: &Profile, pick: fn(&Counters) -> Option<u64>| {
        p.counters.as_ref().and_then(pick).map(|n| n as i64)
    };
    let friends = |p: &Profile| {
        counter(p, |c| c.friends).or_else(|| friend_counts.get(&p.id).map(|&n| n as i64))
    };
    let followers =
        |p: &Profile| counter(p, |c| c.followers).or(p.followers_count.map(|n| n as i64));
    let strings =
        |f: fn(&Profile) -> Option<String>| ColumnData::Str(rows.iter().map(|p| f(p)).collect());
    let flags = |f: fn(&Profile) -> bool| ColumnData::Bool(rows.iter().map(|p| f(p)).collect());
    Table::new(df_users::TABLE)
        .with(
            df_users::ID,
            ColumnData::I64(rows.iter().map(|p| p.id).collect()),
        )
        .with(
            df_users::FIRST_NAME,
            strings(|p| Some(p.first_name.clone())),
        )
        .with(df_users::LAST_NAME, strings(|p| Some(p.last_name.clone())))
        .with(df_users::SCREEN_NAME, strings(|p| p.screen_name.clone()))
        .with(df_users::IS_CLOSED, flags(|p| p.is_closed))
        .with(df_users::CAN_ACCESS_CLOSED, flags(|p| p.can_access_closed))
        .with(df_users::DEACTIVATED, strings(|p| p.deactivated.clone()))
        .with(
            df_users::FRIENDS_COUNT,
            ColumnData::OptI64(rows.iter().map(|p| friends(p)).collect()),
        )
        .with(
            df_users::FOLLOWERS_COUNT,
            ColumnData::OptI64(rows.iter().map(|p| followers(p)).collect()),
        )
        .with(
            df_users::IS_MAIN_ID,
            ColumnData::Bool(rows.iter().map(|p| mains.contains(&p.id)).collect()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_users_writes_the_profile_columns_of_the_schema_in_order() {
        let table = profiles_table(&[], &BTreeSet::new(), &HashMap::new());
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, df_users::PROFILE);
    }

    #[test]
    fn edges_refuse_self_loops_but_a_seed_alone() {
        let ok = edges_table(&[(1, 2, 2), (3, 3, ALONE), (4, 1, 1)]);
        assert!(check_edges(&ok).is_ok());
        for bad in [(5, 5, 2), (0, 1, 1), (1, -2, 2)] {
            assert!(check_edges(&edges_table(&[bad])).is_err(), "{bad:?}");
        }
    }
}
