//! Cutting a JSON list object into its items as its bytes arrive, so that a list is never held
//! whole: each item is handed on as soon as its closing brace arrives, and what is left — the
//! list with an empty `items` — carries its metadata. The API's list bodies are read this way
//! ([`crate::source::kube`]), and so are large manifests files ([`crate::source::manifests`]).

use std::fmt;

/// A list body that is not a JSON object with an array of objects under `items`.
#[derive(Debug, PartialEq, Eq)]
pub struct NotAList(&'static str);

impl fmt::Display for NotAList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Outside the items: bytes go to `outer`.
    Outer,
    /// Inside the items array, between items.
    Between,
    /// Inside an item: bytes go to `item`.
    Item,
}

/// Feeds on a list body chunk by chunk; see the module documentation.
pub struct ListSplitter {
    outer: Vec<u8>,
    item: Vec<u8>,
    place: Place,
    /// Nesting of objects and arrays, counted from the list's own braces (1 inside them).
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Where in `outer` the last string at depth 1 began and ended, and whether it was
    /// followed by a colon (so it was a key).
    last_string: (usize, usize),
    last_key_is_items: bool,
    seen_items: bool,
}

impl Default for ListSplitter {
    fn default() -> Self {
        Self {
            outer: Vec::with_capacity(256),
            item: Vec::new(),
            place: Place::Outer,
            depth: 0,
            in_string: false,
            escaped: false,
            last_string: (0, 0),
            last_key_is_items: false,
            seen_items: false,
        }
    }
}

