//! The manifests source: Kubernetes objects (Services, Pods, EndpointSlices, Namespaces) from a file (`kubectl get -o yaml|json` output,
//! multi-document YAML, or single objects), reloaded whenever the file changes.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKind};
use crate::source::objects::{self, FieldError};
use crate::source::pod::{DnsPod, DuplicateKey};
use crate::source::stats::SourceStats;
use crate::source::yaml::{self, Piece, PieceKind};

/// How often the file is checked for changes: well inside the one-second reload promise.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Where in a file an object sits, for error messages.
#[derive(Debug, Clone, Copy)]
struct Location {
    /// 1-based document number.
    document: usize,
    /// 0-based index in a `List`'s `items`.
    item: Option<usize>,
}

/// An object (or a document) in the input that cannot be served.
#[derive(Debug)]
pub struct ParseError {
    document: Option<usize>,
    item: Option<usize>,
    /// `Kind namespace/name`, when known.
    object: Option<String>,
    message: String,
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

/// Parses every object DNS cares about; other kinds are skipped. Objects are converted while
/// the text is read, so a large file is never held as one tree of values.
///
/// Pods (nearly every object of a large file) are read straight into the few fields DNS keeps
/// once their `apiVersion` and `kind` have been read, which come first in `kubectl` output;
/// other objects go through a tree of values. Building that tree for every pod took a third
/// of the start at 100k pods. A text that fails this way is read again the careful way
/// (every object through a tree), whose messages name the document, the object and the field.
pub fn parse(text: &str) -> Result<Vec<ClusterObject>, ParseError> {
    parse_in::<STREAMING>(text).or_else(|_| parse_in::<CAREFUL>(text))
}

/// How objects are read: [`CAREFUL`] reads each through a tree of values; [`STREAMING`] reads
/// pods into their fields as they are parsed.
type Careful = bool;
const CAREFUL: Careful = true;
const STREAMING: Careful = false;

fn parse_in<const C: Careful>(text: &str) -> Result<Vec<ClusterObject>, ParseError> {
    let syntax = |message: String| ParseError {
        document: None,
        item: None,
        object: None,
        message,
    };
    let trimmed = text.trim_start();
    let documents = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut documents = Documents::default();
        for document in serde_json::Deserializer::from_str(text).into_iter::<DocumentObjects<C>>() {
            documents.push(document.map_err(|e| syntax(format!("invalid JSON: {e}")))?);
            if documents.failure.is_some() {
                break;
            }
        }
        documents
    } else {
        parse_yaml_documents::<C>(text).map_err(syntax)?
    };
    match documents.failure {
        Some(failure) => Err(failure),
        None => {
            refuse_duplicates(&documents)?;
            Ok(documents.objects)
        }
    }
}

/// Where each object was found: its document (counted from the run's start) and its index in
/// that document's List, if it is an item.
type Place = (u32, Option<u32>);

/// The objects of a run of documents, up to the first that DNS cannot use.
#[derive(Default)]
struct Documents {
    objects: Vec<ClusterObject>,
    /// Beside each object, where it was found.
    places: Vec<Place>,
    /// Documents begun in the run.
    count: usize,
    /// Its `document` counts from the run's start (0: the document before the run).
    failure: Option<ParseError>,
}

impl Documents {
    /// Adds the next document (or more items of the last one).
    fn push<const C: Careful>(&mut self, document: DocumentObjects<C>) {
        if self.failure.is_some() {
            return;
        }
        if !document.continues {
            self.count += 1;
        }
        match document.failure {
            Some(mut failure) => {
                failure.document = Some(self.count);
                self.failure = Some(failure);
            }
            None => {
                let at = u32::try_from(self.count).unwrap_or(u32::MAX);
                self.places
                    .extend(document.items.iter().map(|&item| (at, item)));
                self.objects.extend(document.objects);
            }
        }
    }

