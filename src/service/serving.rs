//! Serving the active model from memory.
//!
//! A tch model is `Send` but not `Sync`, so one inference thread owns it; requests arrive
//! over a channel and are answered over a oneshot, which keeps the async runtime free.
//! Activation loads and verifies the new model first (a broken one is refused and the old
//! one keeps serving), switches the database in one transaction, then hands the model to the
//! inference thread: requests queued before the swap get the old model, later ones the new,
//! and every answer names the version that produced it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::oneshot;

use crate::ml::artifact::ArtifactError;
use crate::ml::classifier::Classifier;
use crate::service::artifacts::{Artifacts, LoadError};
use crate::store::{StoreError, Stores};

/// Classify requests waiting for the inference thread; beyond this, callers get `Busy`.
const QUEUE_CAPACITY: usize = 1024;
/// Guesses returned per drawing.
pub const TOP_K: usize = 3;

/// One guess.
#[derive(Debug, Clone, Serialize)]
pub struct Guess {
    pub shape: String,
    pub confidence: f32,
}

/// The answer for one drawing.
#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    pub shape: String,
    pub confidence: f32,
    /// The model declines to commit: its best calibrated probability is below its threshold
    /// (see `ml::classifier`). `shape` is still the most likely class.
    pub unsure: bool,
    pub top_k: Vec<Guess>,
    pub model_version: String,
    pub latency_ms: f64,
    /// Every class with its probability, most likely first (for quality scoring; not sent).
    #[serde(skip)]
    pub ranked: Vec<(String, f32)>,
}

impl Classification {
    /// The probability the model gave `shape`; `None` when the model does not know it.
    pub fn probability_of(&self, shape: &str) -> Option<f32> {
        self.ranked
            .iter()
            .find(|(s, _)| s == shape)
            .map(|(_, p)| *p)
    }
}

#[derive(Debug, Error)]
pub enum ServingError {
    #[error("no model is active yet; train one and activate it")]
    NoModel,
    #[error("the classifier is busy; retry shortly")]
    Busy,
    #[error("the drawing cannot be classified: {0}")]
    Drawing(String),
    #[error("model {0} does not exist")]
    UnknownVersion(String),
    #[error("model {version} cannot be served: {source}")]
    InvalidModel {
        version: String,
        source: ArtifactError,
    },
    #[error("there is no previously active model to roll back to")]
    NothingToRollBackTo,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the inference thread stopped")]
    Stopped,
}

type Strokes = Vec<Vec<[f32; 2]>>;

enum Message {
    Classify(
        Vec<Strokes>,
        oneshot::Sender<Result<Vec<Classification>, ServingError>>,
    ),
    Swap(Option<(String, Box<Classifier>)>),
}

/// Called with the version after each successful activation (rollback included).
pub type ActivationListener = Box<dyn Fn(&str) + Send + Sync>;

/// The handle the HTTP layer holds. Cloning it is cheap; all clones feed one thread.
#[derive(Clone)]
pub struct ModelServer {
    sender: Sender<Message>,
    stores: Arc<Stores>,
    /// Where model files are on this host (fetched from the database in cluster mode).
    artifacts: Artifacts,
    /// The version the inference thread was last given (for `/readyz`).
    serving: Arc<std::sync::Mutex<Option<String>>>,
    /// Who wants to hear of activations (the quality rescore, the prompt weighting).
    listeners: Arc<std::sync::Mutex<Vec<ActivationListener>>>,
}

/// Activates a model version (blocking); see [`ModelServer::activator`].
pub type Activator = Arc<dyn Fn(&str) -> Result<(), ServingError> + Send + Sync>;

