//! A manifests file taken in parts as it is read: a chunk at a time, cut into runs that parse
//! on their own — a JSON List's items as the bytes arrive ([`ListSplitter`]); YAML at the lines
//! YAML reserves (`---`, and the `- ` starting each entry of a column-0 `items:`) — the runs
//! converted on every core and handed over as each is done: never the whole text, never every
//! object at once. A million pods are 570 MB of JSON; read whole, that text and the objects
//! parsed from it were held together (845 MiB at the peak, where the state they become takes
//! 307 MiB).
//!
//! Whatever cannot be taken this way — several JSON documents in one file, a run that does not
//! parse alone (a YAML alias to an earlier item), an object DNS cannot serve, a blank file, a
//! file that changes size while read — is refused with the reason, and the caller reads the
//! file whole ([`super::load`]), whose errors name the document, the object and the field. An
//! object given twice cannot be seen while runs are converted apart; the caller tells it by
//! counting (see [`stream`]), or [`check`] does.
//!
//! A reload ([`resync`]) reads the file twice: once to check every object, holding nothing but
//! a hash of each identity, then again to send the objects as a list in parts
//! ([`ClusterEvent::ResyncBegin`]), which the state applies as they come and ends by removing
//! what the file no longer holds — so a bad edit still leaves the last good state, and the new
//! state never exists beside a second copy of the old.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use std::hash::BuildHasher;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cluster::ClusterEvent;
use crate::records::{ClusterObject, ObjectKind};
use crate::source::json::ListSplitter;
use crate::source::manifests::document::{DocumentObjects, STREAMING, json_items};
use crate::source::manifests::parse::parse_yaml_piece;

/// The file is read this much at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// Items are converted in runs of about this much text: large enough that handing a run over
/// costs nothing beside converting it, small enough that the runs in flight (two per converting
/// thread) stay a few megabytes.
const RUN_BYTES: usize = 256 << 10;

/// A run of a file, as the file gives it.
enum Run {
    /// A JSON array of a List's items.
    Json(Vec<u8>),
    /// YAML: entries of a column-0 `items:` sequence, `first` the index of the first of them;
    /// or, `first` `None`, whole documents (a List's with its `items:` emptied).
    Yaml { text: Vec<u8>, first: Option<usize> },
}

/// What is left of a file once its runs are cut out.
enum Rest {
    /// The List without its items (or the file's one object).
    Json(Vec<u8>),
    /// Nothing: a YAML file is all runs.
    Yaml,
}

/// Why a file is left to the whole-text reading.
#[derive(Debug, PartialEq, Eq)]
pub struct NotStreamed(pub String);

/// Reads the file at `path` in parts and hands each run's objects to `take` as soon as
/// they are converted, in no particular order; returns how many objects were handed over.
///
/// A run's objects are handed over before the rest of the file has been read: the caller must
/// be able to throw away what it took when this fails. An object given twice is handed over
/// twice, so a caller that keeps objects by identity (as the cluster state does) tells it by
/// holding fewer than were handed over.
pub fn stream(
    path: &Path,
    max_size: u64,
    take: impl FnMut(Vec<ClusterObject>),
) -> Result<usize, NotStreamed> {
    stream_from(open(path, max_size)?, max_size, take)
}

/// Opens the regular file at `path` if it is within `max_size`.
pub(super) fn open(path: &Path, max_size: u64) -> Result<File, NotStreamed> {
    let refuse = |why: &dyn std::fmt::Display| NotStreamed(why.to_string());
    // Before opening: opening a FIFO waits for a writer.
    let meta = std::fs::metadata(path).map_err(|e| refuse(&e))?;
    if !meta.is_file() || meta.len() > max_size {
        return Err(refuse(&"not a regular file within --manifests-max-size"));
    }
    File::open(path).map_err(|e| refuse(&e))
}

