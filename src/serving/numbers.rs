//! The common REST predict body read without a JSON tree: `{"instances": L}` or
//! `{"inputs": L}` where `L` is a non-empty, regular nested list of JSON numbers (a batch of
//! rows for a model of one float input). Building `serde_json::Value`s for every number
//! and then walking them costs more than the run of a small model; this reads the numbers
//! straight into one `Vec<f64>` and a shape. Anything else (other keys, strings, booleans,
//! objects, empty or ragged lists, malformed JSON) is left to [`codec::parse_predict`]
//! (`None` here), which reads every request TensorFlow Serving accepts and words the
//! errors; on the bodies read here both give the same tensor.
//!
//! [`codec::parse_predict`]: super::codec::parse_predict

use super::codec::Format;

/// Nesting deeper than this is left to the JSON parser (and its recursion limit).
const MAX_DEPTH: usize = 32;

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
    let mut list = List {
        shape: Vec::new(),
        leaf_depth: None,
        values: Vec::new(),
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

    /// Skips ASCII digits; how many.
    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
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
    /// its range is `None`.
    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        text.parse().ok().filter(|x: &f64| x.is_finite())
    }
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
