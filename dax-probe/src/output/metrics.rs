//! The analysis as Prometheus metrics (text format 0.0.4, encoded by the
//! `prometheus` crate). [`Metrics`] is a sink of the stream; every scrape
//! encodes a fresh snapshot of it (in counting mode, of the latest counts,
//! under the same names where the meaning is the same). File and process labels are bounded: the
//! [`TOP`] busiest by faults, the rest summed under `other`.

use std::collections::BTreeMap;

use anyhow::Result;

use prometheus::{
    proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType},
    Encoder, TextEncoder,
};

use crate::{
    analysis::{
        fallback::Reason,
        invariants::Invariant,
        timeline::{Latency, LATENCY_BOUNDS_NS},
        Analysis, Faults,
    },
    event::Event,
    kernel::device_text,
    source::counting::Counts,
    stream::{Begin, Sink, Summary},
};
use dax_probe_common::{
    count::{Size, Tally, LATENCY_BUCKETS},
    TRACEPOINTS,
};

/// Files and processes exported by name; the rest are `other`.
pub const TOP: usize = 10;

/// The metrics of one stream: its analysis, and where the stream comes
/// from; or, in counting mode, the latest counts.
pub struct Metrics {
    pub analysis: Analysis,
    /// The counting mode's latest counts: served instead of the analysis.
    pub counts: Option<Counts>,
    kernel: String,
    /// "live", or the trace replayed.
    source: String,
}

impl Metrics {
    /// `kernel` until the stream's beginning names it.
    pub fn new(kernel: &str, source: &str) -> Metrics {
        Metrics {
            analysis: Analysis::default(),
            counts: None,
            kernel: kernel.to_owned(),
            source: source.to_owned(),
        }
    }

    /// The text a scrape gets.
    pub fn encode(&self) -> String {
        let families = match &self.counts {
            Some(counts) => count_families(counts, &self.kernel),
            None => stream_families(&self.analysis, &self.kernel, &self.source),
        };
        encode(families)
    }
}

impl Sink for Metrics {
    fn begin(&mut self, begin: &Begin) {
        if !begin.kernel.is_empty() {
            self.kernel = begin.kernel.clone();
        }
        self.analysis.begin(begin);
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.analysis.observe(event);
        Ok(())
    }

    fn lost(&mut self, total: u64) {
        Sink::lost(&mut self.analysis, total);
    }

    fn finish(&mut self, summary: &Summary) -> Result<()> {
        self.analysis.finish(summary)
    }
}

const INFO_HELP: &str = "What dax-probe serves: the kernel, the source (live or a replayed trace) \
and the mode (stream: every event, invariants checked; count: counters in the kernel, no invariants).";

fn stream_families(analysis: &Analysis, kernel: &str, source: &str) -> Vec<MetricFamily> {
    let stats = &analysis.stats;
    let mut families = vec![
        gauge(
            "dax_probe_info",
            INFO_HELP,
            vec![(labels(&[("kernel", kernel), ("source", source), ("mode", "stream")]), 1.0)],
        ),
        counter("dax_probe_events_total", "Events analysed.", vec![(vec![], stats.events as f64)]),
        counter(
            "dax_probe_lost_events_total",
            "Events dropped before dax-probe saw them; any makes the verdict inconclusive.",
            vec![(vec![], analysis.lost() as f64)],
        ),
        counter(
            "dax_probe_invariant_violations_total",
            "Violations of the entry-locking and fault invariants, by invariant.",
            Invariant::ALL
                .iter()
                .map(|i| {
                    (labels(&[("invariant", i.name())]), analysis.findings().counts()[*i as usize] as f64)
                })
                .collect(),
        ),
        gauge(
            "dax_probe_invariant_checked",
            "1 if the attached hooks let dax-probe check the invariant, else 0.",
            Invariant::ALL
                .iter()
                .map(|i| {
                    let checked = analysis.findings().checked().contains(i);
                    (labels(&[("invariant", i.name())]), f64::from(u8::from(checked)))
                })
                .collect(),
        ),
        counter(
            "dax_probe_hook_events_total",
            "Events of the entry-lock, wait and fallback hooks, by event.",
            dax_probe_common::HOOK_EVENTS
                .iter()
                .zip(&stats.hook_events)
                .map(|(name, n)| (labels(&[("event", name)]), *n as f64))
                .collect(),
        ),
    ];
    let bounds: Vec<f64> = LATENCY_BOUNDS_NS.iter().map(|ns| *ns as f64 / 1e9).collect();
    let series = |latency: &Latency| Series {
        buckets: bounds.iter().copied().zip(latency.counts.iter().copied()).collect(),
        count: latency.count,
        sum_seconds: latency.sum_ns as f64 / 1e9,
    };
    families.extend(fault_families(FaultMetrics {
        faults: &stats.faults,
        reasons: &stats.reasons,
        files: stats.files.iter().map(|(file, f)| (file_label(file.dev, file.ino), f.clone())).collect(),
        processes: stats.processes.values().map(|(comm, f)| (comm.to_string(), f.clone())).collect(),
        latency: [("pmd", series(&stats.latency.pmd)), ("pte", series(&stats.latency.pte))],
    }));
    families
}

