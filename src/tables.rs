//! Typed tables and their parquet encoding: the only module that knows polars.
//!
//! The report stages build their outputs (edges, users, subscriptions) as plain Rust vectors in
//! a [`Table`]; [`to_parquet`] turns one into zstd-compressed parquet bytes plus the column list
//! the stage manifest records, and [`from_parquet`] reads such a file back (stage 2 and `inspect`
//! read what stage 1 wrote). Keeping polars behind this seam means its types, features and
//! version pitfalls stay in one file, and the stages are tested without it.
//!
//! Dtypes, as a pyarrow reader sees them: `I64` → `int64`, `I8` → `int8`, `Bool` → `bool`,
//! `F64` → `double`,
//! `Str` → `large_string` (see [`STRING_DTYPE`] for why large and not view). polars declares
//! every parquet column optional; nulls only ever occur in strings, and [`from_parquet`] refuses
//! nulls elsewhere.
//!
//! Both functions are synchronous and CPU-bound, and polars may call
//! `tokio::task::block_in_place`, which panics on a current-thread runtime: async callers run
//! them inside `tokio::task::spawn_blocking`.
//!
//! This module must not panic on outside input: a corrupt or foreign parquet file is a
//! [`TableError`], whatever polars does with it (see [`from_parquet`]).
//!
//! The file runs past 600 lines only for its unit tests, which sit next to the code they pin;
//! the code is about 530 lines.

use std::collections::HashSet;
use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};

use bytes::Bytes;
use polars::io::parquet::write::KeyValueMetadata;
use polars::prelude as pl;
use polars::prelude::{
    ArrowDataType, BooleanChunked, CompatLevel, DataFrame, DataType, Float64Chunked, Int64Chunked,
    Int8Chunked, IntoColumn, NewChunkedArray, ParquetCompression, ParquetReader, ParquetWriter,
    PlSmallStr, SchemaExt, SerReader, StringChunked,
};

use polars_buffer::Buffer;
use polars_parquet::parquet::page::{CompressedPage, DataPageHeader};
use polars_parquet::parquet::read as parquet_read;
use polars_parquet::write::schema_to_metadata_key;

use crate::storage::Column as ManifestColumn;

/// The manifest dtype of [`ColumnData::I64`].
pub const INT64_DTYPE: &str = "int64";
/// The manifest dtype of [`ColumnData::I8`].
pub const INT8_DTYPE: &str = "int8";
/// The manifest dtype of [`ColumnData::F64`].
pub const FLOAT64_DTYPE: &str = "double";
/// The manifest dtype of [`ColumnData::Bool`].
pub const BOOL_DTYPE: &str = "bool";
/// The manifest dtype of [`ColumnData::Str`]: the logical type, whatever its arrow width.
///
/// In the file, strings are parquet `BYTE_ARRAY` with the `UTF8` annotation, and the embedded
/// arrow schema says `large_utf8`, so pyarrow (and pandas through it) reads them as
/// `large_string`. polars' own default would record `utf8_view`, which older arrow readers reject
/// and pyarrow surfaces as `string_view`; the manifest stays "string" either way.
pub const STRING_DTYPE: &str = "string";

