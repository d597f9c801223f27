//! The LevelDB-format table (SSTable) TensorFlow uses for tensor bundle indexes
//! (`core/lib/io/table_*`): data blocks, an empty metaindex block, an index block and a
//! 48-byte footer. Blocks carry a type byte (0 = raw, 1 = snappy) and a masked CRC-32C.
//!
//! The reader checks every checksum, bound and key order and reports what is wrong; the
//! writer emits uncompressed blocks with a restart point at every entry.

use crate::crc as crc32c;
use crate::{Error, Result};

/// The footer's magic number.
const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Footer size: two block handles padded to 40 bytes, then the magic.
const FOOTER_LEN: usize = 48;
/// Block trailer size: type byte and masked CRC.
const TRAILER_LEN: usize = 5;
/// Largest block (after decompression) accepted.
const MAX_BLOCK_LEN: usize = 256 << 20;
/// Target size of a written data block (TensorFlow's default).
const BLOCK_SIZE: usize = 256 << 10;

fn corrupt(msg: impl std::fmt::Display) -> Error {
    Error::Parse(format!("corrupt table: {msg}"))
}

/// Reads a varint of at most `max_bytes` bytes at `*pos`, advancing it.
fn varint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64> {
    let mut v = 0u64;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(*pos) else {
            return Err(corrupt("truncated varint"));
        };
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(corrupt("varint too long"))
}

fn varint32(buf: &[u8], pos: &mut usize) -> Result<usize> {
    let v = varint(buf, pos, 5)?;
    u32::try_from(v)
        .map(|v| v as usize)
        .map_err(|_| corrupt("varint32 out of range"))
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Where a block lies in the file (its size excludes the trailer).
#[derive(Clone, Copy, Debug, PartialEq)]
struct BlockHandle {
    offset: u64,
    size: u64,
}

impl BlockHandle {
    fn decode(buf: &[u8], pos: &mut usize) -> Result<BlockHandle> {
        Ok(BlockHandle {
            offset: varint(buf, pos, 10)?,
            size: varint(buf, pos, 10)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }
}

/// The contents of a block, checked and decompressed.
fn read_block(file: &[u8], h: BlockHandle, what: &str) -> Result<Vec<u8>> {
    let start = usize::try_from(h.offset).map_err(|_| corrupt(format!("{what} offset")))?;
    let size = usize::try_from(h.size).map_err(|_| corrupt(format!("{what} size")))?;
    let end = start
        .checked_add(size)
        .and_then(|e| e.checked_add(TRAILER_LEN))
        .filter(|&e| e <= file.len())
        .ok_or_else(|| {
            corrupt(format!(
                "{what} at offset {start} with {size} bytes lies beyond the end of the file \
                 ({} bytes); the file is truncated",
                file.len()
            ))
        })?;
    let body = &file[start..start + size];
    let kind = file[start + size];
    let stored = u32::from_le_bytes([file[end - 4], file[end - 3], file[end - 2], file[end - 1]]);
    let actual = crc32c::mask(crc32c::extend(crc32c::crc32c(body), &[kind]));
    if stored != actual {
        return Err(corrupt(format!(
            "bad checksum of {what} at offset {start} (stored {stored:#010x}, computed \
             {actual:#010x})"
        )));
    }
    match kind {
        0 => Ok(body.to_vec()),
        1 => {
            let len = snap::raw::decompress_len(body)
                .map_err(|e| corrupt(format!("{what}: bad snappy data: {e}")))?;
            if len > MAX_BLOCK_LEN {
                return Err(corrupt(format!(
                    "{what} would decompress to {len} bytes (at most {MAX_BLOCK_LEN})"
                )));
            }
            snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| corrupt(format!("{what}: bad snappy data: {e}")))
        }
        k => Err(corrupt(format!("{what} has unknown compression type {k}"))),
    }
}

/// The (key, value) entries of a block, keys checked to be strictly increasing.
fn block_entries(block: &[u8], what: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if block.len() < 4 {
        return Err(corrupt(format!("{what} is too short")));
    }
    let n = block.len();
    let num_restarts =
        u32::from_le_bytes([block[n - 4], block[n - 3], block[n - 2], block[n - 1]]) as usize;
    let limit = num_restarts
        .checked_mul(4)
        .and_then(|r| n.checked_sub(4 + r))
        .ok_or_else(|| corrupt(format!("{what} has a bad restart count {num_restarts}")))?;
    let data = &block[..limit];
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut pos = 0;
    let mut key: Vec<u8> = Vec::new();
    while pos < data.len() {
        let shared = varint32(data, &mut pos)?;
        let unshared = varint32(data, &mut pos)?;
        let value_len = varint32(data, &mut pos)?;
        if shared > key.len() {
            return Err(corrupt(format!(
                "{what}: an entry shares {shared} key bytes with a key of {}",
                key.len()
            )));
        }
        let key_end = pos
            .checked_add(unshared)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| corrupt(format!("{what}: an entry's key runs past the block")))?;
        let value_end = key_end
            .checked_add(value_len)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| corrupt(format!("{what}: an entry's value runs past the block")))?;
        key.truncate(shared);
        key.extend_from_slice(&data[pos..key_end]);
        if let Some((prev, _)) = entries.last() {
            if *prev >= key {
                return Err(corrupt(format!("{what}: keys are not in increasing order")));
            }
        }
        entries.push((key.clone(), data[key_end..value_end].to_vec()));
        pos = value_end;
    }
    Ok(entries)
}

