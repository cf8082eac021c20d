//! The pipeline's direction, enforced: every `crate::` path in the library
//! points at a layer above its own (see `src/lib.rs`), and only the live
//! source touches the attach code.

use std::{fs, path::Path};

/// The library's top-level modules, in layer order: a module may use the
/// ones before it, and none after it.
const LAYERS: &[&[&str]] = &[
    &["kernel"],
    &["event"],
    &["stream"],
    &["testing"],
    &["source", "trace", "workload"],
    &["analysis"],
    &["output"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer of tests/architecture.rs"))
}

/// The first two segments of every path a use-tree (the text after
/// `crate::`) names: `a::b::c` gives a::b; `{a::{b, c}, d}` gives a::b, a::c, d.
fn paths(text: &str) -> Vec<Vec<String>> {
    fn ident(s: &str) -> (&str, &str) {
        let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
        s.split_at(end)
    }
    fn tree<'a>(s: &'a str, prefix: &[String], out: &mut Vec<Vec<String>>) -> &'a str {
        let s = s.trim_start();
        if let Some(rest) = s.strip_prefix('{') {
            let mut rest = rest;
            loop {
                rest = rest.trim_start();
                if let Some(after) = rest.strip_prefix('}') {
                    return after;
                }
                rest = tree(rest, prefix, out).trim_start();
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        let (name, rest) = ident(s);
        if name.is_empty() {
            // `*` or the end of a path.
            return s.get(1..).unwrap_or("");
        }
        let mut path = prefix.to_vec();
        if path.len() < 2 && name != "self" {
            path.push(name.to_owned());
        }
        match rest.strip_prefix("::") {
            Some(rest) => tree(rest, &path, out),
            None => {
                out.push(path);
                rest
            }
        }
    }
    let mut out = Vec::new();
    tree(text, &[], &mut out);
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_against_the_pipeline() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().with_extension("");
        let relative = relative.to_str().unwrap();
        // main.rs is the binary, above every layer; lib.rs only declares them.
        if relative == "main" || relative == "lib" {
            continue;
        }
        let module = relative.split('/').next().unwrap();
        let text = fs::read_to_string(file).unwrap();
        // Tests may use what they test with.
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        for (at, _) in text.match_indices("crate::") {
            for path in paths(&text[at + "crate::".len()..]) {
                checked += 1;
                let target = path[0].as_str();
                if target != module && layer(target) >= layer(module) {
                    wrong.push(format!("{relative} uses crate::{}", path.join("::")));
                }
                let attach_code = path == ["source", "hooks"];
                if attach_code && !matches!(relative, "source/live" | "source/hooks") {
                    wrong.push(format!("{relative} uses the attach code (crate::source::hooks)"));
                }
            }
        }
    }
    assert!(checked > 50, "found only {checked} crate paths: is the scan broken?");
    assert!(wrong.is_empty(), "imports against the pipeline:\n{}", wrong.join("\n"));
}

#[test]
fn the_scan_sees_nested_imports() {
    let found =
        paths("{\n    analysis::{fallback::Reason, Analysis},\n    event::Event,\n    source::hooks,\n};");
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(found, ["analysis::fallback", "analysis::Analysis", "event::Event", "source::hooks"]);
    let found = paths("kernel::pmd_start(index)");
    assert_eq!(found, [vec!["kernel".to_owned(), "pmd_start".to_owned()]]);
}
