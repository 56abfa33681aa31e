//! The command line: `doodlebox [serve]` and the maintenance commands. Parsed once into
//! [`Command`]; `main` turns it into calls into the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Doodlebox: collect drawings, train a classifier, serve it. One binary, no services.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options for `serve`, also accepted without the subcommand.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (the default when no command is given).
    Serve(ServeArgs),
    /// Check the installation and the data directory: libtorch, CUDA, stores, free disk.
    Doctor(DataArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Directory for all data (created if missing): stroke store, metadata database, models.
    #[arg(
        long,
        env = "DOODLEBOX_DATA_DIR",
        default_value = "doodlebox-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Address to listen on; port 0 picks a free port. The default serves the whole LAN.
    #[arg(long, env = "DOODLEBOX_BIND", default_value = "0.0.0.0:8080")]
    pub bind: SocketAddr,
}

impl Cli {
    /// The command to run, `serve` when none was named.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}
