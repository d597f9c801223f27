//! TensorFlow's tensor bundle (V2 checkpoint): `<prefix>.index`, an SSTable mapping each
//! tensor name to a `BundleEntryProto` (the empty key holds a `BundleHeaderProto`), and
//! `<prefix>.data-SSSSS-of-NNNNN` files with the raw little-endian tensor bytes.

use super::sstable;
use crate::crc as crc32c;
use crate::proto::{self, tf};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use prost::Message;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Largest shard count accepted in a header.
const MAX_SHARDS: i32 = 1 << 16;

/// The path of a bundle's index file.
pub fn index_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".index")
}

/// The path of one data shard.
pub fn data_path(prefix: &Path, shard: i32, num_shards: i32) -> PathBuf {
    with_suffix(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// A bundle opened for reading: the parsed index; tensors are read on demand.
#[derive(Debug)]
pub struct BundleReader {
    prefix: PathBuf,
    num_shards: i32,
    entries: BTreeMap<String, tf::BundleEntryProto>,
}

impl BundleReader {
    /// Opens `<prefix>.index`, checking the table and the header. Errors name the file.
    pub fn open(prefix: &Path) -> Result<BundleReader> {
        let path = index_path(prefix);
        let file =
            std::fs::read(&path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        Self::parse(prefix, &file).map_err(|e| match e {
            Error::Parse(m) => Error::Parse(format!("{}: {m}", path.display())),
            e => Error::Parse(format!("{}: {e}", path.display())),
        })
    }

    fn parse(prefix: &Path, file: &[u8]) -> Result<BundleReader> {
        let mut num_shards = None;
        let mut entries = BTreeMap::new();
        for (key, value) in sstable::read_table(file)? {
            if key.is_empty() {
                let h = tf::BundleHeaderProto::decode(value.as_slice())
                    .map_err(|e| Error::Parse(format!("bad bundle header: {e}")))?;
                if h.endianness != tf::bundle_header_proto::Endianness::Little as i32 {
                    return Err(Error::Parse("big-endian bundles are not supported".into()));
                }
                if !(1..=MAX_SHARDS).contains(&h.num_shards) {
                    return Err(Error::Parse(format!(
                        "bad shard count {} in the bundle header",
                        h.num_shards
                    )));
                }
                num_shards = Some(h.num_shards);
                continue;
            }
            let name = String::from_utf8(key)
                .map_err(|_| Error::Parse("a tensor name is not valid UTF-8".into()))?;
            let entry = tf::BundleEntryProto::decode(value.as_slice())
                .map_err(|e| Error::Parse(format!("bad entry for tensor '{name}': {e}")))?;
            entries.insert(name, entry);
        }
        let num_shards =
            num_shards.ok_or_else(|| Error::Parse("the bundle has no header entry".into()))?;
        Ok(BundleReader {
            prefix: prefix.to_path_buf(),
            num_shards,
            entries,
        })
    }

    /// Names of the stored tensors, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The index entry of a tensor.
    pub fn entry(&self, name: &str) -> Option<&tf::BundleEntryProto> {
        self.entries.get(name)
    }

    /// Reads one tensor, checking its shard, bounds, size and checksum.
    pub fn read(&self, name: &str) -> Result<Tensor> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("tensor '{name}' is not in the checkpoint")))?;
        let bad = |msg: String| Error::Parse(format!("checkpoint tensor '{name}': {msg}"));
        if !e.slices.is_empty() {
            return Err(bad(
                "partitioned (sliced) variables are not supported".into()
            ));
        }
        if !(0..self.num_shards).contains(&e.shard_id) {
            return Err(bad(format!("bad shard id {}", e.shard_id)));
        }
        let dtype = proto::dtype_from_proto(e.dtype).map_err(|err| bad(err.to_string()))?;
        let dims = match &e.shape {
            Some(s) => proto::dims_from_proto(s).map_err(|err| bad(err.to_string()))?,
            None => Vec::new(),
        };
        let (Ok(offset), Ok(size)) = (u64::try_from(e.offset), u64::try_from(e.size)) else {
            return Err(bad(format!(
                "negative offset {} or size {}",
                e.offset, e.size
            )));
        };
        let path = data_path(&self.prefix, e.shard_id, self.num_shards);
        let io = |err: std::io::Error| Error::Io(format!("{}: {err}", path.display()));
        let mut file = File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(bad(format!(
                "bytes {offset}..{} lie beyond the end of {} ({len} bytes); the file is truncated",
                offset.saturating_add(size),
                path.display()
            )));
        }
        let mut bytes = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.read_exact(&mut bytes).map_err(io)?;
        let (tensor, crc) = if dtype == DType::String {
            let n = proto::checked_num_elements(&dims).map_err(|err| bad(err.to_string()))?;
            let (strings, crc) = decode_strings(&bytes, n).map_err(bad)?;
            (Tensor::from_strings(&dims, strings), crc)
        } else {
            let crc = crc32c::mask(crc32c::crc32c(&bytes));
            (proto::tensor_from_bytes(dtype, &dims, &bytes), crc)
        };
        if crc != e.crc32c {
            return Err(bad(format!(
                "bad checksum in {} (stored {:#010x}, computed {crc:#010x})",
                path.display(),
                e.crc32c
            )));
        }
        tensor.map_err(|err| bad(err.to_string()))
    }
}

