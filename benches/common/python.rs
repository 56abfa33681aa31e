//! Finding the Python that carries the libtorch this build links, for the benchmarks that
//! compare against PyTorch eager.

use std::path::PathBuf;

/// `<venv>/bin/python` for `LIBTORCH=<venv>/lib/python3.X/site-packages/torch` (what
/// install.sh sets up); `None` for a libtorch that did not come from a virtual environment.
pub fn python() -> Option<PathBuf> {
    let libtorch = PathBuf::from(std::env::var("LIBTORCH").ok()?);
    let python = libtorch.ancestors().nth(4)?.join("bin/python");
    python.exists().then_some(python)
}
