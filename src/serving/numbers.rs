//! The common REST predict body read without a JSON tree: `{"instances": L}` or
//! `{"inputs": L}` where `L` is a non-empty, regular nested list of JSON numbers (a batch of
//! rows for a model of one float input). Building `serde_json::Value`s for every number
//! and then walking them costs more than the run of a small model; this reads the numbers
//! straight into one `Vec<f64>` and a shape. Anything else (other keys, strings, booleans,
//! objects, empty or ragged lists, malformed JSON) is left to [`codec::parse_predict`]
//! (`None` here), which reads every request TensorFlow Serving accepts and words the
//! errors; on the bodies read here both give the same tensor, but for numbers that round to
//! `f64::MAX`, which serde_json's reader (not correctly rounded) refuses as out of range
//! and this one reads as `str::parse` does.
//!
//! [`codec::parse_predict`]: super::codec::parse_predict

use super::codec::Format;

/// Nesting deeper than this is left to the JSON parser (and its recursion limit).
const MAX_DEPTH: usize = 32;

/// The most numbers room is made for before reading them (512 KiB).
const PRESIZED: usize = 1 << 16;

/// A predict request of plain numbers.
#[derive(Debug, PartialEq)]
pub struct Numbers {
    /// `instances` (row) or `inputs` (columnar).
    pub format: Format,
    /// The list's shape (at least one dimension).
    pub shape: Vec<usize>,
    /// The numbers, row-major, as JSON's parser reads them into `f64`.
    pub values: Vec<f64>,
}

/// Reads `body` when it is a request of plain numbers (see the module docs).
pub fn parse(body: &[u8]) -> Option<Numbers> {
    let mut s = Scan { b: body, i: 0 };
    s.eat(b'{')?;
    s.ws();
    let format = if s.b[s.i..].starts_with(b"\"instances\"") {
        s.i += b"\"instances\"".len();
        Format::Row
    } else if s.b[s.i..].starts_with(b"\"inputs\"") {
        s.i += b"\"inputs\"".len();
        Format::Columnar
    } else {
        return None;
    };
    s.eat(b':')?;
    // Each number but the last is followed by a comma: room for all of them at once (up to
    // [`PRESIZED`]; a body of commas is not a list of numbers).
    let commas = s.b[s.i..].iter().filter(|&&c| c == b',').count();
    let mut list = List {
        shape: Vec::new(),
        leaf_depth: None,
        values: Vec::with_capacity((commas + 1).min(PRESIZED)),
    };
    s.ws();
    if s.peek() != Some(b'[') {
        return None;
    }
    s.value(0, &mut list)?;
    s.eat(b'}')?;
    s.ws();
    if s.i != s.b.len() || Some(list.shape.len()) != list.leaf_depth {
        return None;
    }
    Some(Numbers {
        format,
        shape: list.shape.into_iter().collect::<Option<_>>()?,
        values: list.values,
    })
}

/// A nested list being read.
struct List {
    /// The length of the lists at each depth (`None` until one has ended).
    shape: Vec<Option<usize>>,
    /// The depth of the numbers.
    leaf_depth: Option<usize>,
    values: Vec<f64>,
}

/// A position in the body.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    /// Skips whitespace, then takes `c`.
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(c)).then(|| self.i += 1)
    }

    /// Reads ASCII digits into `m` (`m × 10 + digit` each, wrapping: exact while `m` has
    /// at most 19 digits); how many.
    fn digits_into(&mut self, m: &mut u64) -> usize {
        let start = self.i;
        while let Some(d) = self.b.get(self.i).map(|c| c.wrapping_sub(b'0')) {
            if d > 9 {
                break;
            }
            *m = m.wrapping_mul(10).wrapping_add(u64::from(d));
            self.i += 1;
        }
        self.i - start
    }

    /// A list (at `depth`) or a number, after whitespace.
    fn value(&mut self, depth: usize, list: &mut List) -> Option<()> {
        self.ws();
        if self.peek() != Some(b'[') {
            let x = self.number()?;
            match list.leaf_depth {
                None => list.leaf_depth = Some(depth),
                Some(d) if d != depth => return None,
                Some(_) => {}
            }
            list.values.push(x);
            return Some(());
        }
        if depth >= MAX_DEPTH || list.leaf_depth.is_some_and(|d| depth >= d) {
            return None;
        }
        self.i += 1;
        let mut n = 0;
        loop {
            self.value(depth + 1, list)?;
            n += 1;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        if list.shape.len() <= depth {
            list.shape.resize(depth + 1, None);
        }
        match list.shape[depth] {
            None => list.shape[depth] = Some(n),
            Some(m) if m != n => return None,
            Some(_) => {}
        }
        Some(())
    }

    /// A JSON number (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) as `f64`; out of
    /// its range is `None`. One pass: the digits before and after the point are read into
    /// one mantissa as they are scanned, and [`exact`] makes the number of it when it can.
    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let mut mantissa = 0u64;
        let mut digits = match self.peek()? {
            b'0' => {
                self.i += 1;
                1
            }
            b'1'..=b'9' => self.digits_into(&mut mantissa),
            _ => return None,
        };
        let mut frac = 0;
        if self.peek() == Some(b'.') {
            self.i += 1;
            frac = self.digits_into(&mut mantissa);
            if frac == 0 {
                return None;
            }
            digits += frac;
        }
        // The written exponent, `None` when it has more than 4 digits.
        let mut exponent = Some(0);
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let negative = self.peek() == Some(b'-');
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let mut e = 0u64;
            let n = self.digits_into(&mut e);
            if n == 0 {
                return None;
            }
            // At most 4 digits: below 10^4, exact in `i32`.
            exponent = (n <= 4).then(|| if negative { -(e as i32) } else { e as i32 });
        }
        if let Some(x) = exponent.and_then(|e| exact(mantissa, digits, e - frac as i32)) {
            return Some(if negative { -x } else { x });
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        text.parse().ok().filter(|x: &f64| x.is_finite())
    }
}

