//! `dax-probe plot`: one picture of a trace, PNG or SVG by the file's
//! extension. Above: PMD fallbacks per second, stacked by reason, with the
//! share of PMD faults that got 2 MiB as a line on the right axis. Below:
//! how long PMD and PTE faults took (log scale), each as a share of its
//! own faults, so that 128 PMD faults show next to 65 536 PTE faults.
//! At the foot: the notes the caller gives, the report's lines on holes,
//! downgrades, writeback and truncates (`report::entry_life_lines`).

use std::{path::Path, sync::Once};

use anyhow::{anyhow, bail, Context, Result};
use plotters::{
    chart::SeriesLabelStyle,
    coord::{CoordTranslate, Shift},
    prelude::*,
};

use crate::analysis::{
    fallback::Reason,
    timeline::{Latency, LATENCY_BOUNDS_NS},
    Analysis, Stats,
};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 960;
const FONT: &str = "sans-serif";

/// One colour per reason (in `Reason::ALL` order), the Tableau 10 palette:
/// distinct in print and for the common colour-vision deficiencies.
const REASON_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];
const PMD_COLOUR: RGBColor = RGBColor(0, 0, 0);
const PTE_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// The series names the plot's legends use (tests look for them).
pub const PMD_SHARE_LABEL: &str = "PMD share (% of PMD faults mapped 2 MiB)";
pub const PMD_LATENCY_LABEL: &str = "PMD faults";
pub const PTE_LATENCY_LABEL: &str = "PTE faults";

/// The title of a plot: the recording's command, or `fallback`, and its kernel.
pub fn title(analysis: &Analysis, fallback: &str) -> String {
    let begin = analysis.recording();
    let what = if begin.command.is_empty() { fallback } else { &begin.command };
    // A command written over several lines reads as one.
    let what: String = what.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(90).collect();
    format!("dax-probe: {what} (kernel {})", begin.kernel)
}

/// Height of one line of notes at the foot.
const NOTE_HEIGHT: u32 = 22;

/// Draws the plot of `stats` into `path` (`.png` or `.svg`), `notes` one
/// line each at its foot. The file appears only once complete.
pub fn draw(path: &Path, stats: &Stats, title: &str, notes: &[String]) -> Result<()> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(extension, "png" | "svg") {
        bail!("cannot plot to {}: the file must end in .png or .svg", path.display());
    }
    register_font();
    // The backends pick the encoding by the extension, so it stays last.
    let partial = path.with_extension(format!("partial.{extension}"));
    let drawn = match extension {
        "svg" => draw_on(SVGBackend::new(&partial, (WIDTH, HEIGHT)).into_drawing_area(), stats, title, notes),
        _ => draw_on(BitMapBackend::new(&partial, (WIDTH, HEIGHT)).into_drawing_area(), stats, title, notes),
    };
    if let Err(error) = drawn {
        let _ = std::fs::remove_file(&partial);
        return Err(error.context(format!("cannot plot to {}", path.display())));
    }
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
    });
}

/// plotters' errors borrow the backend's error type; ours are text.
fn plotting<T, E: std::fmt::Debug>(result: Result<T, E>) -> Result<T> {
    result.map_err(|error| anyhow!("{error:?}"))
}

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    stats: &Stats,
    title: &str,
    notes: &[String],
) -> Result<()> {
    plotting(root.fill(&WHITE))?;
    let titled = plotting(root.titled(title, (FONT, 24)))?;
    let foot = NOTE_HEIGHT * (notes.len() as u32 + u32::from(!notes.is_empty()));
    let (charts, foot_area) = titled.split_vertically(titled.dim_in_pixel().1.saturating_sub(foot));
    let (top, bottom) = charts.split_vertically(HEIGHT * 11 / 20);
    fallbacks_over_time(&top, stats)?;
    latency_distribution(&bottom, stats)?;
    for (i, note) in notes.iter().enumerate() {
        let at = (40, (NOTE_HEIGHT / 2 + i as u32 * NOTE_HEIGHT) as i32);
        plotting(foot_area.draw(&Text::new(note.as_str(), at, (FONT, 16))))?;
    }
    plotting(root.present())
}

