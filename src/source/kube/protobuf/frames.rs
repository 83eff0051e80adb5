//! A protobuf watch stream (`application/vnd.kubernetes.protobuf;stream=watch`): frames of a
//! four-byte big-endian length and a `metav1.WatchEvent` (not enveloped), whose object is a
//! `runtime.RawExtension` holding the enveloped object.

use crate::source::kube::protobuf::{Fields, Malformed, malformed, unwrap_envelope};

/// One event of a watch stream, its object still encoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WatchEvent<'a> {
    pub kind: &'a str,
    /// The object itself (a Pod, a Status, ...), out of its envelope.
    pub object: &'a [u8],
}

/// Reads one frame's event.
pub(crate) fn watch_event(frame: &[u8]) -> Result<WatchEvent<'_>, Malformed> {
    let mut kind = "";
    let mut extension: &[u8] = &[];
    for field in Fields::new(frame) {
        let (number, value) = field?;
        match number {
            1 => kind = value.string("type")?,
            2 => {
                for field in value.message("object")? {
                    let (number, value) = field?;
                    if number == 1 {
                        extension = value.bytes("object.raw")?;
                    }
                }
            }
            _ => {}
        }
    }
    if kind.is_empty() {
        return Err(malformed("a watch event without a type"));
    }
    Ok(WatchEvent {
        kind,
        object: unwrap_envelope(extension)?,
    })
}

/// The frames of a watch body, cut as its chunks arrive.
#[derive(Default)]
pub(crate) struct FrameSplitter {
    pending: Vec<u8>,
}

impl FrameSplitter {
    /// Adds a chunk of the body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next whole frame, if one is in; a frame longer than `max` is an error.
    pub(crate) fn next_frame(&mut self, max: usize) -> Result<Option<Vec<u8>>, Malformed> {
        let Some(length) = self.pending.first_chunk::<4>() else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > max {
            return Err(malformed(format!(
                "a frame of {length} bytes, more than {max}"
            )));
        }
        if self.pending.len() < 4 + length {
            return Ok(None);
        }
        let frame = self.pending[4..4 + length].to_vec();
        self.pending.drain(..4 + length);
        Ok(Some(frame))
    }

    /// Bytes of a frame begun and not finished (at the body's end: a frame cut short).
    pub(crate) fn unfinished(&self) -> usize {
        self.pending.len()
    }
}
