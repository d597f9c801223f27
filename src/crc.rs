//! CRC-32C (Castagnoli), as LevelDB, TensorFlow checkpoints and TFRecord files use it, with
//! their masking.

/// Extends a CRC-32C with more bytes (`extend(0, b)` is the CRC of `b`); hardware CRC32C
/// instructions where the CPU has them (the `crc32c` crate).
pub fn extend(crc: u32, bytes: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, bytes)
}

/// The CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    ::crc32c::crc32c(bytes)
}

const MASK_DELTA: u32 = 0xa282_ead8;

/// LevelDB's masking of a stored CRC (so CRCs of data holding CRCs stay well distributed).
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask`].
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(extend(crc32c(b"1234"), b"56789"), 0xe306_9283);
        // A float32 0.5 in a TensorFlow checkpoint: stored masked crc `06 38 27 1f`.
        assert_eq!(mask(crc32c(&[0, 0, 0, 0x3f])), 0x1f27_3806);
        // TensorBoard's test vector for a TFRecord payload.
        let mut data = vec![0x1a, 0x11];
        data.extend_from_slice(b"CRC test, one two");
        assert_eq!(mask(crc32c(&data)), 0x5794_d08a);
        assert_eq!(unmask(mask(0xdead_beef)), 0xdead_beef);
    }
}