fn fallbacks_over_time<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, stats: &Stats) -> Result<()> {
    let seconds = &stats.timeline.buckets;
    // Bucket x spans seconds [x * width, (x + 1) * width).
    let width = stats.timeline.bucket_s() as f64;
    let per = match stats.timeline.bucket_s() {
        1 => "second".to_owned(),
        n => format!("{n} s"),
    };
    let x_end = seconds.len().max(1) as f64 * width;
    // Headroom above the highest bar for the legend.
    let y_end = seconds.iter().map(|s| s.fallback_total()).max().unwrap_or(0).max(1) as f64 * 1.4;
    let mut chart = plotting(
        chart_on(area, &format!("PMD fallbacks per {per}, by reason"))
            .right_y_label_area_size(72)
            .build_cartesian_2d(0f64..x_end, 0f64..y_end),
    )?
    .set_secondary_coord(0f64..x_end, 0f64..105f64);
    plotting(
        chart
            .configure_mesh()
            .x_desc("time since the trace began (s)")
            .y_desc(format!("PMD fallbacks per {per}"))
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 14))
            .draw(),
    )?;
    plotting(
        chart
            .configure_secondary_axes()
            .y_desc("PMD share (%)")
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 14))
            .draw(),
    )?;
    let mut base = vec![0u64; seconds.len()];
    for (reason, colour) in Reason::ALL.into_iter().zip(REASON_COLOURS) {
        let index = reason as usize;
        let total: u64 = seconds.iter().map(|s| s.fallbacks[index]).sum();
        if total == 0 {
            continue;
        }
        let bars: Vec<_> = seconds
            .iter()
            .enumerate()
            .filter(|(_, s)| s.fallbacks[index] > 0)
            .map(|(x, s)| {
                let bottom = base[x];
                base[x] += s.fallbacks[index];
                let corners =
                    [((x as f64 + 0.1) * width, bottom as f64), ((x as f64 + 0.9) * width, base[x] as f64)];
                Rectangle::new(corners, colour.filled())
            })
            .collect();
        plotting(chart.draw_series(bars))?
            .label(format!("{} ({total})", reason.name()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    let share: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .filter_map(|(x, s)| s.pmd_share().map(|share| ((x as f64 + 0.5) * width, 100.0 * share)))
        .collect();
    plotting(chart.draw_secondary_series(LineSeries::new(share.clone(), PMD_COLOUR.stroke_width(2))))?
        .label(PMD_SHARE_LABEL)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], PMD_COLOUR.stroke_width(2)));
    plotting(
        chart
            .draw_secondary_series(share.into_iter().map(|point| Circle::new(point, 3, PMD_COLOUR.filled()))),
    )?;
    draw_legend(chart.configure_series_labels(), SeriesLabelPosition::UpperLeft)
}

/// The caption, margins and label areas both charts use.
fn chart_on<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder.caption(caption, (FONT, 20)).margin(16).x_label_area_size(48).y_label_area_size(72);
    builder
}

/// The legend box both charts use.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    mut labels: SeriesLabelStyle<'a, '_, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    plotting(
        labels
            .position(position)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw(),
    )
}

/// Bucket edges in µs; the first bucket starts at half its bound.
fn bucket_edges_us(bucket: usize) -> (f64, f64) {
    let upper = LATENCY_BOUNDS_NS[bucket] as f64 / 1e3;
    let lower = if bucket == 0 { upper / 2.0 } else { LATENCY_BOUNDS_NS[bucket - 1] as f64 / 1e3 };
    (lower, upper)
}

/// A histogram outline: each bucket a step at its share of the faults.
fn outline(latency: &Latency) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    for bucket in 0..LATENCY_BOUNDS_NS.len() {
        let share = 100.0 * latency.counts[bucket] as f64 / latency.count.max(1) as f64;
        let (lower, upper) = bucket_edges_us(bucket);
        points.extend([(lower, share), (upper, share)]);
    }
    points
}

fn latency_label(name: &str, latency: &Latency) -> String {
    let median = match latency.quantile_bound(0.5) {
        Some(ns) if ns >= 1_000_000 => format!("median ≤ {} ms", ns / 1_000_000),
        Some(ns) => format!("median ≤ {} µs", ns / 1_000),
        None => "none".to_owned(),
    };
    format!("{name} ({}, {median})", latency.count)
}

