//! A direct walk of the protobuf wire format of `tf.train.Example`, so that parsing by a
//! spec reads only the wanted features and copies packed values straight out of the
//! record (no per-record map of all features, no per-value decode calls).

/// One field's value as the wire format gives it.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Fixed32(u32),
    Bytes(&'a [u8]),
}

struct Wire<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Wire<'a> {
        Wire { buf, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.at).ok_or("truncated varint")?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end =
            end.ok_or_else(|| format!("a {n}-byte field runs past the end of its message"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), String> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(usize::try_from(n).map_err(|_| "length overflows")?)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok((key >> 3, value))
    }
}

/// The values of one `tf.train.Feature`.
pub(crate) enum Values<'a> {
    /// A `BytesList`.
    Bytes(Vec<&'a [u8]>),
    /// A `FloatList`.
    Float(Vec<f32>),
    /// An `Int64List`.
    Int64(Vec<i64>),
}

/// Finds the serialized `Feature` of each wanted name in a serialized `Example`:
/// `slot(name)` gives the index in `out` of a wanted name (a later entry of the same name
/// replaces an earlier one, as protobuf's map merge does).
pub(crate) fn find_features<'a>(
    record: &'a [u8],
    slot: impl Fn(&str) -> Option<usize>,
    out: &mut [Option<&'a [u8]>],
) -> Result<(), String> {
    let mut example = Wire::new(record);
    while !example.done() {
        let (1, Value::Bytes(features)) = example.field()? else {
            continue;
        };
        let mut features = Wire::new(features);
        while !features.done() {
            let (1, Value::Bytes(entry)) = features.field()? else {
                continue;
            };
            let (mut name, mut feature) = (&b""[..], &b""[..]);
            let mut entry = Wire::new(entry);
            while !entry.done() {
                match entry.field()? {
                    (1, Value::Bytes(k)) => name = k,
                    (2, Value::Bytes(v)) => feature = v,
                    _ => {}
                }
            }
            let name = std::str::from_utf8(name).map_err(|_| "a feature name is not UTF-8")?;
            if let Some(i) = slot(name) {
                out[i] = Some(feature);
            }
        }
    }
    Ok(())
}

/// Decodes a serialized `Feature` (`None` when it holds no list).
pub(crate) fn feature_values(feature: &[u8]) -> Result<Option<Values<'_>>, String> {
    let mut values = None;
    let mut f = Wire::new(feature);
    while !f.done() {
        let (kind, Value::Bytes(list)) = f.field()? else {
            continue;
        };
        // A repeated oneof field merges into the same kind and replaces another kind.
        let mut l = Wire::new(list);
        match kind {
            1 => {
                let mut v = match values.take() {
                    Some(Values::Bytes(v)) => v,
                    _ => Vec::new(),
                };
                while !l.done() {
                    if let (1, Value::Bytes(b)) = l.field()? {
                        v.push(b);
                    }
                }
                values = Some(Values::Bytes(v));
            }
            2 => {
                let mut v = match values.take() {
                    Some(Values::Float(v)) => v,
                    _ => Vec::new(),
                };
                while !l.done() {
                    match l.field()? {
                        (1, Value::Bytes(packed)) if packed.len() % 4 == 0 => v.extend(
                            packed
                                .chunks_exact(4)
                                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
                        ),
                        (1, Value::Bytes(_)) => return Err("packed floats of odd length".into()),
                        (1, Value::Fixed32(x)) => v.push(f32::from_bits(x)),
                        _ => {}
                    }
                }
                values = Some(Values::Float(v));
            }
            3 => {
                let mut v = match values.take() {
                    Some(Values::Int64(v)) => v,
                    _ => Vec::new(),
                };
                while !l.done() {
                    match l.field()? {
                        (1, Value::Bytes(packed)) => {
                            let mut p = Wire::new(packed);
                            while !p.done() {
                                v.push(p.varint()? as i64);
                            }
                        }
                        (1, Value::Varint(x)) => v.push(x as i64),
                        _ => {}
                    }
                }
                values = Some(Values::Int64(v));
            }
            _ => {}
        }
    }
    Ok(values)
}
