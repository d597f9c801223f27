//! CRC-32C (Castagnoli), as LevelDB and TensorFlow checkpoints use it, with their masking.

/// The byte-wise lookup table of the reflected polynomial 0x82F63B78.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Extends a CRC-32C with more bytes (`extend(0, b)` is the CRC of `b`).
pub fn extend(crc: u32, bytes: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in bytes {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    extend(0, bytes)
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
