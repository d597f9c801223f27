//! NumPy `.npy` files (format versions 1.0 to 3.0, little- or big-endian, C order).

use super::{num_elements, Buffer, DType, Tensor};
use crate::{Error, Result};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// NumPy's type string of a tensor; strings are fixed-width `|S<n>` bytes, `n` the longest
/// (at least 1, as NumPy makes it).
fn descr(t: &Tensor) -> String {
    match t.buffer() {
        Buffer::Bytes(v) => format!("|S{}", string_width(v)),
        _ => match t.dtype() {
            DType::Float32 => "<f4",
            DType::Float64 => "<f8",
            DType::Int32 => "<i4",
            DType::Int64 => "<i8",
            DType::UInt8 => "|u1",
            DType::Bool | DType::String => "|b1",
            // NumPy's object dtype: there is no way to store a handle.
            DType::Resource | DType::Variant => "|O",
        }
        .to_string(),
    }
}

fn string_width(strings: &[Vec<u8>]) -> usize {
    strings.iter().map(Vec::len).max().unwrap_or(0).max(1)
}

/// Encodes a tensor as the bytes of a `.npy` file (version 1.0).
///
/// # Panics
/// When the tensor is in a device's memory or holds resource handles ([`write_npy`]
/// returns an error instead).
pub fn to_npy_bytes(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t)
    );
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.len() * t.dtype().size());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match t.buffer() {
        Buffer::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Buffer::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Buffer::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Buffer::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Buffer::U8(v) => out.extend_from_slice(v),
        Buffer::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
        Buffer::Bytes(v) => {
            let width = string_width(v);
            for x in v.iter() {
                out.extend_from_slice(x);
                out.resize(out.len() + width - x.len(), 0);
            }
        }
        Buffer::Device(m) => panic!(
            "to_npy_bytes needs a tensor in host memory; this one is on {}",
            m.device()
        ),
        Buffer::Resource(_) | Buffer::Variant(_) => {
            panic!("to_npy_bytes cannot write resource handles")
        }
    }
    out
}

/// Writes a tensor to a `.npy` file, atomically (temporary file, then rename).
pub fn write_npy(path: impl AsRef<Path>, t: &Tensor) -> Result<()> {
    t.expect_host()?;
    if matches!(t.dtype(), DType::Resource | DType::Variant) {
        return Err(Error::invalid(format!(
            "{}: resource handles cannot be written to a .npy file",
            path.as_ref().display()
        )));
    }
    crate::util::atomic_write(path.as_ref(), &to_npy_bytes(t))
}

/// Reads a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    from_npy_bytes(&bytes).map_err(|e| match e {
        Error::Parse(m) => Error::Parse(format!("{}: {m}", path.display())),
        other => other,
    })
}

fn parse_err(msg: impl Into<String>) -> Error {
    Error::Parse(format!("not a valid .npy file: {}", msg.into()))
}

/// Value of `'key': value` in the header dict, up to the next top-level comma or brace.
fn header_field<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let pat = format!("'{key}':");
    let start = header
        .find(&pat)
        .ok_or_else(|| parse_err(format!("header has no '{key}'")))?
        + pat.len();
    let rest = header[start..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .ok_or_else(|| parse_err(format!("unterminated '{key}'")))?;
    Ok(rest[..end].trim())
}

