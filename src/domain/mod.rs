//! Pure types and validation, no I/O: a drawing as players submit it, the ids that name
//! things, shape names, the compact binary record a drawing is stored as, a drawing's
//! quality score and the weighting that chooses prompts.
//!
//! Untrusted input enters here and leaves as a validated type with private fields
//! (`Drawing::parse`, `ShapeName::parse`, `IdempotencyKey::parse`), so the layers above
//! never see a drawing that breaks an invariant.

pub mod admin;
pub mod classify_input;
pub mod drawing;
pub mod ids;
pub mod player;
pub mod prompt;
pub mod quality;
pub mod record;
pub mod review;
pub mod shape;
pub mod text;

pub use drawing::{Canvas, Device, Drawing, DrawingError, Point, Stroke};
pub use ids::{
    AdminId, ApiKeyId, DrawingId, IdError, IdempotencyKey, ModelVersion, PlayerId, ShapeId,
};
pub use quality::{Agreement, QualityError, QualityScore, QualitySettings};
pub use record::{Judgement, Record, RecordError, Source};
pub use shape::{ShapeError, ShapeName};