/// The counting mode's counts, under the stream's names where the meaning
/// is the same (the dashboards read both); no invariant is checked.
fn count_families(counts: &Counts, kernel: &str) -> Vec<MetricFamily> {
    let totals = &counts.totals;
    let mut families = vec![
        gauge(
            "dax_probe_info",
            INFO_HELP,
            vec![(labels(&[("kernel", kernel), ("source", "live"), ("mode", "count")]), 1.0)],
        ),
        counter(
            "dax_probe_skipped_runs_total",
            "Program runs the kernel skipped (one already ran on that CPU): hits not counted.",
            vec![(vec![], counts.skipped as f64)],
        ),
        gauge(
            "dax_probe_invariant_checked",
            "1 if the attached hooks let dax-probe check the invariant, else 0.",
            Invariant::ALL.iter().map(|i| (labels(&[("invariant", i.name())]), 0.0)).collect(),
        ),
        gauge(
            "dax_probe_latency_sample_ratio",
            "Share of every second in which PTE faults are timed (counting mode, --latency-sample): the PTE latency histogram is a sample of it; every count is exact.",
            vec![(vec![], f64::from(counts.latency_sample) / 100.0)],
        ),
        counter(
            "dax_probe_tracepoint_hits_total",
            "Hits of each fs_dax tracepoint (counting mode).",
            TRACEPOINTS
                .iter()
                .zip(totals.events)
                .map(|(name, n)| (labels(&[("tracepoint", name)]), n as f64))
                .collect(),
        ),
    ];
    let series = |size: Size| {
        let buckets = &totals.latency[size as usize];
        Series {
            // Bucket b holds [2^(b-1), 2^b) ns: its upper bound is 2^b ns;
            // the last one is open-ended, counted in +Inf only.
            buckets: (0..LATENCY_BUCKETS - 1).map(|b| ((1u64 << b) as f64 / 1e9, buckets[b])).collect(),
            count: buckets.iter().sum(),
            sum_seconds: totals.latency_sum_ns[size as usize] as f64 / 1e9,
        }
    };
    families.extend(fault_families(FaultMetrics {
        faults: &Faults::of_tally(&Tally { faults: totals.faults }),
        reasons: &totals.fallbacks,
        files: counts
            .files
            .iter()
            .map(|((dev, ino), t)| (file_label(*dev, *ino), Faults::of_tally(t)))
            .collect(),
        processes: counts.processes.iter().map(|(_, comm, t)| (comm.clone(), Faults::of_tally(t))).collect(),
        latency: [("pmd", series(Size::Pmd)), ("pte", series(Size::Pte))],
    }));
    families
}

