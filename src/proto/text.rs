//! A parser for the protobuf text format of a `GraphDef` (`.pbtxt`, as written by
//! `tf.io.write_graph(..., as_text=True)`): a tokenizer, a generic field tree, and the
//! mapping of that tree onto `GraphDef`, `NodeDef`, `AttrValue`, `TensorProto`,
//! `TensorShapeProto`, `NameAttrList` and `VersionDef`. Unknown fields are skipped.

use super::tf;
use crate::{Error, Result};

/// Deepest nesting of messages accepted (a GraphDef needs about 6).
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    /// An identifier or a number.
    Word(String),
    /// A string literal with escapes resolved (adjacent literals are concatenated).
    Str(Vec<u8>),
    /// One of `: { } < > [ ] , ;`.
    Punct(u8),
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
    peeked: Option<(Token, usize)>,
}

fn err(line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Parse(format!("line {line}: {msg}"))
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            s: text.as_bytes(),
            pos: 0,
            line: 1,
            peeked: None,
        }
    }

    fn skip_space(&mut self) {
        while let Some(&c) = self.s.get(self.pos) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b'#' => {
                    while self.s.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                c if c.is_ascii_whitespace() => self.pos += 1,
                _ => break,
            }
        }
    }

    /// The next token with its line, `None` at the end.
    fn next(&mut self) -> Result<Option<(Token, usize)>> {
        if let Some(t) = self.peeked.take() {
            return Ok(Some(t));
        }
        self.skip_space();
        let line = self.line;
        let Some(&c) = self.s.get(self.pos) else {
            return Ok(None);
        };
        let tok = match c {
            b':' | b'{' | b'}' | b'<' | b'>' | b'[' | b']' | b',' | b';' => {
                self.pos += 1;
                Token::Punct(c)
            }
            b'"' | b'\'' => {
                let mut bytes = self.string(c)?;
                loop {
                    self.skip_space();
                    match self.s.get(self.pos) {
                        Some(&q @ (b'"' | b'\'')) => bytes.extend(self.string(q)?),
                        _ => break,
                    }
                }
                Token::Str(bytes)
            }
            c if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.') => {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|&c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.')
                }) {
                    self.pos += 1;
                }
                Token::Word(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
            }
            c => return Err(err(line, format!("unexpected character '{}'", c as char))),
        };
        Ok(Some((tok, line)))
    }

    fn peek(&mut self) -> Result<Option<&Token>> {
        if self.peeked.is_none() {
            self.peeked = self.next()?;
        }
        Ok(self.peeked.as_ref().map(|(t, _)| t))
    }

    /// A quoted string starting at `self.pos` (the opening quote), escapes resolved.
    fn string(&mut self, quote: u8) -> Result<Vec<u8>> {
        let line = self.line;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(err(line, "unterminated string"));
            };
            self.pos += 1;
            match c {
                b'\n' => return Err(err(line, "newline inside a string")),
                c if c == quote => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(err(line, "unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'\\' | b'\'' | b'"' | b'?' => out.push(e),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.s.get(self.pos) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(
                                u8::try_from(v)
                                    .map_err(|_| err(line, "octal escape above \\377"))?,
                            );
                        }
                        b'x' => {
                            let mut v = 0u32;
                            let mut digits = 0;
                            while digits < 2 {
                                match self.s.get(self.pos).and_then(|&d| (d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.pos += 1;
                                        digits += 1;
                                    }
                                    None => break,
                                }
                            }
                            if digits == 0 {
                                return Err(err(line, "\\x escape without hex digits"));
                            }
                            out.push(v as u8);
                        }
                        e => return Err(err(line, format!("unknown escape '\\{}'", e as char))),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// A parsed field: a scalar token or a nested message.
#[derive(Debug)]
enum Value {
    Scalar(Token),
    Message(Vec<Field>),
}

#[derive(Debug)]
struct Field {
    name: String,
    line: usize,
    value: Value,
}

/// Parses fields up to `close` (or the end of input for the top level).
fn parse_fields(lx: &mut Lexer<'_>, close: Option<u8>, depth: usize) -> Result<Vec<Field>> {
    if depth > MAX_DEPTH {
        return Err(err(lx.line, "messages nested too deeply"));
    }
    let mut fields = Vec::new();
    loop {
        let Some((tok, line)) = lx.next()? else {
            return match close {
                None => Ok(fields),
                Some(c) => Err(err(lx.line, format!("missing '{}'", c as char))),
            };
        };
        let name = match tok {
            Token::Punct(c) if Some(c) == close => return Ok(fields),
            Token::Word(w) => w,
            t => return Err(err(line, format!("expected a field name, got {t:?}"))),
        };
        let mut colon = false;
        if lx.peek()? == Some(&Token::Punct(b':')) {
            lx.next()?;
            colon = true;
        }
        match lx.next()? {
            Some((Token::Punct(b'['), _)) if colon => loop {
                match lx.next()? {
                    Some((Token::Punct(b']'), _)) => break,
                    Some((Token::Punct(b','), _)) => {}
                    Some((t, l)) => {
                        let value = value_after(lx, t, l, depth)?;
                        fields.push(Field {
                            name: name.clone(),
                            line: l,
                            value,
                        });
                    }
                    None => return Err(err(line, "missing ']'")),
                }
            },
            Some((t, l)) => {
                let value = value_after(lx, t, l, depth)?;
                if matches!(value, Value::Scalar(_)) && !colon {
                    return Err(err(l, format!("expected ':' after '{name}'")));
                }
                fields.push(Field { name, line, value });
            }
            None => return Err(err(line, format!("'{name}' has no value"))),
        }
        if matches!(lx.peek()?, Some(Token::Punct(b',' | b';'))) {
            lx.next()?;
        }
    }
}

fn value_after(lx: &mut Lexer<'_>, t: Token, line: usize, depth: usize) -> Result<Value> {
    match t {
        Token::Punct(b'{') => Ok(Value::Message(parse_fields(lx, Some(b'}'), depth + 1)?)),
        Token::Punct(b'<') => Ok(Value::Message(parse_fields(lx, Some(b'>'), depth + 1)?)),
        Token::Punct(c) => Err(err(line, format!("unexpected '{}'", c as char))),
        t => Ok(Value::Scalar(t)),
    }
}

impl Field {
    fn message(&self) -> Result<&[Field]> {
        match &self.value {
            Value::Message(m) => Ok(m),
            Value::Scalar(_) => Err(err(self.line, format!("'{}' must be a message", self.name))),
        }
    }

    fn word(&self) -> Result<&str> {
        match &self.value {
            Value::Scalar(Token::Word(w)) => Ok(w),
            _ => Err(err(
                self.line,
                format!("'{}' must be a number or identifier", self.name),
            )),
        }
    }

    fn bytes(&self) -> Result<Vec<u8>> {
        match &self.value {
            Value::Scalar(Token::Str(b)) => Ok(b.clone()),
            _ => Err(err(
                self.line,
                format!("'{}' must be a quoted string", self.name),
            )),
        }
    }

    fn string(&self) -> Result<String> {
        String::from_utf8(self.bytes()?)
            .map_err(|_| err(self.line, format!("'{}' is not valid UTF-8", self.name)))
    }

    fn int<T: TryFrom<i128>>(&self) -> Result<T> {
        let w = self.word()?;
        let (neg, digits) = match w.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, w),
        };
        let v = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => i128::from_str_radix(hex, 16),
            None => digits.parse::<i128>(),
        }
        .map_err(|_| {
            err(
                self.line,
                format!("'{}': '{w}' is not an integer", self.name),
            )
        })?;
        T::try_from(if neg { -v } else { v })
            .map_err(|_| err(self.line, format!("'{}': {w} is out of range", self.name)))
    }

    fn float(&self) -> Result<f64> {
        let w = self.word()?;
        let lower = w.to_ascii_lowercase();
        match lower.as_str() {
            "inf" | "infinity" | "inff" => return Ok(f64::INFINITY),
            "-inf" | "-infinity" | "-inff" => return Ok(f64::NEG_INFINITY),
            "nan" | "-nan" | "nanf" => return Ok(f64::NAN),
            _ => {}
        }
        // C++ style float literals may end in `f` (`1.5f`).
        lower
            .strip_suffix('f')
            .unwrap_or(&lower)
            .parse::<f64>()
            .map_err(|_| err(self.line, format!("'{}': '{w}' is not a number", self.name)))
    }

    fn bool(&self) -> Result<bool> {
        match self.word()? {
            "true" | "True" | "t" | "1" => Ok(true),
            "false" | "False" | "f" | "0" => Ok(false),
            w => Err(err(
                self.line,
                format!("'{}': '{w}' is not a bool", self.name),
            )),
        }
    }

    fn dtype(&self) -> Result<i32> {
        let w = self.word()?;
        match tf::DataType::from_str_name(w) {
            Some(d) => Ok(d as i32),
            None => self
                .int::<i32>()
                .map_err(|_| err(self.line, format!("'{w}' is not a DataType"))),
        }
    }
}

