//! TFRecord files (`tf.io.TFRecordWriter`, `tf.data.TFRecordDataset`): each record is
//! `u64 length | u32 masked crc32c(length) | data | u32 masked crc32c(data)`, little-endian.
//! The reader checks both checksums and bounds every length by what is left of the file,
//! so a corrupt file is an error naming the file and the record's offset. Files may be
//! compressed as a whole with ZLIB or GZIP ([`Compression`]), as TensorFlow writes them.

use super::dataset::{Dataset, DatasetOp, ElementIter};
use crate::crc;
use crate::tensor::Tensor;
use crate::{Error, Result};
use flate2::read::{MultiGzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Bytes of framing around each record: the length, its crc and the data's crc.
const FRAMING: u64 = 16;

/// How a whole TFRecord file is compressed: TensorFlow's `compression_type` of
/// `tf.data.TFRecordDataset` and `tf.io.TFRecordOptions` (`""`, `"ZLIB"`, `"GZIP"`).
/// Compression wraps the whole stream of framed records, as TensorFlow writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain framed records (`""`).
    #[default]
    None,
    /// One zlib stream (`"ZLIB"`: deflate with the zlib header, TensorFlow's default
    /// window and level).
    Zlib,
    /// A gzip file (`"GZIP"`); concatenated gzip members are read as one stream.
    Gzip,
}

impl FromStr for Compression {
    type Err = Error;

    /// Parses TensorFlow's names: `""` (or `"NONE"`), `"ZLIB"`, `"GZIP"`.
    fn from_str(s: &str) -> Result<Compression> {
        match s {
            "" | "NONE" => Ok(Compression::None),
            "ZLIB" => Ok(Compression::Zlib),
            "GZIP" => Ok(Compression::Gzip),
            other => Err(Error::InvalidArgument(format!(
                "unknown TFRecord compression type {other:?}: expected \"\", \"ZLIB\" or \"GZIP\""
            ))),
        }
    }
}

/// Reads the records of one TFRecord file in order, plain or compressed.
pub struct TFRecordReader {
    path: PathBuf,
    source: Box<dyn Read + Send>,
    /// Offset of the next record in the (decompressed) stream of records.
    offset: u64,
    /// The file's size for a plain file, which bounds every record length; unknown for a
    /// compressed one, whose lengths are bounded by the data that actually follows.
    size: Option<u64>,
    failed: bool,
}

impl TFRecordReader {
    /// Opens the plain (uncompressed) file `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<TFRecordReader> {
        TFRecordReader::open_with(path, Compression::None)
    }

    /// Opens `path`, compressed as `compression` says.
    pub fn open_with(path: impl AsRef<Path>, compression: Compression) -> Result<TFRecordReader> {
        let path = path.as_ref().to_path_buf();
        let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
        let file = File::open(&path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let file = BufReader::with_capacity(1 << 20, file);
        let (source, size): (Box<dyn Read + Send>, _) = match compression {
            Compression::None => (Box::new(file), Some(size)),
            Compression::Zlib => (Box::new(ZlibDecoder::new(file)), None),
            Compression::Gzip => (Box::new(MultiGzDecoder::new(file)), None),
        };
        Ok(TFRecordReader {
            path,
            source,
            offset: 0,
            size,
            failed: false,
        })
    }

    fn corrupt(&self, msg: impl std::fmt::Display) -> Error {
        let stream = if self.size.is_some() {
            ""
        } else {
            " of the decompressed stream"
        };
        Error::Parse(format!(
            "{}: corrupt TFRecord at offset {}{stream}: {msg}",
            self.path.display(),
            self.offset
        ))
    }

    /// Fills `buf` from the stream, returning how many bytes it got before the end.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.source.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.corrupt(format!("read failed: {e}"))),
            }
        }
        Ok(got)
    }

    /// Reads a record's data and its crc (`len + 4` bytes). A plain file's length was
    /// checked against the file size, so the buffer is allocated at once; a compressed
    /// stream's buffer grows only with the bytes that actually arrive.
    fn read_body(&mut self, len: u64) -> Result<Vec<u8>> {
        let want = len + 4;
        let data = if self.size.is_some() {
            let mut data = vec![0u8; want as usize];
            let got = self.read_full(&mut data)?;
            data.truncate(got);
            data
        } else {
            let mut data = Vec::with_capacity(want.min(1 << 20) as usize);
            let read = (&mut self.source).take(want).read_to_end(&mut data);
            read.map_err(|e| self.corrupt(format!("read failed: {e}")))?;
            data
        };
        if (data.len() as u64) < want {
            return Err(self.corrupt(format!(
                "the stream ends {} bytes into a record of length {len}",
                data.len()
            )));
        }
        Ok(data)
    }

    /// The next record's data, or `None` at the end of the file.
    pub fn read_record(&mut self) -> Result<Option<Vec<u8>>> {
        let left = self.size.map(|size| size - self.offset);
        if left == Some(0) {
            return Ok(None);
        }
        if let Some(left) = left.filter(|&left| left < FRAMING) {
            return Err(self.corrupt(format!(
                "{left} bytes left, fewer than a record's {FRAMING} bytes of framing"
            )));
        }
        let mut header = [0u8; 12];
        match self.read_full(&mut header)? {
            0 if left.is_none() => return Ok(None),
            12 => {}
            got => {
                return Err(self.corrupt(format!(
                    "the stream ends {got} bytes into a record's 12-byte header"
                )))
            }
        }
        let len = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let stored = u32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
        if crc::mask(crc::crc32c(&header[..8])) != stored {
            return Err(self.corrupt("the length's crc32c does not match"));
        }
        if let Some(left) = left.filter(|&left| len > left - FRAMING) {
            return Err(self.corrupt(format!(
                "record length {len} exceeds the {} bytes left in the file",
                left - FRAMING
            )));
        }
        let mut data = self.read_body(len)?;
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
pub fn write_framed(out: &mut (impl Write + ?Sized), record: &[u8]) -> std::io::Result<()> {
    let len = (record.len() as u64).to_le_bytes();
    let mut frame = [0u8; 12];
    frame[..8].copy_from_slice(&len);
    frame[8..].copy_from_slice(&crc::mask(crc::crc32c(&len)).to_le_bytes());
    out.write_all(&frame)?;
    out.write_all(record)?;
    out.write_all(&crc::mask(crc::crc32c(record)).to_le_bytes())
}

/// Where a [`TFRecordWriter`] writes: the file, through a compressor or not.
enum Sink {
    Plain(BufWriter<File>),
    Zlib(ZlibEncoder<BufWriter<File>>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Zlib(w) => w,
            Sink::Gzip(w) => w,
        }
    }

    /// Ends the compressed stream (if any) and returns the file's buffered writer.
    fn finish(self) -> std::io::Result<BufWriter<File>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Zlib(w) => w.finish(),
            Sink::Gzip(w) => w.finish(),
        }
    }
}