/// What both modes export under the same names: faults, fallbacks by
/// reason, the busiest files and processes, and latency histograms.
struct FaultMetrics<'a> {
    faults: &'a Faults,
    reasons: &'a [u64; Reason::ALL.len()],
    files: Vec<(String, Faults)>,
    processes: Vec<(String, Faults)>,
    latency: [(&'static str, Series); 2],
}

fn fault_families(of: FaultMetrics) -> Vec<MetricFamily> {
    vec![
        counter(
            "dax_probe_faults_total",
            "DAX faults by size (pmd, pte) and result.",
            fault_rows(&[], of.faults),
        ),
        counter(
            "dax_probe_fallbacks_total",
            "PMD faults that fell back to PTEs, by reason.",
            Reason::ALL
                .iter()
                .map(|r| (labels(&[("reason", r.name())]), of.reasons[*r as usize] as f64))
                .collect(),
        ),
        counter(
            "dax_probe_file_faults_total",
            "DAX faults per file (device:inode), the busiest files by name, the rest as other.",
            top_rows("file", of.files.into_iter()),
        ),
        counter(
            "dax_probe_process_faults_total",
            "DAX faults per command name, the busiest by name, the rest as other.",
            top_rows("process", of.processes.into_iter()),
        ),
        histogram(
            "dax_probe_fault_latency_seconds",
            "Time from dax_*_fault to its done on the same thread, by fault size.",
            &of.latency,
        ),
    ]
}

/// "MAJOR:MINOR:0xINO", a file as the metrics label it.
fn file_label(dev: u64, ino: u64) -> String {
    format!("{}:{ino:#x}", device_text(dev))
}

fn encode(mut families: Vec<MetricFamily>) -> String {
    // Before the first fault there is no file or process to label; the
    // encoder refuses a family without series, so those wait for one.
    families.retain(|family| !family.get_metric().is_empty());
    let mut text = Vec::new();
    TextEncoder::new().encode(&families, &mut text).expect("the families are well formed");
    String::from_utf8(text).expect("the text format is UTF-8")
}

pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

type Row = (Vec<LabelPair>, f64);

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut label = LabelPair::default();
            label.set_name(name.to_string());
            label.set_value(value.to_string());
            label
        })
        .collect()
}

/// size/result rows of one set of fault counts, under `extra` labels.
fn fault_rows(extra: &[(&str, &str)], f: &Faults) -> Vec<Row> {
    let pmd_other = f.pmd.saturating_sub(f.pmd_nopage + f.pmd_fallback);
    [
        ("pmd", "nopage", f.pmd_nopage),
        ("pmd", "fallback", f.pmd_fallback),
        ("pmd", "other", pmd_other),
        ("pte", "nopage", f.pte_nopage),
        ("pte", "other", f.pte - f.pte_nopage),
    ]
    .into_iter()
    .map(|(size, result, n)| {
        let mut pairs = extra.to_vec();
        pairs.extend([("size", size), ("result", result)]);
        (labels(&pairs), n as f64)
    })
    .collect()
}

