//! The common REST predict body read without a JSON tree: `{"instances": L}` or
//! `{"inputs": L}` where `L` is a non-empty, regular nested list of JSON numbers (a batch of
//! rows for a model of one float input). Building `serde_json::Value`s for every number
//! and then walking them costs more than the run of a small model; this reads the numbers
//! straight into one `Vec` of the input's type ([`Float`]: `f64`, or `f32` as the `f64`
//! reading rounded to it) and a shape. Anything else (other keys, strings, booleans,
//! objects, empty or ragged lists, malformed JSON) is left to [`codec::parse_predict`]
//! (`None` here), which reads every request TensorFlow Serving accepts and words the
//! errors; on the bodies read here both give the same tensor, but for numbers that round to
//! `f64::MAX`, which serde_json's reader (not correctly rounded) refuses as out of range
//! and this one reads as `str::parse` does.
//!
//! [`codec::parse_predict`]: super::codec::parse_predict

use super::codec::Format;
use crate::tensor::{Dims, Element};
use crate::Tensor;

/// Nesting deeper than this is left to the JSON parser (and its recursion limit).
const MAX_DEPTH: usize = 32;

/// The most numbers room is made for before reading them (512 KiB).
const PRESIZED: usize = 1 << 16;

/// A predict request of plain numbers, read as `T`.
#[derive(Debug, PartialEq)]
pub struct Numbers<T> {
    /// `instances` (row) or `inputs` (columnar).
    pub format: Format,
    /// The list's shape (at least one dimension; inline up to four).
    pub shape: Dims,
    /// The numbers, row-major, as JSON's parser reads them into `f64`, then rounded to
    /// `T`.
    pub values: Vec<T>,
}

impl<T: Float + Element> Numbers<T> {
    /// The request's format and its numbers as one tensor of their shape.
    pub fn into_tensor(self) -> (Format, crate::Result<Tensor>) {
        (self.format, Tensor::new(&self.shape, self.values))
    }
}

/// What the numbers are read into: `f64`, or `f32` as the `f64` reading rounded to it (as
/// the JSON tree's numbers are typed).
pub trait Float: Copy + std::ops::Neg<Output = Self> {
    /// `x` rounded to this type.
    fn from_f64(x: f64) -> Self;

    /// The decimal `mantissa × 10^power`, its mantissa read from `digits` digits (wrapped
    /// past 19), rounded to `f64` and then to this type, when that can be had from these
    /// alone; `None` leaves it to `str`'s parser.
    fn from_decimal(mantissa: u64, digits: usize, power: i32) -> Option<Self>;
}

impl Float for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }

    fn from_decimal(mantissa: u64, digits: usize, power: i32) -> Option<f64> {
        exact(mantissa, digits, power)
    }
}

impl Float for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }

    fn from_decimal(mantissa: u64, digits: usize, power: i32) -> Option<f32> {
        near_f32(mantissa, digits, power).or_else(|| Some(exact(mantissa, digits, power)? as f32))
    }
}

