//! The layout's rules, read from the source (no tool but this test):
//!
//! * **No import circles** in any crate of the workspace: module A naming `crate::B…` (or
//!   a sibling through `super::`) while B, directly or through a chain, names A. A module
//!   may always use its ancestors' items; test code (`tests.rs`, `#[cfg(test)] mod`) is
//!   left out.
//! * **The gateway's planes**: nothing under `gateway/src/data/` names `crate::control`;
//!   the control plane and the shared pieces name the data plane only through
//!   `crate::data::LiveView`; the shared pieces never name `crate::control` (only
//!   `server.rs`, which wires the planes together, and the binary see both).
//! * **Small files**: no non-test source file over 600 lines without a one-line reason at
//!   its top (`//! Kept whole: …`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 6] = ["ffd", "storage", "gateway", "adminctl", "loadgen", "tests"];
const MAX_LINES: usize = 600;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file of a crate's `src/` (`a::b` for `src/a/b.rs` or
/// `src/a/b/mod.rs`; the crate root is ""). Binaries under `src/bin/` are their own
/// crates and are skipped (`None`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    Some(parts.join("::"))
}

/// The code of a file without comments and without inline `#[cfg(test)] mod … { … }`.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    // drop test modules: from `#[cfg(test)]` + `mod name {` to the matching brace
    while let Some(at) = out.find("#[cfg(test)]") {
        let rest = &out[at..];
        let Some(brace) = rest.find('{') else { break };
        let head = &rest[..brace];
        if !head.contains("mod ") || head.contains(';') {
            // `#[cfg(test)] mod tests;` or a cfg(test) item that is not a module
            out.replace_range(at..at + "#[cfg(test)]".len(), "");
            continue;
        }
        let mut depth = 0usize;
        let mut end = out.len();
        for (i, c) in out[at + brace..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = at + brace + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.replace_range(at..end, "");
    }
    out
}

/// Module paths named in `code`: `crate::a::b…` (also inside `use crate::{a, b::c}`
/// groups) and `super::x…`, resolved against `module`. Not resolved to existing modules
/// yet.
fn named_paths(code: &str, module: &str) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let read_path = |s: &str| -> Vec<String> {
        let mut parts = Vec::new();
        let mut rest = s;
        loop {
            let n = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
            if n == 0 {
                break;
            }
            parts.push(rest[..n].to_owned());
            rest = &rest[n..];
            match rest.strip_prefix("::") {
                Some(r) if r.starts_with(ident) => rest = r,
                _ => break,
            }
        }
        parts
    };
    // the module `super` refers to (for `a/b.rs` and `a/b/mod.rs` alike: `a`)
    let mut parent: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect();
    parent.pop();
    for (kw, base) in [("crate::", Vec::<String>::new()), ("super::", parent)] {
        let mut from = 0;
        while let Some(i) = code[from..].find(kw) {
            let at = from + i;
            from = at + kw.len();
            if at > 0 && code[..at].ends_with(ident) {
                continue; // `my_crate::`
            }
            let rest = &code[from..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let p = read_path(item.trim().trim_start_matches('{'));
                    if !p.is_empty() {
                        out.push(base.iter().cloned().chain(p).collect());
                    }
                }
            } else {
                let p = read_path(rest);
                if !p.is_empty() {
                    out.push(base.iter().cloned().chain(p).collect());
                }
            }
        }
    }
    out
}

/// The modules of a crate and, for each, the modules it names (resolved to the longest
/// existing module, ancestors left out).
struct Crate {
    files: BTreeMap<String, PathBuf>,
    edges: BTreeMap<String, BTreeSet<String>>,
    code: BTreeMap<String, String>,
}