/// `file` read again from its start.
fn rewound(file: &File) -> Result<File, NotStreamed> {
    let mut file = file.try_clone().map_err(|e| NotStreamed(e.to_string()))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| NotStreamed(e.to_string()))?;
    Ok(file)
}

/// [`stream`] from any reader (for tests and fuzzing; files go through [`stream`], which
/// checks what the path names before opening it).
pub fn stream_from(
    reader: impl Read + Send,
    max_size: u64,
    mut take: impl FnMut(Vec<ClusterObject>),
) -> Result<usize, NotStreamed> {
    let refuse = |why: &dyn std::fmt::Display| NotStreamed(why.to_string());
    let converters = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let (runs, runs_out) = sync_channel::<Run>(converters * 2);
    // Shared by the converting threads; dropped with the last of them, which stops the reader.
    let runs_out = Arc::new(Mutex::new(runs_out));
    let (converted, converted_out) = sync_channel(converters * 2);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut reader = BufReader::with_capacity(CHUNK_BYTES, reader);
            let first = reader.fill_buf().map_err(|e| e.to_string())?;
            match first.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => read_json_runs(reader, max_size, &runs).map(Rest::Json),
                _ => read_yaml_runs(reader, max_size, &runs).map(|()| Rest::Yaml),
            }
        });
        for _ in 0..converters {
            let (runs_out, converted) = (runs_out.clone(), converted.clone());
            scope.spawn(move || convert_runs(&runs_out, &converted));
        }
        drop((runs_out, converted));
        let mut handed = 0;
        let mut failure = None;
        for objects in converted_out.iter() {
            match objects {
                Ok(objects) => {
                    handed += objects.len();
                    take(objects);
                }
                Err(why) => {
                    failure = Some(NotStreamed(why));
                    break;
                }
            }
        }
        // Stops the converting threads, whose end stops the reader.
        drop(converted_out);
        let rest = reader
            .join()
            .unwrap_or_else(|_| Err("reading failed".into()));
        if let Some(failure) = failure {
            return Err(failure);
        }
        // What is left of the List (or the file's one object, if it is not a List).
        let objects = match rest.map_err(NotStreamed)? {
            Rest::Json(rest) => {
                let rest: DocumentObjects<STREAMING> =
                    serde_json::from_str(std::str::from_utf8(&rest).map_err(|e| refuse(&e))?)
                        .map_err(|e| refuse(&e))?;
                if let Some(failure) = rest.failure {
                    return Err(refuse(&failure));
                }
                rest.objects
            }
            Rest::Yaml => Vec::new(),
        };
        handed += objects.len();
        take(objects);
        Ok(handed)
    })
}

/// Reads a JSON file, cutting its List's items into runs (each a JSON array) sent to `runs`;
/// returns the List without its items.
fn read_json_runs(
    mut file: impl Read,
    max_size: u64,
    runs: &SyncSender<Run>,
) -> Result<Vec<u8>, String> {
    let new_run = || {
        let mut run = Vec::with_capacity(RUN_BYTES + RUN_BYTES / 4);
        run.push(b'[');
        run
    };
    let mut splitter = ListSplitter::default();
    let mut chunk = vec![0; CHUNK_BYTES];
    let mut run = new_run();
    let mut read = 0u64;
    let mut stopped = false;
    loop {
        let n = file.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        read += n as u64;
        if read > max_size {
            return Err("the file grew while it was read".into());
        }
        splitter
            .feed(&chunk[..n], |item| {
                if run.len() > 1 {
                    run.push(b',');
                }
                run.extend_from_slice(item);
                if run.len() >= RUN_BYTES && !stopped {
                    run.push(b']');
                    let full = std::mem::replace(&mut run, new_run());
                    stopped = runs.send(Run::Json(full)).is_err();
                }
            })
            .map_err(|e| e.to_string())?;
        if stopped {
            return Err("stopped".into());
        }
    }
    if run.len() > 1 {
        run.push(b']');
        runs.send(Run::Json(run)).map_err(|_| "stopped")?;
    }
    splitter.finish().map_err(|e| e.to_string())
}

