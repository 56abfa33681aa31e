//! Build script: give the binary (and the test binaries) an rpath to libtorch so that
//! `./target/release/doodlebox` runs without `LD_LIBRARY_PATH`. It never downloads anything;
//! `install.sh` provides libtorch and sets `LIBTORCH` (through `.cargo/config.toml`).

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        // Applies to every linked target of this package: bin, tests, benches.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
    }
}