/// What can go wrong encoding or decoding a table. Messages never contain cell values.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The columns of a table have different lengths.
    #[error("table {table}: column {column} has {found} rows, expected {expected}")]
    Ragged {
        /// The table.
        table: String,
        /// The first column whose length differs from the first column's.
        column: String,
        /// Rows of the first column.
        expected: usize,
        /// Rows of this column.
        found: usize,
    },
    /// Two columns share a name; parquet readers would disagree on which one they see.
    #[error("table {table}: column {column} appears more than once")]
    DuplicateColumn {
        /// The table.
        table: String,
        /// The repeated name.
        column: String,
    },
    /// A table without columns: parquet cannot describe it, and no stage writes one.
    #[error("table {table}: no columns")]
    NoColumns {
        /// The table.
        table: String,
    },
    /// polars failed to encode or decode (for decoding: the bytes are not valid parquet).
    #[error("parquet: {0}")]
    Polars(#[from] pl::PolarsError),
    /// The parquet layer refused the file's footer or pages while they were checked.
    #[error("parquet: {0}")]
    Parquet(#[from] polars_parquet::parquet::error::ParquetError),
    /// The bytes are damaged in a way found before polars decodes them (a page header out of
    /// range), or polars' reader panicked on them.
    #[error("parquet: {0}")]
    Corrupt(String),
    /// A column the caller asked for is absent.
    #[error("table {table}: no column {column}")]
    MissingColumn {
        /// The table.
        table: String,
        /// The name asked for.
        column: String,
    },
    /// A column the caller asked for has another type.
    #[error("table {table}: column {column} is {found}, expected {expected}")]
    WrongType {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The manifest dtype asked for.
        expected: &'static str,
        /// The manifest dtype it has.
        found: &'static str,
    },
    /// A parquet column of a type this module does not map (see the module docs).
    #[error("table {table}: column {column} has unsupported type {dtype}")]
    UnsupportedType {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// polars' name of the type.
        dtype: String,
    },
    /// A numeric or bool parquet column holds nulls; only string columns may.
    #[error("table {table}: column {column} holds {nulls} nulls, only string columns may")]
    UnexpectedNulls {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// How many.
        nulls: usize,
    },
}

/// One column's data. Strings are nullable; numbers and bools are not.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// 64-bit integers (VK ids, counts).
    I64(Vec<i64>),
    /// 64-bit integers that may be unknown (`None` is a null): counts VK does not always give.
    OptI64(Vec<Option<i64>>),
    /// 8-bit integers (small codes such as the edge relation).
    I8(Vec<i8>),
    /// Flags.
    Bool(Vec<bool>),
    /// Shares and ratios (never NaN in what the service writes).
    F64(Vec<f64>),
    /// Text; `None` is a null.
    Str(Vec<Option<String>>),
}

impl ColumnData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::I64(v) => v.len(),
            ColumnData::OptI64(v) => v.len(),
            ColumnData::I8(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::F64(v) => v.len(),
            ColumnData::Str(v) => v.len(),
        }
    }

    /// True when the column holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The manifest dtype: `int64`, `int8`, `bool` or `string`.
    pub fn dtype(&self) -> &'static str {
        match self {
            ColumnData::I64(_) | ColumnData::OptI64(_) => INT64_DTYPE,
            ColumnData::I8(_) => INT8_DTYPE,
            ColumnData::Bool(_) => BOOL_DTYPE,
            ColumnData::F64(_) => FLOAT64_DTYPE,
            ColumnData::Str(_) => STRING_DTYPE,
        }
    }
}

/// A named column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name, as written to parquet.
    pub name: String,
    /// Its values.
    pub data: ColumnData,
}

/// A named table, columns of equal length.
///
/// Equal length is checked when encoding, not when building, so the builder stays infallible;
/// [`Table::check`] runs the same check on demand.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The table's name (the file stem in a stage, e.g. `edges`); used in error messages.
    pub name: String,
    /// Columns in file order.
    pub columns: Vec<Column>,
}

impl Table {
    /// An empty table without columns.
    pub fn new(name: impl Into<String>) -> Table {
        Table {
            name: name.into(),
            columns: Vec::new(),
        }
    }

    /// Appends a column (builder style).
    pub fn with(mut self, name: &str, data: ColumnData) -> Table {
        self.columns.push(Column {
            name: name.to_owned(),
            data,
        });
        self
    }

