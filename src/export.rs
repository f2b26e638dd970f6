//! `vk-parser export`: a stage 2 graph as GEXF, GraphML or CSV, for Gephi, networkx and
//! spreadsheets.
//!
//! The parquet tables are what the backend reads; people exploring a graph open it in Gephi
//! (GEXF, what vkR and vkstat users expect) or networkx (GEXF or GraphML), or load two CSV files.
//! Export reads a stage through the configured storage (local folder or S3), so it works on a
//! deployment's bucket as well as on the demo's `./data`.
//!
//! The graph, by report type:
//! - DEFAULT and HANDSHAKES: nodes are `df_users` (a VK user id, labelled with the name, every
//!   profile and `relations_{main_id}` column as an attribute); edges are `df_connect`. The
//!   graph is directed: a `follower` edge points from the follower to the followed user; a
//!   `friend` edge is mutual and stored once, from the smaller id to the larger, except a seed's
//!   outgoing friendship, which points from the seed (docs/data.md). A seed's minimal link to
//!   itself (relation 0) is no edge: the seed is a node anyway.
//! - SUB_GRAPH: the seeds and the communities their audience subscribes to (`df_subs`).
//!   Communities take VK's own convention of negative ids (`-id_group`), so they never collide
//!   with users; an edge `seed → -group` has `relation = subscribers` and `weight` = how many of
//!   the seed's audience subscribe (`subscribers_{main_id}`).
//!
//! Every node has `kind` (`user` or `community`) and `seed` attributes, which Gephi can colour
//! by. Writers are plain `std::io::Write` code: the formats are small and fixed, and escaping is
//! done in one place ([`xml_escape`], [`csv_field`]).
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 560 lines.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ids::{ReportType, VkUserId};
use crate::key::{KeyError, StagePrefix};
use crate::parser::schema::{community, df_connect, df_subs, df_users};
use crate::settings::Settings;
use crate::stage_files::{read_stage, StageReadError};
use crate::storage::{self, Manifest};
use crate::tables::{ColumnData, Table, TableError};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The prefix is not a stage prefix.
    #[error(transparent)]
    Prefix(#[from] KeyError),
    /// Storage failed (unreachable, a missing manifest).
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The stage could not be read back.
    #[error(transparent)]
    Read(#[from] StageReadError),
    /// The stage lacks a table the graph needs.
    #[error("the stage has no {0} table")]
    MissingTable(String),
    /// A table lacks a column the graph needs, or has it of another type.
    #[error(transparent)]
    Column(#[from] TableError),
    /// The writing task failed (a bug: it panicked).
    #[error("writing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The stage holds no graph (a stage 1 prefix).
    #[error("{0}")]
    NotAGraph(String),
    /// The output could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// GEXF 1.2 (Gephi, networkx `read_gexf`).
    Gexf,
    /// GraphML (networkx `read_graphml`, yEd, igraph).
    Graphml,
    /// `nodes.csv` and `edges.csv` in a folder (Gephi's spreadsheet import, pandas).
    Csv,
}

/// The type of a node attribute, as the formats name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// A 64-bit integer.
    Long,
    /// A flag.
    Boolean,
    /// Text.
    String,
}

impl AttrType {
    /// The name GEXF and GraphML both use for the type.
    fn type_name(self) -> &'static str {
        match self {
            AttrType::Long => "long",
            AttrType::Boolean => "boolean",
            AttrType::String => "string",
        }
    }
}

/// One attribute value; `None` in a node's values is a null (written as nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// An integer.
    Long(i64),
    /// A flag.
    Boolean(bool),
    /// Text.
    String(String),
}

/// A node: its VK id (negative for a community), a label, and one value per attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// VK id; communities are negative.
    pub id: i64,
    /// What Gephi shows: a user's name or a community's name.
    pub label: String,
    /// Values in the order of [`Graph::attributes`].
    pub values: Vec<Option<AttrValue>>,
}

/// An edge; see the module header for direction and relations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Where it starts.
    pub source: i64,
    /// Where it ends.
    pub target: i64,
    /// `friend`, `follower` or `subscribers`.
    pub relation: &'static str,
    /// 1, or the subscriber count for `subscribers`.
    pub weight: i64,
}

