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
    &["secrets", "templates", "tls", "faults", "testing", "sender_auth"],
    &["config"],
    &["store"],
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

/// Every top module a file's code names through `crate::` (in `use` lines and in paths
/// written out; comments are not code), with the line it is named on.
fn named_modules(text: &str) -> Vec<(String, usize)> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue; // `esurety_crate::`, not ours
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c}`: the first name of each item at depth one.
                let mut depth = 0;
                let mut item_start = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && !c.is_whitespace() => {
                            item_start = false;
                            out.push((ident(&group[j..]), n + 1));
                        }
                        _ => {}
                    }
                }
            } else {
                out.push((ident(rest), n + 1));
            }
        }
    }
    out.retain(|(m, _)| !m.is_empty() && m != "self" && m != "super");
    out
}

/// (from, to) → the places that draw the arrow.
fn arrows() -> BTreeMap<(String, String), Vec<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut arrows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in files {
        let Some(from) = top_module(&f) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        for (to, line) in named_modules(&text) {
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
        if let Some(m) = top_module(f)
            && floor_of(&m).is_none()
        {
            wrong.push(format!("src/{m} stands on no floor"));
        }
    }
    let longest = longest_chain(&arrows);
    println!("{} top modules, {} arrows between them, longest chain {}: {}", modules.len(), arrows.len(), longest.len(), longest.join(" → "));
    assert!(wrong.is_empty(), "the layout of src/ is broken:\n{}", wrong.join("\n"));
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

/// The longest path of arrows (the layout has no circle, so it ends).
fn longest_chain(arrows: &BTreeMap<(String, String), Vec<String>>) -> Vec<String> {
    fn from(m: &str, arrows: &BTreeMap<(String, String), Vec<String>>, memo: &mut BTreeMap<String, Vec<String>>, depth: usize) -> Vec<String> {
        if let Some(c) = memo.get(m) {
            return c.clone();
        }
        let mut best = vec![m.to_string()];
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
