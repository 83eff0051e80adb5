//! The fields DNS keeps of a Pod, Service, EndpointSlice or Namespace, read from protobuf into
//! the same types the JSON path fills, so that one set of rules ([`crate::source::objects`])
//! makes records of both. Field numbers are those of the API's `generated.proto` (core/v1,
//! discovery/v1, meta/v1); every other field is skipped unread.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use crate::source::kube::decode::IdentityMeta;
use crate::source::kube::protobuf::{Fields, Malformed, Value, malformed, unwrap_envelope};
use crate::source::pod::{
    DnsContainer, DnsContainerPort, DnsPod, DnsPodCondition, DnsPodIp, DnsPodSpec, DnsPodStatus,
    DuplicateKey,
};

/// Reads the fields of message `bytes` named `at`, handing each to `field`.
fn each<'a>(
    bytes: &'a [u8],
    mut field: impl FnMut(u64, Value<'a>) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    for item in Fields::new(bytes) {
        let (number, value) = item?;
        field(number, value)?;
    }
    Ok(())
}

fn string(value: Value<'_>, field: &str) -> Result<String, Malformed> {
    value.string(field).map(str::to_owned)
}

/// A `map<string, string>` entry added to `map`, refusing a key given twice as the JSON path does.
fn map_entry(
    map: &mut BTreeMap<String, String>,
    value: Value<'_>,
    field: &str,
) -> Result<(), Malformed> {
    let (mut key, mut entry) = (String::new(), String::new());
    each(value.bytes(field)?, |number, value| {
        match number {
            1 => key = string(value, field)?,
            2 => entry = string(value, field)?,
            _ => {}
        }
        Ok(())
    })?;
    if map.contains_key(&key) {
        return Err(malformed(format!("{field}: {}", DuplicateKey(&key))));
    }
    map.insert(key, entry);
    Ok(())
}

