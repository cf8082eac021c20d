//! What a set of attached hook groups lets dax-probe check and name.

use crate::{fallback::Reason, hooks, invariants::Invariant, trace_file::Header};

/// The coverage of a trace: [`lines`] of its hook groups, after what an
/// imported trace cannot show.
pub fn of_trace(header: &Header) -> Vec<String> {
    imported(header).into_iter().chain(lines(&header.hooks)).collect()
}

/// For a trace imported from tracefs or trace-cmd text: what it cannot show.
pub fn imported(header: &Header) -> Option<String> {
    header.imported_from.as_ref().map(|origin| {
        format!(
            "imported from {origin}: fs_dax tracepoints only; such a trace cannot show entry locks, \
             waits or wake-ups, nor the fallback hooks"
        )
    })
}

/// Human lines: the invariants checked and not, the fallback reasons named.
pub fn lines(groups: &[String]) -> Vec<String> {
    let (checked, unchecked): (Vec<_>, Vec<_>) =
        Invariant::ALL.into_iter().partition(|i| i.checkable(groups));
    let mut lines = vec![format!("invariants checked: {}", names(&checked, |i| i.name().to_owned()))];
    if !unchecked.is_empty() {
        let why = |i: &Invariant| format!("{} (needs hooks {})", i.name(), i.needs().unwrap_or("?"));
        lines.push(format!("invariants NOT checked: {}", names(&unchecked, why)));
    }
    let probes = hooks::provides(groups, hooks::FALLBACK_PROBES);
    lines.push(if probes {
        "fallback reasons: all of them".to_owned()
    } else {
        let from_fields =
            [Reason::AddressColour, Reason::CowWrite, Reason::VmaStart, Reason::VmaEnd, Reason::PastEof];
        format!(
            "fallback reasons: only {} and no-huge-zero-page; others count as unknown (needs hooks {})",
            names(&from_fields, |r| r.name().to_owned()),
            hooks::FALLBACK_PROBES
        )
    });
    lines
}

fn names<T>(items: &[T], name: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items.iter().map(name).collect::<Vec<_>>().join(" ")
}
