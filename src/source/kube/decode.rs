//! Reading what the API sends — list pages and watch events — one object at a time. Items are
//! first cut out as raw JSON, then each is decoded alone: an object that
//! does not decode is skipped and named, never the whole list; no message carries a body.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::source::kube::faults::shorten;

/// What a list page says besides its items (which [`crate::source::json::ListSplitter`] cuts out).
#[derive(Deserialize)]
pub(super) struct ListPage {
    #[serde(default)]
    pub metadata: ListMeta,
}

/// What a list says besides its items.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ListMeta {
    #[serde(rename = "resourceVersion")]
    pub resource_version: Option<String>,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// One line of a watch stream: its object still raw.
#[derive(Deserialize)]
pub(super) struct WatchLine<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub object: &'a RawValue,
}

/// The metadata every object and bookmark carries, read on its own: to name an object that
/// does not decode, and to follow a bookmark's resourceVersion.
#[derive(Default, Deserialize)]
pub(super) struct Identity {
    #[serde(default)]
    pub metadata: IdentityMeta,
}

#[derive(Default, Deserialize)]
pub(super) struct IdentityMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    #[serde(rename = "resourceVersion")]
    pub resource_version: Option<String>,
    /// Only read on bookmarks: the one that ends a streaming list's initial events says so.
    #[serde(default)]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// The annotation on the bookmark that ends a streaming list's initial events (KEP-3157).
pub(super) const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

impl Identity {
    /// What little of `raw` can be read; nothing if even that fails.
    pub(super) fn of(raw: &RawValue) -> Self {
        serde_json::from_str(raw.get()).unwrap_or_default()
    }
}

impl IdentityMeta {
    /// Whether this bookmark ends a streaming list's initial events.
    pub(super) fn ends_initial_events(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.get(INITIAL_EVENTS_END))
            .is_some_and(|v| v == "true")
    }

    /// `namespace/name`, as far as known.
    pub(super) fn describe(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            (None, Some(name)) => name.clone(),
            _ => "(unnamed)".into(),
        }
    }
}

/// The `code` of a watch ERROR event's `metav1.Status` (410: the version is gone).
#[derive(Default, Deserialize)]
pub(super) struct Status {
    #[serde(default)]
    pub code: u16,
}

/// An object that did not decode: who it is, and the field at fault.
#[derive(Debug)]
pub(super) struct Undecodable {
    pub object: String,
    pub error: String,
}

/// Decodes one raw object into `K`; on failure, names it and the field at fault.
pub(super) fn object<K: DeserializeOwned>(raw: &RawValue) -> Result<K, Undecodable> {
    // Tracking the path costs every object; only one that fails is read again to name the field.
    if let Ok(object) = serde_json::from_str(raw.get()) {
        return Ok(object);
    }
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        Undecodable {
            object: Identity::of(raw).metadata.describe(),
            error: shorten(&format!("{path}: {}", e.into_inner())),
        }
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;

    use super::*;

    #[test]
    fn a_bad_item_is_named_and_the_rest_decode() {
        let body = r#"{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"c1"},
            "items":[
              {"metadata":{"name":"good","namespace":"a"},"spec":{"ports":[{"port":80}]}},
              {"metadata":{"name":"bad","namespace":"a"},"spec":{"ports":[{"port":"eighty"}]}},
              {"metadata":{"name":"also-good","namespace":"b"},"spec":{}}]}"#;
        let mut splitter = crate::source::json::ListSplitter::default();
        let mut decoded: Vec<Result<Service, Undecodable>> = Vec::new();
        splitter
            .feed(body.as_bytes(), |item| {
                let raw: &RawValue = serde_json::from_slice(item).unwrap();
                decoded.push(object(raw));
            })
            .unwrap();
        let page: ListPage = serde_json::from_slice(&splitter.finish().unwrap()).unwrap();
        assert_eq!(page.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(page.metadata.continue_token.as_deref(), Some("c1"));
        assert!(decoded[0].is_ok() && decoded[2].is_ok());
        let bad = decoded[1].as_ref().unwrap_err();
        assert_eq!(bad.object, "a/bad");
        assert!(
            bad.error.starts_with("spec.ports[0].port: invalid type"),
            "{}",
            bad.error
        );
    }

    #[test]
    fn watch_lines_bookmarks_and_errors() {
        let line = r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"99"}}}"#;
        let event: WatchLine = serde_json::from_str(line).unwrap();
        assert_eq!(event.kind, "BOOKMARK");
        assert_eq!(
            Identity::of(event.object)
                .metadata
                .resource_version
                .as_deref(),
            Some("99")
        );
        let line = r#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#;
        let event: WatchLine = serde_json::from_str(line).unwrap();
        let status: Status = serde_json::from_str(event.object.get()).unwrap();
        assert_eq!(status.code, 410);
        assert_eq!(
            Identity::of(RawValue::from_string("[1]".into()).unwrap().as_ref())
                .metadata
                .describe(),
            "(unnamed)"
        );
    }
}
