//! Cutting a protobuf list into its items while it arrives, as [`crate::source::kube::ListSplitter`]
//! does for JSON: an item is handed on once its last byte is in, so memory stays at one item and
//! a chunk whatever the list's size.
//!
//! The body is `k8s\0`, then a `runtime.Unknown` whose field 2 (`raw`) is the list: field 1 its
//! `ListMeta`, field 2 each item. Every length is given before its bytes, so no byte is looked at
//! twice except an item's own, by its decoder.

use crate::source::kube::decode::ListMeta;
use crate::source::kube::protobuf::{Fields, Malformed, header, malformed};

/// The largest item taken: no Service, Pod or slice comes near it.
const MAX_ITEM: usize = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Before the four bytes of `k8s\0`.
    Magic,
    /// In the envelope, outside the list (`raw`): before it, or after it once `listed`.
    Envelope,
    /// In the list, `left` of its bytes still to come.
    List { left: usize },
}

/// Feeds on a protobuf list body chunk by chunk.
pub struct ProtobufListSplitter {
    /// Bytes received and not yet consumed: at most a field's header or one item and a chunk.
    pending: Vec<u8>,
    place: Place,
    listed: bool,
    meta: ListMeta,
}

impl Default for ProtobufListSplitter {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            place: Place::Magic,
            listed: false,
            meta: ListMeta::default(),
        }
    }
}

impl ProtobufListSplitter {
    /// Reads `chunk`, calling `on_item` with each item it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_item: impl FnMut(&[u8])) -> Result<(), Malformed> {
        // Whole items in `chunk` itself are handed on without being copied.
        let used = if self.pending.is_empty() {
            self.consume(chunk, &mut on_item)?
        } else {
            0
        };
        self.pending.extend_from_slice(&chunk[used..]);
        let pending = std::mem::take(&mut self.pending);
        let used = self.consume(&pending, &mut on_item)?;
        self.pending = pending;
        self.pending.drain(..used);
        Ok(())
    }

    /// Takes whatever complete parts `bytes` begins with; returns how many bytes that was.
    fn consume(
        &mut self,
        bytes: &[u8],
        on_item: &mut impl FnMut(&[u8]),
    ) -> Result<usize, Malformed> {
        let mut at = 0;
        loop {
            let rest = &bytes[at..];
            match self.place {
                Place::Magic => {
                    if rest.len() < 4 {
                        return Ok(at);
                    }
                    if &rest[..4] != super::MAGIC {
                        return Err(malformed("not a protobuf list (no k8s\\0 prefix)"));
                    }
                    at += 4;
                    self.place = Place::Envelope;
                }
                Place::Envelope => {
                    let Some(field) = header(rest)? else {
                        return Ok(at);
                    };
                    if field.number == 2 && field.wire_type == 2 && !self.listed {
                        self.listed = true;
                        at += field.len;
                        self.place = Place::List {
                            left: field.value_len.unwrap_or_default(),
                        };
                        continue;
                    }
                    // The type and content type beside the list: small, skipped whole.
                    if field.value_len.unwrap_or_default() > MAX_ITEM {
                        return Err(malformed("a field beside the list larger than any item"));
                    }
                    let Some(len) = whole(rest, field)? else {
                        return Ok(at);
                    };
                    at += len;
                }
                Place::List { left: 0 } => self.place = Place::Envelope,
                Place::List { left } => {
                    let Some(field) = header(rest)? else {
                        return Ok(at);
                    };
                    let value_len = field.value_len.unwrap_or_default();
                    if field.len > left || (field.wire_type == 2 && value_len > left - field.len) {
                        return Err(malformed("an item runs past the end of its list"));
                    }
                    if value_len > MAX_ITEM {
                        return Err(malformed(format!(
                            "an item of {value_len} bytes, more than {MAX_ITEM}"
                        )));
                    }
                    let Some(len) = whole(rest, field)? else {
                        return Ok(at);
                    };
                    if len > left {
                        return Err(malformed("an item runs past the end of its list"));
                    }
                    let value = &rest[field.len..len];
                    match (field.number, field.wire_type) {
                        (1, 2) => self.meta = list_meta(value)?,
                        (2, 2) => on_item(value),
                        _ => {}
                    }
                    at += len;
                    self.place = Place::List { left: left - len };
                }
            }
        }
    }

    /// The list's metadata, once the whole body has been fed.
    pub fn finish(self) -> Result<ListMeta, Malformed> {
        if !self.listed || self.place != Place::Envelope || !self.pending.is_empty() {
            return Err(malformed("the list ends early"));
        }
        Ok(self.meta)
    }
}

/// The bytes the field starting `bytes` takes, header included, if they are all there.
fn whole(bytes: &[u8], field: super::Header) -> Result<Option<usize>, Malformed> {
    let after = &bytes[field.len..];
    let value_len = match field.value_len {
        Some(len) => len,
        None => match super::varint(after)? {
            Some((_, len)) => len,
            None => return Ok(None),
        },
    };
    Ok((after.len() >= value_len).then_some(field.len + value_len))
}

fn list_meta(bytes: &[u8]) -> Result<ListMeta, Malformed> {
    let mut meta = ListMeta::default();
    for field in Fields::new(bytes) {
        let (number, value) = field?;
        match number {
            2 => meta.resource_version = Some(value.string("metadata.resourceVersion")?.into()),
            3 => meta.continue_token = Some(value.string("metadata.continue")?.into()),
            _ => {}
        }
    }
    Ok(meta)
}