/// Writes a single-shard bundle of `tensors` (name → value) at `prefix`.
pub fn write_bundle(prefix: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let mut data = Vec::new();
    let header = tf::BundleHeaderProto {
        num_shards: 1,
        endianness: tf::bundle_header_proto::Endianness::Little as i32,
        version: Some(tf::VersionDef {
            producer: 1,
            ..Default::default()
        }),
    };
    let mut index: Vec<(Vec<u8>, Vec<u8>)> = vec![(Vec::new(), header.encode_to_vec())];
    for (name, t) in tensors {
        let (bytes, crc) = match t.as_strings() {
            Ok(strings) => encode_strings(strings),
            Err(_) => {
                let bytes = proto::tensor_bytes(t)?;
                let crc = crc32c::mask(crc32c::crc32c(&bytes));
                (bytes, crc)
            }
        };
        let entry = tf::BundleEntryProto {
            dtype: proto::dtype_to_proto(t.dtype()),
            shape: Some(proto::dims_to_proto(t.shape())),
            shard_id: 0,
            offset: data.len() as i64,
            size: bytes.len() as i64,
            crc32c: crc,
            slices: Vec::new(),
        };
        data.extend_from_slice(&bytes);
        index.push((name.as_bytes().to_vec(), entry.encode_to_vec()));
    }
    let refs: Vec<(&[u8], &[u8])> = index
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let table = sstable::write_table(&refs)?;
    write_synced(&data_path(prefix, 0, 1), &data)?;
    write_synced(&index_path(prefix), &table)
}

/// The checksum TensorFlow keeps of one string length: over its 4 little-endian bytes, or 8
/// when it does not fit in 32 bits (`WriteStringTensor`, kept for backward compatibility).
fn extend_with_length(crc: u32, len: u64) -> u32 {
    match u32::try_from(len) {
        Ok(l) => crc32c::extend(crc, &l.to_le_bytes()),
        Err(_) => crc32c::extend(crc, &len.to_le_bytes()),
    }
}

/// A string tensor as a bundle stores it (TensorFlow's `WriteStringTensor`): each length as
/// a varint64, the masked checksum of the lengths (4 bytes), then the bytes of each string.
/// Returns the bytes and the entry's masked checksum, which covers the lengths (as
/// [`extend_with_length`] feeds them), the length checksum and the strings.
fn encode_strings(strings: &[Vec<u8>]) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut crc = 0;
    for s in strings {
        let mut len = s.len() as u64;
        crc = extend_with_length(crc, len);
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
    }
    let length_checksum = crc32c::mask(crc).to_le_bytes();
    out.extend_from_slice(&length_checksum);
    crc = crc32c::extend(crc, &length_checksum);
    for s in strings {
        out.extend_from_slice(s);
        crc = crc32c::extend(crc, s);
    }
    (out, crc32c::mask(crc))
}

