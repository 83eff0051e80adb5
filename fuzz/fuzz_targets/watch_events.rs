//! What the API sends, read as each of the four kinds watched: one line of a watch stream (API
//! object JSON into records: never a panic; a change it makes is applied to a cluster state),
//! and the same bytes as a list body cut into items while it arrives, in two chunks at a place
//! the input chooses: the items and metadata must be what serde_json reads from the whole body.
//! The same for protobuf: the bytes as one frame of a watch stream (its event, its object's
//! envelope and fields), and as a list body, whose items and metadata must not depend on where
//! the body was cut.
#![no_main]

use headless_dns::{
    ClusterEvent, ClusterState, Line, ListSplitter, ObjectKind, ProtobufListSplitter, read_frame,
    read_line, read_protobuf_object,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    list_body(data);
    protobuf_list_body(data);
    let mut state = ClusterState::new(1);
    state.apply(ClusterEvent::Synced);
    let line = std::str::from_utf8(data).ok();
    for kind in ObjectKind::ALL {
        let lines = line
            .map(|line| read_line(kind, line, "watch (fuzz)"))
            .into_iter()
            .chain([read_frame(kind, data, "watch (fuzz)")]);
        for line in lines {
            match line {
                Line::Change { event, .. } => state.apply(event),
                Line::Skipped { remove: Some(event), .. } => state.apply(event),
                _ => {}
            }
        }
    }
    state.publish();
});

/// `data` as a protobuf list body, whole and in two chunks cut where its last byte says: the
/// same items and metadata, or an error both ways.
fn protobuf_list_body(data: &[u8]) {
    let split = |cuts: &[usize]| {
        let mut splitter = ProtobufListSplitter::default();
        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain([&data.len()]) {
            splitter.feed(&data[start..end], |item| items.push(item.to_vec()))?;
            start = end;
        }
        splitter.finish().map(|meta| (items, meta))
    };
    let cut = data.last().map_or(0, |b| *b as usize % (data.len() + 1));
    let whole = split(&[]);
    let in_two = split(&[cut]);
    assert_eq!(whole.is_ok(), in_two.is_ok(), "cut at {cut}: {whole:?} / {in_two:?}");
    if let (Ok(whole), Ok(in_two)) = (whole, in_two) {
        assert_eq!(whole, in_two, "cut at {cut}");
        for item in &whole.0 {
            for kind in ObjectKind::ALL {
                let _ = read_protobuf_object(kind, item);
            }
        }
    }
    // And the bytes as one object of each kind.
    for kind in ObjectKind::ALL {
        let _ = read_protobuf_object(kind, data);
    }
}

fn list_body(data: &[u8]) {
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut splitter = ListSplitter::default();
    let mut items: Vec<Vec<u8>> = Vec::new();
    let mut fed = splitter.feed(&data[..cut], |item| items.push(item.to_vec()));
    if fed.is_ok() {
        fed = splitter.feed(&data[cut..], |item| items.push(item.to_vec()));
    }
    let rest = fed.and_then(|()| splitter.finish());
    // Only a body serde_json reads as an object whose items are all objects is a list. Keys
    // are matched as the API server writes them: a second `items`, or one spelled with escapes,
    // is beyond what the splitter promises.
    let mentions = data.windows(7).filter(|w| w == b"\"items\"").count();
    if mentions > 1 || data.windows(2).any(|w| w == b"\\u") {
        return;
    }
    let Ok(whole) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let is_list = whole.is_object()
        && match &whole["items"] {
            Value::Array(items) => items.iter().all(Value::is_object),
            _ => true,
        };
    if !is_list {
        return;
    }
    let rest = rest.expect("a list serde_json reads is cut");
    let mut expected = whole.clone();
    if expected["items"].is_array() {
        expected["items"] = Value::Array(Vec::new());
    }
    let rest: Value = serde_json::from_slice(&rest).expect("the rest of a list parses");
    assert_eq!(rest, expected, "the list without its items");
    let want: Vec<Value> = match &whole["items"] {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    };
    let got: Vec<Value> = items
        .iter()
        .map(|item| {
            let raw: &RawValue = serde_json::from_slice(item).expect("an item is JSON");
            serde_json::from_str(raw.get()).unwrap()
        })
        .collect();
    assert_eq!(got, want, "the items");
}