impl ListSplitter {
    /// Reads `chunk`, calling `on_item` with each item it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_item: impl FnMut(&[u8])) -> Result<(), NotAList> {
        let mut i = 0;
        while i < chunk.len() {
            if self.in_string {
                i = self.string_bytes(chunk, i);
                continue;
            }
            let byte = chunk[i];
            i += 1;
            match self.place {
                Place::Outer => self.outer_byte(byte)?,
                Place::Between => match byte {
                    b'{' => {
                        self.place = Place::Item;
                        self.depth += 1;
                        self.item.clear();
                        self.item.push(byte);
                    }
                    b']' => {
                        self.place = Place::Outer;
                        self.depth -= 1;
                        self.outer.push(b']');
                    }
                    b',' | b' ' | b'\n' | b'\r' | b'\t' => {}
                    _ => return Err(NotAList("an item of the list is not an object")),
                },
                Place::Item => {
                    self.item.push(byte);
                    match byte {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth -= 1;
                            if self.depth == 2 {
                                on_item(&self.item);
                                self.item.clear();
                                self.place = Place::Between;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Copies string bytes from `chunk[i..]` up to and including the closing quote (or the end
    /// of the chunk); returns where it stopped.
    fn string_bytes(&mut self, chunk: &[u8], mut i: usize) -> usize {
        let target = match self.place {
            Place::Item => &mut self.item,
            _ => &mut self.outer,
        };
        if self.escaped {
            self.escaped = false;
            target.push(chunk[i]);
            i += 1;
        }
        match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
            None => {
                target.extend_from_slice(&chunk[i..]);
                chunk.len()
            }
            Some(at) => {
                let end = i + at;
                target.extend_from_slice(&chunk[i..=end]);
                if chunk[end] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if self.place == Place::Outer && self.depth == 1 {
                        self.last_string.1 = self.outer.len() - 1;
                    }
                }
                end + 1
            }
        }
    }

    fn outer_byte(&mut self, byte: u8) -> Result<(), NotAList> {
        match byte {
            b'"' => {
                if self.depth == 1 {
                    self.last_string = (self.outer.len() + 1, self.outer.len() + 1);
                }
                self.in_string = true;
            }
            b':' if self.depth == 1 => {
                let (start, end) = self.last_string;
                self.last_key_is_items = self.outer.get(start..end) == Some(b"items".as_slice());
            }
            b'[' if self.depth == 1 && self.last_key_is_items && !self.seen_items => {
                self.seen_items = true;
                self.depth += 1;
                self.outer.push(byte);
                self.place = Place::Between;
                return Ok(());
            }
            b'{' | b'[' => {
                if self.depth == 0 && byte == b'[' {
                    return Err(NotAList("the answer is an array, not a list object"));
                }
                self.depth += 1;
            }
            b'}' | b']' => {
                if self.depth == 0 {
                    return Err(NotAList("unbalanced JSON"));
                }
                self.depth -= 1;
            }
            b' ' | b'\n' | b'\r' | b'\t' => {}
            _ if self.depth == 0 => return Err(NotAList("the answer is not a JSON object")),
            _ => {}
        }
        self.outer.push(byte);
        Ok(())
    }

    /// The list without its items, once the body has ended: for its metadata.
    pub fn finish(self) -> Result<Vec<u8>, NotAList> {
        if self.depth != 0 || self.in_string || self.outer.is_empty() {
            return Err(NotAList("the answer ended before the list did"));
        }
        Ok(self.outer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use serde_json::value::RawValue;

    use super::*;

    /// Items and the rest, fed in pieces of `size` bytes.
    fn split(body: &str, size: usize) -> Result<(Vec<String>, Value), NotAList> {
        let mut splitter = ListSplitter::default();
        let mut items = Vec::new();
        for chunk in body.as_bytes().chunks(size.max(1)) {
            splitter.feed(chunk, |item| {
                items.push(String::from_utf8(item.to_vec()).unwrap())
            })?;
        }
        let outer = splitter.finish()?;
        let rest = serde_json::from_slice(&outer).map_err(|_| NotAList("rest does not parse"))?;
        Ok((items, rest))
    }

    /// What serde_json makes of the whole body: the items' text and the list with `items: []`.
    fn whole(body: &str) -> (Vec<String>, Value) {
        #[derive(serde::Deserialize)]
        struct Items<'a> {
            #[serde(borrow)]
            items: Option<Vec<&'a RawValue>>,
        }
        let items: Items = serde_json::from_str(body).unwrap();
        let items: Vec<String> = items
            .items
            .unwrap_or_default()
            .iter()
            .map(|r| r.get().to_string())
            .collect();
        let mut rest: Value = serde_json::from_str(body).unwrap();
        if rest["items"].is_array() {
            rest["items"] = Value::Array(Vec::new());
        }
        (items, rest)
    }

    const LISTS: &[&str] = &[
        r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"12","continue":"c"},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b","labels":{"x":"}]\"{["}},"spec":{"containers":[{"ports":[1,2]}]}}]}"#,
        r#"{"items":[],"metadata":{"resourceVersion":"7"}}"#,
        r#"{"items":null,"metadata":{"resourceVersion":"7"}}"#,
        r#"{"metadata":{"resourceVersion":"3","items":[1]},"items":[ {"a":"\\"} , {"b":"\\\"items\":["} ],"kind":"List"}"#,
        " {\n \"kind\" : \"List\" ,\n \"items\" :\n [\n  {\"a\": {\"items\": [[], {}]}}\n ]\n}\n",
        r#"{"itemsx":[{"a":1}],"x":"items","items":[{"é":"ü\u00e9"}]}"#,
    ];

    #[test]
    fn items_and_metadata_equal_a_whole_parse_at_every_cut() {
        for body in LISTS {
            let expected = whole(body);
            for size in [1, 2, 3, 7, 16, body.len()] {
                let (items, rest) =
                    split(body, size).unwrap_or_else(|e| panic!("{body} / {size}: {e}"));
                let items: Vec<String> = items.iter().map(|i| i.trim().to_string()).collect();
                assert_eq!(
                    (items, rest),
                    expected.clone(),
                    "{body} in pieces of {size}"
                );
            }
        }
    }

    #[test]
    fn what_is_not_a_list_is_refused() {
        for body in [
            "[1,2]",
            "42",
            r#"{"items":[1]}"#,
            r#"{"items":[{"a":1}"#,
            r#"{"items":[{"a":"1}]}"#,
            "",
            "}",
        ] {
            assert!(split(body, 3).is_err(), "{body:?} was taken for a list");
        }
    }
}
