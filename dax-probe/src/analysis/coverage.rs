//! What a recording's hook groups let dax-probe check and name, as the
//! lines `record`, `check` and `report` print.

use crate::{
    analysis::{fallback::Reason, invariants::Invariant},
    stream::{Begin, HookGroup},
};

/// The coverage of a recording: what an imported trace cannot show, then
/// what its hook groups make checkable.
pub fn lines(begin: &Begin) -> Vec<String> {
    imported(begin).into_iter().chain(of_hooks(&begin.hooks)).collect()
}

/// For a trace imported from tracefs or trace-cmd text: what it cannot show.
pub fn imported(begin: &Begin) -> Option<String> {
    begin.imported_from.as_ref().map(|origin| {
        format!(
            "imported from {origin}: fs_dax tracepoints only; such a trace cannot show entry locks, \
             waits or wake-ups, nor the fallback hooks"
        )
    })
}

/// The invariants checked and not, and the fallback reasons named, with
/// these hook groups attached.
pub fn of_hooks(groups: &[HookGroup]) -> Vec<String> {
    let (checked, unchecked): (Vec<_>, Vec<_>) =
        Invariant::ALL.into_iter().partition(|i| i.checkable(groups));
    let mut lines = vec![format!("invariants checked: {}", names(&checked, |i| i.name().to_owned()))];
    if !unchecked.is_empty() {
        let why = |i: &Invariant| {
            let missing: Vec<&str> =
                i.needs().iter().filter(|group| !group.given_by(groups)).map(|group| group.name()).collect();
            format!("{} (needs hooks {})", i.name(), missing.join(" "))
        };
        lines.push(format!("invariants NOT checked: {}", names(&unchecked, why)));
    }
    lines.push(if HookGroup::FallbackProbes.given_by(groups) {
        "fallback reasons: all of them".to_owned()
    } else {
        let from_fields =
            [Reason::AddressColour, Reason::CowWrite, Reason::VmaStart, Reason::VmaEnd, Reason::PastEof];
        format!(
            "fallback reasons: only {} and no-huge-zero-page; others count as unknown (needs hooks {})",
            names(&from_fields, |r| r.name().to_owned()),
            HookGroup::FallbackProbes
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
