//! The layering rules of DESIGN.md §3, checked on the source itself: no two modules import
//! each other, the store imports nothing of the domain, the core builds no JSON outside its
//! tests, and the doors never reach for the store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `root`, by module path (`router::hub`, `store`, …).
fn modules(root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(root).expect("below the root").with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            (parts, path)
        })
        .collect()
}

/// The source without comments and without its `#[cfg(test)] mod tests`.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a readable source file");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The modules a file names through `crate::` or `super::` paths.
fn imports(all: &BTreeMap<Vec<String>, PathBuf>, module: &[String], path: &Path) -> BTreeSet<Vec<String>> {
    let text = code(path);
    let mut found = BTreeSet::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", module[..module.len().saturating_sub(1)].to_vec())] {
        for (at, _) in text.match_indices(prefix) {
            let preceded_by_word =
                text[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if preceded_by_word {
                continue;
            }
            let rest: String = text[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut parts = base.clone();
            parts.extend(rest.split("::").filter(|p| !p.is_empty()).map(str::to_owned));
            // The deepest prefix that is a module.
            while !parts.is_empty() && !all.contains_key(&parts) {
                parts.pop();
            }
            if !parts.is_empty() && parts != module {
                found.insert(parts);
            }
        }
    }
    found
}

fn graph(root: &str) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let all = modules(&root);
    all.iter().map(|(module, path)| (module.clone(), imports(&all, module, path))).collect()
}

#[test]
fn no_two_modules_import_each_other() {
    for root in ["src", "actors/src"] {
        let graph = graph(root);
        let circles: Vec<String> = graph
            .iter()
            .flat_map(|(a, deps)| deps.iter().map(move |b| (a, b)))
            .filter(|(a, b)| a < b && graph.get(*b).is_some_and(|back| back.contains(*a)))
            .map(|(a, b)| format!("{} <-> {}", a.join("::"), b.join("::")))
            .collect();
        assert!(circles.is_empty(), "{root}: modules that import each other: {circles:?}");
    }
}

#[test]
fn the_store_imports_no_domain_module() {
    // `test_support` and `testing` are the core's test scaffolding, named only by test-only
    // store files.
    let allowed = ["model", "storage", "clock", "jid", "store", "test_support", "testing"];
    for (module, deps) in graph("actors/src").iter().filter(|(m, _)| m.first().is_some_and(|f| f == "store")) {
        for dep in deps {
            assert!(allowed.contains(&dep[0].as_str()), "{} imports {}", module.join("::"), dep.join("::"));
        }
    }
}

#[test]
fn the_core_builds_no_json_and_the_doors_never_reach_for_the_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (module, path) in modules(&root.join("actors/src")) {
        assert!(!code(&path).contains("json!("), "actors/src/{} builds JSON", module.join("/"));
    }
    for (module, path) in modules(&root.join("src")) {
        assert!(!code(&path).contains("state.store"), "src/{} calls the store", module.join("/"));
    }
}
