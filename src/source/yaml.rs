//! Cutting a YAML text into pieces that parse on their own: runs of whole documents, and runs of
//! the items of a document's top-level `items:` list (what `kubectl get -o yaml` prints).
//!
//! The parser reads a document's events into memory before handing it over (about 20 bytes of
//! events per byte of text: 1 GB for a 55 MB List of 100k pods), and one document parses on one
//! thread. Pieces of about a hundred kilobytes bound both: a List's items are parsed a run at a
//! time, on every core.
//!
//! The cuts are made in the text, at lines that YAML reserves: a document-start line (`---`)
//! cannot occur inside a document, and a line starting `- ` at column 0 inside a column-0
//! `items:` sequence starts its next item (anything nested in an item is indented). A text the
//! cuts do not fit (an alias to an earlier item, say) fails to parse in pieces; the caller then
//! reads it whole.

use std::borrow::Cow;

/// One piece of a YAML text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    pub text: Cow<'a, str>,
    /// Lines of the input before the piece: add to the line numbers of its errors.
    pub lines_before: usize,
    pub kind: PieceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceKind {
    /// Whole documents.
    Documents,
    /// A document with the items of its `items:` list cut out (its `items` is empty), its
    /// place kept by blank lines so that line numbers stay right. Its items follow.
    ListHead,
    /// Items of the list of the last `ListHead`, as one sequence; `first` is the index of the
    /// first of them in that list.
    Items { first: usize },
}

/// Cuts `text` into pieces of about `size` bytes (a document or item larger than that is a piece
/// of its own), in order.
pub(crate) fn pieces(text: &str, size: usize) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut run = Run::new(0, 0);
    let mut start = 0;
    let mut lines = 0;
    while start < text.len() {
        let end = next_document_start(text, start + 1).unwrap_or(text.len());
        let document = &text[start..end];
        match items_region(document) {
            Some((from, to)) if to - from > size => {
                run.flush(text, PieceKind::Documents, &mut pieces);
                push_list(document, from, to, lines, size, &mut pieces);
            }
            _ => {
                if run.end - run.start + document.len() > size {
                    run.flush(text, PieceKind::Documents, &mut pieces);
                }
                if run.start == run.end {
                    run = Run::new(start, lines);
                }
                run.end = end;
            }
        }
        lines += count_lines(document);
        start = end;
    }
    run.flush(text, PieceKind::Documents, &mut pieces);
    pieces
}

/// A run of text being gathered into one piece.
struct Run {
    start: usize,
    end: usize,
    lines_before: usize,
}

impl Run {
    fn new(start: usize, lines_before: usize) -> Self {
        Self {
            start,
            end: start,
            lines_before,
        }
    }

    fn flush<'a>(&mut self, text: &'a str, kind: PieceKind, pieces: &mut Vec<Piece<'a>>) {
        if self.end > self.start {
            pieces.push(Piece {
                text: Cow::Borrowed(&text[self.start..self.end]),
                lines_before: self.lines_before,
                kind,
            });
        }
        self.start = self.end;
    }
}

/// The pieces of one document whose items occupy `document[from..to]`.
fn push_list<'a>(
    document: &'a str,
    from: usize,
    to: usize,
    lines_before: usize,
    size: usize,
    pieces: &mut Vec<Piece<'a>>,
) {
    let items = &document[from..to];
    let mut head = String::with_capacity(document.len() - items.len() + count_lines(items));
    head.push_str(&document[..from]);
    head.extend(std::iter::repeat_n('\n', count_lines(items)));
    head.push_str(&document[to..]);
    pieces.push(Piece {
        text: Cow::Owned(head),
        lines_before,
        kind: PieceKind::ListHead,
    });
    let mut lines = lines_before + count_lines(&document[..from]);
    let (mut start, mut first) = (0, 0);
    while start < items.len() {
        let mut end = start;
        let mut count = 0;
        // Whole items, at least one, up to about `size` bytes.
        while end < items.len() && (count == 0 || end - start < size) {
            end = next_item_start(items, end + 1).unwrap_or(items.len());
            count += 1;
        }
        let piece = &items[start..end];
        pieces.push(Piece {
            text: Cow::Borrowed(piece),
            lines_before: lines,
            kind: PieceKind::Items { first },
        });
        lines += count_lines(piece);
        first += count;
        start = end;
    }
}

/// Where the entries of a column-0 `items:` sequence lie in `document`: from the first entry to
/// the first line after them at column 0 that is neither an entry, a comment nor blank.
fn items_region(document: &str) -> Option<(usize, usize)> {
    let mut at = 0;
    let from = loop {
        let line_end = document[at..]
            .find('\n')
            .map_or(document.len(), |n| at + n + 1);
        let line = document[at..line_end].trim_end();
        if line == "items:" {
            break line_end;
        }
        if line_end == document.len() {
            return None;
        }
        at = line_end;
    };
    if !starts_item(&document[from..]) {
        return None;
    }
    let mut at = from;
    while at < document.len() {
        let rest = &document[at..];
        let continues = rest.starts_with([' ', '\t', '\n', '\r', '#']) || starts_item(rest);
        if !continues {
            break;
        }
        at = rest.find('\n').map_or(document.len(), |n| at + n + 1);
    }
    Some((from, at))
}

