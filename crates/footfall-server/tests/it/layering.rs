//! The module graph of the workspace's crates has no cycle: every import points down.
//!
//! `cargo test -p footfall-server --test it layering` prints each crate's modules by
//! layer (a module sits one layer above the highest module it imports), and fails on a
//! cycle, naming the files and the paths that close it.
//!
//! The graph is read from the source: a file is a module (`src/a/b.rs` and
//! `src/a/b/mod.rs` are `a::b`), and each `crate::…` or `super::…` path in its code (not
//! in comments) is an arrow to the deepest module file the path names, and so is a path
//! that starts with the name of a child module (`render::badge` in `trust/mod.rs`).
//! `use` trees with braces are expanded. Re-exports (`pub use`) are not arrows: a
//! directory's `mod.rs` may name its children's items for its users, as long as the
//! children do not import from it what it defines itself. A `super::` after an inline `mod … {` line refers to the file
//! itself (a `mod tests` block) and is not an arrow. Test modules count: a test in `a.rs`
//! that reaches up to `b.rs`, which imports `a`, is a cycle too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (segments below the crate root) of each source file of `src`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let mut segments: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            match segments.last().map(String::as_str) {
                Some("mod") => {
                    segments.pop();
                }
                // Crate roots and binaries are not modules of the library graph.
                Some("lib" | "main") if segments.len() == 1 => continue,
                _ => {}
            }
            if segments.first().is_some_and(|s| s == "bin") {
                continue;
            }
            found.insert(segments, path);
        }
    }
    found
}

/// Expands a `use` tree or a plain path after its root (`a::{b, c::{d}}`) into paths.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path: Vec<String> = tree
            .split("::")
            .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
            .filter(|s| !s.is_empty() && s != "self" && s != "*")
            .collect();
        return vec![path];
    };
    let prefix: Vec<String> = tree[..open]
        .split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    let mut paths = Vec::new();
    for item in items.into_iter().filter(|i| !i.trim().is_empty()) {
        for rest in expand(item) {
            paths.push(prefix.iter().cloned().chain(rest).collect());
        }
    }
    if paths.is_empty() {
        paths.push(prefix);
    }
    paths
}

/// The paths the file of `module` names after `crate::` and `super::`, as absolute
/// module paths.
fn referenced_paths(text: &str, module: &[String], children: &[String]) -> Vec<Vec<String>> {
    // `super` of `a::b` (file a/b.rs) is `a`; of `a` (file a/mod.rs) it is the root.
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    let mut inline_module = false;
    let mut paths = Vec::new();
    // Statements may span lines (`use crate::{\n a,\n b};`): join each `use` until `;`.
    let mut pending: Option<(String, bool)> = None;
    let mut skipping = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim();
        // `mod tests {`, `pub mod x {`, `pub(super) mod facts {`: an inline module.
        let without_visibility = match trimmed.strip_prefix("pub") {
            Some(rest) if rest.starts_with('(') => rest.split_once(')').map_or("", |(_, r)| r),
            Some(rest) => rest,
            None => trimmed,
        };
        if without_visibility.trim_start().starts_with("mod ") && trimmed.ends_with('{') {
            inline_module = true;
        }
        let mut work = String::new();
        if let Some((mut statement, inline)) = pending.take() {
            statement.push_str(code);
            if statement.contains(';') {
                paths.extend(paths_in(&statement, module, &parent, children, inline));
            } else {
                pending = Some((statement, inline));
            }
            continue;
        }
        work.push_str(code);
        if skipping {
            skipping = !trimmed.contains(';');
            continue;
        }
        if trimmed.starts_with("pub use ")
            || trimmed.starts_with("pub(crate) use ")
            || trimmed.starts_with("pub(super) use ")
        {
            // A re-export is a facade naming a child's item for the module's users, not
            // a use of it: no arrow (a multi-line one is skipped to its `;`).
            skipping = !trimmed.contains(';');
            continue;
        }
        if trimmed.starts_with("use ") && !trimmed.contains(';') {
            pending = Some((work, inline_module));
            continue;
        }
        paths.extend(paths_in(&work, module, &parent, children, inline_module));
    }
    paths
}