/// A stage's graph, ready to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Node attribute names and types.
    pub attributes: Vec<(String, AttrType)>,
    /// Nodes, each id once.
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// Reads the graph of the stage at `prefix` and writes it in `format` to `out` (a file for
/// GEXF and GraphML, a folder for CSV; by default `{jobId}_stage{n}.{ext}` in the current
/// folder). Returns the graph's size and what was written.
pub async fn export(
    settings: &Settings,
    prefix: &str,
    format: Format,
    out: Option<PathBuf>,
) -> Result<(Graph, Vec<PathBuf>), ExportError> {
    let prefix = StagePrefix::parse(prefix)?;
    let store = storage::open(&settings.storage).await?;
    let (manifest, tables) = read_stage(store.as_ref(), &prefix).await?;
    let graph = graph_of(&manifest, &tables)?;
    let out = out.unwrap_or_else(|| {
        let stem = format!("{}_stage{}", manifest.job_id, manifest.stage);
        PathBuf::from(match format {
            Format::Gexf => format!("{stem}.gexf"),
            Format::Graphml => format!("{stem}.graphml"),
            Format::Csv => stem,
        })
    });
    let written = tokio::task::spawn_blocking({
        let graph = graph.clone();
        move || write_files(&graph, format, &out)
    })
    .await??;
    Ok((graph, written))
}

fn write_files(graph: &Graph, format: Format, out: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let create = |path: &Path| {
        std::fs::File::create(path)
            .map(io::BufWriter::new)
            .map_err(|source| ExportError::Write {
                path: path.to_owned(),
                source,
            })
    };
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Write { path, source }
    };
    match format {
        Format::Gexf | Format::Graphml => {
            let mut file = create(out)?;
            let written = if format == Format::Gexf {
                write_gexf(graph, &mut file)
            } else {
                write_graphml(graph, &mut file)
            };
            written.and_then(|_| file.flush()).map_err(failed(out))?;
            Ok(vec![out.to_owned()])
        }
        Format::Csv => {
            std::fs::create_dir_all(out).map_err(failed(out))?;
            let (nodes, edges) = (out.join("nodes.csv"), out.join("edges.csv"));
            let (mut n, mut e) = (create(&nodes)?, create(&edges)?);
            write_nodes_csv(graph, &mut n)
                .and_then(|_| n.flush())
                .map_err(failed(&nodes))?;
            write_edges_csv(graph, &mut e)
                .and_then(|_| e.flush())
                .map_err(failed(&edges))?;
            Ok(vec![nodes, edges])
        }
    }
}

fn table<'a>(tables: &'a [Table], name: &str) -> Result<&'a Table, ExportError> {
    tables
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ExportError::MissingTable(name.to_owned()))
}

/// Builds the graph from a stage's manifest and decoded tables.
pub fn graph_of(manifest: &Manifest, tables: &[Table]) -> Result<Graph, ExportError> {
    if manifest.stage != 2 {
        return Err(ExportError::NotAGraph(format!(
            "{} is a stage {} prefix: the graph is in stage 2 ({}_stage2/)",
            manifest.prefix, manifest.stage, manifest.job_id
        )));
    }
    let seeds: BTreeSet<i64> = manifest.main_ids.iter().map(|id| id.get()).collect();
    match manifest.report_type {
        ReportType::Default | ReportType::Handshakes => user_graph(tables, &seeds),
        ReportType::SubGraph => community_graph(tables, &manifest.main_ids),
    }
}

