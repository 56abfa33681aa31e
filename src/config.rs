//! The validated configuration the library runs on, built once from the command line and
//! `DOODLEBOX_*` variables and passed down; there are no globals.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::{ServeArgs, Switch, DEFAULT_MICRO_BATCH, DEFAULT_PURGE_AFTER_DAYS};
pub use crate::data_dir::DataDir;
use crate::device::DeviceChoice;
use crate::service::limits::RateLimits;

/// Everything `App::build` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Root of the fixed data layout (see `store::Stores::open`).
    pub data_dir: PathBuf,
    /// Address to bind; port 0 asks the OS for a free port.
    pub bind: SocketAddr,
    /// Train and activate a starter model when there is no model at all.
    pub starter_model: bool,
    /// Run no queued job in this process (`serve --no-jobs`): a cluster replica that serves
    /// only, leaving jobs to workers.
    pub no_jobs: bool,
    /// Most waiting drawings classified together in one forward pass (1 = no batching).
    pub classify_micro_batch: usize,
    /// Rate limits on submit and classify (`RateLimits::OFF` for benchmarks).
    pub rate_limits: RateLimits,
    /// Crashes and failed writes planned in the write path (fault tests only).
    pub faults: crate::fault::FaultPlan,
    /// Days soft-deleted drawings are kept before they are purged for good.
    pub purge_after_days: u32,
    /// Free space below which submissions are refused; `None`: 5 % of the disk, at most
    /// 256 MiB.
    pub min_free: Option<crate::store::disk::Watermark>,
    /// Where training jobs run (`--device`).
    pub device: DeviceChoice,
    /// Where backups asked for over HTTP go (`--backup-dir`); `None`: `<data>/backups`.
    pub backup_dir: Option<PathBuf>,
    /// The connection cap and timeouts at the edge (`--max-connections`; see
    /// [`crate::http::listener`]).
    pub edge: crate::http::listener::EdgeLimits,
    /// Stored drawings that may wait for the background scorer; those that find it full are
    /// scored by its catch-up walk instead. Not a flag: tests set 0 to send every drawing
    /// through the catch-up walk.
    pub quality_queue: usize,
    /// `--database-url`: every store on this PostgreSQL database (cluster mode); `None` is
    /// the embedded default (sled + SQLite in the data directory).
    pub database_url: Option<String>,
}

impl Config {
    /// The data directory's layout, which names every path in it.
    pub fn data(&self) -> DataDir {
        DataDir::new(&self.data_dir)
    }

    /// The directory backups asked for over HTTP go into.
    pub fn backup_root(&self) -> PathBuf {
        self.backup_dir
            .clone()
            .unwrap_or_else(|| self.data().backups())
    }

    /// A configuration for tests and benchmarks: loopback, a free port, no starter model.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            starter_model: false,
            no_jobs: false,
            classify_micro_batch: DEFAULT_MICRO_BATCH,
            rate_limits: RateLimits::DEFAULT,
            faults: crate::fault::FaultPlan::NONE,
            purge_after_days: DEFAULT_PURGE_AFTER_DAYS,
            min_free: None,
            device: DeviceChoice::Cpu,
            backup_dir: None,
            edge: crate::http::listener::EdgeLimits::default(),
            quality_queue: crate::service::quality::DEFAULT_QUEUE_CAPACITY,
            database_url: None,
        }
    }
}

impl From<ServeArgs> for Config {
    fn from(args: ServeArgs) -> Self {
        Self {
            data_dir: args.data.data_dir,
            bind: args.bind,
            starter_model: !args.no_starter_model,
            no_jobs: args.no_jobs,
            classify_micro_batch: args.classify_micro_batch,
            rate_limits: match args.rate_limit {
                Switch::On => RateLimits::DEFAULT,
                Switch::Off => RateLimits::OFF,
            },
            faults: crate::fault::FaultPlan {
                crash: args.crash_at,
                fail_writes: args.fail_writes,
            },
            purge_after_days: args.purge_after_days,
            min_free: args
                .min_free_mb
                .map(|mb| crate::store::disk::Watermark::bytes(mb.saturating_mul(1024 * 1024))),
            device: args.device,
            backup_dir: args.backup_dir,
            edge: crate::http::listener::EdgeLimits {
                max_connections: args
                    .max_connections
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                ..Default::default()
            },
            quality_queue: crate::service::quality::DEFAULT_QUEUE_CAPACITY,
            database_url: args.database_url,
        }
    }
}
