//! Cutting a list's body into its items while it arrives (JSON in [`crate::source::json`];
//! protobuf in [`super::protobuf::list`]). A list is never held whole: the watch
//! cache answers `resourceVersion=0` with every object in one response, whatever the page size
//! asked (62 MB of JSON for 10,000 pods), and holding that before decoding would cost more memory
//! than the whole state it becomes. Each item is handed on as soon as its closing brace arrives,
//! so decoding overlaps the transfer and memory stays at one item; what is left — the list with
//! an empty `items` — carries its metadata (resourceVersion, continue).

use hyper::http;
use kube::client::Body;

use crate::records::ObjectKind;
use crate::source::json::ListSplitter;
use crate::source::kube::decode::{ListMeta, ListPage, Undecodable};
use crate::source::kube::kinds::{self, Decoded};
use crate::source::kube::protobuf::{self, list::ProtobufListSplitter};

/// The encoding a response came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    /// By the response's `Content-Type`: protobuf only when it says so.
    pub(super) fn of(response: &http::Response<Body>) -> Self {
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        match content_type {
            Some(value) if protobuf::is_protobuf(value) => Encoding::Protobuf,
            _ => Encoding::Json,
        }
    }

    /// Reads one item of a list (or a watch event's object) of `kind`.
    pub(super) fn decode(self, kind: ObjectKind, item: &[u8]) -> Result<Decoded, Undecodable> {
        match self {
            Encoding::Json => kinds::decode_bytes(kind, item),
            Encoding::Protobuf => kinds::decode_protobuf(kind, item),
        }
    }
}

/// A list body in either encoding, cut into items.
pub(super) enum ListBody {
    Json(ListSplitter),
    Protobuf(ProtobufListSplitter),
}

impl ListBody {
    pub(super) fn new(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Json => ListBody::Json(ListSplitter::default()),
            Encoding::Protobuf => ListBody::Protobuf(ProtobufListSplitter::default()),
        }
    }

    /// Reads `chunk`, calling `on_item` with each item it completes.
    pub(super) fn feed(&mut self, chunk: &[u8], on_item: impl FnMut(&[u8])) -> Result<(), String> {
        match self {
            ListBody::Json(splitter) => splitter.feed(chunk, on_item).map_err(|e| e.to_string()),
            ListBody::Protobuf(splitter) => {
                splitter.feed(chunk, on_item).map_err(|e| e.to_string())
            }
        }
    }

    /// The list's metadata, once the whole body has been fed.
    pub(super) fn finish(self) -> Result<ListMeta, String> {
        match self {
            ListBody::Json(splitter) => {
                let rest = splitter.finish().map_err(|e| e.to_string())?;
                let page: ListPage = serde_json::from_slice(&rest).map_err(|e| e.to_string())?;
                Ok(page.metadata)
            }
            ListBody::Protobuf(splitter) => splitter.finish().map_err(|e| e.to_string()),
        }
    }
}
