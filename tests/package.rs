//! The release bundle as its users get it: `scripts/package.sh` builds the `.tar.gz` and the
//! `.deb` from this checkout's release binary; the tarball, unpacked into a temporary
//! directory, must run with an empty environment (no `LIBTORCH`, no `LD_LIBRARY_PATH`), every
//! libtorch library resolving inside the bundle, answer `/healthz`, train its starter model
//! and guess; its desktop launcher must open the browser (a stand-in `xdg-open` records the
//! URL) on the setup link, and a second launch must open the running server instead of
//! failing. Also: the source build loads libtorch's CUDA backend when its libtorch has one.
//!
//! Needs `patchelf`, `dpkg-deb`, `tar` and `gzip`. Without them the tests say why and pass,
//! except under `CI`, which installs them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use doodlebox::ml::synth::Shape;
use serde_json::Value;

#[path = "common/synthetic.rs"]
mod synthetic;

/// How long the starter model may take to train and activate on a slow CI machine.
const STARTER_WAIT: Duration = Duration::from_secs(300);
/// How long the stand-in browser may wait for its URL.
const OPEN_WAIT: Duration = Duration::from_secs(60);

/// The packaged files, built once for all tests of this binary.
struct Bundle {
    tarball: PathBuf,
    deb: PathBuf,
}

/// Builds the bundle once; `None` (with the reason printed) when the tools are missing here.
fn bundle() -> Option<&'static Bundle> {
    static BUNDLE: OnceLock<Option<Bundle>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let missing: Vec<&str> = ["patchelf", "dpkg-deb", "tar", "gzip", "ldd"]
                .into_iter()
                .filter(|tool| !on_path(tool))
                .collect();
            if !missing.is_empty() {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must install {missing:?} (see .ci/run)"
                );
                eprintln!("skipped: the packaging tests need {missing:?}");
                return None;
            }
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let started = Instant::now();
            let out = Command::new(root.join("scripts/package.sh"))
                .current_dir(root)
                .output()
                .expect("package.sh runs");
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "package.sh failed:\n{said}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!(
                "package.sh took {:.0} s:\n{said}",
                started.elapsed().as_secs_f64()
            );
            let version = env!("CARGO_PKG_VERSION");
            let bundle = Bundle {
                tarball: root.join(format!("dist/doodlebox-{version}-linux-x86_64.tar.gz")),
                deb: root.join(format!("dist/doodlebox_{version}_amd64.deb")),
            };
            for file in [&bundle.tarball, &bundle.deb] {
                let size = std::fs::metadata(file).expect("package.sh wrote it").len();
                eprintln!("{}: {:.1} MB", file.display(), size as f64 / 1e6);
            }
            Some(bundle)
        })
        .as_ref()
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Unpacks the tarball into a new temporary directory; answers it and the bundle's root.
fn unpack(bundle: &Bundle) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&bundle.tarball)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("tar runs");
    assert!(status.success(), "the tarball unpacks");
    let root = std::fs::read_dir(dir.path())
        .expect("unpacked")
        .map(|e| e.expect("entry").path())
        .find(|p| p.is_dir())
        .expect("the tarball holds one directory");
    (dir, root)
}

