//! The floors of `src/`, held: the table in `src/lib.rs` gives each top-level module a floor,
//! and every `crate::…`, `super::…` or `self::…` path that leaves a module (in a `use` list, a
//! `pub use` re-export or inline in code) must go to a module on its own floor or below. The
//! files of `src/student/` must not need each other in a cycle either.
//!
//! The scanner reads the source as text: comments, strings and char literals are blanked
//! first, so doc links and messages never count; inline `mod x { … }` blocks move `super::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Folders whose files must not need each other in a cycle.
const ACYCLIC: &[&str] = &["student"];

/// Folders whose files never use one another (only their `mod.rs` may): one stage never
/// reaches into another stage's file; what two stages share lives in `mod.rs` or below.
const APART: &[&str] = &["stages"];

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// Module → floor, from the `//! | N | \`a\`, \`b\` | why |` rows of `src/lib.rs`.
fn floors(lib: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.trim_start().strip_prefix("//! |") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').collect();
        let (Some(n), Some(mods)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        let Ok(n) = n.trim().parse::<usize>() else {
            continue;
        };
        for name in mods.split('`').skip(1).step_by(2) {
            out.insert(name.to_string(), n);
        }
    }
    out
}

/// The modules `src/lib.rs` declares (`mod x;`, `pub mod x;`) and the root names it re-exports
/// (`pub use m::{A, B}` → A → m).
fn root(lib: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let toks = tokens(&blank(lib));
    let mut mods = BTreeSet::new();
    let mut names = BTreeMap::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i].text == "mod" && toks.get(i + 2).is_some_and(|t| t.text == ";") {
            mods.insert(toks[i + 1].text.clone());
        }
        if toks[i].text == "use" {
            let (paths, end) = use_tree(&toks, i + 1);
            for p in paths {
                if let (Some(first), Some(last)) = (p.first(), p.last())
                    && p.len() >= 2
                {
                    names.insert(last.clone(), first.clone());
                }
            }
            i = end;
        }
        i += 1;
    }
    (mods, names)
}

// ---------------------------------------------------------------------------------------------
// The scanner
// ---------------------------------------------------------------------------------------------

/// `src` with comments, string and char literals replaced by spaces (newlines kept).
fn blank(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out: Vec<char> = c.clone();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    let wipe = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in out.iter_mut().take(to.min(c.len())).skip(from) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    while i < c.len() {
        // 1. Line comments.
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            wipe(&mut out, i, end);
            i = end;
            continue;
        }
        // 2. Block comments, nested.
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let (mut j, mut depth) = (i + 2, 1);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j);
            i = j;
            continue;
        }
        // 3. Raw strings: r"…", r#"…"#, br#"…"#.
        if c[i] == 'r'
            && (i == 0 || !ident(c[i - 1]) || (c[i - 1] == 'b' && (i == 1 || !ident(c[i - 2]))))
        {
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            if c.get(j) == Some(&'"') {
                let hashes = j - i - 1;
                let mut k = j + 1;
                while k < c.len()
                    && !(c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#')))
                {
                    k += 1;
                }
                let end = (k + 1 + hashes).min(c.len());
                wipe(&mut out, i + 1, end);
                i = end;
                continue;
            }
        }
        // 4. Strings.
        if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            wipe(&mut out, i, j + 1);
            i = j + 1;
            continue;
        }
        // 5. Char literals ('a', '\n', '\u{..}'); a lifetime or label ('a) stays.
        if c[i] == '\'' {
            if c.get(i + 1) == Some(&'\\') {
                let end = (i + 2..c.len()).find(|&j| c[j] == '\'').unwrap_or(c.len());
                wipe(&mut out, i, end + 1);
                i = end + 1;
                continue;
            }
            if c.get(i + 2) == Some(&'\'') {
                wipe(&mut out, i, i + 3);
                i += 3;
                continue;
            }
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// One token of blanked source and its line (1-based).
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    line: usize,
}

