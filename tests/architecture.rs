//! The shape of `src/`, checked from its source: which file uses which (a `use`, or a path in
//! the code, resolved to the file that defines it; a `mod` declaration is not a use), no import
//! circle between files, and no stage using a stage above it.
//!
//! A file is a cargo module: `dns/mod.rs` is one, `dns/view.rs` another; an inline module (`mod
//! tests { ... }`) is a module of its own, as a test module in a file of its own would be. The reading is lexical — comments and literals removed,
//! `use` trees expanded, paths resolved through `crate::`, `super::`, `self::`, child modules and
//! imported names — which is all this crate's code needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every file of the library (not `main.rs`, a crate of its own) and its module path
/// (`crate::dns::view`).
fn files() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, module: &str, out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            if path.is_dir() {
                walk(&path, &format!("{module}::{name}"), out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = match name.as_str() {
                    "lib" if module == "crate" => module.to_string(),
                    "main" if module == "crate" => continue,
                    "mod" => module.to_string(),
                    _ => format!("{module}::{name}"),
                };
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(Path::new(SRC), "crate", &mut out);
    // Files a `#[path]` attribute places elsewhere: `<file>_tests.rs` is `<file>::tests`.
    let moved: Vec<(String, PathBuf)> = out
        .iter()
        .filter(|(module, _)| module.ends_with("_tests"))
        .map(|(module, path)| (module.clone(), path.clone()))
        .collect();
    for (module, path) in moved {
        out.remove(&module);
        out.insert(
            format!("{}::tests", module.trim_end_matches("_tests")),
            path,
        );
    }
    out
}

/// The code without comments, string and character literals (each replaced by a space).
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            let mut j = i;
            while j < bytes.len() {
                if text[j..].starts_with("/*") {
                    depth += 1;
                    j += 2;
                } else if text[j..].starts_with("*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = j;
            out.push(' ');
        } else if let Some(hashes) = raw_string_start(rest) {
            let closing = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            i = body + text[body..].find(&closing).unwrap_or(0) + closing.len();
            out.push(' ');
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push(' ');
        } else if bytes[i] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let end = if bytes.get(i + 1) == Some(&b'\\') {
                text[i + 2..].find('\'').map(|e| i + 2 + e)
            } else {
                let c = rest[1..].chars().next().map_or(0, char::len_utf8);
                (bytes.get(i + 1 + c) == Some(&b'\'')).then_some(i + 1 + c)
            };
            match end {
                Some(end) => {
                    i = end + 1;
                    out.push(' ');
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br##"`...: the number of `#`s.
fn raw_string_start(rest: &str) -> Option<usize> {
    let after = rest.strip_prefix("br").or_else(|| rest.strip_prefix('r'))?;
    let hashes = after.len() - after.trim_start_matches('#').len();
    after[hashes..]
        .starts_with('"')
        .then_some(hashes + rest.len() - after.len() - 1)
}

/// Tokens: identifiers, `::`, and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// Expands the `use` tree starting at `tokens[*at]` (after `use`) into paths, each with the
/// name it binds (its last segment, or its `as` alias; `self` binds the module's own name).
fn use_tree(
    tokens: &[String],
    at: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    let mut path = prefix;
    loop {
        match tokens.get(*at).map(String::as_str) {
            Some("{") => {
                *at += 1;
                loop {
                    use_tree(tokens, at, path.clone(), out);
                    match tokens.get(*at).map(String::as_str) {
                        Some(",") => {
                            *at += 1;
                            if tokens.get(*at).map(String::as_str) == Some("}") {
                                *at += 1;
                                return;
                            }
                        }
                        Some("}") => {
                            *at += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            Some("*") => {
                *at += 1;
                out.push((path, "*".into()));
                return;
            }
            Some("::") => *at += 1,
            Some(token) if is_ident(token) => {
                path.push(token.to_string());
                *at += 1;
                if tokens.get(*at).map(String::as_str) == Some("::") {
                    continue;
                }
                let mut name = path.last().unwrap().clone();
                if tokens.get(*at).map(String::as_str) == Some("as") {
                    name = tokens[*at + 1].clone();
                    *at += 2;
                }
                if name == "self" {
                    path.pop();
                    name = path.last().cloned().unwrap_or_default();
                }
                out.push((path, name));
                return;
            }
            _ => return,
        }
    }
}

fn is_ident(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The module path `segments` name from `module` (`crate::..`, `super::..`, `self::..`), as
/// segments from `crate`; `None` for other crates.
fn absolute(
    module: &[String],
    segments: &[String],
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = match segments.first()?.as_str() {
        "crate" => vec!["crate".into()],
        "self" => module.to_vec(),
        "super" => module[..module.len().saturating_sub(1)].to_vec(),
        first if children.contains(first) => {
            let mut base = module.to_vec();
            base.push(first.to_string());
            base
        }
        _ => return None,
    };
    let mut rest = &segments[1..];
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The file whose module is the longest prefix of `path`.
fn file_of<'f>(path: &[String], files: &'f BTreeMap<String, PathBuf>) -> Option<&'f String> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get_key_value(&path[..n].join("::")).map(|(k, _)| k))
}

/// Which files each file (and each inline module) uses.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let files = files();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module_name, path) in &files {
        let module: Vec<String> = module_name.split("::").map(String::from).collect();
        let text = std::fs::read_to_string(path).unwrap();
        let tokens = tokens(&code_only(&text));
        let children: BTreeSet<String> = files
            .keys()
            .filter_map(|m| m.strip_prefix(&format!("{module_name}::")))
            .filter(|rest| !rest.contains("::"))
            .map(String::from)
            .collect();
        // Names bound by `use` (to their absolute paths), then every path in the code.
        let mut imported: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // (the module using, the path used): an inline module (`mod tests { .. }`) is a module
        // of its own, which its file does not use.
        let mut targets: Vec<(String, Vec<String>)> = Vec::new();
        // Inline modules (`mod tests { .. }`) open at a brace depth; `super` inside one is
        // the file's module.
        let mut depth = 0usize;
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut at = 0;
        while at < tokens.len() {
            match tokens[at].as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                "mod" if tokens.get(at + 2).map(String::as_str) == Some("{") => {
                    inline.push((tokens[at + 1].clone(), depth));
                }
                _ => {}
            }
            let here: Vec<String> = module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(name, _)| name.clone()))
                .collect();
            let children = if inline.is_empty() {
                &children
            } else {
                &BTreeSet::new()
            };
            if tokens[at] == "use" {
                at += 1;
                let mut tree = Vec::new();
                use_tree(&tokens, &mut at, Vec::new(), &mut tree);
                for (segments, name) in tree {
                    if let Some(target) = absolute(&here, &segments, children) {
                        if name != "*" {
                            imported.insert(name, target.clone());
                        }
                        targets.push((here.join("::"), target));
                    }
                }
                continue;
            }
            if is_ident(&tokens[at])
                && tokens.get(at + 1).map(String::as_str) == Some("::")
                && (at == 0 || tokens[at - 1] != "::")
            {
                let mut segments = vec![tokens[at].clone()];
                let mut j = at + 1;
                while tokens.get(j).map(String::as_str) == Some("::")
                    && tokens.get(j + 1).is_some_and(|t| is_ident(t))
                {
                    segments.push(tokens[j + 1].clone());
                    j += 2;
                }
                let target = match imported.get(&segments[0]) {
                    Some(base) => Some(base.iter().chain(&segments[1..]).cloned().collect()),
                    None => absolute(&here, &segments, children),
                };
                targets.extend(target.map(|t| (here.join("::"), t)));
                at = j;
                continue;
            }
            at += 1;
        }
        for (from, target) in targets {
            if let Some(file) = file_of(&target, &files)
                && *file != from
            {
                graph.entry(from.clone()).or_default().insert(file.clone());
            }
        }
        graph.entry(module_name.clone()).or_default();
    }
    graph
}

/// The groups of files that use each other in a circle (Tarjan's strongly connected
/// components of more than one file, or of one that uses itself).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(w: &mut Walk<'g>, node: &'g str) {
        let n = w.index.len();
        w.index.insert(node, n);
        w.low.insert(node, n);
        w.stack.push(node);
        w.on_stack.insert(node);
        for next in w.graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !w.graph.contains_key(next) {
                continue;
            }
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[node].min(w.low[next]);
                w.low.insert(node, low);
            } else if w.on_stack.contains(next) {
                let low = w.low[node].min(w.index[next]);
                w.low.insert(node, low);
            }
        }
        if w.low[node] == w.index[node] {
            let mut group = Vec::new();
            loop {
                let top = w.stack.pop().unwrap();
                w.on_stack.remove(top);
                group.push(top.to_string());
                if top == node {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                w.found.push(group);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            visit(&mut walk, node);
        }
    }
    walk.found
}

#[test]
fn no_file_in_src_is_in_an_import_circle() {
    let graph = uses();
    let found = circles(&graph);
    let mut report = String::new();
    for group in &found {
        report.push_str(&format!("circle of {} files:\n", group.len()));
        for file in group {
            let within: Vec<&String> = graph[file].iter().filter(|f| group.contains(f)).collect();
            report.push_str(&format!("  {file} uses {within:?}\n"));
        }
    }
    assert!(found.is_empty(), "{report}");
}

/// The reader must see what it is meant to: spot checks of edges the code has.
#[test]
fn the_reading_finds_known_uses() {
    let graph = uses();
    for (file, used) in [
        ("crate::dns::view", "crate::records"),
        ("crate::server::handler", "crate::dns::view"),
    ] {
        assert!(graph[file].contains(used), "{file} uses {:?}", graph[file]);
    }
    assert!(
        !graph["crate::records"]
            .iter()
            .any(|f| f.starts_with("crate::dns"))
    );
}

/// The stages, each with the stages it may use (besides itself): the data flows from the source
/// through the cluster state into the DNS view, which the DNS server and zone transfers read;
/// HTTP reads them all; `records` and `message` are below every stage; the flags, logging and
/// the crate root put them together.
const STAGES: [(&str, &[&str]); 13] = [
    ("records", &[]),
    ("message", &[]),
    ("memory", &[]),
    ("dns", &["records", "message"]),
    ("cluster", &["records", "dns"]),
    ("source", &["records", "cluster"]),
    ("transfer", &["records", "message", "dns"]),
    ("server", &["records", "message", "dns", "transfer"]),
    (
        "http",
        &[
            "records", "message", "dns", "cluster", "source", "transfer", "server",
        ],
    ),
    ("config", &["records", "dns", "source", "transfer"]),
    ("logging", &["config", "server"]),
    (
        "",
        &[
            "records", "message", "memory", "dns", "cluster", "source", "transfer", "server",
            "http", "config", "logging",
        ],
    ),
    // Test modules set up what they test with whatever they need.
    ("tests", &[]),
];

/// The stage a module belongs to: its first segment after `crate` (the crate root: "").
fn stage(module: &str) -> &str {
    module
        .strip_prefix("crate::")
        .map_or("", |rest| rest.split("::").next().unwrap())
}

fn is_test(module: &str) -> bool {
    module.split("::").any(|m| m == "tests" || m == "proptests")
}

#[test]
fn no_stage_uses_a_stage_above_it() {
    let graph = uses();
    let mut wrong = Vec::new();
    for (file, used) in &graph {
        if is_test(file) {
            continue;
        }
        let from = stage(file);
        let allowed = STAGES
            .iter()
            .find(|(name, _)| *name == from)
            .unwrap_or_else(|| panic!("{file}: stage {from:?} is not in STAGES"))
            .1;
        for target in used {
            let to = stage(target);
            if to != from && !allowed.contains(&to) {
                wrong.push(format!("{file} uses {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses of stages above:\n{}",
        wrong.join("\n")
    );
}

/// Every file says what it owns in its first line, and the design notes name every file.
#[test]
fn every_file_says_what_it_owns_and_the_design_names_it() {
    let design =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/design.md")).unwrap();
    let mut missing = Vec::new();
    for path in files()
        .values()
        .chain([&PathBuf::from(SRC).join("main.rs")])
    {
        let text = std::fs::read_to_string(path).unwrap();
        let relative = path
            .strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/"))
            .unwrap();
        assert!(
            text.starts_with("//! "),
            "{} does not open with a //! line",
            relative.display()
        );
        let name = relative.to_str().unwrap();
        if !design.contains(&format!("`{name}`")) {
            missing.push(name.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "docs/design.md does not name {missing:?}"
    );
}
