//! One document of a manifests file read into objects: straight from the YAML or JSON parser
//! (Pods into only the fields DNS keeps, `List` items one at a time, a mapping key given twice
//! refused), each object checked as the API server would, and errors that name the document,
//! the object and the field.

use std::fmt;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tracing::debug;

use crate::records::ClusterObject;
use crate::source::objects::{self, FieldError};
use crate::source::pod::{DnsPod, DuplicateKey};
use crate::source::service_import::{self, ServiceExport, ServiceImport};

/// Where in a file an object sits, for error messages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Location {
    /// 1-based document number.
    document: usize,
    /// 0-based index in a `List`'s `items`.
    item: Option<usize>,
}

/// An object (or a document) in the input that cannot be served.
#[derive(Debug)]
pub struct ParseError {
    pub(super) document: Option<usize>,
    pub(super) item: Option<usize>,
    /// `Kind namespace/name`, when known.
    pub(super) object: Option<String>,
    pub(super) message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(document) = self.document {
            write!(f, "document {document}")?;
            if let Some(item) = self.item {
                write!(f, ", items[{item}]")?;
            }
            if let Some(object) = &self.object {
                write!(f, " ({object})")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ParseError {}

/// How objects are read: [`CAREFUL`] reads each through a tree of values; [`STREAMING`] reads
/// pods into their fields as they are parsed.
pub(super) type Careful = bool;

pub(super) const CAREFUL: Careful = true;

pub(super) const STREAMING: Careful = false;

/// The objects of one document, converted as it is read: a List's `items` (or a top-level
/// sequence) one at a time; any other mapping as one object.
#[derive(Default)]
pub(super) struct DocumentObjects<const C: Careful> {
    pub(super) objects: Vec<ClusterObject>,
    /// Beside each object, its index in the document's List, if it is an item.
    pub(super) items: Vec<Option<u32>>,
    /// Items of the List in the document before (a List is parsed a run of items at a time).
    pub(super) continues: bool,
    /// The first object DNS cannot use (its document number is filled in by [`parse`]).
    pub(super) failure: Option<ParseError>,
}

impl<const C: Careful> DocumentObjects<C> {
    fn take(&mut self, value: Value, item: Option<usize>) {
        if self.failure.is_some() {
            return;
        }
        let before = self.objects.len();
        match collect(value, Location { document: 0, item }, &mut self.objects) {
            Ok(()) => {
                let item = item.map(|i| u32::try_from(i).unwrap_or(u32::MAX));
                self.items.resize(self.objects.len(), item);
                debug_assert!(self.objects.len() <= before + 1);
            }
            Err(failure) => self.failure = Some(failure),
        }
    }

    /// A pod read field by field (see [`ObjectVisitor`]), converted as [`collect`] would.
    fn take_pod(&mut self, pod: &DnsPod, item: Option<usize>) {
        if self.failure.is_some() {
            return;
        }
        match objects::pod_object(pod) {
            Ok(object) => {
                self.objects.push(object);
                self.items
                    .push(item.map(|i| u32::try_from(i).unwrap_or(u32::MAX)));
            }
            Err(e) => {
                let meta = &pod.metadata;
                self.failure = Some(ParseError {
                    document: None,
                    item,
                    object: Some(describe_object(
                        "Pod",
                        meta.namespace.as_deref(),
                        meta.name.as_deref(),
                    )),
                    message: e.to_string(),
                });
            }
        }
    }
}

impl<'de, const C: Careful> Deserialize<'de> for DocumentObjects<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DocumentSeed { first_item: 0 }.deserialize(deserializer)
    }
}

/// A document whose items (when it is a sequence) are numbered from `first_item`.
pub(super) struct DocumentSeed<const C: Careful> {
    pub(super) first_item: usize,
}

impl<'de, const C: Careful> DeserializeSeed<'de> for DocumentSeed<C> {
    type Value = DocumentObjects<C>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(DocumentVisitor {
            first_item: self.first_item,
        })
    }
}

struct DocumentVisitor<const C: Careful> {
    pub(super) first_item: usize,
}

