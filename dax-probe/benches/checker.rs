//! `cargo xtask bench checker`: the offline checker's throughput on one core
//! over a large synthetic trace (target: at least 5 M events/s).

use std::time::Instant;

use dax_probe::{analysis::Analysis, events::test_support::*};
use dax_probe_common::{Event, Kind};

const A: u64 = 0x7f00_0000_0000;

/// One PMD fault of `tid` on 2 MiB range `range`, with a waiter, as the
/// kernel emits it: 10 events.
fn pmd_fault(events: &mut Vec<Event>, tid: u32, range: u64) {
    let index = range * 512;
    let address = A + (range << 21);
    let fault =
        |kind, result| fault(kind, tid, address, A, A + (1 << 40), index, VM_SHARED_RW, 1 << 30, result);
    let empty = dax_entry(0, true, false) | dax_probe_common::entry::EMPTY;
    let real = dax_entry(range + 1, true, false);
    events.extend([
        fault(Kind::PmdFault, 0),
        lock(tid, index, 0, empty),
        wait(tid + 1, index, index, empty | dax_probe_common::entry::LOCKED),
        pmd_fault_iter(tid, index),
        lock(tid, index, empty | dax_probe_common::entry::LOCKED, real),
        unlock(tid, index, real),
        wake(tid, index, real, false),
        woken(tid + 1, index),
        fault(Kind::PmdFaultDone, 0x100),
    ]);
}

fn main() {
    let ranges = 1 << 20;
    let mut events = Vec::with_capacity(ranges * 9);
    for range in 0..ranges as u64 {
        pmd_fault(&mut events, 1 + (range % 64) as u32 * 2, range);
    }
    for (time, event) in events.iter_mut().enumerate() {
        event.time_ns = time as u64;
    }
    let groups = ["entry-state", "wait-wake", "fallback-probes"].map(String::from);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut analysis = Analysis::new(&groups);
        for event in &events {
            analysis.push(event);
        }
        analysis.finish();
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(analysis.violation_count(), 0, "the synthetic trace is clean");
        best = best.min(seconds);
    }
    let rate = events.len() as f64 / best;
    println!(
        "bench checker: {} events in {:.3} s (best of 3, one core): {:.2} M events/s, target 5 M events/s: {:.2}x",
        events.len(),
        best,
        rate / 1e6,
        rate / 5e6
    );
}