/// Every `crate::…`, `super::…` and `self::…` path in one piece of code, and every path
/// that starts with the name of one of the module's `children` (`render::badge` in
/// `trust/mod.rs` is `trust::render::badge`).
fn paths_in(
    code: &str,
    module: &[String],
    parent: &[String],
    children: &[String],
    inline: bool,
) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut roots = vec![
        ("crate::".to_owned(), Vec::new()),
        ("super::".to_owned(), parent.to_vec()),
        ("self::".to_owned(), module.to_vec()),
    ];
    for child in children {
        let mut base = module.to_vec();
        base.push(child.clone());
        roots.push((format!("{child}::"), base));
    }
    for (root, base) in &roots {
        let root = root.as_str();
        let mut rest = code;
        while let Some(at) = rest.find(root) {
            let preceded = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            // `pub(in crate::x)` is a visibility, not a use.
            let visibility = rest[..at].ends_with("(in ");
            let after = &rest[at + root.len()..];
            rest = after;
            if preceded || visibility {
                continue;
            }
            if root != "crate::" && inline {
                // Inside an inline `mod tests`, `super` is this file, and `self` and
                // child names are the inline module's own.
                continue;
            }
            // The path runs while it is identifiers, `::`, and balanced braces.
            let mut depth = 0usize;
            let mut end = after.len();
            for (i, c) in after.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    c if depth > 0 && (c == ',' || c.is_whitespace() || c == '*') => {}
                    c if c.is_alphanumeric() || c == '_' || c == ':' => {}
                    _ => {
                        end = i;
                        break;
                    }
                }
            }
            for path in expand(&after[..end]) {
                let absolute: Vec<String> = base.iter().cloned().chain(path).collect();
                if absolute != module {
                    paths.push(absolute);
                }
            }
        }
    }
    paths
}

/// The arrows between modules of `src`: module → the modules it imports.
fn graph(src: &Path) -> BTreeMap<Vec<String>, BTreeMap<Vec<String>, BTreeSet<String>>> {
    let modules = modules(src);
    let mut arrows = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("a source file");
        let targets: &mut BTreeMap<Vec<String>, BTreeSet<String>> =
            arrows.entry(module.clone()).or_default();
        let children: Vec<String> = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m[module.len()].clone())
            .collect();
        for path in referenced_paths(&text, module, &children) {
            // The deepest module file the path names.
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains_key(prefix));
            let Some(target) = target else { continue };
            // A module's own items, and a parent reaching into its own children (`mod`
            // declarations and re-exports go down), are not arrows up.
            if &target == module {
                continue;
            }
            targets
                .entry(target)
                .or_default()
                .insert(path.last().cloned().unwrap_or_default());
        }
    }
    arrows
}