impl<'de, const C: Careful> Visitor<'de> for DocumentVisitor<C> {
    type Value = DocumentObjects<C>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object or a list of them")
    }

    fn visit_unit<E: de::Error>(self) -> Result<DocumentObjects<C>, E> {
        Ok(DocumentObjects::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<DocumentObjects<C>, E> {
        Ok(DocumentObjects::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, items: A) -> Result<DocumentObjects<C>, A::Error> {
        let mut document = DocumentObjects::default();
        ItemsVisitor {
            document: &mut document,
            first: self.first_item,
        }
        .visit_seq(items)?;
        Ok(document)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DocumentObjects<C>, A::Error> {
        let mut document = DocumentObjects::default();
        ObjectVisitor {
            document: &mut document,
            item: None,
        }
        .visit_map(map)?;
        Ok(document)
    }
}

/// One object, converted into `document`: a document's (which may be a List with `items`) or
/// an item's of a List.
///
/// Its fields are kept as values until its `apiVersion` and `kind` are known. When reading
/// [`STREAMING`] and these are the only fields kept so far and name a Pod, the rest is read
/// straight into a [`DnsPod`], skipping what DNS does not use. Anything that is not a mapping
/// is an error in that mode (the careful reading names it).
struct ObjectVisitor<'a, const C: Careful> {
    document: &'a mut DocumentObjects<C>,
    item: Option<usize>,
}

/// Whether `fields` hold exactly a Pod's `apiVersion: v1` and `kind: Pod`.
fn only_pod_head(fields: &serde_json::Map<String, Value>) -> bool {
    fields.len() == 2
        && fields.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && fields.get("kind").and_then(Value::as_str) == Some("Pod")
}

impl<'de, const C: Careful> Visitor<'de> for ObjectVisitor<'_, C> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut fields = serde_json::Map::new();
        let mut pod: Option<DnsPod> = None;
        let mut listed = false;
        // Keys read into `pod` or `items` rather than kept in `fields`: the usual ones as bits
        // (no allocation per object, whose leftovers would sit between the records kept).
        let mut streamed = 0u8;
        let mut streamed_others: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let bit = match key.as_str() {
                "metadata" => 1,
                "spec" => 2,
                "status" => 4,
                "items" => 8,
                _ => 0,
            };
            let repeated = match bit {
                0 => streamed_others.contains(&key),
                bit => streamed & bit != 0,
            };
            if repeated || fields.contains_key(&key) {
                return Err(de::Error::custom(DuplicateKey(&key)));
            }
            if let Some(pod) = &mut pod {
                match key.as_str() {
                    "metadata" => pod.metadata = map.next_value_seed(MetadataSeed)?,
                    "spec" => pod.spec = map.next_value()?,
                    "status" => pod.status = map.next_value()?,
                    _ => {
                        map.next_value::<de::IgnoredAny>()?;
                        streamed_others.push(key);
                    }
                }
                streamed |= bit;
            } else if key == "items" && self.item.is_none() {
                listed = true;
                map.next_value_seed(ItemsSeed(&mut *self.document))?;
                streamed |= bit;
            } else {
                let value = map.next_value_seed(StrictValue)?;
                fields.insert(key, value);
                if !C && only_pod_head(&fields) {
                    pod = Some(DnsPod::default());
                }
            }
        }
        match pod {
            Some(pod) => self.document.take_pod(&pod, self.item),
            None if listed => {}
            None => self.document.take(Value::Object(fields), self.item),
        }
        Ok(())
    }
}

/// A tree of values, as `serde_json::Value` reads it, except that a mapping repeating a key is
/// an error.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictValue)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(StrictValue)? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(DuplicateKey(&key)));
            }
            let value = map.next_value_seed(StrictValue)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// A pod's `metadata`, the fields DNS uses.
struct MetadataSeed;

impl<'de> DeserializeSeed<'de> for MetadataSeed {
    type Value = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        crate::source::pod::metadata(deserializer)
    }
}

/// A list's `items`, each converted and dropped before the next is read.
/// The objects of a JSON array of List items (a run cut out of a List's `items`), each read as
/// an item of that List is.
pub(super) fn json_items(array: &[u8]) -> Result<DocumentObjects<STREAMING>, serde_json::Error> {
    let mut document = DocumentObjects::default();
    let mut deserializer = serde_json::Deserializer::from_slice(array);
    ItemsSeed(&mut document).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(document)
}

struct ItemsSeed<'a, const C: Careful>(&'a mut DocumentObjects<C>);

impl<'de, const C: Careful> DeserializeSeed<'de> for ItemsSeed<'_, C> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(ItemsVisitor {
            document: self.0,
            first: 0,
        })
    }
}

/// Items numbered from `first`.
struct ItemsVisitor<'a, const C: Careful> {
    document: &'a mut DocumentObjects<C>,
    first: usize,
}

impl<'de, const C: Careful> Visitor<'de> for ItemsVisitor<'_, C> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut index = self.first;
        if C {
            while let Some(item) = items.next_element_seed(StrictValue)? {
                self.document.take(item, Some(index));
                index += 1;
            }
        } else {
            while let Some(()) = items.next_element_seed(ItemSeed {
                document: &mut *self.document,
                item: index,
            })? {
                index += 1;
            }
        }
        Ok(())
    }
}

/// One item of a List, read by [`ObjectVisitor`].
struct ItemSeed<'a, const C: Careful> {
    document: &'a mut DocumentObjects<C>,
    item: usize,
}

