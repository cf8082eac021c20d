//! Faults over time and how long they took: what the plots draw and the
//! metrics export. Fed by [`crate::analysis`] once per finished fault.

use crate::analysis::fallback::Reason;

/// The outcome of one finished fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A PMD fault that mapped 2 MiB (VM_FAULT_NOPAGE).
    Pmd,
    /// A PMD fault that fell back to PTEs, and why.
    Fallback(Reason),
    /// A PTE fault.
    Pte,
}

/// PMD and PTE outcomes of one bucket of the trace (a second, unless the
/// trace is long: see [`Timeline`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Second {
    pub pmd: u64,
    /// Per [`Reason::ALL`] entry.
    pub fallbacks: [u64; Reason::ALL.len()],
    pub pte: u64,
}

impl Second {
    pub fn fallback_total(&self) -> u64 {
        self.fallbacks.iter().sum()
    }

    /// The share of this second's finished PMD faults that got 2 MiB, or
    /// `None` when there were none.
    pub fn pmd_share(&self) -> Option<f64> {
        let pmd_faults = self.pmd + self.fallback_total();
        (pmd_faults > 0).then(|| self.pmd as f64 / pmd_faults as f64)
    }
}

/// Buckets of time from the trace's first event on: one a second, until a
/// trace spans more than [`Timeline::MAX_BUCKETS`] seconds; then each bucket
/// takes twice as long, as often as needed, so that any trace (an hour of
/// live recording, a hostile file whose events lie years apart) is drawn
/// from at most that many buckets.
#[derive(Debug)]
pub struct Timeline {
    start_ns: Option<u64>,
    end_ns: u64,
    /// Seconds per bucket: a power of two.
    bucket_s: u64,
    pub buckets: Vec<Second>,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline { start_ns: None, end_ns: 0, bucket_s: 1, buckets: Vec::new() }
    }
}

impl Timeline {
    /// Takes the time of any event: the first begins the trace.
    pub fn saw(&mut self, time_ns: u64) {
        self.start_ns.get_or_insert(time_ns);
        self.end_ns = self.end_ns.max(time_ns);
    }

    /// From the first event to the last, in seconds.
    pub fn duration_s(&self) -> f64 {
        self.start_ns.map_or(0.0, |start| self.end_ns.saturating_sub(start) as f64 / 1e9)
    }

    /// How many buckets a timeline keeps at most.
    pub const MAX_BUCKETS: usize = 4096;

    /// Seconds each bucket spans (1 unless the trace is long).
    pub fn bucket_s(&self) -> u64 {
        self.bucket_s
    }

    pub fn add(&mut self, time_ns: u64, outcome: Outcome) {
        let start = *self.start_ns.get_or_insert(time_ns);
        let second = time_ns.saturating_sub(start) / 1_000_000_000;
        while second / self.bucket_s >= Self::MAX_BUCKETS as u64 {
            self.coarsen();
        }
        let index = (second / self.bucket_s) as usize;
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Second::default());
        }
        let bucket = &mut self.buckets[index];
        match outcome {
            Outcome::Pmd => bucket.pmd += 1,
            Outcome::Fallback(reason) => bucket.fallbacks[reason as usize] += 1,
            Outcome::Pte => bucket.pte += 1,
        }
    }

    /// Each bucket takes twice as long: neighbours merge.
    fn coarsen(&mut self) {
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                pair.iter().fold(Second::default(), |mut sum, second| {
                    sum.pmd += second.pmd;
                    sum.pte += second.pte;
                    for (total, n) in sum.fallbacks.iter_mut().zip(second.fallbacks) {
                        *total += n;
                    }
                    sum
                })
            })
            .collect();
        self.buckets = merged;
        self.bucket_s *= 2;
    }
}

/// Upper bounds of the latency buckets, in nanoseconds: 1-2-5 steps from
/// 1 µs to 10 s. Faults under TCG take tens of µs to ms; on hardware, µs.
#[rustfmt::skip]
pub const LATENCY_BOUNDS_NS: [u64; 22] = [
    1_000, 2_000, 5_000, // µs
    10_000, 20_000, 50_000,
    100_000, 200_000, 500_000,
    1_000_000, 2_000_000, 5_000_000, // ms
    10_000_000, 20_000_000, 50_000_000,
    100_000_000, 200_000_000, 500_000_000,
    1_000_000_000, 2_000_000_000, 5_000_000_000, // s
    10_000_000_000,
];

