//! The manifests source: Kubernetes objects (Services, Pods, EndpointSlices, Namespaces) from a
//! file — `kubectl get -o yaml|json` output, multi-document YAML, or single objects — read
//! (`file`), parsed (`parse`, a document at a time in `document`), taken in parts as it is
//! read (`stream`), and reloaded whenever the file changes (`watch`).

mod document;
mod file;
mod parse;
mod stream;
mod watch;

pub use document::ParseError;
pub use file::{Fingerprint, Input, Loaded, fingerprint, load};
pub use parse::{parse, resync};
pub use stream::{NotStreamed, stream, stream_from};
pub use watch::watch;

#[cfg(test)]
mod tests;
