//! Writes `docs/BENCHMARKS.md` (and its SVG charts) from the outputs of the benchmarks that
//! `scripts/bench-report.sh` ran: the machine probes, a table of every target with the
//! measured figure and ratio, charts where a picture reads better, and each benchmark's full
//! output. Benchmarks report figures as `FIGURE <group> key=value ...` lines.
//!
//! Usage: `cargo run --release --example bench_report -- LOG_DIR OUT.md`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The order benchmarks appear in; others follow alphabetically.
const ORDER: [&str; 6] = [
    "probes",
    "encoding",
    "ingest",
    "classify",
    "ml",
    "train_vs_pytorch",
];

type Figures = Vec<(String, BTreeMap<String, f64>)>;

fn parse_figures(text: &str) -> Figures {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("FIGURE "))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let group = words.next()?.to_owned();
            let values = words
                .filter_map(|w| w.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect();
            Some((group, values))
        })
        .collect()
}

/// Every value a group reported, merged (later lines win).
fn first(figures: &Figures, group: &str) -> Option<BTreeMap<String, f64>> {
    let merged: BTreeMap<String, f64> = figures
        .iter()
        .filter(|(g, _)| g == group)
        .flat_map(|(_, v)| v.clone())
        .collect();
    (!merged.is_empty()).then_some(merged)
}

fn rows<'a>(figures: &'a Figures, group: &str) -> Vec<&'a BTreeMap<String, f64>> {
    figures
        .iter()
        .filter(|(g, _)| g == group)
        .map(|(_, v)| v)
        .collect()
}

/// A line chart over categorical x values, as a self-contained SVG.
fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[f64],
    series: &[(&str, &str, Vec<f64>)],
) -> String {
    let (width, height, left, right, top, bottom) = (640.0, 360.0, 70.0, 170.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = nice_ceiling(
        series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0.0f64, f64::max),
    );
    let x_at = |i: usize| left + plot_w * (i as f64 + 0.5) / xs.len().max(1) as f64;
    let y_at = |v: f64| top + plot_h * (1.0 - v / max);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/><text x="{}" y="22" font-size="15" font-weight="bold">{title}</text>"##,
        left
    );
    for tick in 0..=4 {
        let v = max * tick as f64 / 4.0;
        let y = y_at(v);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            short(v)
        );
    }
    for (i, x) in xs.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"##,
            x_at(i),
            top + plot_h + 18.0,
            short(*x)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{}" text-anchor="middle">{x_label}</text><text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">{y_label}</text>"##,
        left + plot_w / 2.0,
        height - 8.0,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    for (n, (name, colour, values)) in series.iter().enumerate() {
        // A series without a figure at some x (NaN) skips that point.
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| format!("{:.1},{:.1}", x_at(i), y_at(*v)))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{}"/>"##,
            points.join(" ")
        );
        for (i, v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"/>"##,
                x_at(i),
                y_at(*v)
            );
        }
        let ly = top + 10.0 + n as f64 * 20.0;
        let _ = write!(
            svg,
            r##"<rect x="{}" y="{:.1}" width="14" height="4" fill="{colour}"/><text x="{}" y="{:.1}">{name}</text>"##,
            left + plot_w + 14.0,
            ly - 4.0,
            left + plot_w + 34.0,
            ly + 1.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten at or above `v`, so ticks are round.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 && v < 10_000.0 {
        return format!("{v:.0}");
    }
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| format!("{:.0} GiB", kib / (1 << 20) as f64))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {memory} memory")
}

struct Target {
    what: &'static str,
    measured: Option<f64>,
    unit: &'static str,
    goal: &'static str,
    met: Option<bool>,
}