/// A child killed when dropped (the bundle's server).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads lines from a child's stdout until one starts with `prefix`; answers the rest of it.
fn read_until(reader: &mut impl BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("stdout readable");
        assert!(n > 0, "the server ended before printing {prefix:?}");
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unpacked_tarball_runs_with_an_empty_environment_and_guesses() {
    let Some(bundle) = bundle() else { return };
    let (_dir, root) = unpack(bundle);
    let binary = root.join("bin/doodlebox");

    // Every library the loader needs beyond the system's resolves inside the bundle.
    let ldd = Command::new("ldd")
        .arg(&binary)
        .env_clear()
        .output()
        .expect("ldd runs");
    let listing = String::from_utf8_lossy(&ldd.stdout);
    assert!(!listing.contains("not found"), "{listing}");
    let lib = std::fs::canonicalize(root.join("lib")).expect("lib/");
    for name in ["libtorch_cpu.so", "libc10.so", "libgomp.so.1"] {
        let line = listing
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} is not loaded:\n{listing}"));
        let path = line.split("=> ").nth(1).and_then(|r| r.split(" (").next());
        let resolved = std::fs::canonicalize(path.expect("a path")).expect("it exists");
        assert!(
            resolved.starts_with(&lib),
            "{name} resolves outside the bundle: {line}"
        );
    }
    assert!(
        !lib.join("libtorch_cuda.so").exists(),
        "the CPU bundle carries no CUDA backend"
    );

    // Started with nothing in its environment, it listens, trains its starter model, guesses.
    let data = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the bundled binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let _running = Running(child);
    let base = read_until(&mut stdout, "listening on ");
    let listening = started.elapsed();
    std::thread::spawn(move || for _ in stdout.lines() {});
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    let drawing = synthetic::doodle_json(Shape::Circle, 7);
    let guess = loop {
        assert!(
            started.elapsed() < STARTER_WAIT,
            "no guess within {STARTER_WAIT:?}"
        );
        let answer = client
            .post(format!("{base}/api/v1/classify"))
            .json(&drawing)
            .send()
            .await
            .expect("classify answers");
        if answer.status() == 200 {
            break answer.json::<Value>().await.expect("JSON");
        }
        assert_eq!(
            answer.status(),
            503,
            "only 'no model yet' may come before the guess"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(guess["shape"].is_string(), "{guess}");
    eprintln!(
        "bundle with an empty environment: listening after {:.2} s, first guess ({} at {:.2}) after {:.1} s",
        listening.as_secs_f64(),
        guess["shape"],
        guess["confidence"].as_f64().unwrap_or(0.0),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_launcher_opens_the_setup_link_and_a_second_launch_opens_the_running_server() {
    let Some(bundle) = bundle() else { return };
    let (dir, root) = unpack(bundle);
    let desktop = root.join("doodlebox.desktop");
    let entry = std::fs::read_to_string(&desktop).expect("the tarball has a launcher");
    assert!(entry.contains("Terminal=true"), "{entry}");
    let exec = entry
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .expect("an Exec line")
        .replace("%k", &desktop.to_string_lossy());

    // A stand-in for the desktop's opener that records the URL it is given.
    let fake_bin = dir.path().join("fake-bin");
    std::fs::create_dir_all(&fake_bin).expect("mkdir");
    let record = dir.path().join("opened.txt");
    let opener = fake_bin.join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\n", record.display()),
    )
    .expect("write the stand-in");
    Command::new("chmod")
        .arg("+x")
        .arg(&opener)
        .status()
        .expect("chmod");
    let home = dir.path().join("home");
    let xdg_data = home.join("data");
    let launch = || {
        // `exec`: the shell becomes the launcher's command (which execs the server), so the
        // child this test kills at its end is the server itself, not a shell above it.
        Command::new("sh")
            .args(["-c", &format!("exec {exec}")])
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", fake_bin.display()))
            .env("HOME", &home)
            .env("XDG_DATA_HOME", &xdg_data)
            // Not port 8080 of the machine running the tests, and no model training meanwhile.
            .env("DOODLEBOX_BIND", "127.0.0.1:0")
            .env("DOODLEBOX_NO_STARTER_MODEL", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the launcher's Exec line runs")
    };
    let opened = |n: usize| -> Vec<String> {
        let deadline = Instant::now() + OPEN_WAIT;
        loop {
            let lines: Vec<String> = std::fs::read_to_string(&record)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "the browser was not opened: {lines:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let mut first = launch();
    let mut stdout = BufReader::new(first.stdout.take().expect("piped"));
    let _first = Running(first);
    let base = read_until(&mut stdout, "listening on ");
    std::thread::spawn(move || for _ in stdout.lines() {});
    let urls = opened(1);
    assert!(
        urls[0].starts_with(&base) && urls[0].contains("/admin/setup?token="),
        "the first launch opens the setup link of {base}: {urls:?}"
    );
    assert!(
        xdg_data.join("doodlebox/doodlebox.sqlite3").is_file(),
        "the launcher keeps the data in $XDG_DATA_HOME/doodlebox"
    );

    let second = launch().wait_with_output().expect("the second launch ends");
    assert!(second.status.success(), "a second launch is no error");
    let urls = opened(2);
    assert_eq!(urls[1], format!("{base}/"), "it opens the running server");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already runs"),
        "and says so"
    );
}

#[test]
fn the_deb_installs_the_binary_the_launcher_and_a_command_on_the_path() {
    let Some(bundle) = bundle() else { return };
    let out = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&bundle.deb)
        .output()
        .expect("dpkg-deb runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    for path in [
        "./opt/doodlebox/bin/doodlebox",
        "./opt/doodlebox/lib/libtorch_cpu.so",
        "./usr/share/applications/doodlebox.desktop",
        "./usr/share/icons/hicolor/scalable/apps/doodlebox.svg",
        "./usr/bin/doodlebox -> /opt/doodlebox/bin/doodlebox",
    ] {
        assert!(
            listing.contains(path),
            "{path} missing from the .deb:\n{listing}"
        );
    }
}

#[test]
fn the_source_build_loads_the_cuda_backend_when_its_libtorch_has_one() {
    let Some(libtorch) = option_env!("LIBTORCH") else {
        eprintln!("skipped: LIBTORCH was not set at build time");
        return;
    };
    let has_cuda = Path::new(libtorch).join("lib/libtorch_cuda.so").is_file();
    let out = Command::new(env!("CARGO_BIN_EXE_doodlebox"))
        .args(["doctor", "--data-dir"])
        .arg(std::env::temp_dir().join("doodlebox-no-such-dir"))
        .env("LD_DEBUG", "libs")
        .output()
        .expect("doctor runs");
    let said = String::from_utf8_lossy(&out.stdout);
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}{trace}");
    // The loader's own trace: libtorch_cuda.so's initialisers ran (its CUDA hooks registered).
    let initialised = trace
        .lines()
        .any(|l| l.contains("calling init:") && l.contains("libtorch_cuda.so"));
    if has_cuda {
        assert!(said.contains("CUDA backend: loaded"), "{said}");
        assert!(initialised, "the loader never initialised libtorch_cuda.so");
    } else {
        assert!(said.contains("CUDA backend: not in this build"), "{said}");
        assert!(!initialised);
    }
}