/// Every (key, value) of a table file, in key order.
pub fn read_table(file: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if file.len() < FOOTER_LEN {
        return Err(corrupt(format!(
            "the file has {} bytes, less than a table footer; it is truncated or not a table",
            file.len()
        )));
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&footer[40..]);
    if u64::from_le_bytes(magic) != MAGIC {
        return Err(corrupt(
            "bad magic number at the end; the file is truncated or not a table",
        ));
    }
    let mut pos = 0;
    let _metaindex = BlockHandle::decode(footer, &mut pos)?;
    let index = BlockHandle::decode(footer, &mut pos)?;
    let index_block = read_block(file, index, "index block")?;
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (i, (_, handle)) in block_entries(&index_block, "index block")?
        .into_iter()
        .enumerate()
    {
        let mut p = 0;
        let h = BlockHandle::decode(&handle, &mut p)?;
        let what = format!("data block {i}");
        let block = read_block(file, h, &what)?;
        for (k, v) in block_entries(&block, &what)? {
            if out.last().is_some_and(|(prev, _)| *prev >= k) {
                return Err(corrupt("keys are not in increasing order across blocks"));
            }
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Builds a block with a restart point at every entry.
fn build_block(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut restarts = Vec::with_capacity(entries.len().max(1));
    for (k, v) in entries {
        restarts.push(out.len() as u32);
        put_varint(&mut out, 0);
        put_varint(&mut out, k.len() as u64);
        put_varint(&mut out, v.len() as u64);
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    if restarts.is_empty() {
        restarts.push(0);
    }
    for r in &restarts {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
    out
}

/// Appends an uncompressed block with its trailer; returns its handle.
fn put_block(file: &mut Vec<u8>, block: &[u8]) -> BlockHandle {
    let handle = BlockHandle {
        offset: file.len() as u64,
        size: block.len() as u64,
    };
    file.extend_from_slice(block);
    file.push(0);
    let crc = crc32c::mask(crc32c::extend(crc32c::crc32c(block), &[0]));
    file.extend_from_slice(&crc.to_le_bytes());
    handle
}

/// Writes a table of `entries`, whose keys must be strictly increasing.
pub fn write_table(entries: &[(&[u8], &[u8])]) -> Result<Vec<u8>> {
    if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::invalid("table keys must be strictly increasing"));
    }
    let mut file = Vec::new();
    let mut index: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut start = 0;
    while start < entries.len() {
        let mut end = start;
        let mut size = 0;
        while end < entries.len() && (end == start || size < BLOCK_SIZE) {
            size += entries[end].0.len() + entries[end].1.len() + 16;
            end += 1;
        }
        let handle = put_block(&mut file, &build_block(&entries[start..end]));
        let mut h = Vec::new();
        handle.encode(&mut h);
        // The last key of the block separates it from the next one.
        index.push((entries[end - 1].0.to_vec(), h));
        start = end;
    }
    let metaindex = put_block(&mut file, &build_block(&[]));
    let index_entries: Vec<(&[u8], &[u8])> = index
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let index = put_block(&mut file, &build_block(&index_entries));
    let mut footer = Vec::with_capacity(FOOTER_LEN);
    metaindex.encode(&mut footer);
    index.encode(&mut footer);
    footer.resize(40, 0);
    footer.extend_from_slice(&MAGIC.to_le_bytes());
    file.extend_from_slice(&footer);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..2000)
            .map(|i| {
                (
                    format!("key{i:05}").into_bytes(),
                    vec![(i % 251) as u8; 300],
                )
            })
            .collect()
    }

    fn write(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let refs: Vec<(&[u8], &[u8])> = entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        write_table(&refs).unwrap()
    }

    #[test]
    fn round_trips_across_several_blocks() {
        let entries = sample();
        let file = write(&entries);
        assert!(file.len() > 2 * BLOCK_SIZE);
        assert_eq!(read_table(&file).unwrap(), entries);
        assert_eq!(read_table(&write(&[])).unwrap(), vec![]);
    }

    #[test]
    fn empty_metaindex_block_matches_tensorflow() {
        assert_eq!(build_block(&[]), [0, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn damage_is_reported() {
        let file = write(&sample()[..3]);
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            // Every flipped byte is caught (a checksum, the magic, or a handle) or, in
            // the footer padding, harmless; never a panic.
            if let Ok(entries) = read_table(&bad) {
                assert_eq!(entries, sample()[..3].to_vec(), "byte {i}");
            }
        }
        let mut bad = file.clone();
        bad[10] ^= 1;
        let e = read_table(&bad).unwrap_err().to_string();
        assert!(e.contains("bad checksum of data block 0"), "{e}");
        for cut in [0, 10, file.len() / 2, file.len() - 1] {
            let e = read_table(&file[..cut]).unwrap_err().to_string();
            assert!(e.contains("truncated"), "cut at {cut}: {e}");
        }
        assert!(write_table(&[(b"b", b""), (b"a", b"")]).is_err());
    }

    #[test]
    fn snappy_blocks_are_read() {
        // A block compressed as TensorFlow 1.14+ writes them (type 1).
        let block = build_block(&[(b"a", &[7u8; 100]), (b"b", &[9u8; 100])]);
        let compressed = snap::raw::Encoder::new().compress_vec(&block).unwrap();
        let mut file = Vec::new();
        let data = BlockHandle {
            offset: 0,
            size: compressed.len() as u64,
        };
        file.extend_from_slice(&compressed);
        file.push(1);
        let crc = crc32c::mask(crc32c::extend(crc32c::crc32c(&compressed), &[1]));
        file.extend_from_slice(&crc.to_le_bytes());
        let meta = put_block(&mut file, &build_block(&[]));
        let mut h = Vec::new();
        data.encode(&mut h);
        let index = put_block(&mut file, &build_block(&[(b"b", &h)]));
        let mut footer = Vec::new();
        meta.encode(&mut footer);
        index.encode(&mut footer);
        footer.resize(40, 0);
        footer.extend_from_slice(&MAGIC.to_le_bytes());
        file.extend_from_slice(&footer);
        let entries = read_table(&file).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].1, vec![9u8; 100]);
    }
}