/// Reads `n` strings written by [`encode_strings`], checking the length checksum and that
/// the lengths account for every byte; returns them with the entry checksum they give.
fn decode_strings(bytes: &[u8], n: usize) -> std::result::Result<(Vec<Vec<u8>>, u32), String> {
    // Each length takes at least one byte: a larger `n` cannot be right (and must not
    // size an allocation).
    if n > bytes.len() {
        return Err(format!(
            "{n} strings cannot be encoded in {} bytes",
            bytes.len()
        ));
    }
    let mut at = 0;
    let mut crc = 0;
    let mut lengths = Vec::with_capacity(n);
    for i in 0..n {
        let mut len = 0u64;
        let mut shift = 0;
        loop {
            let b = *bytes
                .get(at)
                .ok_or_else(|| format!("the length of string {i} runs past the data"))?;
            at += 1;
            if shift > 63 {
                return Err(format!("the length of string {i} is not a valid varint"));
            }
            len |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        crc = extend_with_length(crc, len);
        lengths.push(len);
    }
    let stored = bytes
        .get(at..at + 4)
        .ok_or("the data ends before the checksum of the string lengths")?;
    if u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]) != crc32c::mask(crc) {
        return Err("bad checksum of the string lengths".into());
    }
    crc = crc32c::extend(crc, stored);
    at += 4;
    let total = lengths
        .iter()
        .try_fold(0u64, |acc, &l| acc.checked_add(l))
        .filter(|&t| t == (bytes.len() - at) as u64)
        .ok_or_else(|| {
            format!(
                "the string lengths do not add up to the {} bytes that follow them",
                bytes.len() - at
            )
        })?;
    debug_assert_eq!(total as usize, bytes.len() - at);
    let mut strings = Vec::with_capacity(n);
    for len in lengths {
        let s = &bytes[at..at + len as usize];
        crc = crc32c::extend(crc, s);
        strings.push(s.to_vec());
        at += len as usize;
    }
    Ok((strings, crc32c::mask(crc)))
}

