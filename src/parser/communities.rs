//! The community columns the seed service wrote (`id_group`, `members_count`, `name`,
//! `screen_name`, `image_url`), owned here once for `subscriptions_df` (the seeds'
//! communities) and `df_subs` (the audience's, SUB_GRAPH), and the groups.getById read behind
//! them.

use std::collections::HashMap;

use super::schema::{community, subscriptions_df};
use super::ParserError;
use crate::tables::{ColumnData, Table};
use crate::vk::methods::{self, Group};
use crate::vk::orchestrator::Session;

/// The details groups.getById gave, by community id. A community VK did not return (removed
/// meanwhile) has no entry, and its detail columns are null.
pub type Details = HashMap<i64, Group>;

/// Reads the details of `ids` (500 per call).
pub async fn details(session: &mut Session, ids: &[i64]) -> Result<Details, ParserError> {
    let groups = methods::groups(session, ids, "members_count").await?;
    Ok(groups.into_iter().map(|g| (g.id, g)).collect())
}

/// Appends `id_group` and the four detail columns for the rows `ids`.
pub fn add_columns(table: Table, ids: &[i64], details: &Details) -> Table {
    let of = |id: &i64| details.get(id);
    table
        .with(community::ID_GROUP, ColumnData::I64(ids.to_vec()))
        .with(
            community::MEMBERS_COUNT,
            ColumnData::OptI64(
                ids.iter()
                    .map(|g| of(g).and_then(|g| g.members_count).map(|n| n as i64))
                    .collect(),
            ),
        )
        .with(
            community::NAME,
            ColumnData::Str(ids.iter().map(|g| of(g).map(|g| g.name.clone())).collect()),
        )
        .with(
            community::SCREEN_NAME,
            ColumnData::Str(
                ids.iter()
                    .map(|g| of(g).map(|g| g.screen_name.clone()))
                    .collect(),
            ),
        )
        .with(
            community::IMAGE_URL,
            ColumnData::Str(
                ids.iter()
                    .map(|g| of(g).and_then(|g| g.photo_100.clone()))
                    .collect(),
            ),
        )
}

/// `subscriptions_df`: one row per (seed, community it subscribes to).
pub fn subscriptions_table(pairs: &[(i64, i64)], details: &Details) -> Table {
    let groups: Vec<i64> = pairs.iter().map(|(_, g)| *g).collect();
    let table = Table::new(subscriptions_df::TABLE).with(
        subscriptions_df::MAIN_ID,
        ColumnData::I64(pairs.iter().map(|(m, _)| *m).collect()),
    );
    add_columns(table, &groups, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_vk_did_not_return_have_null_details() {
        let group: Group = serde_json::from_value(serde_json::json!({
            "id": 5, "name": "Five", "screen_name": "five", "members_count": 50,
        }))
        .unwrap();
        let details: Details = [(5, group)].into();
        let table = subscriptions_table(&[(1, 5), (1, 6)], &details);
        assert_eq!(table.i64s("id_group").unwrap(), [5, 6]);
        assert_eq!(table.opt_i64s("members_count").unwrap(), [Some(50), None]);
        let names: Vec<Option<&str>> = table
            .strs("name")
            .unwrap()
            .iter()
            .map(Option::as_deref)
            .collect();
        assert_eq!(names, [Some("Five"), None]);
        let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            columns,
            [
                "main_id",
                "id_group",
                "members_count",
                "name",
                "screen_name",
                "image_url"
            ]
        );
    }
}