    /// Rows, taken from the first column; 0 for a table without columns.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.data.len())
    }

    /// The data of the first column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.data)
    }

    /// Checks that column names are unique and lengths equal; returns the row count.
    pub fn check(&self) -> Result<usize, TableError> {
        let expected = self.rows();
        let mut seen = HashSet::with_capacity(self.columns.len());
        for column in &self.columns {
            if !seen.insert(column.name.as_str()) {
                return Err(TableError::DuplicateColumn {
                    table: self.name.clone(),
                    column: column.name.clone(),
                });
            }
            let found = column.data.len();
            if found != expected {
                return Err(TableError::Ragged {
                    table: self.name.clone(),
                    column: column.name.clone(),
                    expected,
                    found,
                });
            }
        }
        Ok(expected)
    }

    /// The `int64` column `name`, or why not.
    pub fn i64s(&self, name: &str) -> Result<&[i64], TableError> {
        match self.named(name)? {
            ColumnData::I64(v) => Ok(v),
            other => Err(self.wrong_type(name, INT64_DTYPE, other)),
        }
    }

    /// The `int64` column `name` with its nulls (a column written without nulls reads the same).
    pub fn opt_i64s(&self, name: &str) -> Result<Vec<Option<i64>>, TableError> {
        match self.named(name)? {
            ColumnData::OptI64(v) => Ok(v.clone()),
            ColumnData::I64(v) => Ok(v.iter().copied().map(Some).collect()),
            other => Err(self.wrong_type(name, INT64_DTYPE, other)),
        }
    }

    /// The `int8` column `name`, or why not.
    pub fn i8s(&self, name: &str) -> Result<&[i8], TableError> {
        match self.named(name)? {
            ColumnData::I8(v) => Ok(v),
            other => Err(self.wrong_type(name, INT8_DTYPE, other)),
        }
    }

    /// The `bool` column `name`, or why not.
    pub fn bools(&self, name: &str) -> Result<&[bool], TableError> {
        match self.named(name)? {
            ColumnData::Bool(v) => Ok(v),
            other => Err(self.wrong_type(name, BOOL_DTYPE, other)),
        }
    }

    /// The `string` column `name`, or why not.
    pub fn strs(&self, name: &str) -> Result<&[Option<String>], TableError> {
        match self.named(name)? {
            ColumnData::Str(v) => Ok(v),
            other => Err(self.wrong_type(name, STRING_DTYPE, other)),
        }
    }

    /// The manifest's description of the columns, in order.
    pub fn manifest_columns(&self) -> Vec<ManifestColumn> {
        self.columns
            .iter()
            .map(|c| ManifestColumn {
                name: c.name.clone(),
                dtype: c.data.dtype().to_owned(),
            })
            .collect()
    }

    fn named(&self, name: &str) -> Result<&ColumnData, TableError> {
        self.column(name).ok_or_else(|| TableError::MissingColumn {
            table: self.name.clone(),
            column: name.to_owned(),
        })
    }

    fn wrong_type(&self, name: &str, expected: &'static str, found: &ColumnData) -> TableError {
        TableError::WrongType {
            table: self.name.clone(),
            column: name.to_owned(),
            expected,
            found: found.dtype(),
        }
    }
}

/// A table encoded as parquet, with what the stage manifest says of it.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The parquet file.
    pub bytes: Bytes,
    /// Rows in the table.
    pub rows: u64,
    /// Its columns, in order, with their manifest dtypes.
    pub columns: Vec<ManifestColumn>,
}

/// Encodes as parquet (zstd), checking the columns have equal lengths. Returns the bytes and the
/// manifest description of the columns (name + dtype string: "int64", "int8", "bool", "string").
///
/// Copies the column data into polars' buffers; [`into_parquet`] moves it instead, which halves
/// the peak memory for large tables.
pub fn to_parquet(table: &Table) -> Result<Encoded, TableError> {
    // Check before cloning, so a ragged table costs nothing.
    table.check()?;
    into_parquet(table.clone())
}

/// Like [`to_parquet`], but consumes the table so numeric columns move into polars uncopied.
pub fn into_parquet(table: Table) -> Result<Encoded, TableError> {
    let rows = table.check()?;
    if table.columns.is_empty() {
        return Err(TableError::NoColumns { table: table.name });
    }
    let manifest = table.manifest_columns();
    let columns = table
        .columns
        .into_iter()
        .map(|Column { name, data }| {
            let name = PlSmallStr::from(name);
            match data {
                ColumnData::I64(v) => Int64Chunked::from_vec(name, v).into_column(),
                ColumnData::OptI64(v) => {
                    Int64Chunked::from_iter_options(name, v.into_iter()).into_column()
                }
                ColumnData::I8(v) => Int8Chunked::from_vec(name, v).into_column(),
                ColumnData::Bool(v) => BooleanChunked::from_slice(name, &v).into_column(),
                ColumnData::F64(v) => Float64Chunked::from_vec(name, v).into_column(),
                ColumnData::Str(v) => {
                    StringChunked::from_iter_options(name, v.into_iter()).into_column()
                }
            }
        })
        .collect();
    let mut frame = DataFrame::new(rows, columns)?;

    // Capacity: zstd typically shrinks id columns to well under their in-memory size.
    let mut out = Vec::with_capacity(rows.saturating_mul(4).max(1024));
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(arrow_schema_metadata(&frame)))
        .finish(&mut frame)?;
    Ok(Encoded {
        bytes: Bytes::from(out),
        rows: rows as u64,
        columns: manifest,
    })
}

