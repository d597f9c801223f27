//! Printing in TensorFlow's style: `Tensor([[19 22] [43 50]], shape=(2, 2), dtype=int32)` with
//! NumPy's element formatting and line breaks.

use super::{Buffer, DType, Tensor};
use std::fmt;

/// Above this many elements only the first and last few of each axis are printed.
const SUMMARIZE_ABOVE: usize = 1000;
const EDGE_ITEMS: usize = 3;

fn format_special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("nan".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        None
    }
}

fn format_float(v: f64, shortest: String, in_array: bool) -> String {
    if let Some(s) = format_special(v) {
        s
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        if in_array {
            format!("{v:.0}.")
        } else {
            format!("{v:.1}")
        }
    } else {
        shortest
    }
}

/// NumPy switches an array to scientific notation when its finite non-zero magnitudes
/// span more than 1e3 or reach below 1e-4 or above 1e16.
fn wants_scientific(values: &[f64]) -> bool {
    let mags: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|v| v.abs())
        .collect();
    let (lo, hi) = mags
        .iter()
        .fold((f64::INFINITY, 0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    !mags.is_empty() && (lo < 1e-4 || hi >= 1e16 || hi / lo > 1e3)
}

/// Scientific notation as NumPy prints it: one mantissa precision for the whole array
/// (enough for each value's shortest round-trip digits) and two-digit exponents (`e-06`).
fn scientific(values: &[f64], shortest: impl Fn(f64) -> String) -> Vec<String> {
    let parts: Vec<Option<(String, i32)>> = values
        .iter()
        .map(|&v| {
            if format_special(v).is_some() {
                return None;
            }
            let s = shortest(v);
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            Some((m.to_string(), e.parse().unwrap_or(0)))
        })
        .collect();
    let digits = parts
        .iter()
        .flatten()
        .map(|(m, _)| m.split_once('.').map_or(0, |(_, f)| f.len()))
        .max()
        .unwrap_or(0);
    values
        .iter()
        .zip(parts)
        .map(|(&v, p)| match p {
            None => format_special(v).unwrap_or_default(),
            Some((m, e)) => {
                let mantissa: f64 = m.parse().unwrap_or(0.0);
                let sign = if e < 0 { '-' } else { '+' };
                format!("{mantissa:.digits$}e{sign}{:02}", e.abs())
            }
        })
        .collect()
}

fn element_strings(t: &Tensor, in_array: bool) -> Vec<String> {
    match t.buffer() {
        Buffer::F32(v) if in_array && wants_scientific(&t.to_f64_vec()) => {
            scientific(&t.to_f64_vec(), |x| format!("{:e}", x as f32))
        }
        Buffer::F64(v) if in_array && wants_scientific(v) => scientific(v, |x| format!("{x:e}")),
        Buffer::F32(v) => v
            .iter()
            .map(|&x| format_float(x as f64, format!("{x}"), in_array))
            .collect(),
        Buffer::F64(v) => v
            .iter()
            .map(|&x| format_float(x, format!("{x}"), in_array))
            .collect(),
        Buffer::I32(v) => v.iter().map(|x| x.to_string()).collect(),
        Buffer::I64(v) => v.iter().map(|x| x.to_string()).collect(),
        Buffer::U8(v) => v.iter().map(|x| x.to_string()).collect(),
        Buffer::Bool(v) => v
            .iter()
            .map(|&x| if x { "True" } else { "False" }.to_string())
            .collect(),
        Buffer::Bytes(v) => v.iter().map(|b| python_bytes_literal(b)).collect(),
        // Not readable here: every element shows where the tensor is.
        Buffer::Device(m) => vec![format!("<on {}>", m.device()); t.len()],
        Buffer::Resource(v) | Buffer::Variant(v) => v.iter().map(|h| format!("<{h:?}>")).collect(),
    }
}

/// A byte string as Python's `repr` prints a `bytes` value: `b'abc'`, or `b"it's"` when it
/// holds a single quote and no double quote; backslash, the quote, tab, newline and carriage
/// return escaped, other bytes outside printable ASCII as `\xNN`.
fn python_bytes_literal(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = format!("b{}", quote as char);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ if b == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote as char);
    out
}

struct Printer<'a> {
    items: &'a [String],
    shape: &'a [usize],
    width: usize,
    left_align: bool,
    summarize: bool,
}