/// Parses a text-format `GraphDef`.
pub fn parse_graph_def(text: &str) -> Result<tf::GraphDef> {
    let fields = parse_fields(&mut Lexer::new(text), None, 0)?;
    graph_def(&fields)
}

fn graph_def(fields: &[Field]) -> Result<tf::GraphDef> {
    let mut g = tf::GraphDef::default();
    for f in fields {
        match f.name.as_str() {
            "node" => g.node.push(node_def(f.message()?)?),
            "versions" => g.versions = Some(version_def(f.message()?)?),
            "version" => g.version = f.int()?,
            _ => {}
        }
    }
    Ok(g)
}

fn version_def(fields: &[Field]) -> Result<tf::VersionDef> {
    let mut v = tf::VersionDef::default();
    for f in fields {
        match f.name.as_str() {
            "producer" => v.producer = f.int()?,
            "min_consumer" => v.min_consumer = f.int()?,
            "bad_consumers" => v.bad_consumers.push(f.int()?),
            _ => {}
        }
    }
    Ok(v)
}

/// A `map<string, AttrValue>` entry: `attr { key: "T" value { type: DT_FLOAT } }`.
fn attr_entry(fields: &[Field]) -> Result<(String, tf::AttrValue)> {
    let mut key = String::new();
    let mut value = tf::AttrValue::default();
    for f in fields {
        match f.name.as_str() {
            "key" => key = f.string()?,
            "value" => value = attr_value(f.message()?)?,
            _ => {}
        }
    }
    Ok((key, value))
}