/// A latency histogram with the buckets of [`LATENCY_BOUNDS_NS`] and one
/// more for anything slower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latency {
    /// Not cumulative: `counts[i]` holds latencies in (bound[i-1], bound[i]].
    pub counts: [u64; LATENCY_BOUNDS_NS.len() + 1],
    pub sum_ns: u64,
    pub count: u64,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency { counts: [0; LATENCY_BOUNDS_NS.len() + 1], sum_ns: 0, count: 0 }
    }
}

impl Latency {
    pub fn observe(&mut self, ns: u64) {
        let bucket = LATENCY_BOUNDS_NS.partition_point(|&bound| bound < ns);
        self.counts[bucket] += 1;
        // A hostile trace's times can lie years apart: the sum saturates
        // (found by the analysis fuzz target) rather than wrap.
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.count += 1;
    }

    /// The bucket holding the q-quantile (0..=1), as its upper bound in ns
    /// (`None` when empty or in the overflow bucket).
    pub fn quantile_bound(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LATENCY_BOUNDS_NS.get(i).copied();
            }
        }
        None
    }
}

/// Fault latencies, from a fault's start event to its done on the same thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latencies {
    pub pmd: Latency,
    pub pte: Latency,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_bounds_step_1_2_5() {
        assert_eq!(&LATENCY_BOUNDS_NS[..4], &[1_000, 2_000, 5_000, 10_000]);
        assert_eq!(LATENCY_BOUNDS_NS[21], 10_000_000_000);
    }

    #[test]
    fn latencies_land_in_their_bucket() {
        let mut latency = Latency::default();
        for ns in [500, 1_000, 1_001, 7_000, 20_000_000_000] {
            latency.observe(ns);
        }
        assert_eq!(latency.counts[0], 2, "<= 1 µs");
        assert_eq!(latency.counts[1], 1, "(1, 2] µs");
        assert_eq!(latency.counts[3], 1, "(5, 10] µs");
        assert_eq!(latency.counts[22], 1, "beyond 10 s");
        assert_eq!(latency.count, 5);
        assert_eq!(latency.quantile_bound(0.5), Some(2_000));
        assert_eq!(latency.quantile_bound(1.0), None);
    }

    #[test]
    fn seconds_count_from_the_first_event() {
        let mut timeline = Timeline::default();
        timeline.saw(5_000_000_000);
        timeline.add(5_100_000_000, Outcome::Pmd);
        timeline.add(7_200_000_000, Outcome::Fallback(Reason::PastEof));
        timeline.add(7_300_000_000, Outcome::Pmd);
        assert_eq!(timeline.buckets.len(), 3);
        assert_eq!(timeline.buckets[0].pmd_share(), Some(1.0));
        assert_eq!(timeline.buckets[1].pmd_share(), None);
        assert_eq!(timeline.buckets[2].fallbacks[Reason::PastEof as usize], 1);
        assert_eq!(timeline.buckets[2].pmd_share(), Some(0.5));
    }

    #[test]
    fn events_years_apart_keep_the_buckets_bounded() {
        let mut timeline = Timeline::default();
        timeline.add(1_000_000_000, Outcome::Pmd);
        timeline.add(1_000_000_000 + 4095 * 1_000_000_000, Outcome::Pte);
        assert_eq!((timeline.bucket_s(), timeline.buckets.len()), (1, 4096), "an hour fits a second each");
        // Eighteen billion seconds (about 570 years) later.
        timeline.add(18_000_000_000 * 1_000_000_000, Outcome::Fallback(Reason::PastEof));
        assert!(timeline.buckets.len() <= Timeline::MAX_BUCKETS);
        assert!(timeline.bucket_s().is_power_of_two() && timeline.bucket_s() >= 18_000_000_000 / 4096);
        let total = |f: fn(&Second) -> u64| timeline.buckets.iter().map(f).sum::<u64>();
        assert_eq!(
            (total(|s| s.pmd), total(|s| s.pte), total(Second::fallback_total)),
            (1, 1, 1),
            "nothing lost"
        );
        assert_eq!(timeline.buckets[0].pmd, 1);
    }
}
