//! `doodlebox doctor`: checks the installation and the data directory (libtorch, CUDA, free
//! disk, the stores) and prints what it found, one line each.

use super::DataArgs;
use crate::store::Stores;

/// Prints the checks; fails only when the metadata database cannot be read.
pub fn doctor(args: &DataArgs) -> anyhow::Result<()> {
    println!("doodlebox {}", env!("CARGO_PKG_VERSION"));
    let cuda = tch::Cuda::is_available();
    let sum = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0])
        .sum(tch::Kind::Float)
        .double_value(&[]);
    println!(
        "libtorch {}: loaded (tensor check {}), CUDA available: {cuda}, GPUs: {}",
        env!("DOODLEBOX_LIBTORCH_VERSION"),
        if sum == 6.0 { "ok" } else { "FAILED" },
        tch::Cuda::device_count()
    );
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
