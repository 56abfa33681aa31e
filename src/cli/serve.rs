//! `doodlebox [serve]`: builds the application, prints where players connect, and serves
//! until Ctrl-C or SIGTERM.
//!
//! With `--open` (what the desktop launcher passes) it also opens the default browser on the
//! local page, or on the first-admin setup link while no admin exists; and when a server
//! already runs on the data directory, a second start opens that one and exits, instead of
//! failing on the stroke store's lock.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::client::RunningServer;
use super::ServeArgs;
use crate::app::{shutdown_signal, App};
use crate::config::Config;
use crate::device::device_name;

/// The program that opens a URL in the desktop's default browser.
const OPENER: &str = "xdg-open";

/// Starts the async runtime and serves until a stop signal.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let open = args.open;
    if let Some(running) = RunningServer::find(&args.data.data_dir) {
        if !open {
            bail!(
                "Doodlebox already runs on {} at {} (pid {}); stop it first, or pass --open to open it",
                args.data.data_dir.display(),
                running.url,
                running.pid
            );
        }
        println!(
            "Doodlebox already runs at {} (pid {}); opening it in your browser",
            running.url, running.pid
        );
        open_in_browser(&format!("{}/", running.url));
        return Ok(());
    }
    let config = Config::from(args);
    let device = config.device.resolve()?;
    tracing::info!(device = %device_name(device), "training runs on this device");
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let app = App::build(config).await?;
        print_banner(&app);
        if open {
            open_in_browser(&local_page(&app));
        }
        app.run_until_stopped(shutdown_signal()).await?;
        Ok(())
    })
}

/// The page this machine's browser opens: the setup link while no admin exists, else the
/// game, both on a loopback address (the LAN one may change with the Wi-Fi).
fn local_page(app: &App) -> String {
    let base = local_base(app.local_addr());
    let path = app
        .setup_link()
        .and_then(|link| link.find("/admin/setup?").map(|at| &link[at..]))
        .unwrap_or("/");
    format!("{base}{path}")
}

/// `http://localhost:PORT` for a server bound to every interface, else its own address.
fn local_base(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Hands `url` to the desktop's opener without waiting for the browser; says where to go when
/// there is no opener (a server without a desktop).
fn open_in_browser(url: &str) {
    let spawned = Command::new(OPENER)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reaped in the background, so that no zombie is left behind.
            std::thread::spawn(move || child.wait());
            println!("opened {url} in your browser");
        }
        Err(e) => println!("could not start {OPENER} ({e}); open {url} in a browser"),
    }
}

/// Tells the operator where players connect. The first line's form is read by tests and
/// scripts. A closed stdout (a supervisor that stopped reading) must not stop the server, so
/// write errors are ignored.
fn print_banner(app: &App) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{}", app.local_addr());
    for url in app.lan_urls() {
        let _ = writeln!(out, "players open: {url}");
    }
    if let Some(link) = app.setup_link() {
        let _ = writeln!(
            out,
            "no admin account yet: open this link within 30 minutes to create one (it works once):"
        );
        let _ = writeln!(out, "admin setup: {link}");
    }
    let _ = writeln!(
        out,
        "to stop: press Ctrl-C here (or close this window); every saved drawing stays saved"
    );
    let budget = app.descriptor_budget();
    let _ = writeln!(
        out,
        "connections: up to {} at once (descriptor limit {}, {} kept for the stores)",
        budget.connections, budget.limit, budget.reserve
    );
    if let Some(url) = app.lan_urls().first() {
        if let Ok(qr) = qrcode::QrCode::new(url.as_bytes()) {
            let picture = qr
                .render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build();
            let _ = writeln!(out, "{picture}");
        }
    }
    let _ = out.flush();
}