fn targets(figures: &Figures) -> Vec<Target> {
    let ingest64 = rows(figures, "ingest")
        .into_iter()
        .find(|r| r.get("clients") == Some(&64.0));
    let http16 = rows(figures, "classify_http")
        .into_iter()
        .find(|r| r.get("clients") == Some(&16.0));
    let in_process = first(figures, "classify_in_process");
    let in_process = in_process.as_ref();
    let get =
        |row: Option<&BTreeMap<String, f64>>, key: &str| row.and_then(|r| r.get(key)).copied();
    let check = |value: Option<f64>, ok: fn(f64) -> bool| value.map(ok);
    let vs_naive = get(ingest64, "vs_naive");
    let vs_parse = get(ingest64, "vs_parse_only");
    let p99_64 = get(ingest64, "doodlebox_p99_ms");
    let ratio = get(in_process, "ratio_p50");
    let http_p99 = get(http16, "p99_ms");
    vec![
        Target {
            what: "ingest at 64 clients vs naive (one SQLite commit per request)",
            measured: vs_naive,
            unit: "x",
            goal: ">= 5x",
            met: check(vs_naive, |v| v >= 5.0),
        },
        Target {
            what: "ingest at 64 clients vs parse-only (no storage)",
            measured: vs_parse,
            unit: "x",
            goal: ">= 0.5x",
            met: check(vs_parse, |v| v >= 0.5),
        },
        Target {
            what: "ingest p99 at 64 clients",
            measured: p99_64,
            unit: "ms",
            goal: "<= 10 ms",
            met: check(p99_64, |v| v <= 10.0),
        },
        Target {
            what: "classify in-process p50, Doodlebox / PyTorch eager",
            measured: ratio,
            unit: "",
            goal: "<= 0.8",
            met: check(ratio, |v| v <= 0.8),
        },
        Target {
            what: "classify over HTTP, p99 at 16 clients",
            measured: http_p99,
            unit: "ms",
            goal: "<= 3 ms (design: 100 ms)",
            met: check(http_p99, |v| v <= 3.0),
        },
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (logs, out) = match args.as_slice() {
        [_, logs, out] => (PathBuf::from(logs), PathBuf::from(out)),
        _ => {
            eprintln!("usage: bench_report LOG_DIR OUT.md");
            std::process::exit(2);
        }
    };
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .expect("log directory")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".txt")
                .map(str::to_owned)
        })
        .collect();
    names.sort_by_key(|n| {
        (
            ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()),
            n.clone(),
        )
    });
    let outputs: Vec<(String, String, Option<f64>)> = names
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(logs.join(format!("{n}.txt"))).unwrap_or_default();
            let secs = std::fs::read_to_string(logs.join(format!("{n}.secs")))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            (n.clone(), text, secs)
        })
        .collect();
    let figures: Figures = outputs
        .iter()
        .flat_map(|(_, text, _)| parse_figures(text))
        .collect();
    let charts_dir = out.parent().unwrap_or(Path::new(".")).join("bench");
    std::fs::create_dir_all(&charts_dir).expect("charts directory");

    let mut md = String::new();
    let _ = writeln!(md, "# Doodlebox benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `scripts/bench-report.sh` on {} ({}). Machine: {}.",
        date(),
        std::env::var("DOODLEBOX_BENCH_MODE").unwrap_or_else(|_| "full run".into()),
        machine()
    );
    let _ = writeln!(md, "Every figure below comes from the outputs at the end of this page; shared machines are noisy, so compare ratios taken in one run rather than absolute figures across runs.\n");
    if let Some(p) = first(&figures, "probes") {
        let _ = writeln!(md, "## The machine\n\n| probe | figure |\n|---|---|");
        let _ = writeln!(
            md,
            "| durable 4 KiB appends (write + fdatasync) | {:.0} /s ({:.3} ms each) |",
            p["fsync_per_sec"],
            1000.0 / p["fsync_per_sec"]
        );
        let _ = writeln!(
            md,
            "| f32 GEMM 512x512 through libtorch | {:.1} GFLOP/s |",
            p["gemm_gflops"]
        );
        let _ = writeln!(
            md,
            "| memory copy bandwidth | {:.1} GB/s |\n",
            p["copy_gb_per_sec"]
        );
    }
    let _ = writeln!(
        md,
        "## Targets\n\n| what | measured | target | met |\n|---|---|---|---|"
    );
    for t in targets(&figures) {
        let measured = t
            .measured
            .map_or("not measured".into(), |v| format!("{v:.2} {}", t.unit));
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(md, "| {} | {measured} | {} | {met} |", t.what, t.goal);
    }
    let ingest = rows(&figures, "ingest");
    if !ingest.is_empty() {
        let xs: Vec<f64> = ingest.iter().map(|r| r["clients"]).collect();
        let series = vec![
            (
                "Doodlebox",
                "#d9480f",
                ingest.iter().map(|r| r["doodlebox_per_sec"]).collect(),
            ),
            (
                "naive",
                "#1c7ed6",
                ingest.iter().map(|r| r["naive_per_sec"]).collect(),
            ),
            (
                "parse only",
                "#868e96",
                ingest.iter().map(|r| r["parse_only_per_sec"]).collect(),
            ),
        ];
        std::fs::write(
            charts_dir.join("ingest.svg"),
            line_chart(
                "Durable submissions per second",
                "concurrent clients",
                "drawings/s",
                &xs,
                &series,
            ),
        )
        .expect("chart");
        let _ = writeln!(
            md,
            "\n## Ingest\n\n![ingest throughput](bench/ingest.svg)\n"
        );
        if let Some(p) = first(&figures, "probes") {
            let best = ingest
                .iter()
                .map(|r| r["doodlebox_per_sec"])
                .fold(0.0, f64::max);
            let _ = writeln!(md, "At its best Doodlebox stores {best:.0} durable drawings/s, {:.2}x the machine's {:.0} fsyncs/s (above 1x is what group commit buys: one sync for many drawings).\n", best / p["fsync_per_sec"], p["fsync_per_sec"]);
        }
    }
    let http = rows(&figures, "classify_http");
    if !http.is_empty() {
        let xs: Vec<f64> = http.iter().map(|r| r["clients"]).collect();
        let series = vec![
            ("p50", "#2b8a3e", http.iter().map(|r| r["p50_ms"]).collect()),
            ("p99", "#c92a2a", http.iter().map(|r| r["p99_ms"]).collect()),
        ];
        std::fs::write(
            charts_dir.join("classify.svg"),
            line_chart(
                "Classify over HTTP: latency",
                "concurrent clients",
                "ms",
                &xs,
                &series,
            ),
        )
        .expect("chart");
        let _ = writeln!(
            md,
            "\n## Classify\n\n![classify latency](bench/classify.svg)\n"
        );
        if let Some(b) = first(&figures, "classify_batch") {
            let _ = writeln!(
                md,
                "Batch classification: {:.0} drawings/s.\n",
                b["drawings_per_sec"]
            );
        }
    }
    let memory = rows(&figures, "train_memory");
    if !memory.is_empty() {
        train_memory_section(&mut md, &charts_dir, &memory);
    }
    let _ = writeln!(md, "\n## Every benchmark's output\n");
    for (name, text, secs) in &outputs {
        let took = secs.map_or(String::new(), |s| format!(" ({s:.0} s)"));
        let shown: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("FIGURE "))
            .collect::<Vec<_>>()
            .join("\n");
        let _ = writeln!(
            md,
            "### `cargo bench --bench {name}`{took}\n\n```text\n{}\n```\n",
            shown.trim()
        );
    }
    std::fs::write(&out, md).expect("write the report");
    println!(
        "wrote {} and charts in {}",
        out.display(),
        charts_dir.display()
    );
}