impl Printer<'_> {
    fn write(&self, out: &mut String, axis: usize, offset: usize, indent: usize) {
        if axis == self.shape.len() {
            let s = &self.items[offset];
            if self.left_align {
                out.push_str(&format!("{s:<w$}", w = self.width));
            } else {
                out.push_str(&format!("{s:>w$}", w = self.width));
            }
            return;
        }
        let n = self.shape[axis];
        let stride: usize = self.shape[axis + 1..].iter().product();
        out.push('[');
        let indices: Vec<Option<usize>> = if self.summarize && n > 2 * EDGE_ITEMS {
            (0..EDGE_ITEMS)
                .map(Some)
                .chain(std::iter::once(None))
                .chain((n - EDGE_ITEMS..n).map(Some))
                .collect()
        } else {
            (0..n).map(Some).collect()
        };
        let last_axis = axis + 1 == self.shape.len();
        for (k, i) in indices.iter().enumerate() {
            if k > 0 {
                if last_axis {
                    out.push(' ');
                } else {
                    let blank = self.shape.len() - axis - 1;
                    out.push_str(&"\n".repeat(blank));
                    out.push_str(&" ".repeat(indent + 1));
                }
            }
            match i {
                Some(i) => self.write(out, axis + 1, offset + i * stride, indent + 1),
                None => out.push_str("..."),
            }
        }
        out.push(']');
    }
}

impl Tensor {
    /// The elements formatted as NumPy prints an array (`[[19 22]\n [43 50]]`).
    pub fn format_values(&self) -> String {
        let items = element_strings(self, self.rank() > 0);
        if self.rank() == 0 {
            return items[0].clone();
        }
        let left_align = self.dtype().is_float();
        // NumPy pads numbers to one width but prints strings as they are.
        let width = match self.dtype() {
            DType::String => 0,
            _ => items.iter().map(|s| s.len()).max().unwrap_or(0),
        };
        let mut out = String::new();
        Printer {
            items: &items,
            shape: self.shape(),
            width,
            left_align,
            summarize: self.len() > SUMMARIZE_ABOVE,
        }
        .write(&mut out, 0, 0, 0);
        out
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = match self.shape() {
            [d] => format!("({d},)"),
            dims => format!(
                "({})",
                dims.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let values = self.format_values();
        let sep = if self.rank() >= 2 { "\n" } else { "" };
        write!(
            f,
            "Tensor({sep}{values}, shape={shape}, dtype={})",
            self.dtype()
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn prints_like_tensorflow() {
        let t = Tensor::from([[19i32, 22], [43, 50]]);
        assert_eq!(
            t.to_string(),
            "Tensor(\n[[19 22]\n [43 50]], shape=(2, 2), dtype=int32)"
        );
        assert_eq!(
            Tensor::scalar(6.0f32).to_string(),
            "Tensor(6.0, shape=(), dtype=float32)"
        );
        let f = Tensor::from([2.944439f32, 3.0910425, 1.0]);
        assert_eq!(f.format_values(), "[2.944439  3.0910425 1.       ]");
        assert_eq!(Tensor::from([true, false]).format_values(), "[ True False]");
        // np.array([2.24543e-06, 0.99935, 1.0], dtype=np.float32)
        let small = Tensor::from([2.24543e-06f32, 0.99935, 1.0]);
        assert_eq!(
            small.format_values(),
            "[2.24543e-06 9.99350e-01 1.00000e+00]"
        );
    }

    #[test]
    fn prints_strings_as_python_bytes() {
        // np.array([b'ab', b"it's\n\x01"]) and repr(b'a\'b"c') in Python.
        let t = Tensor::from_strings(&[2], vec![b"ab".to_vec(), b"it's\n\x01".to_vec()]).unwrap();
        assert_eq!(t.format_values(), r#"[b'ab' b"it's\n\x01"]"#);
        let q = Tensor::from_strings(&[2, 1], vec!["a'b\"c", "defg"]).unwrap();
        assert_eq!(q.format_values(), "[[b'a\\'b\"c']\n [b'defg']]");
        assert_eq!(
            Tensor::string_scalar("x").to_string(),
            "Tensor(b'x', shape=(), dtype=string)"
        );
    }

    #[test]
    fn summarizes_large_tensors() {
        let t = Tensor::vector((0..2000i32).collect());
        assert_eq!(t.format_values(), "[   0    1    2 ... 1997 1998 1999]");
    }
}