/// The powers of ten that `f64` holds exactly.
const EXACT_POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `mantissa × 10^power`, the mantissa read from `digits` decimal digits, when those fit
/// 2^53 and the power of ten is one `f64` holds exactly: then one multiplication or
/// division of two exact values rounds once, to the `f64` nearest the decimal, as `str`'s
/// parser rounds it (Clinger's fast path, which that parser takes too). `None` for the
/// rest, left to that parser.
fn exact(mantissa: u64, digits: usize, power: i32) -> Option<f64> {
    if digits > 16 || mantissa > 1 << 53 {
        return None;
    }
    let scale = *EXACT_POWERS.get(power.unsigned_abs() as usize)?;
    let m = mantissa as f64;
    Some(if power >= 0 { m * scale } else { m / scale })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serving::codec::{json_to_tensor, parse_predict, Inputs};
    use crate::DType;

    #[test]
    fn plain_number_bodies_read_as_the_json_tree_reads_them() {
        for body in [
            r#"{"instances": [[0.5, 1, -2.25e-3, 1E2, -0, 0.1]]}"#,
            " {\n\"inputs\" :[[ 1 ,2],[3,4 ] ,[5,6]]\t} \n",
            r#"{"instances": [1.0, 2.0, 3.0]}"#,
            r#"{"inputs": [[[1, 2]], [[3, 4]]]}"#,
            r#"{"instances": [12345678901234567890, -9007199254740993, 3.4028236e38, 1e-400]}"#,
        ] {
            let fast = parse(body.as_bytes()).unwrap_or_else(|| panic!("{body}"));
            let tree = parse_predict(body.as_bytes()).unwrap();
            assert_eq!(fast.format, tree.format, "{body}");
            let Inputs::Single(v) = &tree.inputs else {
                panic!("{body}")
            };
            let want = json_to_tensor(v, DType::Float64, "x").unwrap();
            assert_eq!(want.shape(), fast.shape.as_slice(), "{body}");
            let want = want.as_slice::<f64>().unwrap();
            // Bit for bit, the sign of zero included.
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(want), bits(&fast.values), "{body}");
        }
    }

    #[test]
    fn numbers_read_bit_for_bit_as_str_parses_them() {
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "9007199254740992",
            "9007199254740993",
            "1234567890123456",
            "12345678901234567",
            "0.1",
            "0.3",
            "1e22",
            "1e23",
            "1e-22",
            "1e-23",
            "123.456e-20",
            "4.9e-324",
            "1.7976931348623157e308",
            // Rounds to f64::MAX (serde_json's reader says out of range; found by fuzzing).
            "1.7976931348623158e308",
            "2.2250738585072014e-308",
            "1E+2",
            "1e0010",
            "0.000000000000000000000000001",
            "3.4028236e38",
        ]
        .map(String::from)
        .to_vec();
        // Random decimals of every length around the fast path's limits (fixed seed).
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..100_000 {
            let digits = |n: u64, next: &mut dyn FnMut(u64) -> u64| {
                (0..n)
                    .map(|_| char::from(b'0' + next(10) as u8))
                    .collect::<String>()
            };
            let int = (1 + next(9)).to_string() + &digits(next(12), &mut next);
            let mut t = if next(2) == 0 { int } else { "0".to_string() };
            if next(3) > 0 {
                let n = 1 + next(12);
                t = t + "." + &digits(n, &mut next);
            }
            if next(2) == 0 {
                t = format!("{t}e{}", next(61) as i64 - 30);
            }
            if next(2) == 0 {
                t.insert(0, '-');
            }
            texts.push(t);
        }
        for t in texts {
            let want: f64 = t.parse().unwrap();
            let body = format!("{{\"inputs\": [{t}]}}");
            let got = parse(body.as_bytes()).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(got.values[0].to_bits(), want.to_bits(), "{t}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_json_parser() {
        for body in [
            r#"{"instances": []}"#,
            r#"{"instances": [[]]}"#,
            r#"{"instances": [[1, 2], [3]]}"#,
            r#"{"instances": [[1, 2], 3]}"#,
            r#"{"instances": [1, [2]]}"#,
            r#"{"instances": 1.0}"#,
            r#"{"instances": [1.0], "signature_name": "s"}"#,
            r#"{"signature_name": "s", "instances": [1.0]}"#,
            r#"{"instances": [1.0],}"#,
            r#"{"instances": [1.0,]}"#,
            r#"{"instances": [1.0]} x"#,
            r#"{"instances": ["a"]}"#,
            r#"{"instances": [true]}"#,
            r#"{"instances": [{"x": 1}]}"#,
            r#"{"instances": [{"b64": "AA=="}]}"#,
            r#"{"instances": [NaN]}"#,
            r#"{"instances": [01]}"#,
            r#"{"instances": [1.]}"#,
            r#"{"instances": [.5]}"#,
            r#"{"instances": [+1]}"#,
            r#"{"instances": [1e]}"#,
            r#"{"instances": [1e999]}"#,
            r#"{"instance": [1]}"#,
            r#"{"instances": [1]"#,
            "",
        ] {
            assert_eq!(parse(body.as_bytes()), None, "{body}");
        }
        // Deeper than the limit: left to the JSON parser too.
        let deep = format!(
            "{{\"inputs\": {}1{}}}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(deep.as_bytes()), None);
    }
}
