//! The reference module (reference-module/trace.rs) hands dax-probe events
//! in dax-probe's numbering, which it cannot import (it is built by Kbuild):
//! this keeps the two in step.

use dax_probe_common::{Kind, FIELD_COUNT};

fn module_source() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../reference-module/trace.rs");
    std::fs::read_to_string(path).expect("reference-module/trace.rs is readable")
}

#[test]
fn the_modules_event_kinds_are_dax_probes() {
    let source = module_source();
    let body = source
        .split("pub(crate) enum Kind {")
        .nth(1)
        .expect("trace.rs has enum Kind")
        .split('}')
        .next()
        .unwrap();
    let mut checked = 0;
    for line in body.lines().map(str::trim).filter(|line| line.contains('=')) {
        let (name, number) = line.trim_end_matches(',').split_once(" = ").expect("NAME = N");
        let number: usize = number.parse().expect("a number");
        let ours =
            Kind::ALL.get(number).unwrap_or_else(|| panic!("{name} = {number} is not a dax-probe kind"));
        assert_eq!(format!("{ours:?}"), name, "the module's {name} is dax-probe's {ours:?}");
        checked += 1;
    }
    assert!(checked >= 12, "found only {checked} kinds in trace.rs");
}

#[test]
fn the_modules_record_is_an_events_fields() {
    let words = format!("pub(crate) const RECORD_WORDS: usize = {FIELD_COUNT};");
    assert!(module_source().contains(&words), "trace.rs must say: {words}");
}