/// Writes records in TFRecord framing (`tf.io.TFRecordWriter`), plain or compressed.
pub struct TFRecordWriter {
    path: PathBuf,
    out: Sink,
}

impl TFRecordWriter {
    /// Creates (or truncates) the plain file `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<TFRecordWriter> {
        TFRecordWriter::create_with(path, Compression::None)
    }

    /// Creates (or truncates) `path`, compressed as `compression` says
    /// (`tf.io.TFRecordWriter(path, options="GZIP")`), at zlib's default level as
    /// TensorFlow's.
    pub fn create_with(path: impl AsRef<Path>, compression: Compression) -> Result<TFRecordWriter> {
        let path = path.as_ref().to_path_buf();
        let file =
            File::create(&path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let file = BufWriter::with_capacity(1 << 20, file);
        let level = flate2::Compression::default();
        let out = match compression {
            Compression::None => Sink::Plain(file),
            Compression::Zlib => Sink::Zlib(ZlibEncoder::new(file, level)),
            Compression::Gzip => Sink::Gzip(GzEncoder::new(file, level)),
        };
        Ok(TFRecordWriter { path, out })
    }

    fn io(path: &Path, e: std::io::Error) -> Error {
        Error::Io(format!("{}: {e}", path.display()))
    }

    /// Appends one record.
    pub fn write(&mut self, record: &[u8]) -> Result<()> {
        write_framed(self.out.writer(), record).map_err(|e| Self::io(&self.path, e))
    }

    /// Ends the compressed stream, flushes and closes the file, reporting any write
    /// error (dropping the writer finishes and flushes too, but cannot report).
    pub fn close(self) -> Result<()> {
        let io = |e| Self::io(&self.path, e);
        let mut file = self.out.finish().map_err(io)?;
        file.flush().map_err(io)?;
        file.get_ref().sync_all().map_err(io)
    }
}

struct TFRecords {
    paths: Vec<PathBuf>,
    compression: Compression,
}

impl DatasetOp for TFRecords {
    fn iter(&self) -> ElementIter {
        let mut paths = self.paths.clone().into_iter();
        let compression = self.compression;
        let mut current: Option<TFRecordReader> = None;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(r) = current.as_mut() {
                match r.next() {
                    Some(item) => return Some(item.map(|v| Tensor::vector(v).into())),
                    None => current = None,
                }
            }
            match TFRecordReader::open_with(paths.next()?, compression) {
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
        Dataset::from_tfrecord_with(paths, Compression::None)
    }

    /// The records of compressed TFRecord files
    /// (`tf.data.TFRecordDataset(filenames, compression_type="GZIP")`), as
    /// [`from_tfrecord`](Dataset::from_tfrecord) gives them.
    pub fn from_tfrecord_with<P: AsRef<Path>>(paths: &[P], compression: Compression) -> Dataset {
        Dataset::new(TFRecords {
            paths: paths.iter().map(|p| p.as_ref().to_path_buf()).collect(),
            compression,
        })
    }
}
