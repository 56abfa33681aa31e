//! Physical probes of the machine, the yardsticks the other benchmarks are read against:
//! durable appends per second (write + fdatasync of 4 KiB, what a group commit costs), dense
//! f32 matrix multiplication in FLOP/s through libtorch (what training and inference can
//! reach), and memory copy bandwidth. Prints a table and `FIGURE` lines for the report
//! (`scripts/bench-report.sh`).

use std::io::Write;
use std::time::{Duration, Instant};

/// How long each probe runs.
fn probe_time() -> Duration {
    let secs: f64 = std::env::var("DOODLEBOX_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

fn fsyncs_per_sec(dir: &std::path::Path, time: Duration) -> f64 {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("probe.log"))
        .expect("probe file");
    let block = [0x5au8; 4096];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < time {
        file.write_all(&block).expect("write");
        file.sync_data().expect("fdatasync");
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn gemm_flops(size: i64, time: Duration) -> f64 {
    let a = tch::Tensor::randn([size, size], (tch::Kind::Float, tch::Device::Cpu));
    let b = tch::Tensor::randn([size, size], (tch::Kind::Float, tch::Device::Cpu));
    let _ = a.matmul(&b); // warm up
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < time {
        let c = a.matmul(&b);
        std::hint::black_box(c.double_value(&[0, 0]));
        n += 1;
    }
    2.0 * (size as f64).powi(3) * n as f64 / started.elapsed().as_secs_f64()
}

fn copy_bandwidth(bytes: usize, time: Duration) -> f64 {
    let source = vec![1u8; bytes];
    let mut target = vec![0u8; bytes];
    target.copy_from_slice(&source); // touch every page
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < time {
        target.copy_from_slice(&source);
        std::hint::black_box(&target);
        n += 1;
    }
    // A copy reads and writes every byte.
    2.0 * bytes as f64 * n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let time = probe_time();
    let dir = tempfile::tempdir_in(std::env::current_dir().expect("cwd"))
        .expect("temp dir next to the project");
    let fsyncs = fsyncs_per_sec(dir.path(), time);
    let threads = tch::get_num_threads();
    let gemm = gemm_flops(512, time);
    let bandwidth = copy_bandwidth(256 << 20, time);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine probes ({:.0} s each, {cores} cores, libtorch threads {threads}):",
        time.as_secs_f64()
    );
    println!(
        "  durable 4 KiB appends (write + fdatasync): {fsyncs:>10.0} /s  ({:.3} ms each)",
        1000.0 / fsyncs
    );
    println!(
        "  f32 GEMM 512x512 through libtorch:          {:>10.1} GFLOP/s",
        gemm / 1e9
    );
    println!(
        "  memory copy bandwidth (256 MiB):            {:>10.1} GB/s",
        bandwidth / 1e9
    );
    println!("FIGURE probes fsync_per_sec={fsyncs:.0}");
    println!("FIGURE probes gemm_gflops={:.2}", gemm / 1e9);
    println!("FIGURE probes copy_gb_per_sec={:.2}", bandwidth / 1e9);
    println!("FIGURE probes cores={cores}");
}
