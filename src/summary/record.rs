//! TFRecord framing, as TensorFlow's event files (and `.tfrecord` files) use it.
//!
//! Each record is `u64 length` · `u32 masked_crc32c(the 8 length bytes)` · `data` ·
//! `u32 masked_crc32c(data)`, all little-endian; the CRC is CRC-32C with LevelDB's masking.

use crate::saved_model::{crc32c, mask_crc};
use crate::{Error, Result};

/// Bytes a record adds around its data: length, length CRC, data CRC.
pub const RECORD_OVERHEAD: usize = 8 + 4 + 4;

/// Appends one framed record holding `data` to `out`.
pub fn encode_record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.reserve(data.len() + RECORD_OVERHEAD);
    out.extend_from_slice(&len);
    out.extend_from_slice(&mask_crc(crc32c(&len)).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&mask_crc(crc32c(data)).to_le_bytes());
}

/// Splits a buffer of framed records into their data, checking both checksums of every
/// record. `what` names the source (a file path) in errors, which also give the record's
/// index and byte offset. A truncated or corrupt record is an error, never a panic.
pub fn decode_records<'a>(bytes: &'a [u8], what: &str) -> Result<Vec<&'a [u8]>> {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let at = |msg: String| {
            Error::Parse(format!(
                "{what}: record {} at byte {pos}: {msg}",
                records.len()
            ))
        };
        let header = bytes.get(pos..pos + 12).ok_or_else(|| {
            at(format!(
                "truncated header ({} bytes left)",
                bytes.len() - pos
            ))
        })?;
        let (len_bytes, len_crc) = header.split_at(8);
        if mask_crc(crc32c(len_bytes)) != u32::from_le_bytes(len_crc.try_into().unwrap()) {
            return Err(at("length checksum mismatch".into()));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap());
        let start = pos + 12;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e.checked_add(4).is_some_and(|e4| e4 <= bytes.len()))
            .ok_or_else(|| {
                at(format!(
                    "truncated: {len} data bytes declared, {} left",
                    bytes.len() - start
                ))
            })?;
        let data = &bytes[start..end];
        let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().unwrap());
        if mask_crc(crc32c(data)) != crc {
            return Err(at("data checksum mismatch".into()));
        }
        records.push(data);
        pos = end + 4;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_version_record_matches_tensorflow_bytes() {
        // Event{file_version: "brain.Event:2"} framed, as TensorFlow writes it (see
        // /work/shared/ref/tensorflow-interop.md, section 3).
        let data = b"\x1a\x0dbrain.Event:2";
        let mut out = Vec::new();
        encode_record(data, &mut out);
        let expected = [
            0x0f, 0, 0, 0, 0, 0, 0, 0, 0x6d, 0x53, 0x2b, 0x09, 0x1a, 0x0d, b'b', b'r', b'a', b'i',
            b'n', b'.', b'E', b'v', b'e', b'n', b't', b':', b'2', 0xfc, 0x98, 0x51, 0x29,
        ];
        assert_eq!(out, expected);
        assert_eq!(decode_records(&out, "x").unwrap(), vec![&data[..]]);
    }

    #[test]
    fn round_trip_and_every_corruption_is_an_error() {
        let mut out = Vec::new();
        for d in [&b""[..], b"a", &[7u8; 300]] {
            encode_record(d, &mut out);
        }
        let recs = decode_records(&out, "f").unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2], &[7u8; 300][..]);
        // Every truncation and every flipped byte is caught (never a panic).
        for cut in 1..out.len() {
            let prefix = &out[..cut];
            let whole = [0, 16, 33].contains(&cut);
            assert_eq!(decode_records(prefix, "f").is_ok(), whole, "cut {cut}");
        }
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x10;
            let err = decode_records(&bad, "f.tfevents").unwrap_err().to_string();
            assert!(err.contains("f.tfevents: record"), "{err}");
        }
    }

    #[test]
    fn huge_declared_length_is_an_error() {
        let len = u64::MAX.to_le_bytes();
        let mut bytes = len.to_vec();
        bytes.extend_from_slice(&mask_crc(crc32c(&len)).to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let err = decode_records(&bytes, "f").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
