//! `doodlebox doctor`: checks the installation and the data directory (libtorch, its CUDA
//! backend and the GPUs, free disk, the stores) and prints what it found, one line each.

use std::process::Command;

use super::DataArgs;
use crate::device::{cuda_backend, device_name, CudaBackend, DeviceChoice};
use crate::store::Stores;

/// Prints the checks; fails only when the metadata database cannot be read.
pub fn doctor(args: &DataArgs) -> anyhow::Result<()> {
    println!("doodlebox {}", env!("CARGO_PKG_VERSION"));
    let sum = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0])
        .sum(tch::Kind::Float)
        .double_value(&[]);
    let backend = cuda_backend();
    let cuda = backend.is_loaded() && tch::Cuda::is_available();
    let gpus = if cuda { tch::Cuda::device_count() } else { 0 };
    println!(
        "libtorch {}: loaded (tensor check {}), CUDA available: {cuda}, GPUs: {gpus}",
        env!("DOODLEBOX_LIBTORCH_VERSION"),
        if sum == 6.0 { "ok" } else { "FAILED" },
    );
    match backend {
        CudaBackend::Loaded => println!("CUDA backend: loaded (libtorch_cuda.so)"),
        CudaBackend::Absent(why) => println!("CUDA backend: not in this build ({why})"),
    }
    for name in gpu_names() {
        println!("  {name}");
    }
    match DeviceChoice::Auto.resolve() {
        Ok(device) => println!("training device (--device auto): {}", device_name(device)),
        Err(e) => println!("training device (--device auto): {e}"),
    }
    let dir = &args.data_dir;
    let probe = if dir.exists() {
        dir.as_path()
    } else {
        std::path::Path::new(".")
    };
    match fs4::available_space(probe) {
        Ok(bytes) => println!("free disk: {:.1} GiB", bytes as f64 / (1u64 << 30) as f64),
        Err(e) => println!("free disk: unknown ({e})"),
    }
    if !dir.exists() {
        println!(
            "data directory {}: not created yet (the server creates it)",
            dir.display()
        );
        return Ok(());
    }
    match Stores::open(dir) {
        Ok(stores) => {
            println!("data directory {}: stores open", dir.display());
            println!("metadata integrity: {}", stores.metadata.integrity_check()?);
            println!("drawings: {}", stores.metadata.count_drawings()?);
        }
        Err(e) => println!(
            "data directory {}: cannot open ({e}); a running server holds it",
            dir.display()
        ),
    }
    Ok(())
}

/// The GPUs' names as the NVIDIA driver's `nvidia-smi` lists them (libtorch does not expose
/// them through tch); nothing when there is no driver.
fn gpu_names() -> Vec<String> {
    Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total",
            "--format=csv,noheader",
        ])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|line| format!("GPU {line}"))
                .collect()
        })
        .unwrap_or_default()
}