impl<'de, const C: Careful> DeserializeSeed<'de> for ItemSeed<'_, C> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(ObjectVisitor {
            document: self.document,
            item: Some(self.item),
        })
    }
}

pub(super) fn collect(
    document: Value,
    at: Location,
    out: &mut Vec<ClusterObject>,
) -> Result<(), ParseError> {
    let fail = |object: Option<String>, message: String| ParseError {
        document: Some(at.document),
        item: at.item,
        object,
        message,
    };
    let fields = match &document {
        Value::Null => return Ok(()),
        Value::Object(fields) => fields,
        _ => {
            return Err(fail(
                None,
                "not a Kubernetes object (a mapping with a kind)".into(),
            ));
        }
    };
    let kind = match fields.get("kind") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err(fail(None, "kind: missing".into())),
    };
    if kind.ends_with("List") && at.item.is_none() {
        // A list's items are read by `DocumentObjects` as they stream past; here it had none.
        return Err(fail(None, "items: missing".into()));
    }
    // kubectl rejects an object without one; skipping it as "another kind" would hide the mistake.
    let api_version = match fields.get("apiVersion") {
        Some(Value::String(version)) if !version.is_empty() => version.as_str(),
        _ => return Err(fail(None, "apiVersion: missing".into())),
    };
    let description = describe(&kind, &document);
    let object = match (api_version, kind.as_str()) {
        ("v1", "Service") => {
            let service: Service =
                typed(document).map_err(|e| fail(Some(description.clone()), e))?;
            objects::service_record(&service).map(ClusterObject::Service)
        }
        ("v1", "Pod") => {
            let pod: DnsPod = typed(document).map_err(|e| fail(Some(description.clone()), e))?;
            objects::pod_object(&pod)
        }
        ("v1", "Namespace") => {
            let namespace: Namespace =
                typed(document).map_err(|e| fail(Some(description.clone()), e))?;
            objects::namespace_name(&namespace.metadata).map(ClusterObject::Namespace)
        }
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            let slice: EndpointSlice =
                typed(document).map_err(|e| fail(Some(description.clone()), e))?;
            match objects::endpoint_slice_record(&slice) {
                Ok(Some(record)) => Ok(ClusterObject::EndpointSlice(record)),
                Ok(None) => {
                    debug!(
                        document = at.document,
                        "skipping an EndpointSlice DNS does not use"
                    );
                    return Ok(());
                }
                Err(e) => Err(e),
            }
        }
        (version, "ServiceImport") if service_import::read_version(version) => {
            let import: ServiceImport =
                typed(document).map_err(|e| fail(Some(description.clone()), e))?;
            objects::service_import_record(&import).map(ClusterObject::ServiceImport)
        }
        (version, "ServiceExport") if service_import::read_version(version) => {
            let export: ServiceExport =
                typed(document).map_err(|e| fail(Some(description.clone()), e))?;
            objects::service_export_record(&export)
        }
        (_, "ServiceImport" | "ServiceExport") => {
            return Err(fail(
                Some(description),
                format!(
                    "apiVersion: {api_version:?} is not a version of {kind} this server reads \
                     ({group}/v1alpha1 or v1beta1)",
                    group = service_import::GROUP
                ),
            ));
        }
        (_, "Service" | "Pod" | "Namespace") => {
            return Err(fail(
                Some(description),
                format!(
                    "apiVersion: {api_version:?} is not a version of {kind} this server reads (v1)"
                ),
            ));
        }
        (_, "EndpointSlice") => {
            return Err(fail(
                Some(description),
                format!(
                    "apiVersion: {api_version:?} is not a version of EndpointSlice this server \
                     reads (discovery.k8s.io/v1)"
                ),
            ));
        }
        _ => {
            debug!(document = at.document, item = ?at.item, %kind, api_version, "skipping object of another kind");
            return Ok(());
        }
    };
    out.push(object.map_err(|e: FieldError| fail(Some(description), e.to_string()))?);
    Ok(())
}

/// Deserializes into a k8s-openapi type, naming the field at fault on error.
fn typed<T: DeserializeOwned>(document: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// `Pod default/web-0`, as far as the metadata tells.
fn describe(kind: &str, document: &Value) -> String {
    let meta = document.get("metadata");
    let field = |name: &str| meta.and_then(|m| m.get(name)).and_then(Value::as_str);
    describe_object(kind, field("namespace"), field("name"))
}

pub(super) fn describe_object(kind: &str, namespace: Option<&str>, name: Option<&str>) -> String {
    match (namespace, name) {
        (Some(ns), Some(name)) => format!("{kind} {ns}/{name}"),
        (None, Some(name)) => format!("{kind} {name}"),
        _ => kind.to_owned(),
    }
}