    /// Adds the run that follows.
    fn append(&mut self, mut next: Documents) {
        if self.failure.is_some() {
            return;
        }
        if let Some(failure) = &mut next.failure {
            failure.document = failure.document.map(|d| d + self.count);
        }
        let shift = u32::try_from(self.count).unwrap_or(u32::MAX);
        self.places.extend(
            next.places
                .iter()
                .map(|&(document, item)| (document.saturating_add(shift), item)),
        );
        self.count += next.count;
        self.failure = next.failure;
        self.objects.append(&mut next.objects);
    }
}

/// A second object of one kind, namespace and name is an error, naming both places: the API
/// server would have one, and which of the two a file means cannot be told.
fn refuse_duplicates(documents: &Documents) -> Result<(), ParseError> {
    let identity = |i: u32| {
        let object = &documents.objects[i as usize];
        (object.kind_name(), object.namespace(), object.name())
    };
    let mut order: Vec<u32> = (0..documents.objects.len() as u32).collect();
    // Stable: of two equal objects, the earlier comes first.
    order.sort_by(|&a, &b| identity(a).cmp(&identity(b)));
    for pair in order.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if identity(first) != identity(second) {
            continue;
        }
        let (kind, namespace, name) = identity(second);
        let described = describe_object(
            kind,
            Some(namespace).filter(|ns| !ns.is_empty()),
            Some(name),
        );
        let (document, item) = documents.places[second as usize];
        let (first_document, first_item) = documents.places[first as usize];
        let first_place = match first_item {
            Some(first_item) => format!("document {first_document}, items[{first_item}]"),
            None => format!("document {first_document}"),
        };
        return Err(ParseError {
            document: Some(document as usize),
            item: item.map(|i| i as usize),
            object: Some(described.clone()),
            message: format!("metadata.name: a second {described} (the first is {first_place})"),
        });
    }
    Ok(())
}

/// YAML is parsed in pieces of about this size (see [`yaml`]), on every core: the parser holds
/// about 20 bytes of events per byte of a document while it parses it (peak while loading a
/// 100k-pod List: 113-117 MB with 512 KB pieces, 99 MB with these).
const YAML_PIECE_BYTES: usize = 128 << 10;

/// Every document of a multi-document YAML text, converted, in order.
fn parse_yaml_documents<const C: Careful>(text: &str) -> Result<Documents, String> {
    let pieces = yaml::pieces(text, YAML_PIECE_BYTES);
    match parse_yaml_pieces::<C>(&pieces) {
        Ok(documents) => Ok(documents),
        // Documents cut at `---` lines always parse alone, a List cut between its items may not
        // (an alias to an earlier item): only the whole text can tell, at the cost of its
        // events in memory.
        Err(_) if C && pieces.iter().any(|p| p.kind == PieceKind::ListHead) => {
            parse_yaml_piece::<C>(text, None).map_err(|e| format!("invalid YAML: {e}"))
        }
        Err(e) => Err(e),
    }
}

/// The documents of the pieces, in order; an error names its line in the whole text.
fn parse_yaml_pieces<const C: Careful>(pieces: &[Piece<'_>]) -> Result<Documents, String> {
    let parse = |piece: &Piece<'_>| -> Result<Documents, String> {
        let first_item = match piece.kind {
            PieceKind::Items { first } => Some(first),
            PieceKind::Documents | PieceKind::ListHead => None,
        };
        parse_yaml_piece::<C>(&piece.text, first_item).map_err(|e| {
            let message = yaml::shift_lines(&e.to_string(), piece.lines_before);
            format!("invalid YAML: {message}")
        })
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get().min(4))
        .min(pieces.len());
    let mut results: Vec<Option<Result<Documents, String>>> = pieces.iter().map(|_| None).collect();
    if threads <= 1 {
        for (result, piece) in results.iter_mut().zip(pieces) {
            *result = Some(parse(piece));
        }
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(piece) = pieces.get(at) else {
                    return done;
                };
                done.push((at, parse(piece)));
            }
        };
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            for worker in workers {
                // A worker that panicked leaves its pieces unparsed: reported below.
                for (at, result) in worker.join().unwrap_or_default() {
                    results[at] = Some(result);
                }
            }
        });
    }
    let mut documents = Documents::default();
    for result in results {
        documents.append(result.unwrap_or_else(|| Err("invalid YAML: parsing failed".into()))?);
    }
    Ok(documents)
}