fn user_graph(tables: &[Table], seeds: &BTreeSet<i64>) -> Result<Graph, ExportError> {
    let users = table(tables, df_users::TABLE)?;
    let connect = table(tables, df_connect::TABLE)?;
    let mut graph = Graph {
        attributes: vec![
            ("kind".to_owned(), AttrType::String),
            ("seed".to_owned(), AttrType::Boolean),
        ],
        ..Graph::default()
    };
    let columns: Vec<_> = users.columns.iter().filter(|c| c.name != "id").collect();
    for c in &columns {
        let kind = match c.data {
            ColumnData::I64(_) | ColumnData::OptI64(_) | ColumnData::I8(_) => AttrType::Long,
            ColumnData::Bool(_) => AttrType::Boolean,
            // Report tables hold no floats; a ratio would be exported as its text.
            ColumnData::F64(_) => AttrType::String,
            ColumnData::Str(_) => AttrType::String,
        };
        graph.attributes.push((c.name.clone(), kind));
    }
    let ids = users.i64s(df_users::ID)?;
    let text = |name: &str, row: usize| match users.column(name) {
        Some(ColumnData::Str(v)) => v[row].clone(),
        _ => None,
    };
    let mut known = BTreeSet::new();
    for (row, &id) in ids.iter().enumerate() {
        if !known.insert(id) {
            continue;
        }
        let label = [
            text(df_users::FIRST_NAME, row),
            text(df_users::LAST_NAME, row),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let mut values = vec![
            Some(AttrValue::String("user".to_owned())),
            Some(AttrValue::Boolean(seeds.contains(&id))),
        ];
        values.extend(columns.iter().map(|c| match &c.data {
            ColumnData::I64(v) => Some(AttrValue::Long(v[row])),
            ColumnData::OptI64(v) => v[row].map(AttrValue::Long),
            ColumnData::I8(v) => Some(AttrValue::Long(v[row].into())),
            ColumnData::Bool(v) => Some(AttrValue::Boolean(v[row])),
            ColumnData::F64(v) => Some(AttrValue::String(v[row].to_string())),
            ColumnData::Str(v) => v[row].clone().map(AttrValue::String),
        }));
        graph.nodes.push(Node { id, label, values });
    }
    let (sources, targets) = (
        connect.i64s(df_connect::SOURCE)?,
        connect.i64s(df_connect::TARGET)?,
    );
    let relations = connect.i8s(df_connect::RELATION)?;
    for ((&source, &target), &relation) in sources.iter().zip(targets).zip(relations) {
        let relation = match relation {
            crate::parser::relations::FRIEND => "friend",
            crate::parser::relations::FOLLOWER => "follower",
            _ => continue,
        };
        graph.edges.push(Edge {
            source,
            target,
            relation,
            weight: 1,
        });
    }
    add_missing_endpoints(&mut graph, known, seeds);
    Ok(graph)
}

fn community_graph(tables: &[Table], main_ids: &[VkUserId]) -> Result<Graph, ExportError> {
    let seeds: BTreeSet<i64> = main_ids.iter().map(|id| id.get()).collect();
    let subs = table(tables, df_subs::TABLE)?;
    let mut graph = Graph {
        attributes: vec![
            ("kind".to_owned(), AttrType::String),
            ("seed".to_owned(), AttrType::Boolean),
            ("screen_name".to_owned(), AttrType::String),
            ("members_count".to_owned(), AttrType::Long),
        ],
        ..Graph::default()
    };
    let ids = subs.i64s(community::ID_GROUP)?;
    let names = subs.strs(community::NAME)?;
    let screen_names = subs.strs(community::SCREEN_NAME)?;
    let members = subs.opt_i64s(community::MEMBERS_COUNT)?;
    let mut known = BTreeSet::new();
    for row in 0..ids.len() {
        let id = -ids[row].abs();
        if !known.insert(id) {
            continue;
        }
        graph.nodes.push(Node {
            id,
            label: names[row].clone().unwrap_or_default(),
            values: vec![
                Some(AttrValue::String("community".to_owned())),
                Some(AttrValue::Boolean(false)),
                screen_names[row].clone().map(AttrValue::String),
                members[row].map(AttrValue::Long),
            ],
        });
    }
    for main in main_ids {
        let counts = subs.i64s(&df_subs::subscribers_of(main))?;
        for (&group, &count) in ids.iter().zip(counts) {
            if count > 0 {
                graph.edges.push(Edge {
                    source: main.get(),
                    target: -group.abs(),
                    relation: "subscribers",
                    weight: count,
                });
            }
        }
    }
    add_missing_endpoints(&mut graph, known, &seeds);
    Ok(graph)
}

/// Seeds and edge endpoints without a row of their own (a seed with no profile row, say) still
/// become nodes, so every format lists every node it has an edge for.
fn add_missing_endpoints(graph: &mut Graph, mut known: BTreeSet<i64>, seeds: &BTreeSet<i64>) {
    let endpoints: Vec<i64> = seeds
        .iter()
        .copied()
        .chain(graph.edges.iter().flat_map(|e| [e.source, e.target]))
        .collect();
    for id in endpoints {
        if known.insert(id) {
            let mut values = vec![None; graph.attributes.len()];
            values[0] = Some(AttrValue::String(
                if id < 0 { "community" } else { "user" }.to_owned(),
            ));
            values[1] = Some(AttrValue::Boolean(seeds.contains(&id)));
            graph.nodes.push(Node {
                id,
                label: String::new(),
                values,
            });
        }
    }
}

/// Text made safe for XML 1.0 content and attribute values: markup characters escaped,
/// whitespace controls as character references (attribute normalisation would eat them), and
/// characters XML 1.0 forbids (other C0 controls, U+FFFE, U+FFFF) dropped: VK names can hold
/// anything, and one such character would make the whole file unreadable.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn attr_text(value: &AttrValue) -> String {
    match value {
        AttrValue::Long(n) => n.to_string(),
        AttrValue::Boolean(b) => b.to_string(),
        AttrValue::String(s) => s.clone(),
    }
}