/// Reads a YAML file, cutting it into runs at the lines YAML reserves (see
/// [`crate::source::yaml`], which cuts a whole text the same way): whole documents at their
/// `---` lines, and the entries of a document's column-0 `items:` sequence (`kubectl get -o
/// yaml`) at the lines that start them, the document itself going with the other documents
/// with its `items:` emptied.
fn read_yaml_runs(
    mut file: impl BufRead,
    max_size: u64,
    runs: &SyncSender<Run>,
) -> Result<(), String> {
    #[derive(PartialEq)]
    enum Place {
        Head,
        Items,
        Tail,
    }
    let new_run = || Vec::with_capacity(RUN_BYTES + RUN_BYTES / 4);
    // Sends `text` as a run (see [`Run::Yaml`]), leaving an empty buffer for the next.
    let send = |text: &mut Vec<u8>, first: Option<usize>| {
        let text = std::mem::replace(text, new_run());
        runs.send(Run::Yaml { text, first })
            .map_err(|_| "stopped".to_string())
    };
    let mut place = Place::Head;
    // The current document without its items; whole documents not sent yet.
    let (mut document, mut documents) = (Vec::new(), new_run());
    let (mut items, mut first, mut count) = (new_run(), 0, 0);
    let mut line: Vec<u8> = Vec::new();
    let mut read = 0u64;
    let mut content = false;
    loop {
        line.clear();
        let n = file
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        read += n as u64;
        if read > max_size {
            return Err("the file grew while it was read".into());
        }
        let starts_document = line.starts_with(b"---")
            && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\n' | b'\r'));
        if n == 0 && !content {
            // A file being rewritten, most likely: the whole reading tells it apart.
            return Err("nothing but blank lines and comments".into());
        }
        let trimmed = line.trim_ascii();
        content |= !(trimmed.is_empty() || trimmed.starts_with(b"#") || starts_document);
        if n == 0 || starts_document {
            if !items.is_empty() {
                send(&mut items, Some(first))?;
            }
            documents.append(&mut document);
            if n == 0 || documents.len() >= RUN_BYTES {
                send(&mut documents, None)?;
            }
            if n == 0 {
                return Ok(());
            }
            (place, first, count) = (Place::Head, 0, 0);
        }
        match place {
            Place::Head => {
                document.extend_from_slice(&line);
                if line.trim_ascii_end() == b"items:" {
                    place = Place::Items;
                }
            }
            Place::Items if starts_item(&line) => {
                if items.len() >= RUN_BYTES {
                    send(&mut items, Some(first))?;
                    first = count;
                }
                items.extend_from_slice(&line);
                count += 1;
            }
            Place::Items if count > 0 && continues_item(&line) => items.extend_from_slice(&line),
            // Not a column-0 sequence after all (or its end): the rest of the document.
            Place::Items | Place::Tail => {
                place = Place::Tail;
                document.extend_from_slice(&line);
            }
        }
    }
}