/// Writes a file and flushes it to disk.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    let mut f = File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rustflow-bundle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trips_and_matches_tensorflow_entries() {
        let dir = tmp("rt");
        let prefix = dir.join("variables");
        let mut tensors = BTreeMap::new();
        tensors.insert("b".to_string(), Tensor::scalar(0.5f32));
        tensors.insert("a/kernel".to_string(), Tensor::from([[1i64, 2], [3, 4]]));
        tensors.insert("flag".to_string(), Tensor::vector(vec![true, false]));
        write_bundle(&prefix, &tensors).unwrap();
        let r = BundleReader::open(&prefix).unwrap();
        assert_eq!(r.names().collect::<Vec<_>>(), ["a/kernel", "b", "flag"]);
        for (k, t) in &tensors {
            assert_eq!(&r.read(k).unwrap(), t);
        }
        // Scalar float 0.5 at offset 32, as TensorFlow writes it (`08 01 12 00 20 .. 28 04
        // 35 06 38 27 1f`).
        let e = r.entry("b").unwrap();
        assert_eq!(e.crc32c, 0x1f27_3806);
        assert_eq!(
            e.encode_to_vec(),
            [0x08, 0x01, 0x12, 0x00, 0x20, 0x20, 0x28, 0x04, 0x35, 0x06, 0x38, 0x27, 0x1f]
        );
        let e = r.read("nope").unwrap_err().to_string();
        assert!(e.contains("not in the checkpoint"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reads_and_writes_string_tensors_as_tensorflow() {
        // Written by graphs/make_string_fixtures.py (tf.train.Checkpoint).
        let prefix =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/fixtures/strings/checkpoint/ckpt-1");
        let r = BundleReader::open(&prefix).unwrap();
        let words = r.read("words/.ATTRIBUTES/VARIABLE_VALUE").unwrap();
        let expected = Tensor::from_strings(&[3], vec![&b"ab"[..], b"", b"xyz\x00\xff"]).unwrap();
        assert_eq!(words, expected);
        let graph = r.read("_CHECKPOINTABLE_OBJECT_GRAPH").unwrap();
        assert_eq!(graph.shape(), &[] as &[usize]);
        assert!(!graph.as_strings().unwrap()[0].is_empty());
        assert_eq!(
            r.read("x/.ATTRIBUTES/VARIABLE_VALUE").unwrap(),
            Tensor::from([1.5f32, -2.0])
        );
        // Our encoding is TensorFlow's, byte for byte and checksum for checksum.
        let tf_entry = r.entry("words/.ATTRIBUTES/VARIABLE_VALUE").unwrap().clone();
        let (bytes, crc) = encode_strings(words.as_strings().unwrap());
        assert_eq!(crc, tf_entry.crc32c);
        assert_eq!(bytes.len() as i64, tf_entry.size);
        let dir = tmp("strings");
        let mut tensors = BTreeMap::new();
        tensors.insert("w".to_string(), words.clone());
        tensors.insert(
            "empty".to_string(),
            Tensor::from_strings::<Vec<u8>>(&[0], vec![]).unwrap(),
        );
        tensors.insert("long".to_string(), Tensor::string_scalar(vec![7u8; 300]));
        write_bundle(&dir.join("v"), &tensors).unwrap();
        let back = BundleReader::open(&dir.join("v")).unwrap();
        for (k, t) in &tensors {
            assert_eq!(&back.read(k).unwrap(), t, "{k}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn damaged_string_data_is_reported() {
        let (good, _) = encode_strings(&[b"ab".to_vec(), b"c".to_vec()]);
        assert!(decode_strings(&good, 2).is_ok());
        // More strings than bytes, a length past the data, a bad length checksum, lengths
        // that do not add up, an endless varint.
        let e = decode_strings(&good, 1 << 40).unwrap_err();
        assert!(e.contains("cannot be encoded"), "{e}");
        let mut bad = good.clone();
        bad[0] = 9;
        assert!(decode_strings(&bad, 2).unwrap_err().contains("checksum"));
        assert!(decode_strings(&good[..good.len() - 1], 2)
            .unwrap_err()
            .contains("do not add up"));
        assert!(decode_strings(&good[..3], 2)
            .unwrap_err()
            .contains("checksum"));
        let e = decode_strings(&[0xff; 12], 1).unwrap_err();
        assert!(e.contains("varint"), "{e}");
    }

    #[test]
    fn damaged_data_is_reported() {
        let dir = tmp("bad");
        let prefix = dir.join("variables");
        let mut tensors = BTreeMap::new();
        tensors.insert("w".to_string(), Tensor::vector(vec![1.0f32, 2.0, 3.0]));
        write_bundle(&prefix, &tensors).unwrap();
        let data = data_path(&prefix, 0, 1);
        let good = std::fs::read(&data).unwrap();
        let mut bad = good.clone();
        bad[5] ^= 1;
        std::fs::write(&data, &bad).unwrap();
        let e = BundleReader::open(&prefix).unwrap().read("w").unwrap_err();
        assert!(e.to_string().contains("bad checksum"), "{e}");
        std::fs::write(&data, &good[..8]).unwrap();
        let e = BundleReader::open(&prefix).unwrap().read("w").unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        std::fs::remove_file(&data).unwrap();
        let e = BundleReader::open(&prefix).unwrap().read("w").unwrap_err();
        assert!(
            e.to_string().contains("variables.data-00000-of-00001"),
            "{e}"
        );
        let index = index_path(&prefix);
        let table = std::fs::read(&index).unwrap();
        std::fs::write(&index, &table[..table.len() - 3]).unwrap();
        let e = BundleReader::open(&prefix).unwrap_err().to_string();
        assert!(
            e.contains("variables.index") && e.contains("truncated"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Rewrites the index entry of `w` with `edit` applied.
    fn with_entry(prefix: &Path, edit: impl Fn(&mut tf::BundleEntryProto)) {
        let table = std::fs::read(index_path(prefix)).unwrap();
        let mut entries = sstable::read_table(&table).unwrap();
        let mut e = tf::BundleEntryProto::decode(entries[1].1.as_slice()).unwrap();
        edit(&mut e);
        entries[1].1 = e.encode_to_vec();
        let refs: Vec<(&[u8], &[u8])> = entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        std::fs::write(index_path(prefix), sstable::write_table(&refs).unwrap()).unwrap();
    }

    #[test]
    fn inconsistent_entries_are_reported() {
        let dir = tmp("entry");
        let prefix = dir.join("variables");
        let mut tensors = BTreeMap::new();
        tensors.insert("w".to_string(), Tensor::vector(vec![1.0f32, 2.0, 3.0]));
        type Edit = fn(&mut tf::BundleEntryProto);
        let cases: [(Edit, &str); 6] = [
            (|e| e.dtype = 19, "DT_HALF is not supported"),
            (|e| e.dtype = 99, "DataType 99"),
            (
                |e| e.shape = Some(proto::dims_to_proto(&[4])),
                "12 bytes of tensor data do not match shape [4]",
            ),
            (|e| e.offset = -1, "negative offset"),
            (|e| e.shard_id = 3, "bad shard id 3"),
            (|e| e.size = i64::MAX, "beyond the end"),
        ];
        for (edit, want) in cases {
            write_bundle(&prefix, &tensors).unwrap();
            with_entry(&prefix, edit);
            let e = BundleReader::open(&prefix).unwrap().read("w").unwrap_err();
            assert!(e.to_string().contains(want), "{e} (want {want})");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
