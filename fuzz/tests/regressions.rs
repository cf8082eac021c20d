//! Every input that ever crashed a fuzz target (`regressions/TARGET/`), and
//! the seed corpus (`corpus/TARGET/`), run through the targets: a crash
//! fixed stays fixed.

use std::{fs, path::Path};

fn each_input(target: &str, run: fn(&[u8])) -> usize {
    let mut count = 0;
    for folder in ["regressions", "corpus"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder).join(target);
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = fs::read(&path).unwrap();
            eprintln!("{target}: {}", path.display());
            run(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn trace_file_inputs() {
    assert!(each_input("trace_file", dax_probe_fuzz::trace_file) > 0, "no seed or regression input");
}

#[test]
fn trace_text_inputs() {
    assert!(each_input("trace_text", dax_probe_fuzz::trace_text) > 0, "no seed or regression input");
}

#[test]
fn analysis_inputs() {
    assert!(each_input("analysis", dax_probe_fuzz::analysis) > 0, "no seed or regression input");
}