/// Whether `line` starts with a sequence entry at column 0 (`- ...` or a lone `-`).
fn starts_item(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.first() == Some(&b'-')
        && matches!(bytes.get(1), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

/// The offset of the first item start (a line starting an entry) at or after byte `from`.
fn next_item_start(items: &str, from: usize) -> Option<usize> {
    let mut at = from.min(items.len());
    loop {
        let found = items.get(at..)?.find("\n-")? + at + 1;
        if starts_item(&items[found..]) {
            return Some(found);
        }
        at = found;
    }
}

/// The offset of the first document-start line at or after byte `from`: `---` at the start of
/// a line, followed by a space, a tab or the line's end. YAML forbids such a line inside any
/// scalar, so every cut falls between documents.
fn next_document_start(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = from.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    loop {
        let found = text.get(at..)?.find("\n---")? + at + 1;
        if matches!(
            bytes.get(found + 3),
            None | Some(b' ' | b'\t' | b'\n' | b'\r')
        ) {
            return Some(found);
        }
        at = found;
    }
}

fn count_lines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// `message` with `lines` added to every `line N column M` in it (the parser's positions, which
/// count from the start of the piece).
pub(crate) fn shift_lines(message: &str, lines: usize) -> String {
    const LINE: &str = "line ";
    let mut out = String::with_capacity(message.len() + 8);
    let mut rest = message;
    while let Some(at) = rest.find(LINE) {
        out.push_str(&rest[..at + LINE.len()]);
        rest = &rest[at + LINE.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(line) if rest[digits..].starts_with(" column ") => {
                out.push_str(&(line + lines).to_string());
                rest = &rest[digits..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(pieces: &'a [Piece<'_>]) -> Vec<&'a str> {
        pieces.iter().map(|p| &*p.text).collect()
    }

    #[test]
    fn documents_are_cut_at_document_start_lines_only() {
        let text =
            "a: 1\n---\nb: |\n  ---x\n  text --- more\n---x: 2\n--- \nc: 3\n---\n---\td: 4\n";
        for size in [0, 1, 8, 20, 1000] {
            let pieces = pieces(text, size);
            assert_eq!(texts(&pieces).concat(), text);
            for piece in &pieces[1..] {
                assert!(
                    piece.text.starts_with("---\n")
                        || piece.text.starts_with("--- ")
                        || piece.text.starts_with("---\t"),
                    "{piece:?}"
                );
            }
            let mut before = 0;
            for piece in &pieces {
                assert_eq!(piece.kind, PieceKind::Documents);
                assert_eq!(piece.lines_before, count_lines(&text[..before]));
                before += piece.text.len();
            }
        }
        assert_eq!(pieces(text, 1000).len(), 1);
        // Multi-byte characters where a cut is looked for.
        let wide = "a: ééééééé\n---\nb: ééé\n";
        for size in 0..8 {
            assert_eq!(texts(&pieces(wide, size)).concat(), wide);
        }
    }

    #[test]
    fn a_lists_items_are_cut_between_items() {
        let text = "apiVersion: v1\nitems:\n- a: 1\n  b: |\n    - not an item\n\n- c: 2\n# note\n-\n  d: 3\n- e\nkind: List\nmetadata: {}\n---\nnext: 1\n";
        let pieces = pieces(text, 4);
        let head = "apiVersion: v1\nitems:\n\n\n\n\n\n\n\n\n\nkind: List\nmetadata: {}\n";
        assert_eq!(
            texts(&pieces),
            [
                head,
                "- a: 1\n  b: |\n    - not an item\n\n",
                "- c: 2\n# note\n",
                "-\n  d: 3\n",
                "- e\n",
                "---\nnext: 1\n"
            ]
        );
        let kinds: Vec<PieceKind> = pieces.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                PieceKind::ListHead,
                PieceKind::Items { first: 0 },
                PieceKind::Items { first: 1 },
                PieceKind::Items { first: 2 },
                PieceKind::Items { first: 3 },
                PieceKind::Documents
            ]
        );
        let lines: Vec<usize> = pieces.iter().map(|p| p.lines_before).collect();
        assert_eq!(lines, [0, 2, 6, 8, 10, 13]);
        // Each head line where it was.
        assert_eq!(
            count_lines(head),
            count_lines(&text[..text.find("---").unwrap()])
        );
        // Items gathered up to the size; a small list stays whole.
        assert_eq!(super::pieces(text, 20).len(), 5);
        assert_eq!(super::pieces(text, 1000).len(), 1);
        // Not a column-0 list: not cut.
        let indented = "items:\n  - a: 1\n  - b: 2\n";
        assert_eq!(texts(&super::pieces(indented, 1)), [indented]);
    }

    #[test]
    fn error_positions_are_shifted_to_the_whole_text() {
        assert_eq!(
            shift_lines(
                "did not find expected key at line 3 column 1, while parsing a block mapping at line 1 column 1",
                10
            ),
            "did not find expected key at line 13 column 1, while parsing a block mapping at line 11 column 1"
        );
        assert_eq!(
            shift_lines("no line here; line x column 2", 5),
            "no line here; line x column 2"
        );
    }
}