/// Encodes each table as `{name}.parquet`, ready for [`crate::storage::put_files`]: the one
/// place a job's tables become files (synchronous; async callers use `spawn_blocking`).
pub fn into_files(tables: Vec<Table>) -> Result<Vec<crate::storage::StageFile>, TableError> {
    tables
        .into_iter()
        .map(|table| {
            let name = format!("{}.parquet", table.name);
            into_parquet(table).map(|e| crate::storage::StageFile {
                name,
                rows: e.rows,
                columns: e.columns,
                body: e.bytes,
            })
        })
        .collect()
}

/// Decodes parquet written by to_parquet (or any parquet whose columns are
/// int64/int32/int8/bool/double/utf8) back into a Table named `name`.
///
/// Column order is the file's. `int32` columns are widened to [`ColumnData::I64`]; any other
/// type is [`TableError::UnsupportedType`], and nulls outside string columns are
/// [`TableError::UnexpectedNulls`].
///
/// Corrupt input is an error, never a panic or an abort, through two guards around polars,
/// both found necessary by flipping every byte of a small file (`flipped_bytes_never_panic`):
/// page headers are checked first (`check_page_headers`: an unchecked one can abort the
/// process), and the panics polars' footer parser still raises on some damaged footers (33 of
/// 4,284 single-byte flips of a 1.4 KB file) are caught and returned as
/// [`TableError::Corrupt`]. A caught panic is still printed by the panic hook but does not
/// unwind past this function; this relies on the default `panic = "unwind"`.
pub fn from_parquet(name: &str, bytes: &[u8]) -> Result<Table, TableError> {
    let read = || -> Result<DataFrame, TableError> {
        check_page_headers(bytes)?;
        Ok(ParquetReader::new(Cursor::new(bytes)).finish()?)
    };
    let frame = match panic::catch_unwind(AssertUnwindSafe(read)) {
        Ok(result) => result?,
        Err(_) => {
            return Err(TableError::Corrupt(
                "the parquet reader panicked on malformed input".to_owned(),
            ))
        }
    };
    let mut table = Table::new(name);
    for column in frame.columns() {
        let data = column_data(name, column)?;
        table.columns.push(Column {
            name: column.name().to_string(),
            data,
        });
    }
    Ok(table)
}