/// Fault rows per `label` value: the [`TOP`] with most faults, then `other`.
fn top_rows<F: std::borrow::Borrow<Faults>>(
    label: &str,
    items: impl Iterator<Item = (String, F)>,
) -> Vec<Row> {
    let mut merged: BTreeMap<String, Faults> = BTreeMap::new();
    for (name, faults) in items {
        merged.entry(name).or_default().merge(faults.borrow());
    }
    let mut ranked: Vec<_> = merged.into_iter().collect();
    ranked.sort_by_key(|(name, f)| (std::cmp::Reverse(f.pmd + f.pte), name.clone()));
    let mut other = Faults::default();
    let mut rows = Vec::new();
    for (rank, (name, faults)) in ranked.iter().enumerate() {
        if rank < TOP {
            rows.extend(fault_rows(&[(label, name)], faults));
        } else {
            other.merge(faults);
        }
    }
    if ranked.len() > TOP {
        rows.extend(fault_rows(&[(label, "other")], &other));
    }
    rows
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn counter(name: &str, help: &str, rows: Vec<Row>) -> MetricFamily {
    with_values(name, help, MetricType::COUNTER, rows, |metric, value| {
        let mut counter = Counter::default();
        counter.set_value(value);
        metric.set_counter(counter);
    })
}

fn gauge(name: &str, help: &str, rows: Vec<Row>) -> MetricFamily {
    with_values(name, help, MetricType::GAUGE, rows, |metric, value| {
        let mut gauge = Gauge::default();
        gauge.set_value(value);
        metric.set_gauge(gauge);
    })
}

/// A family of one value per label set; `set` puts the value in its metric.
fn with_values(
    name: &str,
    help: &str,
    kind: MetricType,
    rows: Vec<Row>,
    set: fn(&mut Metric, f64),
) -> MetricFamily {
    let metrics = rows
        .into_iter()
        .map(|(label, value)| {
            let mut metric = Metric::from_label(label);
            set(&mut metric, value);
            metric
        })
        .collect();
    family(name, help, kind, metrics)
}

/// One histogram series: (upper bound in seconds, count in that bucket
/// alone) in rising order, the count of every sample and their sum.
struct Series {
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum_seconds: f64,
}

fn histogram(name: &str, help: &str, sizes: &[(&str, Series)]) -> MetricFamily {
    let metrics = sizes
        .iter()
        .map(|(size, series)| {
            let mut cumulative = 0;
            let buckets = series
                .buckets
                .iter()
                .map(|(bound, n)| {
                    cumulative += n;
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(*bound);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect();
            let mut histogram = Histogram::default();
            histogram.set_sample_count(series.count);
            histogram.set_sample_sum(series.sum_seconds);
            histogram.set_bucket(buckets);
            let mut metric = Metric::from_label(labels(&[("size", size)]));
            metric.set_histogram(histogram);
            metric
        })
        .collect();
    family(name, help, MetricType::HISTOGRAM, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{Comm, What},
        testing::{event, Vma},
    };

    fn metrics_of(processes: u32) -> String {
        let mut metrics = Metrics::new("7.2.13", "test");
        metrics.begin(&Begin::default());
        let base = 0x7f00_0000_0000u64;
        let vma = Vma::shared(base, base + (4 << 21), 1 << 20);
        for tgid in 0..processes {
            let start = event(tgid, What::PmdFault(vma.fault(base)));
            let done = Event { time_ns: 30_000, ..event(tgid, What::PmdFaultDone(vma.done(base, 0x100))) };
            for event in [start, done] {
                metrics.push(&Event { comm: Comm::new(&format!("p{tgid:03}")), ..event }).unwrap();
            }
        }
        metrics.finish(&Summary { events: 2 * u64::from(processes), lost: 2, loss_unknown: false }).unwrap();
        metrics.encode()
    }
    #[test]
    fn before_any_fault_the_counters_are_zero() {
        let text = metrics_of(0);
        assert!(text.contains("dax_probe_events_total 0"), "{text}");
        assert!(text.contains("dax_probe_faults_total{size=\"pmd\",result=\"nopage\"} 0"), "{text}");
        assert!(!text.contains("dax_probe_file_faults_total"), "no file has faulted yet: {text}");
    }

    #[test]
    fn every_family_is_there_with_zeros_too() {
        let text = metrics_of(1);
        for line in [
            "dax_probe_faults_total{size=\"pmd\",result=\"nopage\"} 1",
            "dax_probe_faults_total{size=\"pmd\",result=\"fallback\"} 0",
            "dax_probe_fallbacks_total{reason=\"unknown\"} 0",
            "dax_probe_invariant_violations_total{invariant=\"waiter-woken\"} 0",
            "dax_probe_invariant_checked{invariant=\"waiter-woken\"} 0",
            "dax_probe_invariant_checked{invariant=\"pmd-fault-done\"} 1",
            "dax_probe_lost_events_total 2",
            "dax_probe_fault_latency_seconds_bucket{size=\"pmd\",le=\"0.00005\"} 1",
            "dax_probe_fault_latency_seconds_count{size=\"pte\"} 0",
            "dax_probe_process_faults_total{process=\"p000\",size=\"pmd\",result=\"nopage\"} 1",
            "# TYPE dax_probe_fault_latency_seconds histogram",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn process_labels_are_bounded() {
        let text = metrics_of(25);
        let names: std::collections::BTreeSet<_> = text
            .lines()
            .filter(|line| line.starts_with("dax_probe_process_faults_total{"))
            .filter_map(|line| line.split("process=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(names.len(), TOP + 1, "{names:?}");
        assert!(names.contains("other"));
        assert!(text
            .contains("dax_probe_process_faults_total{process=\"other\",size=\"pmd\",result=\"nopage\"} 15"));
    }
}
