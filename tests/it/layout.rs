//! The layout of `src/` (README § Layout) holds: read from the code's own `crate::` paths,
//! every top module stands on a floor and reaches only floors below its own, so no circle
//! between them is possible and nothing below imports what stands above it; the two front
//! doors (`web/`, `cli/`) never import each other; and no file grows past 500 lines (one
//! past 400 says why at its top).
//!
//! Anyone can see the same picture with `cargo test --test it layout:: -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, from the ground up, as the README draws them. A module not named here fails
/// the test: a new folder is placed on a floor on purpose.
const FLOORS: &[&[&str]] = &[
    &["text", "clock"],
    &["domain"],
    &["secrets", "templates", "tls", "faults", "testing", "sender_auth", "signature"],
    &["config"],
    &["store"],
    &["oauth"],
    &["intake"],
    &["outbound"],
    &["registry"],
    &["error"],
    &["branch", "owner"],
    &["engine", "health"],
    &["desk"],
    &["web"],
    &["daemon"],
    &["demo"],
    &["cli"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top module a file belongs to (`branch/application/form.rs` → `branch`); `lib.rs`
/// and `main.rs` stand outside the floors.
fn top_module(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// A token of Rust code with its line: an identifier (with `$`, as in `$crate`), `::`, or
/// one punctuation character. Comments, strings and character literals are not code.
fn tokens(text: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let at = |i: usize, s: &str| s.chars().enumerate().all(|(k, ch)| c.get(i + k) == Some(&ch));
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if at(i, "//") {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < c.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if (ch == 'r' || (ch == 'b' && c.get(i + 1) == Some(&'r'))) && {
            let j = i + if ch == 'b' { 2 } else { 1 };
            let hashes = c[j..].iter().take_while(|x| **x == '#').count();
            c.get(j + hashes) == Some(&'"')
        } {
            // A raw string: r"…", r#"…"#, br"…".
            let j = i + if ch == 'b' { 2 } else { 1 };
            let hashes = c[j..].iter().take_while(|x| **x == '#').count();
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            i = j + hashes + 1;
            while i < c.len() && !at(i, &close) {
                line += usize::from(c[i] == '\n');
                i += 1;
            }
            i += close.chars().count();
        } else if ch == '"' || (ch == 'b' && c.get(i + 1) == Some(&'"')) {
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' {
                line += usize::from(c[i] == '\n');
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if ch == '\'' && (c.get(i + 2) == Some(&'\'') || c.get(i + 1) == Some(&'\\')) {
            // A character literal ('x', '\n', '\u{…}'); a lifetime ('a) has no closing quote.
            i += 1;
            while i < c.len() && c[i] != '\'' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if ch.is_alphanumeric() || ch == '_' || ch == '$' {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((c[start..i].iter().collect(), line));
        } else if at(i, "::") {
            out.push(("::".into(), line));
            i += 2;
        } else {
            out.push((ch.to_string(), line));
            i += 1;
        }
    }
    out
}

/// What a file's code names of other top modules, with the line, and the forms of code
/// this reading cannot follow (refused, so that nothing reaches up unseen).
struct Reading {
    named: Vec<(String, usize)>,
    refused: Vec<String>,
}

/// Reads one file: every path through `crate::` or `$crate::` (groups `{…}` over any
/// number of lines, spaces around `::`), and every `super::` that climbs out of its top
/// module (`depth` is how deep the file's module is: `src/domain/mod.rs` 1,
/// `src/domain/key.rs` 2; inline `mod x { … }` add one each).
fn read(text: &str, depth: usize) -> Reading {
    let t = tokens(text);
    let mut r = Reading { named: Vec::new(), refused: Vec::new() };
    let tok = |i: usize| t.get(i).map(|x| x.0.as_str()).unwrap_or("");
    // The first name of each item of a group opening at `i` (`{`), at its depth.
    let group = |mut i: usize, r: &mut Reading| {
        let mut depth = 0;
        let mut item = true;
        while i < t.len() {
            match tok(i) {
                "{" => {
                    depth += 1;
                    if depth > 1 {
                        item = false;
                    }
                }
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                "," if depth == 1 => item = true,
                "*" if depth == 1 && item => r.refused.push(format!("line {}: a glob import at the crate's root (`crate::{{*}}`)", t[i].1)),
                name if depth == 1 && item => {
                    r.named.push((name.to_string(), t[i].1));
                    item = false;
                }
                _ => {}
            }
            i += 1;
        }
    };
    // Inline modules open at these brace depths.
    let mut braces = 0usize;
    let mut inline: Vec<usize> = Vec::new();
    for i in 0..t.len() {
        let line = t[i].1;
        match tok(i) {
            "{" => {
                braces += 1;
                if tok(i.wrapping_sub(2)) == "mod" {
                    inline.push(braces);
                }
            }
            "}" => {
                if inline.last() == Some(&braces) {
                    inline.pop();
                }
                braces = braces.saturating_sub(1);
            }
            "crate" | "$crate" if tok(i.wrapping_sub(1)) != "::" => match (tok(i + 1), tok(i + 2)) {
                ("::", "{") => group(i + 2, &mut r),
                ("::", "*") => r.refused.push(format!("line {line}: a glob import of the crate's root (`crate::*`)")),
                ("::", next) if next.starts_with('$') => r.refused.push(format!("line {line}: a module named by a macro's argument (`crate::{next}`)")),
                ("::", next) => r.named.push((next.to_string(), line)),
                ("as", _) => r.refused.push(format!("line {line}: the crate renamed (`crate as …`)")),
                (";", _) if tok(i.wrapping_sub(1)) == "self" => {}
                _ => {}
            },
            "super" if tok(i.wrapping_sub(1)) != "::" => {
                let mut j = i;
                let mut ups = 0;
                while tok(j) == "super" && tok(j + 1) == "::" {
                    ups += 1;
                    j += 2;
                }
                if ups >= depth + inline.len() {
                    match tok(j) {
                        "{" => group(j, &mut r),
                        "*" => r.refused.push(format!("line {line}: a glob import of the crate's root through `super`")),
                        next => r.named.push((next.to_string(), line)),
                    }
                }
            }
            // `#[path = "x_tests.rs"]` beside the file is fine; one that leaves the folder
            // would count a file as another module's.
            "path" if tok(i.wrapping_sub(1)) == "[" && tok(i.wrapping_sub(2)) == "#" && text.lines().nth(line - 1).is_none_or(|l| l.contains('/') || l.contains("..")) => {
                r.refused.push(format!("line {line}: `#[path]` out of the file's folder (a file counted as another module's)"))
            }
            "macro_use" => r.refused.push(format!("line {line}: `#[macro_use]` (macros reaching across modules unseen)")),
            "extern" if tok(i + 1) == "crate" && tok(i + 2) == "self" => r.refused.push(format!("line {line}: `extern crate self` (the crate under another name)")),
            _ => {}
        }
    }
    r.named.retain(|(m, _)| !m.is_empty() && m != "self" && m != "super" && m != "crate");
    r
}

/// How deep a file's module stands below the crate's root.
fn depth(file: &Path) -> usize {
    let rel = file.strip_prefix(src()).unwrap();
    let parts = rel.components().count();
    if rel.file_name().is_some_and(|n| n == "mod.rs") { parts - 1 } else { parts }
}

/// (from, to) → the places that draw the arrow.
fn arrows() -> BTreeMap<(String, String), Vec<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut arrows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in files {
        let Some(from) = top_module(&f) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        for (to, line) in read(&text, depth(&f)).named {
            if to != from {
                let place = format!("{}:{line}", f.strip_prefix(src()).unwrap().display());
                arrows.entry((from.clone(), to)).or_default().push(place);
            }
        }
    }
    arrows
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

#[test]
fn every_top_module_reaches_only_the_floors_below_its_own() {
    let arrows = arrows();
    let mut modules = BTreeSet::new();
    let mut wrong = Vec::new();
    for ((from, to), places) in &arrows {
        modules.insert(from.clone());
        modules.insert(to.clone());
        match (floor_of(from), floor_of(to)) {
            (Some(a), Some(b)) if b < a => {}
            (Some(_), Some(_)) => wrong.push(format!("{from} → {to} does not go down (at {})", places.join(", "))),
            _ => wrong.push(format!("{from} → {to}: a module on no floor (name it in FLOORS and in the README)")),
        }
    }
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for f in &files {
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        if let Some(m) = top_module(f)
            && floor_of(&m).is_none()
        {
            wrong.push(format!("src/{m} stands on no floor"));
        }
        let text = std::fs::read_to_string(f).unwrap();
        wrong.extend(read(&text, depth(f)).refused.into_iter().map(|r| format!("{rel}, {r}: write it as a plain path")));
    }
    wrong.extend(foreign_impls());
    let longest = longest_chain(&arrows);
    println!("{} top modules, {} arrows between them, longest chain {}: {}", modules.len(), arrows.len(), longest.len(), longest.join(" → "));
    assert!(wrong.is_empty(), "the layout of src/ is broken:\n{}", wrong.join("\n"));
}

/// Methods a module adds to another top module's type (`impl Engine { … }` outside
/// `engine.rs`) reach no path a reader could follow: whoever has the type gets them, so a
/// lower floor could call what stands above it. The types' own modules define their
/// methods; a trait implemented for a type (`impl Trait for Type`) is fine.
fn foreign_impls() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut defined: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut impls = Vec::new();
    for f in &files {
        let Some(m) = top_module(f) else { continue };
        let t = tokens(&std::fs::read_to_string(f).unwrap());
        for i in 0..t.len() {
            if matches!(t[i].0.as_str(), "struct" | "enum" | "trait" | "union" | "type") && let Some((name, _)) = t.get(i + 1) {
                defined.entry(name.clone()).or_default().insert(m.clone());
            }
            // An `impl` item (not `impl Trait` in a signature): at the start of an item.
            if t[i].0 == "impl" && (i == 0 || matches!(t[i - 1].0.as_str(), "}" | ";" | "]" | "{" | "unsafe")) {
                // `impl<…> Path<…> {` with no `for` before the brace: an inherent impl.
                let mut j = i + 1;
                let mut angle = 0i32;
                let mut last = None;
                let mut inherent = true;
                while let Some((tok, _)) = t.get(j) {
                    match tok.as_str() {
                        "<" => angle += 1,
                        ">" => angle -= 1,
                        "{" | ";" if angle <= 0 => break,
                        "for" if angle <= 0 => inherent = false,
                        "where" if angle <= 0 => break,
                        name if angle <= 0 && name.chars().next().is_some_and(|c| c.is_alphabetic()) => last = Some(name.to_string()),
                        _ => {}
                    }
                    j += 1;
                }
                if inherent && let Some(name) = last {
                    impls.push((m.clone(), name, format!("{}:{}", f.strip_prefix(src()).unwrap().display(), t[i].1)));
                }
            }
        }
    }
    impls.into_iter().filter_map(|(m, name, place)| {
        let owners = defined.get(&name)?;
        (!owners.contains(&m)).then(|| format!("{place}: methods added to {name} of {} (define them there, or as functions here)", owners.iter().cloned().collect::<Vec<_>>().join(", ")))
    }).collect()
}

#[test]
fn the_two_front_doors_do_not_import_each_other() {
    let arrows = arrows();
    for pair in [("web", "cli"), ("cli", "web")] {
        let key = (pair.0.to_string(), pair.1.to_string());
        assert!(!arrows.contains_key(&key), "{} imports {}: {:?}", pair.0, pair.1, arrows[&key]);
    }
}

#[test]
fn no_file_is_longer_than_500_lines_and_one_over_400_says_why() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut long = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = text.lines().count();
        let head: String = text.lines().take_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
        if lines > 500 || (lines > 400 && !head.contains("Longer than 400 lines")) {
            long.push(format!("{} ({lines} lines)", f.strip_prefix(src()).unwrap().display()));
        }
    }
    assert!(long.is_empty(), "split these, or say at their top why they are long:\n{}", long.join("\n"));
}

/// The longest path of arrows (cut where a circle would close it).
fn longest_chain(arrows: &BTreeMap<(String, String), Vec<String>>) -> Vec<String> {
    fn from(m: &str, arrows: &BTreeMap<(String, String), Vec<String>>, memo: &mut BTreeMap<String, Vec<String>>, depth: usize) -> Vec<String> {
        if let Some(c) = memo.get(m) {
            return c.clone();
        }
        let mut best = vec![m.to_string()];
        // A circle (which the test above refuses) would never end: the chain stops at it.
        memo.insert(m.to_string(), best.clone());
        if depth < 64 {
            for (a, b) in arrows.keys() {
                if a == m {
                    let tail = from(b, arrows, memo, depth + 1);
                    if tail.len() + 1 > best.len() {
                        best = std::iter::once(m.to_string()).chain(tail).collect();
                    }
                }
            }
        }
        memo.insert(m.to_string(), best.clone());
        best
    }
    let mut memo = BTreeMap::new();
    let starts: BTreeSet<&String> = arrows.keys().map(|(a, _)| a).collect();
    starts.into_iter().map(|s| from(s, arrows, &mut memo, 0)).max_by_key(Vec::len).unwrap_or_default()
}