/// Refuses page headers whose counts are negative or exceed their row group.
///
/// polars 0.55 trusts a data page's `num_values`: one flipped bit making it negative (zigzag
/// varint) becomes a 2^61-byte allocation and aborts the process, which `catch_unwind` cannot
/// stop (found by the byte-flip test below). Reading every page header costs a pass over the
/// footer and the headers only (pages are sliced, not decompressed) and one copy of the file.
fn check_page_headers(bytes: &[u8]) -> Result<(), TableError> {
    let corrupt = |what: String| TableError::Corrupt(format!("corrupt page header: {what}"));
    let metadata = parquet_read::read_metadata(&mut Cursor::new(bytes))?;
    let file = Buffer::from_vec(bytes.to_vec());
    for group in &metadata.row_groups {
        let rows = group.num_rows();
        let within = |count: i32| usize::try_from(count).is_ok_and(|count| count <= rows);
        for chunk in group.parquet_columns() {
            let pages = parquet_read::get_page_iterator(
                chunk,
                Cursor::new(file.clone()),
                Vec::new(),
                bytes.len(),
            )?;
            for page in pages {
                let page = page?;
                let CompressedPage::Data(page) = page else {
                    continue;
                };
                let counts_ok = match page.header() {
                    DataPageHeader::V1(header) => within(header.num_values),
                    DataPageHeader::V2(header) => {
                        within(header.num_values)
                            && within(header.num_nulls)
                            && within(header.num_rows)
                    }
                };
                if !counts_ok {
                    return Err(corrupt(format!(
                        "a page of {} claims more values than its {rows} rows",
                        chunk.descriptor().path_in_schema.join(".")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Converts one polars column to [`ColumnData`], following the mapping in the module docs.
fn column_data(table: &str, column: &pl::Column) -> Result<ColumnData, TableError> {
    let series = column.as_materialized_series();
    let nulls = series.null_count();
    let dtype = series.dtype();
    if nulls > 0 && !matches!(dtype, DataType::String | DataType::Int64) {
        return Err(TableError::UnexpectedNulls {
            table: table.to_owned(),
            column: column.name().to_string(),
            nulls,
        });
    }
    // The null check above makes the no-null iterators exact.
    let data = match dtype {
        DataType::Int64 if nulls > 0 => ColumnData::OptI64(series.i64()?.iter().collect()),
        DataType::Int64 => ColumnData::I64(numbers(series.i64()?)),
        DataType::Int32 => {
            ColumnData::I64(series.i32()?.into_no_null_iter().map(i64::from).collect())
        }
        DataType::Int8 => ColumnData::I8(numbers(series.i8()?)),
        DataType::Boolean => ColumnData::Bool(series.bool()?.no_null_iter().collect()),
        DataType::Float64 => ColumnData::F64(series.f64()?.into_no_null_iter().collect()),
        DataType::String => ColumnData::Str(
            series
                .str()?
                .iter()
                .map(|value| value.map(str::to_owned))
                .collect(),
        ),
        other => {
            return Err(TableError::UnsupportedType {
                table: table.to_owned(),
                column: column.name().to_string(),
                dtype: other.to_string(),
            })
        }
    };
    Ok(data)
}

/// Copies a null-free numeric column chunk by chunk (a `memcpy` each, not a per-value iterator).
fn numbers<T: pl::PolarsNumericType>(values: &pl::ChunkedArray<T>) -> Vec<T::Native> {
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.data_views() {
        out.extend_from_slice(chunk);
    }
    out
}

/// The file's `ARROW:schema` metadata, with strings declared `large_utf8`.
///
/// polars writes its in-memory schema there, where strings are `utf8_view`; pyarrow would then
/// hand the backend `string_view` columns, which older pyarrow and pandas versions cannot read.
/// Readers use this entry only to pick the arrow type; the parquet column (`BYTE_ARRAY`, `UTF8`)
/// is the same, so polars reads the file back as strings either way.
fn arrow_schema_metadata(frame: &DataFrame) -> KeyValueMetadata {
    let mut schema = frame.schema().to_arrow(CompatLevel::newest());
    for field in schema.iter_values_mut() {
        if field.dtype == ArrowDataType::Utf8View {
            field.dtype = ArrowDataType::LargeUtf8;
        }
    }
    // An `ARROW:schema` entry supplied here replaces the one polars would add.
    KeyValueMetadata::Static(vec![schema_to_metadata_key(&schema)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[Option<&str>]) -> ColumnData {
        ColumnData::Str(values.iter().map(|v| v.map(str::to_owned)).collect())
    }

    fn every_type() -> Table {
        Table::new("mixed")
            .with("id", ColumnData::I64(vec![i64::MIN, -1, 0, 1, i64::MAX]))
            .with("relation", ColumnData::I8(vec![i8::MIN, -1, 0, 1, i8::MAX]))
            .with(
                "closed",
                ColumnData::Bool(vec![true, false, false, true, true]),
            )
            .with(
                "name",
                strings(&[Some("Анна"), None, Some(""), Some("a\"b,c\n"), None]),
            )
    }

    /// Writes a polars frame as parquet directly, for inputs `to_parquet` cannot produce.
    fn raw_parquet(columns: Vec<pl::Column>) -> Vec<u8> {
        let mut frame = DataFrame::new_infer_height(columns).unwrap();
        let mut out = Vec::new();
        ParquetWriter::new(&mut out).finish(&mut frame).unwrap();
        out
    }

    #[test]
    fn every_type_round_trips_with_nulls_and_order() {
        let table = every_type();
        let encoded = to_parquet(&table).unwrap();
        assert_eq!(encoded.rows, 5);
        assert_eq!(&encoded.bytes[..4], b"PAR1");
        assert_eq!(from_parquet("mixed", &encoded.bytes).unwrap(), table);
    }

    #[test]
    fn into_parquet_writes_the_same_bytes_as_to_parquet() {
        let table = every_type();
        let by_ref = to_parquet(&table).unwrap();
        let by_value = into_parquet(table).unwrap();
        assert_eq!(by_ref.bytes, by_value.bytes);
    }

    #[test]
    fn empty_tables_keep_their_columns() {
        let table = Table::new("empty")
            .with("id", ColumnData::I64(vec![]))
            .with("relation", ColumnData::I8(vec![]))
            .with("closed", ColumnData::Bool(vec![]))
            .with("name", ColumnData::Str(vec![]));
        let encoded = to_parquet(&table).unwrap();
        assert_eq!(encoded.rows, 0);
        assert_eq!(encoded.columns.len(), 4);
        let back = from_parquet("empty", &encoded.bytes).unwrap();
        assert_eq!(back, table);
        assert_eq!(back.rows(), 0);
    }

    #[test]
    fn all_null_strings_round_trip() {
        let table = Table::new("t").with("s", strings(&[None, None, None]));
        let encoded = to_parquet(&table).unwrap();
        assert_eq!(from_parquet("t", &encoded.bytes).unwrap(), table);
    }

    #[test]
    fn multi_row_group_tables_round_trip() {
        // polars splits frames over 512² rows into several row groups (and chunks on read).
        let rows = 600_000;
        let table = Table::new("big")
            .with("id", ColumnData::I64((0..rows).collect()))
            .with(
                "relation",
                ColumnData::I8((0..rows).map(|i| (i % 3) as i8).collect()),
            );
        let encoded = to_parquet(&table).unwrap();
        assert_eq!(from_parquet("big", &encoded.bytes).unwrap(), table);
    }

    #[test]
    fn encoded_columns_carry_manifest_dtypes_in_order() {
        let encoded = to_parquet(&every_type()).unwrap();
        let described: Vec<(&str, &str)> = encoded
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.dtype.as_str()))
            .collect();
        assert_eq!(
            described,
            [
                ("id", "int64"),
                ("relation", "int8"),
                ("closed", "bool"),
                ("name", "string")
            ]
        );
    }

    #[test]
    fn ragged_columns_are_refused() {
        let table = Table::new("edges")
            .with("source", ColumnData::I64(vec![1, 2, 3]))
            .with("target", ColumnData::I64(vec![4, 5]));
        match to_parquet(&table) {
            Err(TableError::Ragged {
                table,
                column,
                expected,
                found,
            }) => {
                assert_eq!(
                    (table.as_str(), column.as_str(), expected, found),
                    ("edges", "target", 3, 2)
                );
            }
            other => panic!("expected Ragged, got {other:?}"),
        }
    }

    #[test]
    fn duplicate_names_and_no_columns_are_refused() {
        let twice = Table::new("t")
            .with("a", ColumnData::I64(vec![1]))
            .with("a", ColumnData::I8(vec![1]));
        assert!(matches!(
            to_parquet(&twice),
            Err(TableError::DuplicateColumn { column, .. }) if column == "a"
        ));
        assert!(matches!(
            to_parquet(&Table::new("t")),
            Err(TableError::NoColumns { .. })
        ));
    }

    #[test]
    fn rows_and_column_lookup() {
        assert_eq!(Table::new("t").rows(), 0);
        let table = every_type();
        assert_eq!(table.rows(), 5);
        assert_eq!(table.column("closed").map(ColumnData::dtype), Some("bool"));
        assert_eq!(table.column("nope"), None);
    }

    #[test]
    fn typed_accessors_say_what_is_wrong() {
        let table = every_type();
        assert_eq!(table.i64s("id").unwrap()[4], i64::MAX);
        assert_eq!(table.i8s("relation").unwrap()[0], i8::MIN);
        assert_eq!(table.bools("closed").unwrap().len(), 5);
        assert_eq!(table.strs("name").unwrap()[1], None);
        assert!(matches!(
            table.i64s("missing"),
            Err(TableError::MissingColumn { column, .. }) if column == "missing"
        ));
        assert!(matches!(
            table.i64s("name"),
            Err(TableError::WrongType {
                expected: "int64",
                found: "string",
                ..
            })
        ));
    }

    #[test]
    fn int32_columns_widen_to_i64() {
        let bytes = raw_parquet(vec![pl::Int32Chunked::from_slice(
            "n".into(),
            &[i32::MIN, 7, i32::MAX],
        )
        .into_column()]);
        let table = from_parquet("t", &bytes).unwrap();
        assert_eq!(
            table.i64s("n").unwrap(),
            [i64::from(i32::MIN), 7, i64::from(i32::MAX)]
        );
    }

    #[test]
    fn ratios_round_trip_as_doubles() {
        let table = Table::new("t").with("ratio", ColumnData::F64(vec![0.95, 1.0]));
        let encoded = to_parquet(&table).unwrap();
        assert_eq!(encoded.columns[0].dtype, FLOAT64_DTYPE);
        assert_eq!(from_parquet("t", &encoded.bytes).unwrap(), table);
    }

    #[test]
    fn foreign_types_and_numeric_nulls_are_errors() {
        let floats = raw_parquet(vec![
            pl::Float32Chunked::from_slice("x".into(), &[1.5]).into_column()
        ]);
        assert!(matches!(
            from_parquet("t", &floats),
            Err(TableError::UnsupportedType { column, .. }) if column == "x"
        ));
        let holes = raw_parquet(vec![pl::Int8Chunked::from_slice_options(
            "n".into(),
            &[Some(1), None],
        )
        .into_column()]);
        assert!(matches!(
            from_parquet("t", &holes),
            Err(TableError::UnexpectedNulls { nulls: 1, .. })
        ));
    }

    #[test]
    fn unknown_counts_are_int64_nulls() {
        let table = Table::new("t").with("n", ColumnData::OptI64(vec![Some(3), None, Some(-1)]));
        let encoded = into_parquet(table).unwrap();
        assert_eq!(encoded.columns[0].dtype, INT64_DTYPE);
        let back = from_parquet("t", &encoded.bytes).unwrap();
        assert_eq!(back.opt_i64s("n").unwrap(), vec![Some(3), None, Some(-1)]);
        // Without nulls the column reads as plain int64, and opt_i64s still takes it.
        let full =
            into_parquet(Table::new("t").with("n", ColumnData::OptI64(vec![Some(1)]))).unwrap();
        let back = from_parquet("t", &full.bytes).unwrap();
        assert_eq!(back.i64s("n").unwrap(), [1]);
        assert_eq!(back.opt_i64s("n").unwrap(), vec![Some(1)]);
    }

    #[test]
    fn garbage_is_an_error() {
        for bytes in [
            &b""[..],
            b"PAR1",
            b"PAR1PAR1",
            b"not parquet at all",
            &[0u8; 64],
        ] {
            assert!(from_parquet("t", bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn truncated_files_are_errors() {
        let encoded = to_parquet(&every_type()).unwrap();
        for len in 0..encoded.bytes.len() {
            assert!(
                from_parquet("t", &encoded.bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        // Every byte of a small file, flipped three ways. Corruption inside data pages may still
        // decode (parquet has no mandatory checksums), so the outcome is not asserted: the test
        // is that it returns at all. Before `check_page_headers`, flipping bit 0 of a data page's
        // `num_values` made polars allocate 2^61 bytes and abort the whole test binary.
        let encoded = to_parquet(&every_type()).unwrap();
        let mut refused_headers = 0;
        for at in 0..encoded.bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bytes = encoded.bytes.to_vec();
                bytes[at] ^= mask;
                if let Err(TableError::Corrupt(message)) = from_parquet("t", &bytes) {
                    refused_headers += usize::from(message.starts_with("corrupt page header"));
                }
            }
        }
        assert!(refused_headers > 0, "the page-header guard never fired");
    }
}