/// The documents of one YAML text. With `first_item`, the text is a run of items of the List
/// in the document before it, numbered from there.
fn parse_yaml_piece<const C: Careful>(
    text: &str,
    first_item: Option<usize>,
) -> Result<Documents, yaml_serde::Error> {
    let mut documents = Documents::default();
    for document in yaml_serde::Deserializer::from_str(text) {
        let mut document = DocumentSeed {
            first_item: first_item.unwrap_or(0),
        }
        .deserialize(document)?;
        document.continues = first_item.is_some();
        documents.push::<C>(document);
    }
    Ok(documents)
}

/// The objects of one document, converted as it is read: a List's `items` (or a top-level
/// sequence) one at a time; any other mapping as one object.
#[derive(Default)]
struct DocumentObjects<const C: Careful> {
    objects: Vec<ClusterObject>,
    /// Beside each object, its index in the document's List, if it is an item.
    items: Vec<Option<u32>>,
    /// Items of the List in the document before (a List is parsed a run of items at a time).
    continues: bool,
    /// The first object DNS cannot use (its document number is filled in by [`parse`]).
    failure: Option<ParseError>,
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
struct DocumentSeed<const C: Careful> {
    first_item: usize,
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
    first_item: usize,
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

fn collect(document: Value, at: Location, out: &mut Vec<ClusterObject>) -> Result<(), ParseError> {
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

fn describe_object(kind: &str, namespace: Option<&str>, name: Option<&str>) -> String {
    match (namespace, name) {
        (Some(ns), Some(name)) => format!("{kind} {ns}/{name}"),
        (None, Some(name)) => format!("{kind} {name}"),
        _ => kind.to_owned(),
    }
}

/// Where the manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") {
            Input::Stdin
        } else {
            Input::File(arg.to_owned())
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(path) => write!(f, "{}", path.display()),
            Input::Stdin => write!(f, "<stdin>"),
        }
    }
}

/// The objects of an input, read whole.
#[derive(Debug)]
pub struct Loaded {
    pub objects: Vec<ClusterObject>,
    /// The input holds nothing but blank lines and comments: most likely a file being
    /// rewritten (`: > file`, a failed write), not a cluster emptied on purpose, which is an
    /// empty `List`.
    pub blank: bool,
}

/// Reads and parses the whole input; the error is one line naming the input and the place. A
/// file must be a regular file of at most `max_size` bytes, which is checked before reading.
pub fn load(input: &Input, max_size: u64) -> Result<Loaded, String> {
    let too_large = |size: u64| {
        format!(
            "{input}: {} is larger than --manifests-max-size ({})",
            bytes(size),
            bytes(max_size)
        )
    };
    let mut text = String::new();
    let read = match input {
        Input::File(path) => {
            let meta = std::fs::metadata(path).map_err(|e| format!("{input}: cannot read: {e}"))?;
            if !meta.is_file() {
                return Err(format!(
                    "{input}: not a regular file ({}); give a file, or - for standard input",
                    file_type(&meta)
                ));
            }
            if meta.len() > max_size {
                return Err(too_large(meta.len()));
            }
            std::fs::File::open(path)
                .and_then(|f| f.take(max_size.saturating_add(1)).read_to_string(&mut text))
        }
        Input::Stdin => std::io::stdin()
            .take(max_size.saturating_add(1))
            .read_to_string(&mut text),
    };
    read.map_err(|e| format!("{input}: cannot read: {e}"))?;
    if text.len() as u64 > max_size {
        return Err(too_large(text.len() as u64));
    }
    let blank = text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'));
    let objects = parse(&text).map_err(|e| format!("{input}: {e}"))?;
    Ok(Loaded { objects, blank })
}