/// The cycles of the graph: its strongly connected components of more than one module.
fn cycles(
    arrows: &BTreeMap<Vec<String>, BTreeMap<Vec<String>, BTreeSet<String>>>,
) -> Vec<Vec<Vec<String>>> {
    // Kosaraju: finish order on the graph, then components on the reversed graph.
    let nodes: Vec<&Vec<String>> = arrows.keys().collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for &start in &nodes {
        if seen.contains(start) {
            continue;
        }
        let mut stack = vec![(start, false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                order.push(node);
                continue;
            }
            if !seen.insert(node) {
                continue;
            }
            stack.push((node, true));
            for next in arrows.get(node).into_iter().flat_map(|t| t.keys()) {
                if !seen.contains(next) {
                    stack.push((next, false));
                }
            }
        }
    }
    let mut reversed: BTreeMap<&Vec<String>, Vec<&Vec<String>>> = BTreeMap::new();
    for (from, targets) in arrows {
        for to in targets.keys() {
            reversed.entry(to).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut components = Vec::new();
    for &node in order.iter().rev() {
        if assigned.contains(node) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if !assigned.insert(n) {
                continue;
            }
            component.push(n.clone());
            for &m in reversed.get(n).into_iter().flatten() {
                if !assigned.contains(m) {
                    stack.push(m);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            components.push(component);
        }
    }
    components
}

fn name(module: &[String]) -> String {
    module.join("::")
}

/// Checks one crate's `src`, printing its layers; the error lists every cycle.
fn check(src: &Path) -> Result<(), String> {
    let arrows = graph(src);
    let found = cycles(&arrows);
    if !found.is_empty() {
        let mut report = format!("import cycles in {}:\n", src.display());
        for component in &found {
            report.push_str(&format!(
                "- {}\n",
                component
                    .iter()
                    .map(|m| name(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for from in component {
                for (to, items) in &arrows[from] {
                    if component.contains(to) {
                        report.push_str(&format!(
                            "    {} -> {}: {}\n",
                            name(from),
                            name(to),
                            items.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
        }
        return Err(report);
    }
    // Layers: 0 imports nothing of the crate; otherwise one above its highest import.
    let mut layer: BTreeMap<&Vec<String>, usize> = BTreeMap::new();
    while layer.len() < arrows.len() {
        for (module, targets) in &arrows {
            if layer.contains_key(module) {
                continue;
            }
            if targets.keys().all(|t| layer.contains_key(t)) {
                let level = targets.keys().map(|t| layer[t] + 1).max().unwrap_or(0);
                layer.insert(module, level);
            }
        }
    }
    let top = layer.values().copied().max().unwrap_or(0);
    println!(
        "{}: {} modules, {} layers",
        src.display(),
        arrows.len(),
        top + 1
    );
    for level in (0..=top).rev() {
        let names: Vec<String> = layer
            .iter()
            .filter(|(_, l)| **l == level)
            .map(|(m, _)| name(m))
            .collect();
        println!("  {level:2}: {}", names.join(" "));
    }
    Ok(())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn no_crate_of_the_workspace_has_an_import_cycle() {
    let mut failures = Vec::new();
    for src in [
        "crates/footfall-server/src",
        "crates/footfall/src",
        "benches/src",
        "tests/src",
    ] {
        if let Err(report) = check(&workspace().join(src)) {
            failures.push(report);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_through_use_trees_and_super() {
    let dir = tempfile::tempdir().expect("a directory");
    let src = dir.path();
    std::fs::create_dir(src.join("web")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod web;\n").unwrap();
    std::fs::write(
        src.join("a.rs"),
        "use crate::{\n    web::{extract::Site, error},\n};\n",
    )
    .unwrap();
    std::fs::write(src.join("web/mod.rs"), "pub mod extract;\npub mod error;\n").unwrap();
    std::fs::write(src.join("web/error.rs"), "// crate::a is only a comment\n").unwrap();
    std::fs::write(
        src.join("web/extract.rs"),
        "use super::error;\nfn f() { crate::a::g(); }\n#[cfg(test)]\nmod tests {\n    use super::f;\n}\n",
    )
    .unwrap();
    let report = check(src).expect_err("a -> web::extract -> a is a cycle");
    assert!(report.contains("a -> web::extract: Site"), "{report}");
    assert!(report.contains("web::extract -> a: g"), "{report}");
    assert!(
        !report.contains("web::error ->"),
        "comments are not arrows: {report}"
    );
    // Without the arrow back up, no cycle, and the layers follow the imports.
    std::fs::write(
        src.join("web/extract.rs"),
        "use super::error;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    )
    .unwrap();
    check(src).expect("no cycle");
    // A parent naming its child by a relative path is an arrow too: `web` -> `extract`
    // by `extract::`, and `extract` -> `web` by `super::` close a cycle.
    std::fs::write(
        src.join("web/mod.rs"),
        "pub mod extract;\npub mod error;\npub fn limit() -> usize { extract::LIMIT }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("web/extract.rs"),
        "pub const LIMIT: usize = 1;\nfn f() { super::limit(); }\n",
    )
    .unwrap();
    let report = check(src).expect_err("web -> web::extract -> web is a cycle");
    assert!(report.contains("web -> web::extract: LIMIT"), "{report}");
    assert!(report.contains("web::extract -> web: limit"), "{report}");
    std::fs::write(
        src.join("web/extract.rs"),
        "use super::error;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    )
    .unwrap();
    let arrows = graph(src);
    let extract = vec!["web".to_owned(), "extract".to_owned()];
    assert!(arrows[&extract].contains_key(&vec!["web".to_owned(), "error".to_owned()]));
    assert!(!arrows[&extract].contains_key(&extract));
}
