//! The command line: `doodlebox [serve]` and the maintenance commands. Parsed once into
//! [`Command`]; `main` turns it into calls into the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::device::DeviceChoice;

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
    /// Train a model on the collected drawings, with a progress bar (the server must be
    /// stopped; while it runs, use POST /api/v1/admin/training-jobs instead).
    Train(TrainArgs),
    /// Model versions: list, activate, roll back (through the running server when one runs).
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Admin accounts for the portal (works while the server runs).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write a consistent backup of the drawings, metadata and models into a new directory
    /// (through the running server when one runs; submissions go on meanwhile).
    Backup {
        /// A new or empty directory for the backup.
        dest: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Restore a backup into the data directory (the server must be stopped).
    Restore {
        /// A directory written by `doodlebox backup`.
        src: PathBuf,
        /// Restore even if the data directory is not empty: its content is moved aside to
        /// `<data-dir>.before-restore-<time>`, never deleted.
        #[arg(long, env = "DOODLEBOX_RESTORE_FORCE", value_parser = BoolishValueParser::new())]
        force: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Check a data directory or a backup: SQLite integrity and foreign keys, every stroke
    /// record readable, rows and records matching, model files matching their hashes. With
    /// --database-url, check that PostgreSQL database instead. Exits non-zero when something
    /// is wrong.
    Verify(VerifyArgs),
    /// Copy an appliance's data directory (drawings, players, shapes, accounts, keys,
    /// settings, models, jobs) into a PostgreSQL database, then compare both sides. The
    /// server must be stopped. Safe to run again: after a crash it finishes the copy.
    Migrate(MigrateArgs),
    /// Import Quick, Draw! ndjson files (raw or simplified) or Doodlebox JSON lines, with a
    /// progress bar. Works while the server runs (the files are streamed to it). Bad lines
    /// are reported with their numbers; drawings whose key_id is already stored are skipped.
    Import(ImportArgs),
    /// Export drawings as Quick, Draw! raw or simplified ndjson, 28x28 .npy bitmaps per shape,
    /// or lossless JSON lines, with the review filters. Works while the server runs.
    Export(ExportArgs),
    /// API keys for implementors (works while the server runs).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Run training jobs from a PostgreSQL database, serving nothing (cluster mode): claims
    /// queued training jobs with `FOR UPDATE SKIP LOCKED`, heartbeats them, and takes over
    /// those whose worker died. Stops at Ctrl-C or SIGTERM, requeueing what it runs.
    Worker(WorkerArgs),
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Check this PostgreSQL database (`postgres://…`) instead of the data directory: every
    /// drawing row with a readable stroke record, records without rows, one active model,
    /// references that lead nowhere.
    #[arg(long, env = "DOODLEBOX_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The appliance's data directory to copy from (no server may run on it).
    #[arg(long, env = "DOODLEBOX_MIGRATE_FROM")]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into (`postgres://user:password@host:port/database`),
    /// empty or partly filled by an earlier run.
    #[arg(long, env = "DOODLEBOX_MIGRATE_TO")]
    pub to: String,
    /// Rows or stroke records per batch, each one transaction.
    #[arg(long, env = "DOODLEBOX_MIGRATE_BATCH", default_value_t = crate::service::migrate::DEFAULT_BATCH,
          value_parser = clap::value_parser!(usize), hide = true)]
    pub batch: usize,
    /// Fault tests only: after this many committed batches, say so on stdout and wait to be
    /// killed (the crash-and-resume test kills it there).
    #[arg(long, env = "DOODLEBOX_MIGRATE_PAUSE_AFTER", hide = true)]
    pub pause_after: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// ndjson files to import, one drawing per line.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Create a shape for every word that names none (otherwise such lines are bad lines).
    #[arg(long, env = "DOODLEBOX_IMPORT_CREATE_SHAPES", value_parser = BoolishValueParser::new())]
    pub create_shapes: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// quickdraw-raw, quickdraw-simplified, npy or jsonl.
    #[arg(long, env = "DOODLEBOX_EXPORT_FORMAT")]
    pub format: String,
    /// The file to write; for npy, a directory that gets one <shape>.npy per shape.
    #[arg(long, env = "DOODLEBOX_EXPORT_OUT")]
    pub out: PathBuf,
    /// Only this shape.
    #[arg(long, env = "DOODLEBOX_EXPORT_SHAPE")]
    pub shape: Option<String>,
    /// Only flagged (true) or unflagged (false) drawings.
    #[arg(long, env = "DOODLEBOX_EXPORT_FLAGGED")]
    pub flagged: Option<String>,
    /// Only reviewed (true) or unreviewed (false) drawings.
    #[arg(long, env = "DOODLEBOX_EXPORT_REVIEWED")]
    pub reviewed: Option<String>,
    /// Only drawings with a quality score of at least this (0 to 1).
    #[arg(long, env = "DOODLEBOX_EXPORT_MIN_QUALITY")]
    pub min_quality: Option<String>,
    /// Only drawings with a quality score of at most this (0 to 1).
    #[arg(long, env = "DOODLEBOX_EXPORT_MAX_QUALITY")]
    pub max_quality: Option<String>,
    /// Only this player's drawings (32 hex digits).
    #[arg(long, env = "DOODLEBOX_EXPORT_PLAYER")]
    pub player: Option<String>,
    /// Only drawings created at or after this time (ms since the Unix epoch).
    #[arg(long, env = "DOODLEBOX_EXPORT_FROM")]
    pub from: Option<String>,
    /// Only drawings created before this time (ms since the Unix epoch).
    #[arg(long, env = "DOODLEBOX_EXPORT_TO")]
    pub to: Option<String>,
}