/// Peak RSS of a capped training run against the number of drawings, one line per image
/// size: the chart and the figures it is drawn from (issue 18: flat in the dataset size).
fn train_memory_section(md: &mut String, charts_dir: &Path, memory: &[&BTreeMap<String, f64>]) {
    let mut sizes: Vec<f64> = memory.iter().map(|r| r["drawings"]).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let mut pixels: Vec<f64> = memory.iter().map(|r| r["image_size"]).collect();
    pixels.sort_by(f64::total_cmp);
    pixels.dedup();
    // The last figure of each (size, image size) wins, as in `first`.
    let peak = |drawings: f64, px: f64| {
        memory
            .iter()
            .rev()
            .find(|r| r["drawings"] == drawings && r["image_size"] == px)
            .map_or(f64::NAN, |r| r["peak_mib"])
    };
    let colours = ["#d9480f", "#1c7ed6", "#2b8a3e", "#868e96"];
    let names: Vec<String> = pixels.iter().map(|px| format!("{px:.0} px")).collect();
    let series: Vec<(&str, &str, Vec<f64>)> = pixels
        .iter()
        .zip(&names)
        .zip(colours.iter().cycle())
        .map(|((&px, name), colour)| {
            let values = sizes.iter().map(|&n| peak(n, px)).collect();
            (name.as_str(), *colour, values)
        })
        .collect();
    std::fs::write(
        charts_dir.join("train_memory.svg"),
        line_chart(
            "Training: peak RSS against dataset size",
            "drawings in the data directory",
            "peak MiB",
            &sizes,
            &series,
        ),
    )
    .expect("chart");
    let _ = writeln!(
        md,
        "\n## Training memory\n\n![training peak RSS against dataset size](bench/train_memory.svg)\n"
    );
    let _ = writeln!(
        md,
        "| drawings | image size | peak MiB | vs the smallest size |\n|---|---|---|---|"
    );
    for &px in &pixels {
        let smallest = sizes.iter().map(|&n| peak(n, px)).find(|v| v.is_finite());
        for &n in &sizes {
            let mib = peak(n, px);
            if let (true, Some(base)) = (mib.is_finite(), smallest) {
                let _ = writeln!(
                    md,
                    "| {n:.0} | {px:.0} px | {mib:.0} | {:+.1} % |",
                    (mib / base - 1.0) * 100.0
                );
            }
        }
    }
    let _ = writeln!(md);
}

fn date() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}