/// Decodes the bytes of a `.npy` file.
pub fn from_npy_bytes(bytes: &[u8]) -> Result<Tensor> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(parse_err("missing \\x93NUMPY magic"));
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(parse_err("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(parse_err(format!("unsupported format version {v}"))),
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(parse_err("truncated header"));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| parse_err("header is not text"))?;
    let descr = header_field(header, "descr")?.trim_matches(|c| c == '\'' || c == '"');
    if header_field(header, "fortran_order")? != "False" {
        return Err(parse_err(
            "Fortran-order arrays are not supported; save with C order",
        ));
    }
    let shape_str = header_field(header, "shape")?;
    let shape = shape_str
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| parse_err(format!("bad shape {shape_str}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'>') => (true, &descr[1..]),
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        _ => (false, descr),
    };
    // `S<n>`: byte strings of n bytes, NUL-padded (NumPy drops trailing NULs on reading).
    let string_width = match code.strip_prefix('S') {
        Some(w) => Some(
            w.parse::<usize>()
                .map_err(|_| parse_err(format!("bad string dtype '{code}'")))?,
        ),
        None => None,
    };
    let dtype = match code {
        _ if string_width.is_some() => DType::String,
        "f4" => DType::Float32,
        "f8" => DType::Float64,
        "i4" => DType::Int32,
        "i8" => DType::Int64,
        "u1" => DType::UInt8,
        "b1" => DType::Bool,
        other => return Err(parse_err(format!("unsupported dtype '{other}'"))),
    };
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| parse_err(format!("shape {shape:?} overflows")))?;
    let data = &bytes[data_start..];
    let needed = n
        .checked_mul(string_width.unwrap_or(dtype.size()))
        .ok_or_else(|| parse_err("shape overflows"))?;
    if data.len() != needed {
        return Err(parse_err(format!(
            "shape {shape:?} of {dtype} needs {needed} data bytes but the file has {}",
            data.len()
        )));
    }
    macro_rules! decode {
        ($t:ty, $w:expr) => {{
            let v: Vec<$t> = data
                .chunks_exact($w)
                .map(|c| {
                    let arr: [u8; $w] = c.try_into().expect("chunk width");
                    if big_endian {
                        <$t>::from_be_bytes(arr)
                    } else {
                        <$t>::from_le_bytes(arr)
                    }
                })
                .collect();
            Tensor::from_parts(shape, v)
        }};
    }
    let t = match dtype {
        DType::Float32 => decode!(f32, 4),
        DType::Float64 => decode!(f64, 8),
        DType::Int32 => decode!(i32, 4),
        DType::Int64 => decode!(i64, 8),
        DType::UInt8 => Tensor::from_parts(shape, data.to_vec()),
        DType::Bool => Tensor::from_parts(shape, data.iter().map(|&b| b != 0).collect()),
        DType::Resource | DType::Variant => {
            return Err(parse_err("resource handles cannot be read"))
        }
        DType::String => {
            let width = string_width.unwrap_or(1);
            let strings = if width == 0 {
                vec![Vec::new(); n]
            } else {
                data.chunks_exact(width)
                    .map(|c| {
                        let end = c.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                        c[..end].to_vec()
                    })
                    .collect()
            };
            Tensor::from_strings(&shape, strings)?
        }
    };
    debug_assert_eq!(num_elements(t.shape()), t.len());
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_dtype() {
        let ts = [
            Tensor::from([[1.5f32, -2.0], [3.25, 4.0]]),
            Tensor::from([1.0f64, 2.0, 3.0]),
            Tensor::scalar(7i32),
            Tensor::from([1i64 << 40, -3]),
            Tensor::from([0u8, 255]),
            Tensor::from([true, false, true]),
            Tensor::new::<f32>(&[0, 3], vec![]).unwrap(),
            Tensor::from_strings(&[2, 2], vec!["ab", "", "c", "xyz"]).unwrap(),
        ];
        for t in ts {
            let bytes = to_npy_bytes(&t);
            assert_eq!(from_npy_bytes(&bytes).unwrap(), t);
        }
    }

    #[test]
    fn reads_numpy_byte_strings() {
        // np.save of np.array([b'hi', b'', b'abc']): dtype |S3, NUL-padded.
        let mut bytes = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let mut header = "{'descr': '|S3', 'fortran_order': False, 'shape': (3,), }".to_string();
        header.push_str(&" ".repeat(128 - 10 - header.len() - 1));
        header.push('\n');
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(b"hi\0\0\0\0abc");
        let t = from_npy_bytes(&bytes).unwrap();
        assert_eq!(
            t,
            Tensor::from_strings(&[3], vec!["hi", "", "abc"]).unwrap()
        );
        assert_eq!(to_npy_bytes(&t), bytes);
    }

    #[test]
    fn reads_numpy_written_bytes() {
        // np.save of np.array([[1, 2], [3, 4]], dtype='<i4'), header as NumPy 2 writes it.
        let mut bytes = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let mut header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }".to_string();
        header.push_str(&" ".repeat(128 - 10 - header.len() - 1));
        header.push('\n');
        bytes.extend_from_slice(header.as_bytes());
        for v in [1i32, 2, 3, 4] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(
            from_npy_bytes(&bytes).unwrap(),
            Tensor::from([[1i32, 2], [3, 4]])
        );
    }

    #[test]
    fn rejects_bad_files_without_panicking() {
        let good = to_npy_bytes(&Tensor::from([1.0f32, 2.0]));
        for cut in 0..good.len() {
            assert!(from_npy_bytes(&good[..cut]).is_err(), "cut at {cut}");
        }
        let lying = String::from_utf8_lossy(&good).replace("(2,)", "(9999999999999,)");
        assert!(from_npy_bytes(lying.as_bytes()).is_err());
        assert!(from_npy_bytes(b"hello world").is_err());
    }
}
