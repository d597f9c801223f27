//! TFRecord files (`tf.io.TFRecordWriter`, `tf.data.TFRecordDataset`): each record is
//! `u64 length | u32 masked crc32c(length) | data | u32 masked crc32c(data)`, little-endian.
//! The reader checks both checksums and bounds every length by what is left of the file,
//! so a corrupt file is an error naming the file and the record's offset.

use super::dataset::{Dataset, DatasetOp, ElementIter};
use crate::crc;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of framing around each record: the length, its crc and the data's crc.
const FRAMING: u64 = 16;

/// Reads the records of one TFRecord file in order (uncompressed files only).
pub struct TFRecordReader {
    path: PathBuf,
    file: BufReader<File>,
    offset: u64,
    size: u64,
    failed: bool,
}

impl TFRecordReader {
    /// Opens `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<TFRecordReader> {
        let path = path.as_ref().to_path_buf();
        let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
        let file = File::open(&path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(TFRecordReader {
            file: BufReader::with_capacity(1 << 20, file),
            path,
            offset: 0,
            size,
            failed: false,
        })
    }

    fn corrupt(&self, msg: impl std::fmt::Display) -> Error {
        Error::Parse(format!(
            "{}: corrupt TFRecord at offset {}: {msg}",
            self.path.display(),
            self.offset
        ))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact(buf)
            .map_err(|e| self.corrupt(format!("read failed: {e}")))
    }

    /// The next record's data, or `None` at the end of the file.
    pub fn read_record(&mut self) -> Result<Option<Vec<u8>>> {
        if self.offset == self.size {
            return Ok(None);
        }
        let left = self.size - self.offset;
        if left < FRAMING {
            return Err(self.corrupt(format!(
                "{left} bytes left, fewer than a record's {FRAMING} bytes of framing"
            )));
        }
        let mut header = [0u8; 12];
        self.read_exact(&mut header)?;
        let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let stored = u32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
        if crc::mask(crc::crc32c(&header[..8])) != stored {
            return Err(self.corrupt("the length's crc32c does not match"));
        }
        if len > left - FRAMING {
            return Err(self.corrupt(format!(
                "record length {len} exceeds the {} bytes left in the file",
                left - FRAMING
            )));
        }
        let mut data = vec![0u8; len as usize + 4];
        self.read_exact(&mut data)?;
        let stored = u32::from_le_bytes(data[len as usize..].try_into().expect("4 bytes"));
        data.truncate(len as usize);
        if crc::mask(crc::crc32c(&data)) != stored {
            return Err(self.corrupt(format!(
                "the crc32c of the {len}-byte record does not match"
            )));
        }
        self.offset += FRAMING + len;
        Ok(Some(data))
    }
}

impl Iterator for TFRecordReader {
    type Item = Result<Vec<u8>>;

    /// The next record; the iteration ends after the first error.
    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if self.failed {
            return None;
        }
        let item = self.read_record().transpose();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

/// Writes one record in TFRecord framing to `out`: length, its masked crc32c, the data,
/// the data's masked crc32c. The one framing implementation, shared by [`TFRecordWriter`]
/// and TensorBoard's event files (`summary::FileWriter`, which frames into a buffer of
/// whole records).
pub fn write_framed(out: &mut impl Write, record: &[u8]) -> std::io::Result<()> {
    let len = (record.len() as u64).to_le_bytes();
    let mut frame = [0u8; 12];
    frame[..8].copy_from_slice(&len);
    frame[8..].copy_from_slice(&crc::mask(crc::crc32c(&len)).to_le_bytes());
    out.write_all(&frame)?;
    out.write_all(record)?;
    out.write_all(&crc::mask(crc::crc32c(record)).to_le_bytes())
}

/// Writes records in TFRecord framing (`tf.io.TFRecordWriter`, uncompressed).
pub struct TFRecordWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl TFRecordWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<TFRecordWriter> {
        let path = path.as_ref().to_path_buf();
        let file =
            File::create(&path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        Ok(TFRecordWriter {
            path,
            out: BufWriter::with_capacity(1 << 20, file),
        })
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::Io(format!("{}: {e}", self.path.display()))
    }

    /// Appends one record.
    pub fn write(&mut self, record: &[u8]) -> Result<()> {
        write_framed(&mut self.out, record).map_err(|e| self.io(e))
    }

    /// Flushes and closes the file, reporting any write error (dropping the writer
    /// flushes too, but cannot report).
    pub fn close(mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.io(e))?;
        self.out.get_ref().sync_all().map_err(|e| self.io(e))
    }
}

struct TFRecords {
    paths: Vec<PathBuf>,
}

impl DatasetOp for TFRecords {
    fn iter(&self) -> ElementIter {
        let mut paths = self.paths.clone().into_iter();
        let mut current: Option<TFRecordReader> = None;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(r) = current.as_mut() {
                match r.next() {
                    Some(item) => return Some(item.map(|v| Tensor::vector(v).into())),
                    None => current = None,
                }
            }
            match TFRecordReader::open(paths.next()?) {
                Ok(r) => current = Some(r),
                Err(e) => return Some(Err(e)),
            }
        }))
    }
}

impl Dataset {
    /// The records of TFRecord files, file after file, each as a 1-D uint8 tensor of its
    /// bytes (`tf.data.TFRecordDataset(filenames)`); parse them with
    /// [`ExampleParser`](super::ExampleParser).
    pub fn from_tfrecord<P: AsRef<Path>>(paths: &[P]) -> Dataset {
        Dataset::new(TFRecords {
            paths: paths.iter().map(|p| p.as_ref().to_path_buf()).collect(),
        })
    }
}