fn node_def(fields: &[Field]) -> Result<tf::NodeDef> {
    let mut n = tf::NodeDef::default();
    for f in fields {
        match f.name.as_str() {
            "name" => n.name = f.string()?,
            "op" => n.op = f.string()?,
            "input" => n.input.push(f.string()?),
            "device" => n.device = f.string()?,
            "attr" => {
                let (k, v) = attr_entry(f.message()?)?;
                n.attr.insert(k, v);
            }
            _ => {}
        }
    }
    Ok(n)
}

fn attr_value(fields: &[Field]) -> Result<tf::AttrValue> {
    use tf::attr_value::Value as V;
    let mut value = None;
    for f in fields {
        value = Some(match f.name.as_str() {
            "list" => V::List(list_value(f.message()?)?),
            "s" => V::S(f.bytes()?),
            "i" => V::I(f.int()?),
            "f" => V::F(f.float()? as f32),
            "b" => V::B(f.bool()?),
            "type" => V::Type(f.dtype()?),
            "shape" => V::Shape(shape(f.message()?)?),
            "tensor" => V::Tensor(tensor(f.message()?)?),
            "placeholder" => V::Placeholder(f.string()?),
            "func" => V::Func(name_attr_list(f.message()?)?),
            _ => continue,
        });
    }
    Ok(tf::AttrValue { value })
}

fn list_value(fields: &[Field]) -> Result<tf::attr_value::ListValue> {
    let mut l = tf::attr_value::ListValue::default();
    for f in fields {
        match f.name.as_str() {
            "s" => l.s.push(f.bytes()?),
            "i" => l.i.push(f.int()?),
            "f" => l.f.push(f.float()? as f32),
            "b" => l.b.push(f.bool()?),
            "type" => l.r#type.push(f.dtype()?),
            "shape" => l.shape.push(shape(f.message()?)?),
            "tensor" => l.tensor.push(tensor(f.message()?)?),
            "func" => l.func.push(name_attr_list(f.message()?)?),
            _ => {}
        }
    }
    Ok(l)
}

fn name_attr_list(fields: &[Field]) -> Result<tf::NameAttrList> {
    let mut n = tf::NameAttrList::default();
    for f in fields {
        match f.name.as_str() {
            "name" => n.name = f.string()?,
            "attr" => {
                let (k, v) = attr_entry(f.message()?)?;
                n.attr.insert(k, v);
            }
            _ => {}
        }
    }
    Ok(n)
}