/// Writes GEXF 1.2 (`defaultedgetype="directed"`).
pub fn write_gexf(graph: &Graph, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<gexf xmlns="http://www.gexf.net/1.2draft" version="1.2">"#
    )?;
    writeln!(w, r#"  <meta><creator>vk-parser</creator></meta>"#)?;
    writeln!(w, r#"  <graph mode="static" defaultedgetype="directed">"#)?;
    writeln!(w, r#"    <attributes class="node">"#)?;
    for (i, (name, kind)) in graph.attributes.iter().enumerate() {
        let kind = kind.type_name();
        writeln!(
            w,
            r#"      <attribute id="{i}" title="{}" type="{kind}"/>"#,
            xml_escape(name)
        )?;
    }
    writeln!(w, r#"    </attributes>"#)?;
    writeln!(w, r#"    <attributes class="edge">"#)?;
    writeln!(
        w,
        r#"      <attribute id="relation" title="relation" type="string"/>"#
    )?;
    writeln!(w, r#"    </attributes>"#)?;
    writeln!(w, r#"    <nodes>"#)?;
    for node in &graph.nodes {
        writeln!(
            w,
            r#"      <node id="{}" label="{}"><attvalues>"#,
            node.id,
            xml_escape(&node.label)
        )?;
        for (i, value) in node.values.iter().enumerate() {
            if let Some(value) = value {
                writeln!(
                    w,
                    r#"        <attvalue for="{i}" value="{}"/>"#,
                    xml_escape(&attr_text(value))
                )?;
            }
        }
        writeln!(w, r#"      </attvalues></node>"#)?;
    }
    writeln!(w, r#"    </nodes>"#)?;
    writeln!(w, r#"    <edges>"#)?;
    for (i, edge) in graph.edges.iter().enumerate() {
        writeln!(
            w,
            r#"      <edge id="{i}" source="{}" target="{}" weight="{}"><attvalues><attvalue for="relation" value="{}"/></attvalues></edge>"#,
            edge.source, edge.target, edge.weight, edge.relation
        )?;
    }
    writeln!(w, r#"    </edges>"#)?;
    writeln!(w, r#"  </graph>"#)?;
    writeln!(w, r#"</gexf>"#)
}

/// Writes GraphML (`edgedefault="directed"`).
pub fn write_graphml(graph: &Graph, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<graphml xmlns="http://graphml.graphdrawing.org/xmlns">"#
    )?;
    writeln!(
        w,
        r#"  <key id="label" for="node" attr.name="label" attr.type="string"/>"#
    )?;
    for (i, (name, kind)) in graph.attributes.iter().enumerate() {
        let kind = kind.type_name();
        writeln!(
            w,
            r#"  <key id="n{i}" for="node" attr.name="{}" attr.type="{kind}"/>"#,
            xml_escape(name)
        )?;
    }
    writeln!(
        w,
        r#"  <key id="relation" for="edge" attr.name="relation" attr.type="string"/>"#
    )?;
    writeln!(
        w,
        r#"  <key id="weight" for="edge" attr.name="weight" attr.type="long"/>"#
    )?;
    writeln!(w, r#"  <graph id="G" edgedefault="directed">"#)?;
    for node in &graph.nodes {
        write!(
            w,
            r#"    <node id="{}"><data key="label">{}</data>"#,
            node.id,
            xml_escape(&node.label)
        )?;
        for (i, value) in node.values.iter().enumerate() {
            if let Some(value) = value {
                write!(
                    w,
                    r#"<data key="n{i}">{}</data>"#,
                    xml_escape(&attr_text(value))
                )?;
            }
        }
        writeln!(w, "</node>")?;
    }
    for edge in &graph.edges {
        writeln!(
            w,
            r#"    <edge source="{}" target="{}"><data key="relation">{}</data><data key="weight">{}</data></edge>"#,
            edge.source, edge.target, edge.relation, edge.weight
        )?;
    }
    writeln!(w, r#"  </graph>"#)?;
    writeln!(w, r#"</graphml>"#)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Writes `nodes.csv`: `Id,Label` and one column per attribute (Gephi's column names).
pub fn write_nodes_csv(graph: &Graph, w: &mut impl Write) -> io::Result<()> {
    let mut header = vec!["Id".to_owned(), "Label".to_owned()];
    header.extend(graph.attributes.iter().map(|(name, _)| csv_field(name)));
    writeln!(w, "{}", header.join(","))?;
    for node in &graph.nodes {
        let mut row = vec![node.id.to_string(), csv_field(&node.label)];
        row.extend(node.values.iter().map(|v| match v {
            Some(v) => csv_field(&attr_text(v)),
            None => String::new(),
        }));
        writeln!(w, "{}", row.join(","))?;
    }
    Ok(())
}

/// Writes `edges.csv`: `Source,Target,Type,relation,Weight` (Gephi's column names).
pub fn write_edges_csv(graph: &Graph, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "Source,Target,Type,relation,Weight")?;
    for edge in &graph.edges {
        writeln!(
            w,
            "{},{},Directed,{},{}",
            edge.source, edge.target, edge.relation, edge.weight
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Graph {
        Graph {
            attributes: vec![("name".to_owned(), AttrType::String)],
            nodes: vec![
                Node {
                    id: 1,
                    label: "A <&> \"B\"".to_owned(),
                    values: vec![Some(AttrValue::String("x,\"y\"\nz\u{1}".to_owned()))],
                },
                Node {
                    id: -2,
                    label: String::new(),
                    values: vec![None],
                },
            ],
            edges: vec![Edge {
                source: 1,
                target: -2,
                relation: "subscribers",
                weight: 7,
            }],
        }
    }

    #[test]
    fn xml_escape_keeps_the_document_well_formed() {
        assert_eq!(
            xml_escape("a<b>&\"c'\t\u{0}\u{1F}\u{FFFF}д"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#9;д"
        );
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn writers_escape_names_and_skip_nulls() {
        let mut gexf = Vec::new();
        write_gexf(&tiny(), &mut gexf).unwrap();
        let gexf = String::from_utf8(gexf).unwrap();
        assert!(gexf.contains(r#"label="A &lt;&amp;&gt; &quot;B&quot;""#));
        assert!(gexf.contains(r#"value="x,&quot;y&quot;&#10;z""#));
        assert_eq!(gexf.matches("<attvalue for=\"0\"").count(), 1);
        let mut nodes = Vec::new();
        write_nodes_csv(&tiny(), &mut nodes).unwrap();
        assert_eq!(
            String::from_utf8(nodes).unwrap(),
            "Id,Label,name\n1,\"A <&> \"\"B\"\"\",\"x,\"\"y\"\"\nz\u{1}\"\n-2,,\n"
        );
    }
}
