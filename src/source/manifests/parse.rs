//! A manifests file's text into objects: YAML cut into pieces parsed on every core (or JSON
//! whole), its documents' objects gathered, an object given twice refused; and the event that
//! makes them the cluster's state.

use serde::de::DeserializeSeed;

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKind};
use crate::source::manifests::document::{
    CAREFUL, Careful, DocumentObjects, DocumentSeed, ParseError, STREAMING, describe_object,
};
use crate::source::yaml::{self, Piece, PieceKind};

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

pub(super) fn parse_in<const C: Careful>(text: &str) -> Result<Vec<ClusterObject>, ParseError> {
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
pub(super) struct Documents {
    pub(super) objects: Vec<ClusterObject>,
    /// Beside each object, where it was found.
    pub(super) places: Vec<Place>,
    /// Documents begun in the run.
    pub(super) count: usize,
    /// Its `document` counts from the run's start (0: the document before the run).
    pub(super) failure: Option<ParseError>,
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
pub(super) const YAML_PIECE_BYTES: usize = 128 << 10;

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
pub(super) fn parse_yaml_pieces<const C: Careful>(
    pieces: &[Piece<'_>],
) -> Result<Documents, String> {
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
pub(super) fn parse_yaml_piece<const C: Careful>(
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

/// The event that makes the cluster state equal to the input's objects.
pub fn resync(objects: Vec<ClusterObject>) -> ClusterEvent {
    ClusterEvent::Resync {
        kinds: ObjectKind::ALL.to_vec(),
        namespace: None,
        objects,
    }
}
