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

/// The module counts its fallbacks under dax-probe's reason names (and
/// variant names); each must be one of dax-probe's, in dax-probe's order.
#[test]
fn the_modules_fallback_reasons_are_dax_probes() {
    use dax_probe::analysis::fallback::Reason;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../reference-module/fault.rs");
    let source = std::fs::read_to_string(path).expect("reference-module/fault.rs is readable");
    let names = source.split("pub(crate) fn name(self)").nth(1).expect("Fallback::name");
    let names = names.split("\n    }\n").next().unwrap();
    let mut last = None;
    let mut checked = 0;
    for line in names.lines().map(str::trim).filter(|line| line.starts_with("Fallback::")) {
        let (variant, name) = line.trim_end_matches(',').split_once(" => ").expect("VARIANT => NAME");
        let name = name.trim_matches('"');
        let reason = Reason::ALL
            .into_iter()
            .find(|reason| reason.name() == name)
            .unwrap_or_else(|| panic!("the module's {name:?} is no dax-probe reason"));
        assert_eq!(format!("Fallback::{reason:?}"), variant, "{name} is dax-probe's {reason:?}");
        assert!(last < Some(reason), "{name} comes in dax-probe's (the kernel's) order");
        last = Some(reason);
        checked += 1;
    }
    assert!(checked >= 7, "found only {checked} reasons in fault.rs");
}