/// `1.5 GiB`, `300 MiB`, `12 KiB`, `80 bytes`.
fn bytes(n: u64) -> String {
    let units = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in units {
        if n >= 1 << shift {
            let value = n as f64 / (1u64 << shift) as f64;
            return if value.fract() == 0.0 {
                format!("{value} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

/// What kind of file something that is not a regular file is.
fn file_type(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// The event that makes the cluster state equal to the input's objects.
pub fn resync(objects: Vec<ClusterObject>) -> ClusterEvent {
    ClusterEvent::Resync {
        kinds: ObjectKind::ALL.to_vec(),
        namespace: None,
        objects,
    }
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    modified: Option<SystemTime>,
    /// The inode's change time, in nanoseconds: moves with every write even where the
    /// modification time's resolution is coarse.
    changed: i128,
    len: u64,
    inode: u64,
}

/// `None` when the file cannot be stat'ed (for example while it is being replaced).
pub fn fingerprint(path: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    // Follows symlinks, so a ConfigMap mount's swapped `..data` link counts as a change.
    let meta = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: meta.modified().ok(),
        changed: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// A changed file is read only once it has stayed unchanged this long, so that a file still
/// being written — `kubectl get ... > file` writes in several pieces — is not served
/// half-written. Writing a temporary file and renaming it over the old one is still the way
/// to change it in one step.
pub const QUIET_PERIOD: Duration = Duration::from_secs(1);

/// Polls `path` and sends a resync when it has changed and then stayed unchanged for
/// [`QUIET_PERIOD`]. Invalid content is logged and ignored, so the last good state keeps being
/// served; so is a blank file. Ends when the cluster state is gone.
pub async fn watch(
    path: PathBuf,
    mut served: Option<Fingerprint>,
    max_size: u64,
    events: mpsc::Sender<ClusterEvent>,
    stats: Arc<SourceStats>,
) {
    let refused = || {
        SourceStats::count(&stats.reload_failures);
        stats.fell_behind();
    };
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let input = Input::File(path.clone());
    // A version not served yet, and since when it has not changed.
    let mut settling: Option<(Option<Fingerprint>, Instant)> = None;
    loop {
        ticks.tick().await;
        if events.is_closed() {
            return;
        }
        let now = fingerprint(&path);
        match settling {
            None if now == served => continue,
            Some((version, since)) if version == now => {
                if since.elapsed() < QUIET_PERIOD {
                    continue;
                }
            }
            _ => {
                settling = Some((now, Instant::now()));
                continue;
            }
        }
        settling = None;
        if now == served {
            continue;
        }
        served = now;
        if now.is_none() {
            warn!(path = %path.display(), "manifests file is unreadable; serving the last good state");
            refused();
            continue;
        }
        let load_input = input.clone();
        let loaded = match tokio::task::spawn_blocking(move || load(&load_input, max_size)).await {
            Ok(loaded) => loaded,
            Err(e) => Err(format!("{input}: reload failed: {e}")),
        };
        // Changed while being read: what was read may be half of it. Wait for it to settle.
        if fingerprint(&path) != now {
            served = None;
            continue;
        }
        match loaded {
            Ok(loaded) if loaded.blank => {
                warn!(
                    path = %path.display(),
                    "manifests file is empty; serving the last good state (to serve no objects, \
                     write an empty List: `apiVersion: v1`, `kind: List`, `items: []`)"
                );
                refused();
            }
            Ok(loaded) => {
                info!(path = %path.display(), objects = loaded.objects.len(), "manifests changed; reloading");
                if events.send(resync(loaded.objects)).await.is_err() {
                    return;
                }
                SourceStats::count(&stats.reloads);
                stats.caught_up();
            }
            Err(e) => {
                error!("{e}; serving the last good state");
                refused();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{PodHostname, PodTemplate, ServiceKind};
    use std::sync::Arc;

    fn error_of(text: &str) -> String {
        parse(text).expect_err("must be rejected").to_string()
    }

    #[test]
    fn reads_the_demo_cluster() {
        let text = include_str!("../../config/demo-cluster.yaml");
        let objects = parse(text).unwrap();
        let services = objects
            .iter()
            .filter(|o| matches!(o, ClusterObject::Service(_)))
            .count();
        let pods = objects
            .iter()
            .filter(|o| matches!(o, ClusterObject::Pod { .. }))
            .count();
        assert_eq!((services, pods), (3, 4));
    }

    #[test]
    fn reads_kubectl_json_lists_and_skips_other_kinds() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"a","namespace":"ns"},
             "spec":{"clusterIP":"None","selector":{"app":"a"}}},
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}"#;
        let objects = parse(text).unwrap();
        assert_eq!(objects.len(), 1);
        let ClusterObject::Service(service) = &objects[0] else {
            panic!("not a service: {objects:?}");
        };
        assert_eq!(service.kind, ServiceKind::Headless);
        assert_eq!(&*service.key.namespace, "ns");
    }

    #[test]
    fn reads_multi_document_yaml_with_empty_documents() {
        let text = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\n---\n\
                    apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: []\n";
        let objects = parse(text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0], ClusterObject::Namespace("team-a".into()));
        let ClusterObject::Pod { namespace, pod } = &objects[1] else {
            panic!()
        };
        assert_eq!(
            &**namespace, "default",
            "a manifest without namespace is in default"
        );
        assert!(pod.ips.is_empty() && !pod.ready);
    }

    #[test]
    fn errors_name_the_document_the_object_and_the_field() {
        let bad_ip = "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {clusterIP: None}\n---\n\
                      apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: default}\n\
                      spec: {containers: []}\nstatus: {podIP: 10.0.0.300}\n";
        assert_eq!(
            error_of(bad_ip),
            "document 2 (Pod default/web-0): status.podIP: \"10.0.0.300\" is not an IP address"
        );
        let bad_port = r#"{"kind":"List","apiVersion":"v1","items":[{"apiVersion":"v1","kind":"Service",
            "metadata":{"name":"s","namespace":"n"},"spec":{"ports":[{"name":"web","port":"eighty"}]}}]}"#;
        let message = error_of(bad_port);
        assert!(
            message.starts_with(
                "document 1, items[0] (Service n/s): spec.ports[0].port: invalid type"
            ),
            "{message}"
        );
        let bad_name = "apiVersion: v1\nkind: Service\nmetadata: {name: My_Svc}\nspec: {}\n";
        assert!(error_of(bad_name).contains("metadata.name: \"My_Svc\" is not a DNS label"));
        assert_eq!(
            error_of("apiVersion: v1\nmetadata: {name: x}\n"),
            "document 1: kind: missing"
        );
        assert_eq!(
            error_of("kind: Pod\nmetadata: {name: x}\n"),
            "document 1: apiVersion: missing"
        );
        assert_eq!(
            error_of("- just\n- a list\n"),
            "document 1, items[0]: not a Kubernetes object (a mapping with a kind)"
        );
        let external =
            "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ExternalName}\n";
        assert!(error_of(external).ends_with("spec.externalName: missing for type ExternalName"));
        let protocol = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{name: a, port: 1, protocol: QUIC}]}\n";
        assert!(
            error_of(protocol)
                .ends_with("spec.ports[0].protocol: \"QUIC\" is not TCP, UDP or SCTP")
        );
    }

    #[test]
    fn reads_cluster_sized_files() {
        // Beyond serde-saphyr's default budget of 1,024 documents and 250,000 nodes.
        let labels: Vec<String> = (0..80).map(|i| format!("l{i}: v")).collect();
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: ns1, labels: {{{}}}}}\n\
             spec: {{hostname: h, subdomain: s}}\nstatus: {{podIP: 10.0.0.1}}\n",
            labels.join(", ")
        );
        let text: Vec<String> = (0..1_600)
            .map(|i| pod.replace("name: p,", &format!("name: p-{i},")))
            .collect();
        let text = text.join("---\n");
        assert_eq!(parse(&text).unwrap().len(), 1_600);
    }

    #[test]
    fn pods_of_one_template_share_their_naming_from_the_start() {
        let pod = |name: &str, subdomain: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n\
                 spec: {{hostname: {name}, subdomain: {subdomain}, containers: \
                 [{{name: c, ports: [{{name: web, containerPort: 80}}]}}]}}\n"
            )
        };
        let text = [
            pod("web-0", "web"),
            pod("web-1", "web"),
            pod("db-0", "db"),
            pod("web-2", "web"),
        ]
        .join("---\n");
        let templates: Vec<Arc<PodTemplate>> = parse(&text)
            .unwrap()
            .into_iter()
            .map(|object| match object {
                ClusterObject::Pod { pod, .. } => pod.template,
                other => panic!("not a pod: {other:?}"),
            })
            .collect();
        assert!(
            Arc::ptr_eq(&templates[0], &templates[1]) && Arc::ptr_eq(&templates[0], &templates[3])
        );
        assert!(!Arc::ptr_eq(&templates[0], &templates[2]));
        assert_eq!(templates[0].hostname, PodHostname::Name);
        assert_eq!(templates[0].named_ports.len(), 1);
    }

    #[test]
    fn alias_bombs_are_still_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            text.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(error_of(&text).starts_with("invalid YAML"));
    }

    fn yaml_objects(documents: Result<Documents, String>) -> Result<Vec<ClusterObject>, String> {
        let documents = documents?;
        assert!(documents.failure.is_none());
        Ok(documents.objects)
    }

    /// Documents and a List's items parsed in small pieces, on several threads, give what the
    /// whole text gives, errors included (document, item and line numbers).
    #[test]
    fn yaml_parsed_in_pieces_equals_yaml_parsed_whole() {
        let pod = |i: usize, ip: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p-{i}, namespace: ns}}\n\
                 spec: {{containers: []}}\nstatus: {{podIP: '{ip}', conditions: [{{type: Ready, status: 'True'}}]}}\n"
            )
        };
        let documents: String = (0..40)
            .map(|i| format!("---\n{}", pod(i, &format!("10.0.0.{i}"))))
            .collect();
        let list_of = |pods: Vec<String>| {
            let items: String = pods
                .iter()
                .map(|p| format!("- {}", p.trim_end().replace('\n', "\n  ")) + "\n")
                .collect();
            format!("apiVersion: v1\nitems:\n{items}kind: List\nmetadata: {{}}\n")
        };
        let list = list_of((0..40).map(|i| pod(i, &format!("10.0.1.{i}"))).collect());
        let both = format!("{documents}---\n{list}");
        for text in [&documents, &list, &both] {
            let pieces = yaml::pieces(text, 100);
            assert!(pieces.len() > 10, "{}", pieces.len());
            let whole =
                yaml_objects(parse_yaml_piece::<CAREFUL>(text, None).map_err(|e| e.to_string()));
            let whole = whole.unwrap();
            assert!(whole.len() >= 40);
            assert_eq!(
                yaml_objects(parse_yaml_pieces::<CAREFUL>(&pieces)).unwrap(),
                whole
            );
            assert_eq!(
                yaml_objects(parse_yaml_pieces::<STREAMING>(&pieces)).unwrap(),
                whole
            );
        }
        // An object DNS cannot use, late in the List: the same document and item.
        let mut pods: Vec<String> = (0..40).map(|i| pod(i, &format!("10.0.1.{i}"))).collect();
        pods[33] = pod(33, "10.0.1.300");
        let bad = format!("{documents}---\n{}", list_of(pods));
        let expected = "document 41, items[33] (Pod ns/p-33): status.podIP: \"10.0.1.300\" is not an IP address";
        assert_eq!(parse(&bad).unwrap_err().to_string(), expected);
        assert!(yaml::pieces(&bad, YAML_PIECE_BYTES).len() == 1);
        for pieces in [yaml::pieces(&bad, 100), yaml::pieces(&bad, usize::MAX)] {
            let failure = parse_yaml_pieces::<CAREFUL>(&pieces)
                .unwrap()
                .failure
                .unwrap();
            assert_eq!(failure.to_string(), expected);
        }
        // A syntax error late in the file is reported at its place in the file, not in its piece.
        for text in [&documents, &list] {
            let broken = format!("{text}---\nkind: [unclosed\n");
            let whole = parse_yaml_piece::<CAREFUL>(&broken, None)
                .err()
                .unwrap()
                .to_string();
            let expected = format!("invalid YAML: {whole}");
            let line = broken.lines().count();
            assert!(whole.contains(&format!("line {line} ")), "{whole}");
            let pieces = yaml::pieces(&broken, 100);
            assert_eq!(
                parse_yaml_pieces::<CAREFUL>(&pieces).err(),
                Some(expected.clone())
            );
            assert_eq!(
                parse_yaml_pieces::<STREAMING>(&pieces).err(),
                Some(expected)
            );
        }
    }

    /// Pods read field by field give exactly what the careful reading gives, whatever the order
    /// of their fields, and a pod the streaming reading cannot take is reported as carefully.
    #[test]
    fn streaming_and_careful_readings_agree() {
        let pods = [
            // kubectl's order, with fields DNS skips.
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: a, labels: {app: web}, \
             annotations: {x: y}, uid: '1'}\nspec: {hostname: web-0, subdomain: web, nodeName: n, \
             containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]}\n\
             status: {phase: Running, podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}, {ip: 'fd00::1'}], \
             conditions: [{type: Ready, status: 'True'}]}\n",
            // kind last, status first, no namespace.
            "status: {podIP: 10.0.0.2}\nmetadata: {name: b}\napiVersion: v1\nkind: Pod\n",
            // kind before apiVersion; metadata after spec; deletion under way; null status.
            "kind: Pod\napiVersion: v1\nspec: {containers: []}\nmetadata: {name: c, namespace: a, \
             deletionTimestamp: '2026-01-01T00:00:00Z'}\nstatus: null\n",
            // Another kind, named like a Pod's fields, then other kinds around it.
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\n\
             spec: {clusterIP: None, selector: {app: web}}\n",
        ];
        let yaml = pods.join("---\n");
        let demo = include_str!("../../config/demo-cluster.yaml");
        let json: Vec<Value> = yaml_serde::Deserializer::from_str(&yaml)
            .map(|document| Value::deserialize(document).unwrap())
            .collect();
        let json_list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": json});
        for text in [yaml.clone(), demo.to_string(), json_list.to_string()] {
            let careful = parse_in::<CAREFUL>(&text).unwrap();
            assert!(careful.len() >= 4, "{careful:?}");
            assert_eq!(parse_in::<STREAMING>(&text).unwrap(), careful);
        }
        let bad_port = "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: a}\n\
                        spec: {containers: [{ports: [{containerPort: eighty}]}]}\n";
        assert!(parse_in::<STREAMING>(bad_port).is_err());
        let message = error_of(bad_port);
        assert!(
            message.starts_with(
                "document 1 (Pod a/web-0): spec.containers[0].ports[0].containerPort: invalid type"
            ),
            "{message}"
        );
    }

    /// A key given twice is refused, as kubectl does, wherever it is (the parser keeps the last).
    #[test]
    fn duplicate_keys_are_refused() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: n, labels: {app: x}}\n\
                   spec: {containers: []}\n";
        assert!(parse(pod).is_ok());
        for (text, key) in [
            (pod.replace("app: x", "app: x, app: y"), "app"),
            (pod.replace("name: a", "name: a, name: b"), "name"),
            (format!("{pod}spec: {{}}\n"), "spec"),
            (format!("{pod}kind: Pod\n"), "kind"),
            (format!("{pod}extra: 1\nextra: 2\n"), "extra"),
            (pod.replace("kind: Pod", "kind: Service\nkind: Pod"), "kind"),
            (
                "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {a: b, a: c}}\n".into(),
                "a",
            ),
            (
                r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"}}]}"#.into(),
                "name",
            ),
        ] {
            let message = error_of(&text);
            assert!(message.contains(&format!("duplicate key \"{key}\"")), "{text}: {message}");
        }
    }

    /// What the API server refuses, a file may not hold either: a known kind at a version this
    /// server does not read, the same object twice, a single address that is not the first of
    /// the list. Each is named by document (and item) and field.
    #[test]
    fn what_the_api_server_refuses_is_an_error() {
        let pod = |name: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: a}}\nspec: {{containers: []}}\n"
            )
        };
        assert_eq!(
            error_of("apiVersion: v2\nkind: Pod\nmetadata: {name: d}\n"),
            "document 1 (Pod d): apiVersion: \"v2\" is not a version of Pod this server reads (v1)"
        );
        assert_eq!(
            error_of(
                "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: s, namespace: a}\n"
            ),
            "document 1 (EndpointSlice a/s): apiVersion: \"discovery.k8s.io/v1beta1\" is not a \
             version of EndpointSlice this server reads (discovery.k8s.io/v1)"
        );
        // The same object twice: in documents, in a List, and across both.
        let twice = [pod("web-0"), pod("web-1"), pod("web-0")].join("---\n");
        assert_eq!(
            error_of(&twice),
            "document 3 (Pod a/web-0): metadata.name: a second Pod a/web-0 (the first is document 1)"
        );
        let list = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{}},
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"s","namespace":"a"}},
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{}}]}"#;
        assert_eq!(
            error_of(list),
            "document 1, items[2] (Service a/s): metadata.name: a second Service a/s (the first \
             is document 1, items[0])"
        );
        let namespaces = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
                          apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n";
        assert!(error_of(namespaces).ends_with("a second Namespace a (the first is document 1)"));
        // The same name in another namespace, or of another kind, is another object.
        let distinct = [
            pod("web-0"),
            pod("web-0").replace("namespace: a", "namespace: b"),
        ]
        .join("---\n");
        assert_eq!(parse(&distinct).unwrap().len(), 2);
        // podIP and clusterIP must be the first of their lists.
        let pod_ips = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n\
                       status: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.2}, {ip: 10.0.0.1}]}\n";
        assert_eq!(
            error_of(pod_ips),
            "document 1 (Pod a/p): status.podIP: \"10.0.0.1\" is not status.podIPs[0].ip (\"10.0.0.2\")"
        );
        let cluster_ips = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n\
                           spec: {clusterIP: 10.96.0.1, clusterIPs: [\"fd00::1\", 10.96.0.1]}\n";
        assert_eq!(
            error_of(cluster_ips),
            "document 1 (Service a/s): spec.clusterIP: \"10.96.0.1\" is not spec.clusterIPs[0] (\"fd00::1\")"
        );
        let agreeing = pod_ips.replace("podIP: 10.0.0.1", "podIP: 10.0.0.2");
        assert!(parse(&agreeing).is_ok());
        // Pods read field by field are checked the same way.
        let streamed = format!("{}---\n{}", pod("x"), pod("x"));
        assert!(parse_in::<STREAMING>(&streamed).is_err());
    }

    #[test]
    fn loads_within_the_size_bound() {
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(80), "80 bytes");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cluster.yaml");
        std::fs::write(&file, include_str!("../../config/demo-cluster.yaml")).unwrap();
        let input = Input::File(file.clone());
        let loaded = load(&input, 1 << 20).unwrap();
        assert!(!loaded.blank && loaded.objects.len() >= 7);
        let error = load(&input, 1000).unwrap_err();
        assert!(
            error.ends_with("is larger than --manifests-max-size (1000 bytes)"),
            "{error}"
        );
        std::fs::write(&file, "# nothing yet\n\n").unwrap();
        let loaded = load(&input, 1000).unwrap();
        assert!(loaded.blank && loaded.objects.is_empty());
        std::fs::write(&file, "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
        assert!(!load(&input, 1000).unwrap().blank);
        let error = load(&Input::File(dir.path().into()), 1000).unwrap_err();
        assert!(
            error.ends_with(
                "not a regular file (a directory); give a file, or - for standard input"
            )
        );
    }

    #[test]
    fn syntax_errors_are_reported_not_panicked() {
        assert!(error_of("kind: Service\n  bad: [indent\n").starts_with("invalid YAML"));
        assert!(error_of("{\"kind\": ").starts_with("invalid JSON"));
    }
}