fn shape(fields: &[Field]) -> Result<tf::TensorShapeProto> {
    let mut s = tf::TensorShapeProto::default();
    for f in fields {
        match f.name.as_str() {
            "dim" => {
                let mut d = tf::tensor_shape_proto::Dim::default();
                for g in f.message()? {
                    match g.name.as_str() {
                        "size" => d.size = g.int()?,
                        "name" => d.name = g.string()?,
                        _ => {}
                    }
                }
                s.dim.push(d);
            }
            "unknown_rank" => s.unknown_rank = f.bool()?,
            _ => {}
        }
    }
    Ok(s)
}

fn tensor(fields: &[Field]) -> Result<tf::TensorProto> {
    let mut t = tf::TensorProto::default();
    for f in fields {
        match f.name.as_str() {
            "dtype" => t.dtype = f.dtype()?,
            "tensor_shape" => t.tensor_shape = Some(shape(f.message()?)?),
            "version_number" => t.version_number = f.int()?,
            "tensor_content" => t.tensor_content = f.bytes()?,
            "half_val" => t.half_val.push(f.int()?),
            "float_val" => t.float_val.push(f.float()? as f32),
            "double_val" => t.double_val.push(f.float()?),
            "int_val" => t.int_val.push(f.int()?),
            "string_val" => t.string_val.push(f.bytes()?),
            "scomplex_val" => t.scomplex_val.push(f.float()? as f32),
            "int64_val" => t.int64_val.push(f.int()?),
            "bool_val" => t.bool_val.push(f.bool()?),
            "dcomplex_val" => t.dcomplex_val.push(f.float()?),
            "uint32_val" => t.uint32_val.push(f.int()?),
            "uint64_val" => t.uint64_val.push(f.int()?),
            _ => {}
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_tensorflow_writes() {
        // Written by tf.io.write_graph(g, ".", "g.pbtxt") for a placeholder, a constant and
        // their sum (trimmed), with the forms text_format also accepts mixed in.
        let text = r#"
node {
  name: "x"
  op: "Placeholder"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr {
    key: "shape"
    value { shape { dim { size: -1 } dim { size: 2 } } }
  }
}
node {
  name: "c"
  op: "Const"
  attr { key: "dtype" value { type: DT_FLOAT } }
  attr {
    key: "value"
    value {
      tensor {
        dtype: DT_FLOAT
        tensor_shape { dim { size: 2 } }
        tensor_content: "\000\000\200?\000\000\000@"
      }
    }
  }
}
node { name: "add" op: "AddV2" input: ["x", "c"] attr { key: "T" value { type: 1 } } }
node { name: 'k' op: "Foo" attr { key: "l" value { list { i: [1, 0x2, -3] f: inf s: "a" "b" } } } }
versions { producer: 1994 }  # a comment
"#;
        let g = parse_graph_def(text).unwrap();
        assert_eq!(g.node.len(), 4);
        assert_eq!(g.node[2].input, ["x", "c"]);
        let c = &g.node[1].attr["value"];
        let Some(tf::attr_value::Value::Tensor(t)) = &c.value else {
            panic!("not a tensor: {c:?}")
        };
        assert_eq!(t.tensor_content, [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
        let Some(tf::attr_value::Value::Shape(s)) = &g.node[0].attr["shape"].value else {
            panic!()
        };
        assert_eq!(s.dim[0].size, -1);
        let Some(tf::attr_value::Value::List(l)) = &g.node[3].attr["l"].value else {
            panic!()
        };
        assert_eq!(l.i, [1, 2, -3]);
        assert_eq!(l.f, [f32::INFINITY]);
        assert_eq!(l.s, [b"ab".to_vec()]);
        assert_eq!(g.versions.unwrap().producer, 1994);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            ("node {\n name: \"x\"\n", "missing '}'"),
            ("node {\n name: \"x\n}", "line 2"),
            ("node { name: \"x\" }\n}", "line 2"),
            ("versions { producer: 99999999999 }", "out of range"),
            ("node { name: x }", "quoted string"),
            (
                "node { attr { key: \"T\" value { type: DT_NOPE } } }",
                "DataType",
            ),
            ("node { name \"x\" }", "expected ':'"),
            ("node { name: \"\\q\" }", "unknown escape"),
            ("node ?", "unexpected character"),
        ] {
            let e = parse_graph_def(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let deep = "node {".repeat(100);
        assert!(parse_graph_def(&deep)
            .unwrap_err()
            .to_string()
            .contains("too deeply"));
    }
}
