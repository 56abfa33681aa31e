//! Build script: give the binary (and the test binaries) an rpath to libtorch so that
//! `./target/release/doodlebox` runs without `LD_LIBRARY_PATH`, and record which libtorch it
//! was built against (for `doodlebox doctor`). It never downloads anything; `install.sh`
//! provides libtorch and sets `LIBTORCH` (through `.cargo/config.toml`).

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(dir) = std::env::var("LIBTORCH") else {
        println!("cargo:rustc-env=DOODLEBOX_LIBTORCH_VERSION=unknown");
        return;
    };
    // Applies to every linked target of this package: bin, tests, benches.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
    println!(
        "cargo:rustc-env=DOODLEBOX_LIBTORCH_VERSION={}",
        libtorch_version(&dir)
    );
}

/// The version PyTorch's wheel records in `version.py` (`__version__ = '2.13.0+cpu'`), or a
/// standalone libtorch's `build-version` file.
fn libtorch_version(dir: &str) -> String {
    let dir = std::path::Path::new(dir);
    if let Ok(text) = std::fs::read_to_string(dir.join("version.py")) {
        let found = text.lines().find_map(|line| {
            let value = line.strip_prefix("__version__")?.split('=').nth(1)?;
            Some(value.trim().trim_matches(['\'', '"']).to_owned())
        });
        if let Some(version) = found {
            return version;
        }
    }
    std::fs::read_to_string(dir.join("build-version"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}