/// The metadata fields the JSON path keeps (see `source::pod::metadata`).
pub(crate) fn metadata(bytes: &[u8]) -> Result<ObjectMeta, Malformed> {
    let mut meta = ObjectMeta::default();
    each(bytes, |number, value| {
        match number {
            1 => meta.name = Some(string(value, "metadata.name")?),
            3 => meta.namespace = Some(string(value, "metadata.namespace")?),
            6 => meta.resource_version = Some(string(value, "metadata.resourceVersion")?),
            9 => {
                value
                    .message("metadata.deletionTimestamp")?
                    .try_for_each(|f| f.map(drop))?;
                meta.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
            }
            11 => map_entry(
                meta.labels.get_or_insert_default(),
                value,
                "metadata.labels",
            )?,
            13 if meta.owner_references.is_none() => {
                let owner = owner_reference(value)?;
                if owner.kind == "StatefulSet" && owner.controller == Some(true) {
                    meta.owner_references = Some(vec![owner]);
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(meta)
}

/// An owner reference, as far as telling a controlling StatefulSet goes.
fn owner_reference(value: Value<'_>) -> Result<OwnerReference, Malformed> {
    let mut owner = OwnerReference::default();
    each(value.bytes("metadata.ownerReferences")?, |number, value| {
        match number {
            1 => owner.kind = string(value, "metadata.ownerReferences.kind")?,
            3 => owner.name = string(value, "metadata.ownerReferences.name")?,
            6 => owner.controller = Some(value.bool("metadata.ownerReferences.controller")?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(owner)
}

pub(crate) fn pod(bytes: &[u8]) -> Result<DnsPod, Malformed> {
    let mut pod = DnsPod::default();
    each(bytes, |number, value| {
        match number {
            1 => pod.metadata = metadata(value.bytes("metadata")?)?,
            2 => pod.spec = Some(pod_spec(value.bytes("spec")?)?),
            3 => pod.status = Some(pod_status(value.bytes("status")?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(pod)
}

fn pod_spec(bytes: &[u8]) -> Result<DnsPodSpec, Malformed> {
    let mut spec = DnsPodSpec::default();
    each(bytes, |number, value| {
        match number {
            2 => {
                let mut container = DnsContainer::default();
                each(value.bytes("spec.containers")?, |number, value| {
                    if number == 6 {
                        let port = container_port(value)?;
                        container.ports.get_or_insert_default().push(port);
                    }
                    Ok(())
                })?;
                spec.containers.get_or_insert_default().push(container);
            }
            16 => spec.hostname = Some(string(value, "spec.hostname")?),
            17 => spec.subdomain = Some(string(value, "spec.subdomain")?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(spec)
}

fn container_port(value: Value<'_>) -> Result<DnsContainerPort, Malformed> {
    let field = "spec.containers.ports";
    let mut port = DnsContainerPort::default();
    each(value.bytes(field)?, |number, value| {
        match number {
            1 => port.name = Some(string(value, field)?),
            3 => port.container_port = value.int32(field)?,
            4 => port.protocol = Some(string(value, field)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(port)
}

fn pod_status(bytes: &[u8]) -> Result<DnsPodStatus, Malformed> {
    let mut status = DnsPodStatus::default();
    each(bytes, |number, value| {
        match number {
            1 => status.phase = Some(string(value, "status.phase")?),
            2 => {
                let mut condition = DnsPodCondition::default();
                each(value.bytes("status.conditions")?, |number, value| {
                    match number {
                        1 => condition.type_ = string(value, "status.conditions.type")?,
                        2 => condition.status = string(value, "status.conditions.status")?,
                        _ => {}
                    }
                    Ok(())
                })?;
                status.conditions.get_or_insert_default().push(condition);
            }
            6 => status.pod_ip = Some(string(value, "status.podIP")?),
            12 => {
                let mut ip = DnsPodIp::default();
                each(value.bytes("status.podIPs")?, |number, value| {
                    if number == 1 {
                        ip.ip = string(value, "status.podIPs.ip")?;
                    }
                    Ok(())
                })?;
                status.pod_ips.get_or_insert_default().push(ip);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(status)
}

pub(crate) fn service(bytes: &[u8]) -> Result<Service, Malformed> {
    let mut service = Service::default();
    each(bytes, |number, value| {
        match number {
            1 => service.metadata = metadata(value.bytes("metadata")?)?,
            2 => service.spec = Some(service_spec(value.bytes("spec")?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(service)
}

fn service_spec(bytes: &[u8]) -> Result<ServiceSpec, Malformed> {
    let mut spec = ServiceSpec::default();
    each(bytes, |number, value| {
        match number {
            1 => spec
                .ports
                .get_or_insert_default()
                .push(service_port(value)?),
            2 => map_entry(
                spec.selector.get_or_insert_default(),
                value,
                "spec.selector",
            )?,
            3 => spec.cluster_ip = Some(string(value, "spec.clusterIP")?),
            4 => spec.type_ = Some(string(value, "spec.type")?),
            10 => spec.external_name = Some(string(value, "spec.externalName")?),
            13 => {
                spec.publish_not_ready_addresses =
                    Some(value.bool("spec.publishNotReadyAddresses")?);
            }
            18 => spec
                .cluster_ips
                .get_or_insert_default()
                .push(string(value, "spec.clusterIPs")?),
            19 => spec
                .ip_families
                .get_or_insert_default()
                .push(string(value, "spec.ipFamilies")?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(spec)
}

fn service_port(value: Value<'_>) -> Result<ServicePort, Malformed> {
    let field = "spec.ports";
    let mut port = ServicePort::default();
    each(value.bytes(field)?, |number, value| {
        match number {
            1 => port.name = Some(string(value, field)?),
            2 => port.protocol = Some(string(value, field)?),
            3 => port.port = value.int32(field)?,
            4 => port.target_port = Some(int_or_string(value, "spec.ports.targetPort")?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(port)
}

/// `intstr.IntOrString`: its type (0 a number, 1 a string) says which field holds it.
fn int_or_string(value: Value<'_>, field: &str) -> Result<IntOrString, Malformed> {
    let (mut is_string, mut number, mut text) = (false, 0, String::new());
    each(value.bytes(field)?, |n, value| {
        match n {
            1 => is_string = value.varint(field)? == 1,
            2 => number = value.int32(field)?,
            3 => text = string(value, field)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(if is_string {
        IntOrString::String(text)
    } else {
        IntOrString::Int(number)
    })
}

pub(crate) fn endpoint_slice(bytes: &[u8]) -> Result<EndpointSlice, Malformed> {
    let mut slice = EndpointSlice::default();
    each(bytes, |number, value| {
        match number {
            1 => slice.metadata = metadata(value.bytes("metadata")?)?,
            2 => slice.endpoints.push(endpoint(value)?),
            3 => slice
                .ports
                .get_or_insert_default()
                .push(endpoint_port(value)?),
            4 => slice.address_type = string(value, "addressType")?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(slice)
}

fn endpoint(value: Value<'_>) -> Result<Endpoint, Malformed> {
    let mut endpoint = Endpoint::default();
    each(value.bytes("endpoints")?, |number, value| {
        match number {
            1 => endpoint
                .addresses
                .push(string(value, "endpoints.addresses")?),
            2 => {
                let mut conditions = EndpointConditions::default();
                each(value.bytes("endpoints.conditions")?, |number, value| {
                    let flag = Some(value.bool("endpoints.conditions")?);
                    match number {
                        1 => conditions.ready = flag,
                        2 => conditions.serving = flag,
                        3 => conditions.terminating = flag,
                        _ => {}
                    }
                    Ok(())
                })?;
                endpoint.conditions = Some(conditions);
            }
            3 => endpoint.hostname = Some(string(value, "endpoints.hostname")?),
            4 => {
                let mut reference = ObjectReference::default();
                each(value.bytes("endpoints.targetRef")?, |number, value| {
                    match number {
                        1 => reference.kind = Some(string(value, "endpoints.targetRef.kind")?),
                        2 => {
                            reference.namespace =
                                Some(string(value, "endpoints.targetRef.namespace")?);
                        }
                        3 => reference.name = Some(string(value, "endpoints.targetRef.name")?),
                        _ => {}
                    }
                    Ok(())
                })?;
                endpoint.target_ref = Some(reference);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(endpoint)
}

fn endpoint_port(value: Value<'_>) -> Result<EndpointPort, Malformed> {
    let field = "ports";
    let mut port = EndpointPort::default();
    each(value.bytes(field)?, |number, value| {
        match number {
            1 => port.name = Some(string(value, field)?),
            2 => port.protocol = Some(string(value, field)?),
            3 => port.port = Some(value.int32(field)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(port)
}

pub(crate) fn namespace(bytes: &[u8]) -> Result<Namespace, Malformed> {
    let mut namespace = Namespace::default();
    each(bytes, |number, value| {
        if number == 1 {
            namespace.metadata = metadata(value.bytes("metadata")?)?;
        }
        Ok(())
    })?;
    Ok(namespace)
}

/// An object's name, namespace, version and annotations, read even where the rest does not
/// decode.
pub(crate) fn identity(bytes: &[u8]) -> IdentityMeta {
    let mut meta = IdentityMeta::default();
    for (number, value) in Fields::new(bytes).map_while(Result::ok) {
        if number == 1 {
            for (number, value) in value
                .bytes("metadata")
                .map(Fields::new)
                .into_iter()
                .flatten()
                .map_while(Result::ok)
            {
                let text = || value.string("").ok().map(str::to_owned);
                match number {
                    1 => meta.name = text(),
                    3 => meta.namespace = text(),
                    6 => meta.resource_version = text(),
                    12 => {
                        let _ = map_entry(meta.annotations.get_or_insert_default(), value, "");
                    }
                    _ => {}
                }
            }
        }
    }
    meta
}

/// A `metav1.Status`'s code and message (a watch's ERROR event).
pub(crate) fn status(bytes: &[u8]) -> (u16, String) {
    let (mut code, mut message) = (0, String::new());
    for (number, value) in Fields::new(bytes).map_while(Result::ok) {
        match number {
            3 => message = value.string("message").unwrap_or_default().to_owned(),
            6 => {
                code = value
                    .int32("code")
                    .map_or(0, |c| u16::try_from(c).unwrap_or(0))
            }
            _ => {}
        }
    }
    (code, message)
}

/// The message of an enveloped `metav1.Status` (an error response's body), or a note that
/// there was none.
pub(crate) fn status_message(body: &[u8]) -> String {
    match unwrap_envelope(body).map(status) {
        Ok((_, message)) if !message.is_empty() => message,
        _ => "(no message)".into(),
    }
}
