//! The kinds watched: where each lives in the API, and how one of its objects, as the API sends
//! it, becomes a record.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::{Resource, ResourceExt};
use serde_json::value::RawValue;

use crate::records::{ClusterObject, ObjectKey, ObjectKind};
use crate::source::kube::decode::{self, Undecodable};
use crate::source::kube::faults::shorten;
use crate::source::kube::protobuf;
use crate::source::objects::{self, FieldError};
use crate::source::pod::DnsPod;
use crate::source::service_import::{ServiceExport, ServiceImport};

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
        ObjectKind::Namespace => decode::object::<Namespace>(raw).map(|o| record(kind, o)),
        ObjectKind::Service => decode::object::<Service>(raw).map(|o| record(kind, o)),
        ObjectKind::Pod => decode::object::<DnsPod>(raw).map(|o| record(kind, o)),
        ObjectKind::EndpointSlice | ObjectKind::ImportSlice => {
            decode::object::<EndpointSlice>(raw).map(|o| record(kind, o))
        }
        ObjectKind::ServiceImport => decode::object::<ServiceImport>(raw).map(|o| record(kind, o)),
        ObjectKind::ServiceExport => decode::object::<ServiceExport>(raw).map(|o| record(kind, o)),
    }
}

/// Reads one object of `kind` from its protobuf encoding (a list's item, or a watch event's
/// object out of its envelope).
pub(super) fn decode_protobuf(kind: ObjectKind, bytes: &[u8]) -> Result<Decoded, Undecodable> {
    let decoded = match kind {
        ObjectKind::Namespace => protobuf::objects::namespace(bytes).map(|o| record(kind, o)),
        ObjectKind::Service => protobuf::objects::service(bytes).map(|o| record(kind, o)),
        ObjectKind::Pod => protobuf::objects::pod(bytes).map(|o| record(kind, o)),
        ObjectKind::EndpointSlice | ObjectKind::ImportSlice => {
            protobuf::objects::endpoint_slice(bytes).map(|o| record(kind, o))
        }
        // Custom resources are served as JSON only: the API never sends one this way.
        ObjectKind::ServiceImport | ObjectKind::ServiceExport => Err(protobuf::Malformed(
            "a Multi-Cluster Services object is a custom resource, served as JSON only".into(),
        )),
    };
    decoded.map_err(|error| Undecodable {
        object: protobuf::objects::identity(bytes).describe(),
        error: shorten(&error.to_string()),
    })
}

/// The objects DNS reads, each with the rule that makes its record.
trait Kind: Resource {
    fn record(&self) -> Result<Option<ClusterObject>, FieldError>;
}

impl Kind for Namespace {
    fn record(&self) -> Result<Option<ClusterObject>, FieldError> {
        objects::namespace_name(&self.metadata).map(|n| Some(ClusterObject::Namespace(n)))
    }
}

impl Kind for Service {
    fn record(&self) -> Result<Option<ClusterObject>, FieldError> {
        objects::service_record(self).map(|r| Some(ClusterObject::Service(r)))
    }
}

impl Kind for DnsPod {
    fn record(&self) -> Result<Option<ClusterObject>, FieldError> {
        objects::pod_object(self).map(Some)
    }
}

impl Kind for ServiceImport {
    fn record(&self) -> Result<Option<ClusterObject>, FieldError> {
        objects::service_import_record(self).map(|r| Some(ClusterObject::ServiceImport(r)))
    }
}

impl Kind for ServiceExport {
    fn record(&self) -> Result<Option<ClusterObject>, FieldError> {
        objects::service_export_record(self).map(Some)
    }
}

impl Kind for EndpointSlice {
    fn record(&self) -> Result<Option<ClusterObject>, FieldError> {
        objects::endpoint_slice_record(self).map(|r| r.map(ClusterObject::EndpointSlice))
    }
}

/// A decoded object's record, key and version, whichever encoding it came in.
fn record<K: Kind>(kind: ObjectKind, object: K) -> Decoded {
    let name = object.name_any();
    let key = match kind {
        ObjectKind::Namespace => ObjectKey::of_namespace(&Arc::from(name)),
        _ => ObjectKey::new(
            &object.namespace().unwrap_or_else(|| "default".into()),
            &name,
        ),
    };
    // A slice both an MCS controller's and a Service's is the import's: the watch of local
    // slices, which sees it by its other label, leaves it to the watch of imported ones.
    let record = object
        .record()
        .map(|record| record.filter(|record| record.kind() == kind));
    Decoded {
        record,
        key,
        version: object.resource_version(),
    }
}

/// The API path of `kind`'s objects in `namespace` (all namespaces: `None`).
pub(super) fn url_path(kind: ObjectKind, namespace: Option<&str>) -> String {
    match kind {
        ObjectKind::Namespace => Namespace::url_path(&(), None),
        ObjectKind::Service => Service::url_path(&(), namespace),
        ObjectKind::Pod => DnsPod::url_path(&(), namespace),
        ObjectKind::EndpointSlice | ObjectKind::ImportSlice => {
            EndpointSlice::url_path(&(), namespace)
        }
        ObjectKind::ServiceImport => ServiceImport::url_path(&(), namespace),
        ObjectKind::ServiceExport => ServiceExport::url_path(&(), namespace),
    }
}

/// The resource as RBAC names it: `pods`, `endpointslices.discovery.k8s.io`.
pub(super) fn resource(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Namespace => "namespaces",
        ObjectKind::Service => "services",
        ObjectKind::Pod => "pods",
        ObjectKind::EndpointSlice | ObjectKind::ImportSlice => "endpointslices.discovery.k8s.io",
        ObjectKind::ServiceImport => "serviceimports.multicluster.x-k8s.io",
        ObjectKind::ServiceExport => "serviceexports.multicluster.x-k8s.io",
    }
}

/// The resource's plural alone, for logs: `pods`, `endpointslices`.
pub(super) fn plural(kind: ObjectKind) -> &'static str {
    resource(kind).split('.').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ImportKind;

    #[test]
    fn service_imports_are_read_from_json_only() {
        let text = br#"{"apiVersion":"multicluster.x-k8s.io/v1alpha1","kind":"ServiceImport",
            "metadata":{"name":"db","namespace":"shop","resourceVersion":"7"},
            "spec":{"type":"Headless","ports":[{"name":"pg","port":5432,"protocol":"TCP"}]}}"#;
        let decoded = decode_bytes(ObjectKind::ServiceImport, text).unwrap();
        assert_eq!(
            (decoded.key, decoded.version.as_deref()),
            (ObjectKey::new("shop", "db"), Some("7"))
        );
        let Ok(Some(ClusterObject::ServiceImport(import))) = decoded.record else {
            panic!("not an import: {:?}", decoded.record);
        };
        assert_eq!(import.kind, ImportKind::Headless);
        assert_eq!(
            url_path(ObjectKind::ServiceImport, Some("shop")),
            "/apis/multicluster.x-k8s.io/v1alpha1/namespaces/shop/serviceimports"
        );
        let refused = decode_protobuf(ObjectKind::ServiceImport, b"k8s\0").unwrap_err();
        assert!(refused.error.contains("JSON only"), "{refused:?}");
    }
}