impl ModelServer {
    /// Starts the inference thread (batching up to `max_micro_batch` waiting drawings into
    /// one forward pass) with the model the database names as active, if it
    /// loads; a model that no longer verifies is logged and not served. Model files this
    /// host lacks are fetched into `models_dir` (the data directory's models folder).
    pub fn start(
        stores: Arc<Stores>,
        models_dir: PathBuf,
        max_micro_batch: usize,
    ) -> Result<Self, StoreError> {
        let (sender, receiver) = bounded(QUEUE_CAPACITY);
        let max_batch = max_micro_batch.max(1);
        std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || inference_loop(&receiver, max_batch))?;
        let server = Self {
            sender,
            artifacts: Artifacts::new(stores.models.clone(), models_dir),
            stores,
            serving: Arc::default(),
            listeners: Arc::default(),
        };
        if let Some(active) = server.stores.models.active_model()? {
            match server.artifacts.load(&active) {
                Ok(classifier) => server.swap(Some((active.version.clone(), classifier))),
                Err(e) => {
                    tracing::error!(version = %active.version, error = %e, "the active model does not load; serving none")
                }
            }
        }
        Ok(server)
    }

    /// Where model files are on this host.
    pub fn artifacts(&self) -> &Artifacts {
        &self.artifacts
    }

    /// The version being served, if any.
    pub fn serving_version(&self) -> Option<String> {
        self.serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn swap(&self, model: Option<(String, Classifier)>) {
        *self.serving.lock().unwrap_or_else(|p| p.into_inner()) =
            model.as_ref().map(|(v, _)| v.clone());
        let _ = self
            .sender
            .send(Message::Swap(model.map(|(v, c)| (v, Box::new(c)))));
    }

    /// Classifies drawings with the active model.
    pub async fn classify(
        &self,
        drawings: Vec<Strokes>,
    ) -> Result<Vec<Classification>, ServingError> {
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send(Message::Classify(drawings, reply)) {
            Ok(()) => answer.await.unwrap_or(Err(ServingError::Stopped)),
            Err(TrySendError::Full(_)) => Err(ServingError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(ServingError::Stopped),
        }
    }

    /// [`ModelServer::classify`] from a thread that may block (not the async runtime): waits
    /// for room in the queue instead of answering `Busy`, so a background walk feeds the
    /// inference thread one request at a time, behind the live ones already waiting.
    pub fn classify_blocking(
        &self,
        drawings: Vec<Strokes>,
    ) -> Result<Vec<Classification>, ServingError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message::Classify(drawings, reply))
            .map_err(|_| ServingError::Stopped)?;
        answer.blocking_recv().unwrap_or(Err(ServingError::Stopped))
    }

    /// Calls `listener` with the version after every later successful activation.
    pub fn on_activate(&self, listener: ActivationListener) {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    /// Verifies and loads `version`, records it as active, then serves it. Blocking.
    pub fn activate(&self, version: &str) -> Result<(), ServingError> {
        self.activate_as(version, Activation::New)
    }

    /// [`ModelServer::activate`], recorded as a new activation or as a rollback.
    fn activate_as(&self, version: &str, kind: Activation) -> Result<(), ServingError> {
        let classifier = verify_and_record(&self.artifacts, version, kind)?;
        self.swap(Some((version.to_owned(), classifier)));
        tracing::info!(%version, "model activated");
        for listener in self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            listener(version);
        }
        Ok(())
    }

    /// A handle that activates versions, for background tasks.
    pub fn activator(&self) -> Activator {
        let server = self.clone();
        Arc::new(move |version| server.activate(version))
    }

    /// Activates the model before the current one in the activation history (a second
    /// rollback goes further back, never toggling). Blocking. Returns its version.
    pub fn rollback(&self) -> Result<String, ServingError> {
        let previous = self
            .stores
            .models
            .previous_model()?
            .ok_or(ServingError::NothingToRollBackTo)?;
        self.activate_as(&previous.version, Activation::Rollback)?;
        Ok(previous.version)
    }
}

/// How an activation enters the activation history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// A new activation, on top of the history.
    New,
    /// A rollback to the model [`crate::store::ModelStore::previous_model`] names: steps back through the
    /// history instead of adding to it.
    Rollback,
}