/// Reads `body` when it is a request of plain numbers (see the module docs).
pub fn parse<T: Float>(body: &[u8]) -> Option<Numbers<T>> {
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
    let commas = count_commas(&s.b[s.i..]);
    let mut list = List {
        shape: [0; MAX_DEPTH],
        depth: 0,
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
    if s.i != s.b.len() || Some(list.depth) != list.leaf_depth {
        return None;
    }
    Some(Numbers {
        format,
        shape: Dims::from(&list.shape[..list.depth]),
        values: list.values,
    })
}

/// A nested list being read.
struct List<T> {
    /// The length of the lists at each depth below [`List::depth`] (lists are never
    /// empty: 0 until one at that depth has ended).
    shape: [usize; MAX_DEPTH],
    /// The depths whose lists have been seen.
    depth: usize,
    /// The depth of the numbers.
    leaf_depth: Option<usize>,
    values: Vec<T>,
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
    /// at most 19 digits); how many. Eight at a time while eight follow ([`eight_digits`]).
    fn digits_into(&mut self, m: &mut u64) -> usize {
        let start = self.i;
        while let Some(v) = self.b.get(self.i..self.i + 8).and_then(eight_digits) {
            *m = m.wrapping_mul(100_000_000).wrapping_add(v);
            self.i += 8;
        }
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
    fn value<T: Float>(&mut self, depth: usize, list: &mut List<T>) -> Option<()> {
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
        list.depth = list.depth.max(depth + 1);
        match list.shape[depth] {
            0 => list.shape[depth] = n,
            m if m != n => return None,
            _ => {}
        }
        Some(())
    }

    /// A JSON number (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) as `f64` (out of
    /// its range is `None`), rounded to `T`. One pass: the digits before and after the
    /// point are read into one mantissa as they are scanned, and [`Float::from_decimal`]
    /// makes the number of it when it can.
    fn number<T: Float>(&mut self) -> Option<T> {
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
        if let Some(x) = exponent.and_then(|e| T::from_decimal(mantissa, digits, e - frac as i32)) {
            return Some(if negative { -x } else { x });
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        let x: f64 = text.parse().ok().filter(|x: &f64| x.is_finite())?;
        Some(T::from_f64(x))
    }
}

/// The powers of ten that `f64` holds exactly.
const EXACT_POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// 10^-k for the same k, each rounded to the nearest `f64` (only 10^0 is exact).
const NEGATIVE_POWERS: [f64; 23] = [
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14,
    1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22,
];

/// The commas in `b` (how many numbers a list may hold): counted in bytes per 255-byte
/// chunk, which the compiler turns into one compare and subtract per 16 or 32 bytes (a
/// `usize` count per byte, as `filter().count()` keeps, is four bytes a step: measured
/// ~10 % of the server's time on a 432-number body).
fn count_commas(b: &[u8]) -> usize {
    b.chunks(255)
        .map(|c| {
            let n = c
                .iter()
                .fold(0u8, |n, &x| n.wrapping_add(u8::from(x == b',')));
            usize::from(n)
        })
        .sum()
}

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
    let m = to_f64(mantissa);
    Some(if power >= 0 { m * scale } else { m / scale })
}

/// `m` as the nearest `f64`: through `i64` when it fits, one instruction where x86-64's
/// conversion of a `u64` is several (measured: the CNN body's 432 numbers read in
/// 5.6–5.7 µs instead of 6.1–6.4); both round to nearest, so they agree.
fn to_f64(m: u64) -> f64 {
    match i64::try_from(m) {
        Ok(m) => m as f64,
        Err(_) => m as f64,
    }
}

/// The value of eight ASCII digits (the first the most significant), `None` unless all
/// eight are digits: the bytes as one little-endian word, combined pairwise in three
/// multiplications (as `fast_float` reads them).
fn eight_digits(bytes: &[u8]) -> Option<u64> {
    let v = u64::from_le_bytes(bytes.try_into().ok()?);
    // Each byte 0x30..=0x39: its high nibble 3, and adding 6 keeps it 3.
    let high = v & 0xF0F0_F0F0_F0F0_F0F0;
    let carried = v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0;
    if high | (carried >> 4) != 0x3333_3333_3333_3333 {
        return None;
    }
    let v = v - 0x3030_3030_3030_3030;
    // Pairs of digits, then fours, then the eight.
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let low = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let high = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    Some(low.wrapping_add(high) >> 32)
}

/// `mantissa × 10^power` rounded to `f64` and then to `f32`, without a division: the
/// mantissa (up to 19 digits, rounded once) times the power of ten (exact for a positive
/// power, the nearest `f64` to 10^power for a negative one), rounded once more, is within
/// 3·2^-53 of the decimal and so within 2^-51 of that `f64` (itself within 2^-53 of the
/// decimal), relatively; when everything within 2^-49 of it rounds to one `f32` (rounding
/// is monotonic: the two ends do), so does the `f64`. Near a rounding boundary of `f32` (a
/// chance of about 2^-25, and a short decimal that is a boundary itself), `None` leaves it
/// to [`exact`] or `str`'s parser.
fn near_f32(mantissa: u64, digits: usize, power: i32) -> Option<f32> {
    if digits > 19 {
        return None;
    }
    let k = power.unsigned_abs() as usize;
    let powers = if power >= 0 {
        &EXACT_POWERS
    } else {
        &NEGATIVE_POWERS
    };
    let scale = *powers.get(k)?;
    let x = to_f64(mantissa) * scale;
    let slack = x * (1.0 / (1u64 << 49) as f64);
    let r = x as f32;
    ((x - slack) as f32 == r && (x + slack) as f32 == r).then_some(r)
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
            let fast = parse::<f64>(body.as_bytes()).unwrap_or_else(|| panic!("{body}"));
            let tree = parse_predict(body.as_bytes()).unwrap();
            assert_eq!(fast.format, tree.format, "{body}");
            let Inputs::Single(v) = &tree.inputs else {
                panic!("{body}")
            };
            let want = json_to_tensor(v, DType::Float64, "x").unwrap();
            assert_eq!(want.shape(), &fast.shape[..], "{body}");
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
            // Halfway between two f32s, exactly: ties to even (left to `exact`).
            "16777217",
            "16777219",
            "3.4028235677973366e38",
            "0.5",
            "-0.5",
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
            let got = parse::<f64>(body.as_bytes()).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(got.values[0].to_bits(), want.to_bits(), "{t}");
            let got = parse::<f32>(body.as_bytes()).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(got.values[0].to_bits(), (want as f32).to_bits(), "{t}");
        }
    }

    #[test]
    fn f32_inputs_read_as_the_f64_reading_rounded_to_f32() {
        // Random f32 values as clients print them (an f32 widened to f64: 17 digits), the
        // boundaries between neighbouring f32s (exact in f64: ties go to the even one)
        // and decimals just beside them, of every exponent f32 has.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut texts = Vec::new();
        for _ in 0..100_000 {
            let x = f32::from_bits(next() as u32);
            if !x.is_finite() {
                continue;
            }
            let up = f32::from_bits(x.to_bits() + 1);
            let mid = (f64::from(x) + f64::from(up)) / 2.0;
            texts.push(format!("{}", f64::from(x)));
            texts.push(format!("{:e}", f64::from(x)));
            texts.push(format!("{mid:e}"));
            texts.push(format!("{:.17e}", mid * (1.0 + 1e-16)));
            texts.push(format!("{:.17e}", mid * (1.0 - 1e-16)));
        }
        for t in texts {
            let want: f64 = t.parse().unwrap();
            let body = format!("{{\"inputs\": [{t}]}}");
            let got = parse::<f32>(body.as_bytes()).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(got.values[0].to_bits(), (want as f32).to_bits(), "{t}");
        }
        // Mantissas of 17 to 19 digits: read without `str`'s parser almost always, and
        // then as it reads them.
        let mut fast = 0;
        for i in 0..100_000 {
            let digits = 17 + i % 3;
            let m = 10u64.pow(digits as u32 - 1) + next() % (9 * 10u64.pow(digits as u32 - 1));
            let power = (next() % 45) as i32 - 22;
            let want = format!("{m}e{power}").parse::<f64>().unwrap() as f32;
            if let Some(got) = near_f32(m, digits, power) {
                assert_eq!(got.to_bits(), want.to_bits(), "{m}e{power}");
                fast += 1;
            }
        }
        assert!(fast > 99_000, "{fast} of 100000");
    }

    #[test]
    fn commas_counted_per_chunk_as_one_at_a_time() {
        let mut state = 0x1234_5678_9ABC_DEF1u64;
        let mut bytes = Vec::new();
        for len in (0..600).chain([4096, 70_000]) {
            bytes.clear();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly commas in some bodies, few in others.
                bytes.push(if state.is_multiple_of(1 + len as u64 % 5) {
                    b','
                } else {
                    b'7'
                });
            }
            let want = bytes.iter().filter(|&&c| c == b',').count();
            assert_eq!(count_commas(&bytes), want, "{len}");
        }
        assert_eq!(count_commas(&[b','; 1000]), 1000);
    }

    #[test]
    fn eight_digits_at_once_as_one_at_a_time() {
        for t in ["00000000", "12345678", "99999999", "90000001", "01234567"] {
            assert_eq!(eight_digits(t.as_bytes()), t.parse().ok(), "{t}");
        }
        for t in ["1234567a", "/2345678", ":2345678", "1234 678", "1234567"] {
            assert_eq!(eight_digits(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn unsigned_words_convert_as_u64_as_f64() {
        for m in [
            0,
            1,
            (1 << 53) + 1,
            (1 << 63) - 1,
            1 << 63,
            (1 << 63) + 1025,
            u64::MAX,
            12_345_678_901_234_567_890,
        ] {
            assert_eq!(to_f64(m).to_bits(), (m as f64).to_bits(), "{m}");
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
            assert_eq!(parse::<f64>(body.as_bytes()), None, "{body}");
            assert_eq!(parse::<f32>(body.as_bytes()), None, "{body}");
        }
        // Deeper than the limit: left to the JSON parser too.
        let deep = format!(
            "{{\"inputs\": {}1{}}}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse::<f64>(deep.as_bytes()), None);
    }
}
