//! CSV files (`tf.data.experimental.CsvDataset` / `make_csv_dataset`), parsed by the
//! `csv` crate: one element per row, each column a scalar of its declared dtype.

use super::dataset::{error_iter, Dataset, DatasetOp, ElementIter};
use super::Element;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// How to read a CSV file.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// The dtype of each column, in file order.
    pub column_types: Vec<DType>,
    /// Whether the first row names the columns; rows are then dict elements by column
    /// name, otherwise tuples in column order.
    pub header: bool,
    /// The field delimiter (`,` by default).
    pub delimiter: u8,
}

impl CsvOptions {
    /// Comma-separated columns of these dtypes, with a header row.
    pub fn new(column_types: &[DType]) -> CsvOptions {
        CsvOptions {
            column_types: column_types.to_vec(),
            header: true,
            delimiter: b',',
        }
    }

    /// Whether the first row is a header.
    pub fn header(self, header: bool) -> CsvOptions {
        CsvOptions { header, ..self }
    }

    /// The field delimiter.
    pub fn delimiter(self, delimiter: u8) -> CsvOptions {
        CsvOptions { delimiter, ..self }
    }
}

/// A field parsed as a scalar of `dtype`, or a message saying why not.
fn scalar(field: &str, dtype: DType) -> std::result::Result<Tensor, String> {
    let s = field.trim();
    let bad = || format!("cannot parse '{s}' as {dtype}");
    Ok(match dtype {
        DType::Float32 => Tensor::scalar(s.parse::<f32>().map_err(|_| bad())?),
        DType::Float64 => Tensor::scalar(s.parse::<f64>().map_err(|_| bad())?),
        DType::Int32 => Tensor::scalar(s.parse::<i32>().map_err(|_| bad())?),
        DType::Int64 => Tensor::scalar(s.parse::<i64>().map_err(|_| bad())?),
        DType::UInt8 => Tensor::scalar(s.parse::<u8>().map_err(|_| bad())?),
        DType::Bool => Tensor::scalar(match s.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("cannot parse '{s}' as bool")),
        }),
        DType::Resource | DType::Variant => {
            return Err("a CSV field cannot be a resource handle".into())
        }
        // Text fields are kept as written (numbers are trimmed, strings are not).
        DType::String => Tensor::string_scalar(field),
    })
}

struct CsvFile {
    path: PathBuf,
    options: CsvOptions,
}

impl CsvFile {
    fn open(&self) -> Result<ElementIter> {
        let path = self.path.clone();
        let err = move |line: u64, msg: String| {
            Error::Parse(format!("{}: line {line}: {msg}", path.display()))
        };
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(self.options.header)
            .delimiter(self.options.delimiter)
            .flexible(true)
            .from_path(&self.path)
            .map_err(|e| Error::Io(format!("{}: {e}", self.path.display())))?;
        let types = self.options.column_types.clone();
        let names: Option<Vec<String>> = if self.options.header {
            let h = reader.headers().map_err(|e| err(1, e.to_string()))?;
            if h.len() != types.len() {
                return Err(err(
                    1,
                    format!(
                        "the header has {} columns, {} types were given",
                        h.len(),
                        types.len()
                    ),
                ));
            }
            Some(h.iter().map(|s| s.trim().to_string()).collect())
        } else {
            None
        };
        Ok(Box::new(reader.into_records().map(move |rec| {
            let rec = rec.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                err(line, e.to_string())
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            if rec.len() != types.len() {
                return Err(err(
                    line,
                    format!("{} fields, expected {}", rec.len(), types.len()),
                ));
            }
            let values = rec
                .iter()
                .zip(&types)
                .enumerate()
                .map(|(i, (f, &dt))| {
                    scalar(f, dt).map_err(|m| {
                        let col = names
                            .as_ref()
                            .map_or(i.to_string(), |n| format!("'{}'", n[i]));
                        err(line, format!("column {col}: {m}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(match &names {
                Some(n) => n.iter().cloned().zip(values).collect(),
                None => Element::Tuple(values.into_iter().map(Element::Tensor).collect()),
            })
        })))
    }
}

impl DatasetOp for CsvFile {
    fn iter(&self) -> ElementIter {
        self.open().unwrap_or_else(error_iter)
    }
}

impl Dataset {
    /// The rows of a CSV file: with a header, dict elements by column name; without,
    /// tuples. Each field is a scalar of its column's dtype; a field that does not parse
    /// is an error naming the file, line and column.
    ///
    /// ```no_run
    /// use rustflow::data::{CsvOptions, Dataset};
    /// use rustflow::DType;
    /// let mut types = vec![DType::Int32];
    /// types.extend([DType::Float32; 64]);
    /// let rows = Dataset::from_csv("examples/data/digits.csv", CsvOptions::new(&types));
    /// let batch = rows.batch(32, false).iter().next().unwrap().unwrap();
    /// assert_eq!(batch.get("label").unwrap().tensor().unwrap().shape(), &[32]);
    /// ```
    pub fn from_csv(path: impl AsRef<Path>, options: CsvOptions) -> Dataset {
        Dataset::new(CsvFile {
            path: path.as_ref().to_path_buf(),
            options,
        })
    }
}
