//! The four kinds watched: where each lives in the API, and how one of its objects, as the API
//! sends it, becomes a record.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::records::{ClusterObject, ObjectKey, ObjectKind};
use crate::source::kube::decode::{self, Undecodable};
use crate::source::kube::faults::shorten;
use crate::source::objects::{self, FieldError};
use crate::source::pod::DnsPod;

/// One object as the API sent it, read.
#[derive(Debug)]
pub(super) struct Decoded {
    /// The record, `None` for an object DNS need not keep (an EndpointSlice of no Service), or
    /// why DNS cannot use it (it is then removed).
    pub record: Result<Option<ClusterObject>, FieldError>,
    pub key: ObjectKey,
    /// Its `metadata.resourceVersion`.
    pub version: Option<String>,
}

/// Reads one object of `kind` from its JSON text, as a list's items are cut out.
pub(super) fn decode_bytes(kind: ObjectKind, text: &[u8]) -> Result<Decoded, Undecodable> {
    let raw = std::str::from_utf8(text)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<&RawValue>(text).map_err(|e| e.to_string()));
    match raw {
        Ok(raw) => decode(kind, raw),
        Err(error) => Err(Undecodable {
            object: "(unnamed)".into(),
            error: shorten(&format!("not JSON: {error}")),
        }),
    }
}

/// Reads one raw object of `kind`.
pub(super) fn decode(kind: ObjectKind, raw: &RawValue) -> Result<Decoded, Undecodable> {
    match kind {
        ObjectKind::Namespace => read::<Namespace>(raw, kind, |ns| {
            objects::namespace_name(&ns.metadata).map(|n| Some(ClusterObject::Namespace(n)))
        }),
        ObjectKind::Service => read::<Service>(raw, kind, |s| {
            objects::service_record(s).map(|r| Some(ClusterObject::Service(r)))
        }),
        ObjectKind::Pod => read::<DnsPod>(raw, kind, |p| objects::pod_object(p).map(Some)),
        ObjectKind::EndpointSlice => read::<EndpointSlice>(raw, kind, |e| {
            objects::endpoint_slice_record(e).map(|r| r.map(ClusterObject::EndpointSlice))
        }),
    }
}

fn read<K: Resource + DeserializeOwned>(
    raw: &RawValue,
    kind: ObjectKind,
    convert: impl FnOnce(&K) -> Result<Option<ClusterObject>, FieldError>,
) -> Result<Decoded, Undecodable> {
    let object: K = decode::object(raw)?;
    let name = object.name_any();
    let key = match kind {
        ObjectKind::Namespace => ObjectKey::of_namespace(&Arc::from(name)),
        _ => ObjectKey::new(
            &object.namespace().unwrap_or_else(|| "default".into()),
            &name,
        ),
    };
    Ok(Decoded {
        record: convert(&object),
        key,
        version: object.resource_version(),
    })
}

/// The API path of `kind`'s objects in `namespace` (all namespaces: `None`).
pub(super) fn url_path(kind: ObjectKind, namespace: Option<&str>) -> String {
    match kind {
        ObjectKind::Namespace => Namespace::url_path(&(), None),
        ObjectKind::Service => Service::url_path(&(), namespace),
        ObjectKind::Pod => DnsPod::url_path(&(), namespace),
        ObjectKind::EndpointSlice => EndpointSlice::url_path(&(), namespace),
    }
}

/// The resource as RBAC names it: `pods`, `endpointslices.discovery.k8s.io`.
pub(super) fn resource(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Namespace => "namespaces",
        ObjectKind::Service => "services",
        ObjectKind::Pod => "pods",
        ObjectKind::EndpointSlice => "endpointslices.discovery.k8s.io",
    }
}

/// The resource's plural alone, for logs: `pods`, `endpointslices`.
pub(super) fn plural(kind: ObjectKind) -> &'static str {
    resource(kind).split('.').next().unwrap_or_default()
}
