//! The `doodlebox` binary: parses the command line, starts logging, calls the library, and
//! maps errors to exit codes. Everything testable lives in the library.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use doodlebox::app::{shutdown_signal, App};
use doodlebox::cli::{AdminCommand, Cli, Command, DataArgs, KeysCommand, ModelsCommand};
use doodlebox::config::Config;
use doodlebox::{backup_cli, manage_cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DOODLEBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command() {
        Command::Serve(args) => serve(Config::from(args)),
        Command::Doctor(args) => doctor(&args),
        Command::Train(args) => doodlebox::train_cli::train(args),
        Command::Models { command, data } => match command {
            ModelsCommand::List => doodlebox::train_cli::list_models(&data.data_dir),
            ModelsCommand::Activate { version } => {
                manage_cli::activate_model(&data.data_dir, &version)
            }
            ModelsCommand::Rollback => manage_cli::rollback_model(&data.data_dir),
        },
        Command::Admin { command, data } => match command {
            AdminCommand::Create {
                username,
                password_stdin,
            } => manage_cli::create_admin(&data.data_dir, &username, password_stdin),
            AdminCommand::ResetPassword {
                username,
                password_stdin,
            } => manage_cli::reset_admin_password(&data.data_dir, &username, password_stdin),
            AdminCommand::List => manage_cli::list_admins(&data.data_dir),
        },
        Command::Backup { dest, data } => backup_cli::backup(&data.data_dir, &dest),
        Command::Restore { src, force, data } => backup_cli::restore(&src, &data.data_dir, force),
        Command::Verify(data) => backup_cli::verify(&data.data_dir),
        Command::Import(args) => doodlebox::transfer_cli::import_files(
            &args.data.data_dir,
            &args.files,
            args.create_shapes,
        ),
        Command::Export(args) => {
            doodlebox::transfer_cli::export(&args.data.data_dir, &args.query_pairs(), &args.out)
        }
        Command::Keys { command, data } => match command {
            KeysCommand::Create { name, rate_per_min } => {
                manage_cli::create_key(&data.data_dir, &name, rate_per_min)
            }
            KeysCommand::List => manage_cli::list_keys(&data.data_dir),
            KeysCommand::Revoke { id } => manage_cli::revoke_key(&data.data_dir, id),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doodlebox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
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

fn doctor(args: &DataArgs) -> anyhow::Result<()> {
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
    match doodlebox::store::Stores::open(dir) {
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
