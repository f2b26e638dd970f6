//! parquet written by `tables::to_parquet`, read back by pyarrow: the backend's reader is
//! pyarrow/pandas, so the dtypes and values it sees are the contract checked here.
//!
//! Needs python3 with pyarrow. `./scripts/test.sh` installs it; a missing pyarrow fails the test
//! with that advice rather than skipping, so a green run always means pyarrow really read the file.

use std::process::Command;

use vk_parser::tables::{to_parquet, ColumnData, Table};

/// Reads the file named by argv[1] with pyarrow and prints its schema, row count, per-column
/// compression and values as one JSON object.
const READ_WITH_PYARROW: &str = r#"
import json, sys
import pyarrow.parquet as pq
path = sys.argv[1]
table = pq.read_table(path)
meta = pq.ParquetFile(path).metadata
print(json.dumps({
    "rows": table.num_rows,
    "types": [[f.name, str(f.type)] for f in table.schema],
    "compression": sorted({meta.row_group(g).column(c).compression
                           for g in range(meta.num_row_groups)
                           for c in range(meta.num_columns)}),
    "values": table.to_pydict(),
}))
"#;

fn require_pyarrow() {
    let found = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "python3 with pyarrow is required: run ./scripts/test.sh, which installs it \
         (or pip install pyarrow)"
    );
}

#[test]
fn pyarrow_reads_every_column_type() {
    require_pyarrow();
    let table = Table::new("mixed")
        .with("source", ColumnData::I64(vec![1, -2, i64::MAX]))
        .with("relation", ColumnData::I8(vec![0, 1, -128]))
        .with("closed", ColumnData::Bool(vec![true, false, true]))
        .with(
            "name",
            ColumnData::Str(vec![Some("Анна".to_owned()), None, Some(String::new())]),
        );
    let encoded = to_parquet(&table).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.parquet");
    std::fs::write(&path, &encoded.bytes).unwrap();

    let out = Command::new("python3")
        .args(["-c", READ_WITH_PYARROW])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(seen["rows"], 3);
    assert_eq!(
        seen["types"],
        serde_json::json!([
            ["source", "int64"],
            ["relation", "int8"],
            ["closed", "bool"],
            ["name", "large_string"]
        ])
    );
    assert_eq!(seen["compression"], serde_json::json!(["ZSTD"]));
    assert_eq!(
        seen["values"],
        serde_json::json!({
            "source": [1, -2, i64::MAX],
            "relation": [0, 1, -128],
            "closed": [true, false, true],
            "name": ["Анна", null, ""]
        })
    );
}
