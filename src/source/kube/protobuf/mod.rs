//! The API's protobuf encoding (`application/vnd.kubernetes.protobuf`), read without generated
//! types: the wire format's fields, the `k8s\0` envelope around a whole object, lists cut into
//! items as they arrive ([`list`]), watch frames ([`frames`]) and the few fields of the four
//! kinds DNS keeps ([`objects`]).
//!
//! A decoder of only the fields kept, rather than `k8s-pb`'s generated messages: those build
//! every field of a Pod (containers, volumes, managed fields) only for most of it to be dropped,
//! the same reason the JSON path reads Pods into [`crate::source::pod::DnsPod`]; measured side by
//! side in `benches/protobuf.rs`.

pub(super) mod frames;
pub(crate) mod list;
pub(super) mod objects;

use std::fmt;

/// The media type asked for; JSON is named as the fallback, which the API server picks for
/// kinds it cannot encode as protobuf (custom resources).
pub(crate) const ACCEPT: &str = "application/vnd.kubernetes.protobuf, application/json";

/// Whether a response's `Content-Type` is protobuf (a list's, or a watch's `;stream=watch`).
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    content_type
        .trim_start()
        .starts_with("application/vnd.kubernetes.protobuf")
}

/// The four bytes before every enveloped object.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Bytes that are not what the protobuf encoding promised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// One field's value as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Varint(u64),
    /// Strings, bytes and embedded messages.
    Bytes(&'a [u8]),
    /// Fixed-width numbers: no field DNS reads has one.
    Fixed,
}

impl<'a> Value<'a> {
    pub(super) fn bytes(self, field: &str) -> Result<&'a [u8], Malformed> {
        match self {
            Value::Bytes(bytes) => Ok(bytes),
            _ => Err(malformed(format!("{field}: not a string or message"))),
        }
    }

    pub(super) fn string(self, field: &str) -> Result<&'a str, Malformed> {
        std::str::from_utf8(self.bytes(field)?)
            .map_err(|_| malformed(format!("{field}: not UTF-8")))
    }

    pub(super) fn message(self, field: &str) -> Result<Fields<'a>, Malformed> {
        self.bytes(field).map(Fields::new)
    }

    pub(super) fn varint(self, field: &str) -> Result<u64, Malformed> {
        match self {
            Value::Varint(n) => Ok(n),
            _ => Err(malformed(format!("{field}: not a number"))),
        }
    }

    pub(super) fn bool(self, field: &str) -> Result<bool, Malformed> {
        self.varint(field).map(|n| n != 0)
    }

    /// An `int32`: negative numbers are sign-extended to ten bytes on the wire.
    pub(super) fn int32(self, field: &str) -> Result<i32, Malformed> {
        self.varint(field).map(|n| n as i64 as i32)
    }
}

/// Reads a varint at the start of `bytes`: its value and length, `None` if `bytes` ends first.
pub(super) fn varint(bytes: &[u8]) -> Result<Option<(u64, usize)>, Malformed> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 10 {
        return Err(malformed("a number longer than ten bytes"));
    }
    Ok(None)
}

/// A field's header: its number, and for a length-delimited one the length that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub number: u64,
    pub wire_type: u8,
    /// Bytes of the header itself.
    pub len: usize,
    /// Bytes of the value after the header, once known: a varint's are found only by reading it.
    pub value_len: Option<usize>,
}

/// Reads a field header at the start of `bytes`; `None` if `bytes` ends first.
pub(super) fn header(bytes: &[u8]) -> Result<Option<Header>, Malformed> {
    let Some((key, key_len)) = varint(bytes)? else {
        return Ok(None);
    };
    let number = key >> 3;
    let wire_type = (key & 7) as u8;
    if number == 0 {
        return Err(malformed("a field numbered 0"));
    }
    let (len, value_len) = match wire_type {
        0 => (key_len, None),
        1 => (key_len, Some(8)),
        5 => (key_len, Some(4)),
        2 => {
            let Some((length, length_len)) = varint(&bytes[key_len..])? else {
                return Ok(None);
            };
            let length = usize::try_from(length).map_err(|_| malformed("a field too long"))?;
            (key_len + length_len, Some(length))
        }
        other => {
            return Err(malformed(format!(
                "wire type {other}, which the API never sends"
            )));
        }
    };
    Ok(Some(Header {
        number,
        wire_type,
        len,
        value_len,
    }))
}

/// The fields of one message, in order.
#[derive(Clone)]
pub(super) struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = read_field(self.rest);
        match field {
            Ok((number, value, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok((number, value)))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// The field at the start of `bytes`, and the bytes it takes.
fn read_field(bytes: &[u8]) -> Result<(u64, Value<'_>, usize), Malformed> {
    let cut = || malformed("a message cut short");
    let header = header(bytes)?.ok_or_else(cut)?;
    let after = &bytes[header.len..];
    match header.wire_type {
        0 => {
            let (value, len) = varint(after)?.ok_or_else(cut)?;
            Ok((header.number, Value::Varint(value), header.len + len))
        }
        2 => {
            let len = header.value_len.unwrap_or_default();
            let value = after.get(..len).ok_or_else(cut)?;
            Ok((header.number, Value::Bytes(value), header.len + len))
        }
        _ => {
            let len = header.value_len.unwrap_or_default();
            if after.len() < len {
                return Err(cut());
            }
            Ok((header.number, Value::Fixed, header.len + len))
        }
    }
}

/// The object inside an envelope (`k8s\0` and a `runtime.Unknown`, whose field 2 holds it).
pub(super) fn unwrap_envelope(bytes: &[u8]) -> Result<&[u8], Malformed> {
    let inner = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("not a protobuf object (no k8s\\0 prefix)"))?;
    let mut raw: &[u8] = &[];
    for field in Fields::new(inner) {
        let (number, value) = field?;
        match number {
            2 => raw = value.bytes("raw")?,
            3 if !value.bytes("contentEncoding")?.is_empty() => {
                return Err(malformed("a compressed object (contentEncoding)"));
            }
            _ => {}
        }
    }
    Ok(raw)
}

#[cfg(test)]
mod tests;
