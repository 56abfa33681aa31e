//! `doodlebox [serve]`: builds the application, prints where players connect, and serves
//! until Ctrl-C or SIGTERM.

use std::io::Write;

use anyhow::Context;

use crate::app::{shutdown_signal, App};
use crate::config::Config;

/// Starts the async runtime and serves until a stop signal.
pub fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let app = App::build(config).await?;
        print_banner(&app);
        app.run_until_stopped(shutdown_signal()).await?;
        Ok(())
    })
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