/// A line that starts an entry of a column-0 sequence (`- ...` or a lone `-`).
fn starts_item(line: &[u8]) -> bool {
    line.first() == Some(&b'-') && matches!(line.get(1), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

/// A line inside the entry before it: indented, blank or a comment.
fn continues_item(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t' | b'\n' | b'\r' | b'#'))
}

/// The objects of a YAML text: items of a List from its `first` (or, `None`, documents).
fn yaml_objects(text: &str, first: Option<usize>) -> Result<Vec<ClusterObject>, String> {
    let documents = parse_yaml_piece::<STREAMING>(text, first).map_err(|e| e.to_string())?;
    match documents.failure {
        Some(failure) => Err(failure.to_string()),
        None => Ok(documents.objects),
    }
}

/// Converts runs until there are none left, or until nobody takes what it converted.
fn convert_runs(
    runs: &Mutex<Receiver<Run>>,
    converted: &SyncSender<Result<Vec<ClusterObject>, String>>,
) {
    loop {
        // The lock is held only while waiting for the next run, never while converting.
        let Ok(run) = runs
            .lock()
            .map_err(drop)
            .and_then(|r| r.recv().map_err(drop))
        else {
            return;
        };
        if converted.send(convert(&run)).is_err() {
            return;
        }
    }
}

/// The objects of one run.
fn convert(run: &Run) -> Result<Vec<ClusterObject>, String> {
    match run {
        Run::Json(array) => {
            // As strict as reading the whole text, which must be UTF-8 throughout: the JSON
            // parser checks only the strings it keeps.
            std::str::from_utf8(array).map_err(|e| e.to_string())?;
            let document = json_items(array).map_err(|e| e.to_string())?;
            match document.failure {
                None => Ok(document.objects),
                Some(failure) => Err(failure.to_string()),
            }
        }
        Run::Yaml { text, first } => {
            let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
            yaml_objects(text, *first)
        }
    }
}

/// Reads `file` as [`stream`] does, keeping nothing: whether all of it can be taken in parts,
/// no object given twice. Returns how many objects it holds.
pub(super) fn check(file: &File, max_size: u64) -> Result<usize, NotStreamed> {
    let hasher = std::hash::RandomState::new();
    let mut identities: Vec<u64> = Vec::new();
    let count = stream_from(rewound(file)?, max_size, |objects| {
        identities.extend(
            objects
                .iter()
                .map(|o| hasher.hash_one((o.kind_name(), o.namespace(), o.name()))),
        );
    })?;
    identities.sort_unstable();
    // Two equal hashes are most likely the same object twice, and may be two objects whose
    // hashes collide: either way the whole reading decides.
    if identities.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(NotStreamed("an object is given twice".into()));
    }
    Ok(count)
}

/// Events at most queued for the state while a file is sent in parts: each is a run's
/// objects, so this bounds what is held between reading and applying.
const QUEUED_PARTS: usize = 4;

/// Sends the objects of a file that [`check`] passed to the state as one list of every kind in
/// parts; returns how many were sent. The file is the one checked, open: a file renamed over
/// it since is not read. If it cannot be read to its end (it was written to in place since
/// the check), the list ends incomplete: what it brought stays, nothing is removed.
pub(super) fn resync(
    file: &File,
    max_size: u64,
    events: &mpsc::Sender<ClusterEvent>,
) -> Result<usize, NotStreamed> {
    let send = |event: ClusterEvent| {
        events
            .blocking_send(event)
            .map_err(|_| NotStreamed("the cluster state is gone".into()))
    };
    for kind in ObjectKind::ALL {
        send(ClusterEvent::ResyncBegin {
            kind,
            namespace: None,
        })?;
    }
    let mut gone = false;
    let sent = stream_from(rewound(file)?, max_size, |objects| {
        // The state applies more slowly than runs are converted: without waiting, the queue
        // would fill with most of the file.
        while !gone && events.max_capacity() - events.capacity() > QUEUED_PARTS {
            gone = events.is_closed();
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut by_kind: [Vec<ClusterObject>; ObjectKind::ALL.len()] = Default::default();
        for object in objects {
            let at = ObjectKind::ALL.iter().position(|&k| k == object.kind());
            by_kind[at.unwrap_or(0)].push(object);
        }
        for (kind, objects) in ObjectKind::ALL.into_iter().zip(by_kind) {
            if !objects.is_empty() && !gone {
                gone = send(ClusterEvent::ResyncObjects {
                    kind,
                    namespace: None,
                    objects,
                })
                .is_err();
            }
        }
    });
    for kind in ObjectKind::ALL {
        send(ClusterEvent::ResyncEnd {
            kind,
            namespace: None,
            complete: sent.is_ok(),
        })?;
    }
    sent
}