fn latency_distribution<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, stats: &Stats) -> Result<()> {
    let sizes = [
        (PMD_LATENCY_LABEL, &stats.latency.pmd, PMD_COLOUR),
        (PTE_LATENCY_LABEL, &stats.latency.pte, PTE_COLOUR),
    ];
    // The x axis spans the buckets that hold faults, a bucket either side.
    let used = |latency: &Latency| {
        let first = latency.counts.iter().position(|&n| n > 0);
        let last = latency.counts.iter().rposition(|&n| n > 0);
        first.zip(last)
    };
    let (first, last) = sizes
        .iter()
        .filter_map(|(_, latency, _)| used(latency))
        .fold((usize::MAX, 0), |(lo, hi), (first, last)| (lo.min(first), hi.max(last)));
    let (first, last) = if first == usize::MAX { (3, 9) } else { (first.saturating_sub(1), last + 1) };
    let last = last.min(LATENCY_BOUNDS_NS.len() - 1);
    let x_range = bucket_edges_us(first).0..bucket_edges_us(last).1;
    let y_end =
        sizes.iter().flat_map(|(_, latency, _)| outline(latency)).map(|(_, share)| share).fold(1.0, f64::max)
            * 1.15;
    let mut chart = plotting(
        chart_on(area, "fault latency, PMD vs PTE (dax_*_fault to its done)")
            .margin_right(48)
            .build_cartesian_2d(x_range.log_scale(), 0f64..y_end),
    )?;
    plotting(
        chart
            .configure_mesh()
            .x_desc("latency (µs, log scale)")
            .y_desc("% of that size's faults")
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 14))
            .x_label_formatter(&|us| format!("{us}"))
            .draw(),
    )?;
    for (name, latency, colour) in sizes {
        plotting(chart.draw_series(LineSeries::new(outline(latency), colour.stroke_width(2))))?
            .label(latency_label(name, latency))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], colour.stroke_width(2)));
    }
    draw_legend(chart.configure_series_labels(), SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{Event, Fault, What},
        stream::{Begin, Sink, Summary},
        testing::{event, Vma},
    };

    /// PMD faults that map 2 MiB and PTE faults, then a second of fallbacks.
    fn stats() -> Stats {
        let mut analysis = Analysis::default();
        analysis.begin(&Begin::default());
        let mut time = 1_000_000_000;
        let mut push = |what: What, after_ns: u64| {
            time += after_ns;
            analysis.observe(&Event { time_ns: time, ..event(1, what) });
        };
        let base = 0x7f00_0000_0000u64;
        let vma = Vma::shared(base, base + (8 << 21), 1 << 20);
        for n in 0..4 {
            let address = base + (n << 21);
            push(What::PmdFault(vma.fault(address)), 1_000);
            push(What::PmdFaultDone(vma.done(address, 0x100)), 40_000);
        }
        // One second later: a fault off by 4 KiB falls back (address-colour), served by PTEs.
        let address = base + (5 << 21);
        let off = |result| Fault { pgoff: 1, ..vma.done(address, result) };
        push(What::PmdFault(off(0)), 1_000_000_000);
        push(What::PmdFaultDone(off(0x800)), 20_000);
        push(What::PteFault(off(0)), 1_000);
        push(What::PteFaultDone(off(0x100)), 3_000);
        analysis.finish(&Summary::default()).unwrap();
        analysis.stats
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dax-probe-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn the_svg_holds_every_series() {
        let stats = stats();
        assert_eq!(stats.timeline.buckets.len(), 2);
        let path = scratch("plot.svg");
        let notes = ["holes: 2 MiB zero-page loads 2 (fell back 0)".to_owned()];
        draw(&path, &stats, "test", &notes).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for label in [
            "address-colour (1)",
            PMD_SHARE_LABEL,
            "PMD faults (5, median ≤ 50 µs)",
            "PTE faults (1, median ≤ 5 µs)",
            "holes: 2 MiB zero-page loads 2 (fell back 0)",
        ] {
            assert!(svg.contains(label), "the legend names {label:?}");
        }
        for axis in [
            "PMD fallbacks per second",
            "PMD share (%)",
            "latency (µs, log scale)",
            "time since the trace began (s)",
        ] {
            assert!(svg.contains(axis), "an axis is labelled {axis:?}");
        }
        assert!(!svg.contains("cow-write"), "reasons that did not occur are left out");
    }

    #[test]
    fn the_png_is_a_png() {
        let path = scratch("plot.png");
        draw(&path, &stats(), "test", &[]).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.len() > 10_000, "{} bytes", png.len());
        assert!(!scratch("plot.partial.png").exists());
    }

    #[test]
    fn other_extensions_are_refused() {
        let error = draw(&scratch("plot.jpg"), &stats(), "test", &[]).unwrap_err();
        assert!(error.to_string().contains("must end in .png or .svg"), "{error}");
    }
}