fn load(name: &str) -> Crate {
    let src = root().join(name).join("src");
    let mut files = BTreeMap::new();
    let mut code = BTreeMap::new();
    for f in rust_files(&src) {
        let Some(m) = module_of(&src, &f) else { continue };
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue; // a test module
        }
        code.insert(m.clone(), code_of(&std::fs::read_to_string(&f).unwrap()));
        files.insert(m, f);
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, text) in &code {
        for path in named_paths(text, m) {
            let target = (1..=path.len()).rev().map(|k| path[..k].join("::")).find(|c| files.contains_key(c));
            let Some(t) = target else { continue };
            let ancestor = t.is_empty() || m == &t || m.starts_with(&format!("{t}::"));
            if !ancestor {
                edges.entry(m.clone()).or_default().insert(t);
            }
        }
    }
    Crate { files, edges, code }
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>, nodes: &BTreeSet<String>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        if let Some(ws) = t.edges.get(v) {
            for w in ws {
                if !t.index.contains_key(w.as_str()) {
                    visit(t, w);
                    let lw = t.low[w.as_str()];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w.as_str()) {
                    let iw = t.index[w.as_str()];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for n in nodes {
        if !t.index.contains_key(n.as_str()) {
            visit(&mut t, n);
        }
    }
    t.out
}

#[test]
fn no_import_circles_in_the_workspace() {
    let mut found = Vec::new();
    let mut modules = 0;
    for name in CRATES {
        let c = load(name);
        modules += c.files.len();
        let nodes: BTreeSet<String> = c.files.keys().cloned().collect();
        for comp in circles(&c.edges, &nodes) {
            let detail: Vec<String> = comp
                .iter()
                .map(|m| {
                    let to: Vec<&String> = c.edges[m].iter().filter(|t| comp.contains(t)).collect();
                    format!("{m} → {to:?}")
                })
                .collect();
            found.push(format!("{name}: {}", detail.join("; ")));
        }
    }
    assert!(modules > 100, "only {modules} modules read: is the workspace where this test expects it?");
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

/// The rule catches what it must: a circle made up in memory is found.
#[test]
fn the_circle_finder_finds_a_circle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        edges.entry(a.to_owned()).or_default().insert(b.to_owned());
    }
    let nodes: BTreeSet<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    assert_eq!(circles(&edges, &nodes), vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
    // and the reader sees imports through `use crate::{…}` groups and `super::`
    let p = named_paths("use crate::{x::Y, z};\nfn f() { super::w::g(); }", "p::q");
    assert!(p.contains(&vec!["x".to_owned(), "Y".to_owned()]), "{p:?}");
    assert!(p.contains(&vec!["z".to_owned()]), "{p:?}");
    assert!(p.contains(&vec!["p".to_owned(), "w".to_owned(), "g".to_owned()]), "{p:?}");
}

/// What a gateway module may name of the planes.
fn plane_violations(module: &str, code: &str) -> Vec<String> {
    let plane = module.split("::").next().unwrap_or("");
    let mut out = Vec::new();
    let names_control = code.contains("crate::control");
    let data_uses: Vec<&str> = code
        .match_indices("crate::data")
        .map(|(i, _)| {
            let rest = &code[i..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    match plane {
        "data" => {
            if names_control {
                out.push(format!("{module}: the data plane names crate::control"));
            }
        }
        "control" | "config" | "metrics" | "health" | "state" | "shutdown" | "process" | "tls" => {
            if plane != "control" && names_control {
                out.push(format!("{module}: a shared piece names crate::control"));
            }
            for u in data_uses {
                if u != "crate::data::LiveView" {
                    out.push(format!("{module}: names {u} (only crate::data::LiveView may cross)"));
                }
            }
        }
        "" | "server" => {} // the crate root and the wiring see both planes
        other => out.push(format!("{module}: top-level module {other} is in neither plane nor the shared list")),
    }
    out
}

#[test]
fn the_gateway_planes_keep_their_direction() {
    let c = load("gateway");
    assert!(c.files.keys().any(|m| m.starts_with("data::")), "no data plane folder");
    assert!(c.files.keys().any(|m| m.starts_with("control::")), "no control plane folder");
    let bad: Vec<String> = c.code.iter().flat_map(|(m, code)| plane_violations(m, code)).collect();
    assert!(bad.is_empty(), "plane rules broken:\n{}", bad.join("\n"));
    // the rule can fail
    assert!(!plane_violations("data::ingest", "use crate::control::admin::Ctx;").is_empty());
    assert!(!plane_violations("control::admin", "use crate::data::registry::Registry;").is_empty());
    assert!(plane_violations("control::admin", "use crate::data::LiveView;").is_empty());
}

#[test]
fn large_files_say_why_they_are_kept_whole() {
    let mut bad = Vec::new();
    for name in CRATES {
        let src = root().join(name).join("src");
        for f in rust_files(&src) {
            if f.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let lines = text.lines().count();
            // test modules at the end of a file do not count
            let code_lines = match text.find("#[cfg(test)]\nmod ") {
                Some(i) => text[..i].lines().count(),
                None => lines,
            };
            let reason = text.lines().take(5).any(|l| l.starts_with("//! Kept whole:"));
            if code_lines > MAX_LINES && !reason {
                bad.push(format!("{} ({code_lines} lines)", f.strip_prefix(root()).unwrap_or(&f).display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "over {MAX_LINES} lines without `//! Kept whole: <reason>` at the top:\n{}",
        bad.join("\n")
    );
}