/// Identifiers (with `$crate` as one token), `::`, and single punctuation characters.
fn tokens(s: &str) -> Vec<Tok> {
    let c: Vec<char> = s.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric()
            || ch == '_'
            || (ch == '$' && c.get(i + 1).is_some_and(|n| n.is_alphabetic()))
        {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let text: String = c[start..i].iter().collect();
            out.push(Tok {
                text: text.trim_start_matches('$').to_string(),
                line,
            });
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Tok {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Tok {
                text: ch.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The paths of a use tree (or of one inline path) starting at `toks[i]`: `a::b::{c, d::e}`
/// gives `[a, b, c]` and `[a, b, d, e]`; `x as y` keeps `x`. Returns the paths and the index
/// of the first token after the tree.
fn use_tree(toks: &[Tok], i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = i;
    loop {
        let Some(t) = toks.get(i) else {
            return (vec![prefix], i);
        };
        if t.text == "{" {
            let mut paths = Vec::new();
            i += 1;
            loop {
                match toks.get(i).map(|t| t.text.as_str()) {
                    None => return (paths, i),
                    Some("}") => {
                        i += 1;
                        break;
                    }
                    Some(",") => i += 1,
                    Some(_) => {
                        let (sub, end) = use_tree(toks, i);
                        for s in sub {
                            let mut p = prefix.clone();
                            p.extend(s);
                            paths.push(p);
                        }
                        i = if end == i { i + 1 } else { end };
                    }
                }
            }
            return (paths, i);
        }
        if !(is_ident(&t.text) || t.text == "*") {
            return (vec![prefix], i);
        }
        prefix.push(t.text.clone());
        i += 1;
        if toks.get(i).is_some_and(|t| t.text == "as") {
            i += 2;
            return (vec![prefix], i);
        }
        if toks.get(i).is_some_and(|t| t.text == "::") {
            i += 1;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// One path that a file names, resolved from the crate root (`super`/`self`/`crate` applied),
/// with the line it is on.
#[derive(Debug, Clone, PartialEq)]
struct Use {
    line: usize,
    /// What the source wrote, as `a::b::c`.
    written: String,
    /// The absolute path inside the crate.
    path: Vec<String>,
}

/// Every `crate::`, `super::`, `self::` path in `src` (a file whose module is `module`), and
/// every path that starts with a child module named in `children` (as `mod.rs` writes them).
fn uses(src: &str, module: &[String], children: &BTreeSet<String>) -> Vec<Use> {
    let toks = tokens(&blank(src));
    let mut out = Vec::new();
    // Inline `mod x { … }`: (name, the brace depth outside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i].text;
        if t == "{" {
            depth += 1;
        } else if t == "}" {
            depth = depth.saturating_sub(1);
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
        } else if t == "mod" && toks.get(i + 2).is_some_and(|t| t.text == "{") {
            inline.push((toks[i + 1].text.clone(), depth));
        }
        let starts = matches!(t.as_str(), "crate" | "super" | "self")
            || (inline.is_empty() && children.contains(t));
        let after_sep = i > 0 && toks[i - 1].text == "::";
        // `pub(crate)`, `pub(super)`, `pub(in crate::x)` are visibility, not a use.
        let vis = i > 1 && toks[i - 1].text == "(" && toks[i - 2].text == "pub";
        if starts && !after_sep && !vis && toks.get(i + 1).is_some_and(|t| t.text == "::") {
            let here: Vec<String> = module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            let (paths, end) = use_tree(&toks, i);
            for p in paths {
                if let Some(abs) = absolute(&here, &p) {
                    out.push(Use {
                        line: toks[i].line,
                        written: p.join("::"),
                        path: abs,
                    });
                }
            }
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

/// `p` as written in module `here`, from the crate root; `None` if it climbs above the root.
fn absolute(here: &[String], p: &[String]) -> Option<Vec<String>> {
    let mut cur: Vec<String> = here.to_vec();
    let mut rest = p;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            cur.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                cur.pop()?;
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    cur.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(cur)
}

// ---------------------------------------------------------------------------------------------
// The files
// ---------------------------------------------------------------------------------------------

/// A source file and its module path (`src/student/load.rs` → `student::load`).
struct File {
    path: PathBuf,
    rel: String,
    module: Vec<String>,
    text: String,
}

fn files(src: &Path) -> Vec<File> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let mut module: Vec<String> = rel
                    .trim_end_matches(".rs")
                    .split('/')
                    .map(String::from)
                    .collect();
                if module
                    .last()
                    .is_some_and(|m| m == "mod" || m == "lib" || m == "main")
                {
                    module.pop();
                }
                let text = std::fs::read_to_string(&p).unwrap();
                out.push(File {
                    path: p,
                    rel: format!("src/{rel}"),
                    module,
                    text,
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// The child modules a file declares with `mod x;` (the files beside or below it).
fn child_mods(text: &str) -> BTreeSet<String> {
    let toks = tokens(&blank(text));
    (0..toks.len().saturating_sub(2))
        .filter(|&i| toks[i].text == "mod" && toks[i + 2].text == ";")
        .map(|i| toks[i + 1].text.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

/// Every use of a module on a higher floor, as `file:line: …` lines.
fn floor_violations(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let table = floors(&lib);
    let (mods, root_names) = root(&lib);
    let mut bad = Vec::new();
    for m in &mods {
        if !table.contains_key(m) {
            bad.push(format!(
                "src/lib.rs: module `{m}` has no floor in the table of src/lib.rs"
            ));
        }
    }
    for m in table.keys() {
        if !mods.contains(m) {
            bad.push(format!(
                "src/lib.rs: the floor table names `{m}`, which lib.rs does not declare"
            ));
        }
    }
    for f in files(src) {
        // The crate root only declares and re-exports; the binary is the top floor.
        let Some(from) = f.module.first() else {
            continue;
        };
        if f.rel == "src/main.rs" {
            continue;
        }
        let children = if f.path.file_name().is_some_and(|n| n == "mod.rs") {
            child_mods(&f.text)
        } else {
            BTreeSet::new()
        };
        for u in uses(&f.text, &f.module, &children) {
            let Some(first) = u.path.first() else {
                continue;
            };
            let to = if mods.contains(first) {
                first.clone()
            } else if let Some(m) = root_names.get(first) {
                m.clone()
            } else {
                bad.push(format!(
                    "{}:{}: `{}` names `crate::{first}`, which is no module of the floor table",
                    f.rel, u.line, u.written
                ));
                continue;
            };
            if &to == from {
                continue;
            }
            let (Some(&a), Some(&b)) = (table.get(from), table.get(&to)) else {
                continue;
            };
            if b > a {
                bad.push(format!(
                    "{}:{}: `{from}` (floor {a}) uses `{to}` (floor {b}): `{}`",
                    f.rel, u.line, u.written
                ));
            }
        }
    }
    bad
}

/// An import cycle between the files of `src/<folder>/`, as the edges that close it.
fn cycles(src: &Path, folder: &str) -> Vec<String> {
    let all = files(src);
    let here: Vec<&File> = all
        .iter()
        .filter(|f| f.module.first().is_some_and(|m| m == folder))
        .collect();
    let Some(modrs) = here.iter().find(|f| f.module.len() == 1) else {
        return vec![];
    };
    let children = child_mods(&modrs.text);
    // Names `mod.rs` re-exports from a child: `pub use family::Family` → Family → family.
    let mut reexported: BTreeMap<String, String> = BTreeMap::new();
    for u in uses(&modrs.text, &modrs.module, &children) {
        if u.path.len() >= 3 && children.contains(&u.path[1]) {
            reexported.insert(u.path.last().unwrap().clone(), u.path[1].clone());
        }
    }
    let node = |f: &File| f.module.get(1).cloned().unwrap_or_else(|| "mod".into());
    // file → file → (line, written)
    let mut edges: BTreeMap<String, BTreeMap<String, (usize, String)>> = BTreeMap::new();
    for f in &here {
        let from = node(f);
        let ch = if f.module.len() == 1 {
            children.clone()
        } else {
            BTreeSet::new()
        };
        for u in uses(&f.text, &f.module, &ch) {
            if u.path.first().map(String::as_str) != Some(folder) || u.path.len() < 2 {
                continue;
            }
            let to = if children.contains(&u.path[1]) {
                u.path[1].clone()
            } else if let Some(c) = reexported.get(&u.path[1]) {
                c.clone()
            } else {
                "mod".into()
            };
            if to != from {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert((u.line, u.written));
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeMap<String, (usize, String)>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flat_map(|e| e.keys()) {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let mut cyc = stack[at..].to_vec();
                    cyc.push(m.clone());
                    return Some(cyc);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    let nodes: Vec<String> = edges.keys().cloned().collect();
    for n in nodes {
        if state.get(&n).copied().unwrap_or(0) == 0
            && let Some(cyc) = visit(&n, &edges, &mut state, &mut Vec::new())
        {
            return cyc
                .windows(2)
                .map(|w| {
                    let (line, written) = &edges[&w[0]][&w[1]];
                    let file = if w[0] == "mod" {
                        "mod".to_string()
                    } else {
                        w[0].clone()
                    };
                    format!(
                        "src/{folder}/{file}.rs:{line}: `{}` needs `{}` (`{written}`)",
                        w[0], w[1]
                    )
                })
                .collect();
        }
    }
    vec![]
}

/// Every use of a sibling file in a folder whose files stay apart.
fn sibling_uses(src: &Path, folder: &str) -> Vec<String> {
    let all = files(src);
    let Some(modrs) = all.iter().find(|f| f.module == [folder.to_string()]) else {
        return vec![];
    };
    let children = child_mods(&modrs.text);
    let mut bad = Vec::new();
    for f in all
        .iter()
        .filter(|f| f.module.len() >= 2 && f.module[0] == folder)
    {
        for u in uses(&f.text, &f.module, &BTreeSet::new()) {
            if u.path.len() >= 2
                && u.path[0] == folder
                && u.path[1] != f.module[1]
                && children.contains(&u.path[1])
            {
                bad.push(format!(
                    "{}:{}: `{folder}::{}` uses its sibling `{folder}::{}`: `{}`",
                    f.rel, u.line, f.module[1], u.path[1], u.written
                ));
            }
        }
    }
    bad
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_module_uses_a_higher_floor() {
    let bad = floor_violations(&src());
    assert!(
        bad.is_empty(),
        "{} use(s) against the floors of src/lib.rs:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn folders_have_no_import_cycle() {
    for folder in ACYCLIC {
        let cyc = cycles(&src(), folder);
        assert!(
            cyc.is_empty(),
            "an import cycle in src/{folder}/:\n{}",
            cyc.join("\n")
        );
    }
}

#[test]
fn stages_stay_apart() {
    for folder in APART {
        let bad = sibling_uses(&src(), folder);
        assert!(
            bad.is_empty(),
            "files of src/{folder}/ that use each other:\n{}",
            bad.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner on made-up sources
// ---------------------------------------------------------------------------------------------

fn scan(src: &str, module: &[&str]) -> Vec<(usize, String)> {
    let m: Vec<String> = module.iter().map(|s| s.to_string()).collect();
    uses(src, &m, &BTreeSet::new())
        .into_iter()
        .map(|u| (u.line, u.path.join("::")))
        .collect()
}

#[test]
fn scanner_reads_use_lists_inline_paths_and_reexports() {
    let src = "use crate::{a::b, c::{self, d as e}};\n\
               pub use crate::f::G;\n\
               fn x() { let _ = crate::h::i(1); super::j::k(); }\n\
               pub(crate) fn y() -> Vec<crate::l::M> { todo!() }\n";
    let got = scan(src, &["top", "file"]);
    assert_eq!(
        got,
        vec![
            (1, "a::b".to_string()),
            (1, "c".to_string()),
            (1, "c::d".to_string()),
            (2, "f::G".to_string()),
            (3, "h::i".to_string()),
            (3, "top::j::k".to_string()),
            (4, "l::M".to_string()),
        ]
    );
}

#[test]
fn scanner_ignores_comments_strings_and_follows_inline_mods() {
    let src = "// use crate::no1;\n\
               /* crate::no2::x /* nested crate::no3 */ */\n\
               const S: &str = \"crate::no4::y\";\n\
               const R: &str = r#\"crate::no5 \" \"#;\n\
               const C: char = '\"'; fn f<'a>(x: &'a u8) {}\n\
               #[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::up::Z;\n}\n\
               use super::after;\n";
    let got = scan(src, &["top", "file"]);
    assert_eq!(
        got,
        vec![
            (8, "top::file::*".to_string()),
            (9, "top::up::Z".to_string()),
            (11, "top::after".to_string())
        ]
    );
}

#[test]
fn floors_table_is_read_from_rows() {
    let lib = "//! | floor | modules | why |\n//! |---|---|---|\n//! | 0 | `a`, `b` | low |\n//! | 2 | `c` | high |\n";
    let t = floors(lib);
    assert_eq!(t.get("a"), Some(&0));
    assert_eq!(t.get("b"), Some(&0));
    assert_eq!(t.get("c"), Some(&2));
    assert_eq!(t.len(), 3);
}