impl ExportArgs {
    /// The format and filters as the query pairs `GET /api/v1/admin/export` takes, so the
    /// command and the API parse them with the same code.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![("format".to_owned(), self.format.clone())];
        let filters = [
            ("shape", &self.shape),
            ("flagged", &self.flagged),
            ("reviewed", &self.reviewed),
            ("min_quality", &self.min_quality),
            ("max_quality", &self.max_quality),
            ("player", &self.player),
            ("from", &self.from),
            ("to", &self.to),
        ];
        for (name, value) in filters {
            if let Some(value) = value {
                pairs.push((name.to_owned(), value.clone()));
            }
        }
        pairs
    }
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List model versions with their accuracy.
    List,
    /// Verify a model version and make it the one that answers classify requests.
    Activate {
        /// The version, e.g. v3 (`doodlebox models list` shows them).
        version: String,
    },
    /// Go back to the model that was active before the current one.
    Rollback,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin account.
    Create {
        /// Letters, digits, '.', '_' or '-'.
        username: String,
        /// Read the password from the first line of standard input (for scripts); without
        /// it a strong password is generated and printed.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for an account and end all its sessions.
    ResetPassword {
        username: String,
        /// Read the new password from the first line of standard input; without it a strong
        /// password is generated and printed.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List admin accounts.
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once, alone on the last line.
    Create {
        /// What the key is for, e.g. the lab or app that uses it.
        name: String,
        /// Classify requests a minute this key may make.
        #[arg(long)]
        rate_per_min: Option<u32>,
    },
    /// List keys (never their secrets) with their last use.
    List,
    /// Revoke a key by its id; it stops working at once.
    Revoke {
        /// The key's id (`doodlebox keys list` shows them).
        id: i64,
    },
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Passes over the training set (default 10; left out, a small collection gets enough
    /// for the run to see at least 64 000 drawings).
    #[arg(long, env = "DOODLEBOX_TRAIN_EPOCHS")]
    pub epochs: Option<u32>,
    /// Drawings per optimisation step.
    #[arg(long, env = "DOODLEBOX_TRAIN_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// Adam's learning rate.
    #[arg(long, env = "DOODLEBOX_TRAIN_LEARNING_RATE")]
    pub learning_rate: Option<f64>,
    /// Side of the rasterized input image: 28 or 64.
    #[arg(long, env = "DOODLEBOX_TRAIN_IMAGE_SIZE")]
    pub image_size: Option<u32>,
    /// Train without augmenting the drawings.
    #[arg(long, env = "DOODLEBOX_TRAIN_NO_AUGMENTATION", value_parser = BoolishValueParser::new())]
    pub no_augmentation: bool,
    /// Seed for the split, augmentation and initial weights.
    #[arg(long, env = "DOODLEBOX_TRAIN_SEED")]
    pub seed: Option<u64>,
    /// Only these shapes (comma-separated; at least two).
    #[arg(long, env = "DOODLEBOX_TRAIN_SHAPES", value_delimiter = ',')]
    pub shapes: Option<Vec<String>>,
    /// Leave out drawings with a quality score below this (0 to 1).
    #[arg(long, env = "DOODLEBOX_TRAIN_MIN_QUALITY")]
    pub min_quality: Option<f64>,
    /// Also train on flagged drawings.
    #[arg(long, env = "DOODLEBOX_TRAIN_INCLUDE_FLAGGED", value_parser = BoolishValueParser::new())]
    pub include_flagged: bool,
    /// At most this many drawings of each shape (the oldest), for a quick iteration.
    #[arg(long, env = "DOODLEBOX_TRAIN_PER_CLASS_CAP")]
    pub per_class_cap: Option<usize>,
    /// Only drawings created at or after this time (RFC 3339, or a date: 2026-01-31).
    #[arg(long, env = "DOODLEBOX_TRAIN_CREATED_FROM")]
    pub created_from: Option<String>,
    /// Only drawings created before this time (RFC 3339, or a date: 2026-01-31).
    #[arg(long, env = "DOODLEBOX_TRAIN_CREATED_TO")]
    pub created_to: Option<String>,
    /// End each epoch after this many steps (the validation still covers the whole
    /// validation set): for quick looks and benchmarks.
    #[arg(long, env = "DOODLEBOX_TRAIN_MAX_STEPS_PER_EPOCH")]
    pub max_steps_per_epoch: Option<usize>,
    /// The network to train: small (about 0.3 ms per classified drawing) or wide (about
    /// 1.3 ms, a few points more accurate on small collections; the default).
    #[arg(long, env = "DOODLEBOX_TRAIN_ARCHITECTURE")]
    pub architecture: Option<crate::ml::net::Architecture>,
    /// Where to train: auto, cpu, cuda or cuda:N.
    #[arg(long, env = "DOODLEBOX_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
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
    /// Where training runs: auto (the first GPU when libtorch's CUDA backend sees one, else
    /// the CPU), cpu, cuda or cuda:N.
    #[arg(long, env = "DOODLEBOX_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
    /// Open the default browser on this server's page (on the first-admin setup link while no
    /// admin exists). When a server already runs on the data directory, open that one instead
    /// of starting a second (what a second double-click on the launcher does).
    #[arg(long, env = "DOODLEBOX_OPEN", value_parser = BoolishValueParser::new())]
    pub open: bool,
    /// Do not train and activate a starter model (synthetic doodles of the default shapes)
    /// when the data directory has no model yet.
    #[arg(long, env = "DOODLEBOX_NO_STARTER_MODEL", value_parser = BoolishValueParser::new())]
    pub no_starter_model: bool,
    /// Most waiting classify requests' drawings run together in one forward pass (1 turns
    /// micro-batching off).
    #[arg(long, env = "DOODLEBOX_CLASSIFY_MICRO_BATCH", default_value_t = DEFAULT_MICRO_BATCH,
          value_parser = clap::value_parser!(usize))]
    pub classify_micro_batch: usize,
    /// Rate limits on submitting and classifying (per player session, per client address and
    /// per API key; a 429 with Retry-After when exceeded). `off` is for benchmarks.
    #[arg(long, env = "DOODLEBOX_RATE_LIMIT", value_enum, default_value_t = Switch::On)]
    pub rate_limit: Switch,
    /// Days a soft-deleted drawing is kept (restorable) before it is purged for good, by an
    /// hourly task or `POST /api/v1/admin/drawings/purge`.
    #[arg(long, env = "DOODLEBOX_PURGE_AFTER_DAYS", default_value_t = DEFAULT_PURGE_AFTER_DAYS)]
    pub purge_after_days: u32,
    /// Refuse new drawings (507) while the data directory's disk has less than this many
    /// MiB free; they are accepted again once space returns. Default: 5 % of the disk, at
    /// most 256 MiB.
    #[arg(long, env = "DOODLEBOX_MIN_FREE_MB")]
    pub min_free_mb: Option<u64>,
    /// The directory backups asked for over HTTP (the admin portal, `POST
    /// /api/v1/admin/backup`) are written into, each in a new folder; a request never names
    /// a path. Default: `<data-dir>/backups`.
    #[arg(long, env = "DOODLEBOX_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Most connections served at once; more wait in the listen backlog and, past a short
    /// wait, get `503` with `Retry-After`. Default: what the descriptor limit leaves after a
    /// reserve for the stores, models and backups.
    #[arg(long, env = "DOODLEBOX_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Keep everything in this PostgreSQL database instead of the data directory's sled and
    /// SQLite (`postgres://user:password@host:port/database`), so that several replicas can
    /// serve one collection. The data directory still holds model files and the control
    /// file. Without it nothing changes.
    #[arg(long, env = "DOODLEBOX_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Serve only: run no queued job here (training, rescoring, imports wait for a replica
    /// without this flag or a `doodlebox worker`). Jobs are still queued, listed and
    /// cancelled here. Meant for cluster mode.
    #[arg(long, env = "DOODLEBOX_NO_JOBS", value_parser = BoolishValueParser::new())]
    pub no_jobs: bool,
    /// Fault tests only: make the SQLite commit of the first N group commits fail.
    #[arg(long, env = "DOODLEBOX_FAIL_WRITES", hide = true, default_value_t = 0)]
    pub fail_writes: u64,
    /// Fault tests only: abort at a point of the write path (before-strokes, after-strokes,
    /// after-metadata) in the Nth group commit, e.g. `after-strokes:5`.
    #[arg(long, env = "DOODLEBOX_CRASH_AT", hide = true)]
    pub crash_at: Option<crate::fault::CrashPlan>,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Default for `--purge-after-days`.
pub const DEFAULT_PURGE_AFTER_DAYS: u32 = 30;

/// Default for `--classify-micro-batch`.
pub const DEFAULT_MICRO_BATCH: usize = 32;

impl Cli {
    /// The command to run, `serve` when none was named.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// `doodlebox worker`'s options.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Holds this worker's model files and job scratch space (checkpoints).
    #[command(flatten)]
    pub data: DataArgs,
    /// The cluster's PostgreSQL database (`postgres://user:password@host:port/database`).
    #[arg(long, env = "DOODLEBOX_DATABASE_URL")]
    pub database_url: String,
    /// Where training runs: auto (the first GPU when libtorch's CUDA backend sees one, else
    /// the CPU), cpu, cuda or cuda:N.
    #[arg(long, env = "DOODLEBOX_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,
}
