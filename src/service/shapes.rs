//! Managing the shapes the game collects, the one home of the admin's shape list: every
//! shape with its drawing counts and the active model's accuracy on it, adding one, editing
//! one and retiring one. A retired shape keeps its drawings, is never prompted and refuses
//! new submissions (see [`crate::service::submit`]). Players see the collected shapes and
//! their next prompt through here too.
//!
//! Synchronous, like every store-backed service: a handler runs these on a blocking thread.

use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::domain::shape::{parse_description, parse_difficulty};
use crate::domain::{DrawingId, PlayerId, ShapeError, ShapeName};
use crate::service::prompter::{per_class_accuracy, Prompter};
use crate::store::shapes::ShapeChange;
use crate::store::{ShapeRow, StoreError, Stores};

/// Why a shape could not be added or changed. Nothing changes whatever the reason.
#[derive(Debug, Error)]
pub enum ShapesError {
    /// A name, description or difficulty breaks the shape rules.
    #[error(transparent)]
    Invalid(#[from] ShapeError),
    #[error("send at least one of description, difficulty and active")]
    NothingToChange,
    #[error("a shape named `{0}` exists already (PATCH it to change or reactivate it)")]
    Exists(ShapeName),
    #[error("shape not found")]
    NotFound,
    /// Every shape is retired: there is nothing to prompt a player with.
    #[error("no shape is being collected right now")]
    NoneCollected,
    /// The drawing chosen as a shape's picture does not exist.
    #[error("{0}")]
    PictureNotFound(String),
    /// The drawing chosen as a shape's picture cannot be one: deleted or of another shape.
    #[error("{0}")]
    BadPicture(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One shape as the admin list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapeView {
    pub name: String,
    pub description: String,
    pub difficulty: i64,
    pub active: bool,
    /// All its drawings, soft-deleted ones included.
    pub drawings: u64,
    /// Live and not flagged: what training takes.
    pub good_drawings: u64,
    pub flagged: u64,
    pub deleted: u64,
    /// The active model's recall on it; `None` without a model or for a shape it does not
    /// know.
    pub accuracy: Option<f64>,
    /// The drawing an admin chose as its picture (its icon in the game); `None`: its
    /// highest-quality drawing is drawn, unless the game has a built-in icon for it.
    pub picture: Option<String>,
}

/// Every shape, and which model the accuracies are of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapeList {
    pub items: Vec<ShapeView>,
    pub model_version: Option<String>,
}

/// A checked `PATCH`: at least one field, each valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeEdit(ShapeChange);

impl ShapeEdit {
    /// Checks an edit as a client sent it; `None` leaves a field as it is.
    pub fn parse(
        description: Option<&str>,
        difficulty: Option<i64>,
        active: Option<bool>,
    ) -> Result<Self, ShapesError> {
        let change = ShapeChange {
            description: description.map(parse_description).transpose()?,
            difficulty: difficulty.map(parse_difficulty).transpose()?,
            active,
        };
        if change == ShapeChange::default() {
            return Err(ShapesError::NothingToChange);
        }
        Ok(Self(change))
    }

    /// Retiring: inactive, nothing else changed.
    pub fn retire() -> Self {
        Self(ShapeChange {
            active: Some(false),
            ..ShapeChange::default()
        })
    }
}

/// The shape admin over the stores; every change makes the prompter weigh shapes afresh.
pub struct Shapes {
    pub stores: Arc<Stores>,
    pub prompter: Arc<Prompter>,
    /// Tells open portal screens that the shape list changed.
    pub events: super::events::Events,
}

impl Shapes {
    /// The shapes being collected (active), as players see them.
    pub fn collected(&self) -> Result<Vec<ShapeRow>, ShapesError> {
        let shapes = self.stores.metadata.shapes()?;
        Ok(shapes.iter().filter(|s| s.active).cloned().collect())
    }

    /// The next shape to prompt `player` with (see [`Prompter::prompt`]).
    pub fn prompt(&self, player: PlayerId) -> Result<ShapeRow, ShapesError> {
        self.prompter
            .prompt(player)?
            .ok_or(ShapesError::NoneCollected)
    }

    /// Every shape, retired ones included.
    pub fn list(&self) -> Result<ShapeList, ShapesError> {
        let (model_version, items) = self.views(None)?;
        Ok(ShapeList {
            items,
            model_version,
        })
    }

    /// Adds an active shape; refused when the name is taken (retired shapes included).
    pub fn add(
        &self,
        name: &ShapeName,
        description: &str,
        difficulty: i64,
    ) -> Result<ShapeView, ShapesError> {
        let added = self.stores.shapes.add_shape(name, description, difficulty);
        self.prompter.forget();
        let shape = added?.ok_or_else(|| ShapesError::Exists(name.clone()))?;
        self.announce(name);
        self.view(&shape)
    }

    /// Applies an edit to the shape called `name`.
    pub fn change(&self, name: &ShapeName, edit: &ShapeEdit) -> Result<ShapeView, ShapesError> {
        let changed = self.stores.shapes.change_shape(name, &edit.0);
        self.prompter.forget();
        let shape = changed?.ok_or(ShapesError::NotFound)?;
        self.announce(name);
        self.view(&shape)
    }

    /// Makes drawing `picture` the picture of the shape called `name` (its icon in the
    /// game, over any built-in one), or with `None` goes back to the automatic picture.
    /// The drawing must be a live drawing of that shape.
    pub fn set_picture(
        &self,
        name: &ShapeName,
        picture: Option<DrawingId>,
    ) -> Result<ShapeView, ShapesError> {
        if self.stores.metadata.shape_by_name(name)?.is_none() {
            return Err(ShapesError::NotFound);
        }
        if let Some(id) = picture {
            let item = self.stores.review.review_item(id)?.ok_or_else(|| {
                ShapesError::PictureNotFound(format!("there is no drawing with id {id}"))
            })?;
            if item.deleted_at.is_some() {
                return Err(ShapesError::BadPicture(format!(
                    "drawing {id} is deleted; restore it first"
                )));
            }
            if item.shape != name.as_str() {
                return Err(ShapesError::BadPicture(format!(
                    "drawing {id} is a {}, not a {name}",
                    item.shape
                )));
            }
        }
        let shape = self
            .stores
            .shapes
            .set_shape_picture(name, picture)?
            .ok_or(ShapesError::NotFound)?;
        self.announce(name);
        self.view(&shape)
    }

    fn announce(&self, name: &ShapeName) {
        self.events.publish(super::events::AdminEvent::Shapes {
            name: name.as_str().to_owned(),
        });
    }

    fn view(&self, shape: &ShapeRow) -> Result<ShapeView, ShapesError> {
        let (_, mut views) = self.views(Some(shape))?;
        views.pop().ok_or(ShapesError::NotFound)
    }

    /// The admin views of every shape, or of `only`, with the active model's version.
    fn views(
        &self,
        only: Option<&ShapeRow>,
    ) -> Result<(Option<String>, Vec<ShapeView>), ShapesError> {
        let counts = self.stores.shapes.shape_counts()?;
        let model = self.stores.models.active_model()?;
        let accuracy = model
            .as_ref()
            .map(|m| per_class_accuracy(&m.manifest))
            .unwrap_or_default();
        let shapes = match only {
            Some(shape) => Arc::new(vec![shape.clone()]),
            None => self.stores.metadata.shapes()?,
        };
        let views = shapes
            .iter()
            .map(|s| {
                let c = counts.get(&s.id).copied().unwrap_or_default();
                ShapeView {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    difficulty: s.difficulty,
                    active: s.active,
                    drawings: c.drawings,
                    good_drawings: c.good,
                    flagged: c.flagged,
                    deleted: c.deleted,
                    accuracy: accuracy.get(&s.name).copied(),
                    picture: s.picture.clone(),
                }
            })
            .collect();
        Ok((model.map(|m| m.version), views))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes() -> (tempfile::TempDir, Shapes) {
        let dir = tempfile::tempdir().unwrap();
        let stores = Arc::new(Stores::open(dir.path()).unwrap());
        let prompter = Arc::new(Prompter::new(stores.clone()));
        (
            dir,
            Shapes {
                stores,
                prompter,
                events: crate::service::events::Events::new(),
            },
        )
    }

    #[test]
    fn a_second_shape_with_a_taken_name_is_refused_and_the_first_stays() {
        let (_dir, shapes) = shapes();
        let name = ShapeName::parse("kite").unwrap();
        let added = shapes.add(&name, "a kite on a string", 2).unwrap();
        assert!(added.active);
        assert_eq!(added.drawings, 0);
        assert!(matches!(
            shapes.add(&name, "another", 3),
            Err(ShapesError::Exists(n)) if n == name
        ));
        let listed = shapes.list().unwrap();
        let kite: Vec<_> = listed.items.iter().filter(|s| s.name == "kite").collect();
        assert_eq!(kite.len(), 1);
        assert_eq!(kite[0].difficulty, 2);
    }

    #[test]
    fn an_empty_edit_is_refused_before_any_lookup() {
        assert!(matches!(
            ShapeEdit::parse(None, None, None),
            Err(ShapesError::NothingToChange)
        ));
        assert!(matches!(
            ShapeEdit::parse(None, Some(9), None),
            Err(ShapesError::Invalid(_))
        ));
    }

    #[test]
    fn retiring_keeps_the_shape_listed_as_inactive_and_an_unknown_one_is_not_found() {
        let (_dir, shapes) = shapes();
        let name = ShapeName::parse("kite").unwrap();
        shapes.add(&name, "a kite on a string", 2).unwrap();
        let retired = shapes.change(&name, &ShapeEdit::retire()).unwrap();
        assert!(!retired.active);
        assert_eq!(retired.description, "a kite on a string");
        let unknown = ShapeName::parse("zeppelin").unwrap();
        assert!(matches!(
            shapes.change(&unknown, &ShapeEdit::retire()),
            Err(ShapesError::NotFound)
        ));
    }

    #[test]
    fn with_every_shape_retired_nothing_is_collected_and_no_prompt_is_offered() {
        let (_dir, shapes) = shapes();
        assert!(!shapes.collected().unwrap().is_empty());
        assert!(shapes.prompt(PlayerId::random()).is_ok());
        for shape in shapes.collected().unwrap() {
            let name = ShapeName::parse(&shape.name).unwrap();
            shapes.change(&name, &ShapeEdit::retire()).unwrap();
        }
        assert!(shapes.collected().unwrap().is_empty());
        assert!(matches!(
            shapes.prompt(PlayerId::random()),
            Err(ShapesError::NoneCollected)
        ));
    }
}
