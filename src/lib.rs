//! Doodlebox: a one-binary appliance that collects crowdsourced drawings, trains a
//! classifier on them and serves it.
//!
//! # Map of the crate
//! Arrows run one way: `cli` and `http` (the doors) → `service` and `jobs` (the use cases)
//! → `store` and `ml` (the engines) → `domain` (pure types). No SQL or sled outside
//! `store`, no axum outside `http`, no clap outside `cli`.
//!
//! The doors:
//! - [`cli`]: the command line, one file per command, parsed once (`cli/args.rs`) into a
//!   validated [`config::Config`]; [`cli::client`] is the one client for a server already
//!   running on the data directory, [`cli::doctor`] checks an installation. `main.rs` only
//!   maps errors to an exit code.
//! - [`http`]: axum routes, the one error table (`http/error.rs`), extractors, the admin
//!   guard (every admin route names its policy) and the embedded web UI. A handler parses,
//!   makes one service call and maps the answer. In front of them, the edge
//!   (`http/listener.rs`) shares out the descriptor limit, caps connections (`503` past the
//!   cap) and drops slow clients, so the stores never see `EMFILE`.
//! - [`app`]: [`app::App::build`] opens the stores, reconciles them, starts the group-commit
//!   writer, the job scheduler and the model server, and binds; `run_until_stopped` serves
//!   until a signal, then requeues running jobs and drains the writer.
//!
//! The use cases:
//! - [`service`]: one module per feature, shared by handlers and commands: `submit`,
//!   `review` (with `thumbnails`), `accounts`, `api_keys`, `limits`, `quality` (the
//!   background scorer and the rescore walk), `prompter`, `shapes`, `models` (the registry:
//!   list, compare, activate, roll back, delete), `artifacts` (where a model's files are on
//!   this host: fetched from the database in cluster mode), `serving` (the active model in memory),
//!   `backup` (online backup, restore, verify), `migrate` (an appliance into PostgreSQL,
//!   and `verify --database-url`), `events` (what the admin portal's one live stream,
//!   `GET /api/v1/admin/events`, hears; coalesced for new drawings), `cluster` (cluster
//!   mode: what one replica changes reaches the others over `LISTEN/NOTIFY`) and `icons`
//!   (pictures for shapes without a built-in icon).
//! - [`jobs`]: the one durable queue for long work; job kinds `train` (`jobs::runner`),
//!   `backup`, `rescore` and `import`, with the same progress events, cancel and crash
//!   recovery. HTTP starts them with `202` and a job id.
//! - [`transfer`]: Quick, Draw! formats (raw and simplified ndjson, npy) and lossless JSON
//!   lines, read and written as streams.
//!
//! The engines:
//! - [`store`]: the only module that touches sled (stroke records) or SQLite (metadata),
//!   behind narrow traits per seam (drawings and strokes, idempotency, jobs, models,
//!   accounts and sessions, keys, settings, shapes, review), with the group-commit writer
//!   ([`store::ingest`]), start-up reconciliation, the disk watermark and the circuit
//!   breaker, and one contract suite every backend must pass. **The seams are
//!   synchronous**, called from blocking threads (`spawn_blocking`, the writer thread, the
//!   job threads): sled and rusqlite block anyway, the hot write path is one thread that
//!   batches many requests into one sync, and sync traits stay object-safe; a PostgreSQL
//!   backend fits them with the synchronous `postgres` crate and a pool.
//! - [`ml`]: rasterizing (tiny-skia), augmenting, the CNN, training with checkpoints, model
//!   artifacts and the in-memory classifier (tch). Depends on nothing above it but
//!   [`device`].
//! - [`device`]: `--device auto|cpu|cuda[:N]`, and libtorch's CUDA backend loaded at start.
//! - [`domain`]: pure types and validation (drawings, typed ids, shape names, quality) and
//!   the compact binary record a drawing is stored as. No I/O.
//!
//! Around them: [`config`] (the validated configuration, no globals), [`data_dir`] (every
//! path of the data directory, named once), [`control`] (the control file through which
//! commands on this machine reach the running server), [`fault`] (planned crashes and write
//! failures for the fault tests), [`telemetry`] (the Prometheus metrics at `/metrics`),
//! [`lan`] (the addresses players can reach), [`malloc`] (the C allocator's mmap threshold,
//! fixed so that training's peak memory does not ratchet up with the number of batches) and
//! [`time`].
//!
//! # How a drawing flows
//! `POST /api/v1/drawings` → `http::drawings::submit` extracts the player (cookie), the
//! client address, the `Idempotency-Key` and the JSON body → `service::submit` checks the
//! rate limits and the player's block, parses the body into a [`domain::Drawing`] (bad
//! input ends here with a 4xx and changes nothing), checks the shape is being collected
//! and, without asking any model, hands a `Submission` to `store::Ingest::submit` → the group-commit thread batches it with its neighbours, writes
//! and syncs the stroke records in sled, then inserts the rows in one SQLite transaction
//! (written, not synced: a power cut that undoes it is repaired at start from the synced
//! records) → only then does the handler answer `201`. Two guards stand before
//! the writer: below the free-space watermark (`store::disk`) a submission gets `507` at
//! once; after repeated storage failures the circuit breaker (`store::breaker`) answers
//! `503` with `Retry-After`. After the `201` the drawing goes to the quality scorer's
//! thread (`service::quality`), which asks the active model what it sees (Quick, Draw!'s
//! `recognized`, kept on the row), scores it, and flags it below the threshold, in a later
//! batch; a drawing that missed the scorer's queue, or a crash, is found by its catch-up
//! walk over unscored rows. After a crash or a power cut, `store::reconcile` rebuilds rows
//! for records that have none.
//!
//! # How a job flows
//! `POST /api/v1/admin/training-jobs` (or `/backup`, `/import`, `/quality/rescore`) → the
//! handler parses the configuration → `jobs::Scheduler::enqueue` commits the job `queued`
//! in SQLite, then wakes the scheduler thread → `202` with the job id. The scheduler's tick
//! (inside `catch_unwind`) takes the oldest runnable job of each kind with none running and
//! runs it on a thread of its own: a training job snapshots its dataset, trains on the
//! `--device` with a checkpoint after every epoch, writes the model artifact and registers
//! the version. Progress goes to the job row and to a broadcast channel that
//! `GET /jobs/{id}/events` streams (Server-Sent Events) and the CLI draws as a bar. Cancel
//! goes through `Scheduler::cancel`; a graceful stop requeues the job without charging an
//! attempt; after a crash the job is found `running` at the next start, requeued, and
//! resumes from its checkpoint. In cluster mode any process with a queue (a replica, or a
//! `doodlebox worker` that serves nothing) claims jobs with `FOR UPDATE SKIP LOCKED`, stamps
//! a heartbeat on those it runs, and takes over a job whose heartbeat went stale.
//!
//! # How a classify request flows
//! `POST /api/v1/classify` → `http::caller::Caller` authenticates an API key (or the game's
//! player session) and charges its rate limit → `domain::classify_input` parses Doodlebox
//! or Quick, Draw! strokes → `service::serving::ModelServer::classify` sends them to the
//! one inference thread that owns the active model, which micro-batches waiting requests
//! into one forward pass (`ml::classifier`: rasterize, then the CNN, from memory) → the
//! answer names the shape, the confidence, the top guesses and the model version.
//! Activating a model (`service::models`) loads and verifies it first, switches the
//! database in one transaction, then swaps it into the inference thread.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod data_dir;
pub mod device;
pub mod domain;
pub mod fault;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod http;
pub mod jobs;
pub mod lan;
pub mod malloc;
pub mod ml;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod transfer;