/// Loads `version`'s artifact (which verifies it) and, when it loads, records it as the one
/// active model; answers the loaded model. Blocking. Shared by a running server's activation
/// and the registry's activation on a stopped data directory, so both refuse the same models.
pub fn verify_and_record(
    artifacts: &Artifacts,
    version: &str,
    kind: Activation,
) -> Result<Classifier, ServingError> {
    let models = artifacts.store();
    let row = models
        .model(version)?
        .ok_or_else(|| ServingError::UnknownVersion(version.into()))?;
    let classifier = artifacts.load(&row).map_err(|e| match e {
        LoadError::Store(e) => ServingError::Store(e),
        LoadError::Artifact(source) => ServingError::InvalidModel {
            version: version.into(),
            source,
        },
    })?;
    let recorded = match kind {
        Activation::New => models.activate_model(version)?,
        Activation::Rollback => models.roll_back_model(version)?,
    };
    if !recorded {
        return Err(ServingError::UnknownVersion(version.into()));
    }
    Ok(classifier)
}

type Reply = oneshot::Sender<Result<Vec<Classification>, ServingError>>;

fn inference_loop(receiver: &Receiver<Message>, max_batch: usize) {
    let mut active: Option<(String, Box<Classifier>)> = None;
    let mut pending_swap = None;
    while let Ok(message) = receiver.recv() {
        let (drawings, reply) = match message {
            Message::Swap(model) => {
                active = model;
                continue;
            }
            Message::Classify(drawings, reply) => (drawings, reply),
        };
        // Micro-batching: whatever else is already waiting joins this forward pass, up to
        // `max_batch` drawings. A swap ends the batch, so requests sent before it get the old
        // model and later ones the new.
        let mut batch = vec![(drawings, reply)];
        let mut total: usize = batch[0].0.len();
        while total < max_batch {
            match receiver.try_recv() {
                Ok(Message::Classify(d, r)) => {
                    total += d.len();
                    batch.push((d, r));
                }
                Ok(Message::Swap(model)) => {
                    pending_swap = Some(model);
                    break;
                }
                Err(_) => break,
            }
        }
        run_batch(active.as_ref(), batch);
        if let Some(model) = pending_swap.take() {
            active = model;
        }
    }
}

fn run_batch(active: Option<&(String, Box<Classifier>)>, batch: Vec<(Vec<Strokes>, Reply)>) {
    let started = Instant::now();
    let Some((version, classifier)) = active else {
        for (_, reply) in batch {
            let _ = reply.send(Err(ServingError::NoModel));
        }
        return;
    };
    let all: Vec<&Strokes> = batch.iter().flat_map(|(d, _)| d.iter()).collect();
    // A panic inside libtorch must not take the inference thread (and so all guessing) down.
    let ranked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        classifier.classify_batch(&all)
    }))
    .unwrap_or_else(|_| Err(tch::TchError::Torch("inference panicked".into()).into()));
    match ranked {
        Ok(mut ranked) => {
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            for (drawings, reply) in batch.into_iter().rev() {
                let mine = ranked.split_off(ranked.len() - drawings.len());
                let answers = mine
                    .into_iter()
                    .map(|r| {
                        let unsure = classifier.is_unsure(&r);
                        answer(r, unsure, version, latency_ms)
                    })
                    .collect();
                let _ = reply.send(Ok(answers));
            }
        }
        // One bad drawing fails a whole forward pass: answer each request on its own, so
        // only its sender gets the error.
        Err(_) if batch.len() > 1 => {
            for one in batch {
                run_batch(active, vec![one]);
            }
        }
        Err(e) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(ServingError::Drawing(e.to_string())));
            }
        }
    }
}

fn answer(
    ranked: Vec<(String, f32)>,
    unsure: bool,
    version: &str,
    latency_ms: f64,
) -> Classification {
    let top_k: Vec<Guess> = ranked
        .iter()
        .take(TOP_K)
        .map(|(shape, confidence)| Guess {
            shape: shape.clone(),
            confidence: *confidence,
        })
        .collect();
    let best = top_k.first().cloned().unwrap_or(Guess {
        shape: String::new(),
        confidence: 0.0,
    });
    Classification {
        shape: best.shape,
        confidence: best.confidence,
        unsure,
        top_k,
        model_version: version.to_owned(),
        latency_ms,
        ranked,
    }
}
