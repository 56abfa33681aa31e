//! Pictures of shapes, in the style of `web/icons/` (64×64 view box, 4-unit round strokes):
//! the drawing an admin chose as a shape's picture wins; else a shape with a built-in icon
//! keeps it; else its highest-quality unflagged drawing is drawn, so the game shows a new
//! shape's picture instead of a generic pencil.

use crate::domain::review::{DrawingFilter, Page};
use crate::domain::{Drawing, ShapeName};

use super::review::{Review, ReviewError};

/// Drawings looked at to pick the best one (the newest this many of the shape).
const CANDIDATES: u32 = 200;
/// The icons' view box side.
const SIDE: f64 = 64.0;
/// Blank space around the drawing inside the view box.
const MARGIN: f64 = 8.0;

/// Where a shape's picture comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ShapePicture {
    /// A drawing: the admin's choice or the best one, as SVG.
    Drawn(String),
    /// The game's own icon for the shape.
    BuiltIn,
    /// Nothing yet: no built-in icon and no drawing.
    None,
}

/// The picture of `shape`, which has a built-in icon when `built_in` says so.
pub fn shape_picture(
    review: &Review,
    shape: &ShapeName,
    built_in: bool,
) -> Result<ShapePicture, ReviewError> {
    if let Some(svg) = chosen_picture(review, shape)? {
        return Ok(ShapePicture::Drawn(svg));
    }
    if built_in {
        return Ok(ShapePicture::BuiltIn);
    }
    Ok(match best_picture(review, shape)? {
        Some(svg) => ShapePicture::Drawn(svg),
        None => ShapePicture::None,
    })
}

/// The drawing an admin chose for `shape`, while it is live (a purged or deleted choice
/// falls back to the automatic picture).
fn chosen_picture(review: &Review, shape: &ShapeName) -> Result<Option<String>, ReviewError> {
    let Some(row) = review.stores.metadata.shape_by_name(shape)? else {
        return Ok(None);
    };
    let Some(id) = row.picture.and_then(|id| id.parse().ok()) else {
        return Ok(None);
    };
    match review.detail(id) {
        Ok((item, drawing)) if item.deleted_at.is_none() => Ok(Some(svg(&drawing))),
        Ok(_) | Err(ReviewError::DrawingNotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The picture of `shape`: its best drawing as SVG, or `None` while it has no drawing.
fn best_picture(review: &Review, shape: &ShapeName) -> Result<Option<String>, ReviewError> {
    // A parsed shape name always makes a valid filter; were it ever refused, no picture.
    let Ok(filter) = DrawingFilter::parse([("shape", shape.as_str()), ("flagged", "false")]) else {
        return Ok(None);
    };
    let listing = review.list(&filter, Page::new(CANDIDATES, None))?;
    let best = listing.items.iter().max_by(|a, b| {
        let (a, b) = (
            a.quality_score.unwrap_or(0.0),
            b.quality_score.unwrap_or(0.0),
        );
        a.total_cmp(&b)
    });
    let Some(best) = best else {
        return Ok(None);
    };
    let (_, drawing) = review.detail(best.id)?;
    Ok(Some(svg(&drawing)))
}

/// A drawing as a line-drawing SVG, scaled and centred in the icons' view box.
pub fn svg(drawing: &Drawing) -> String {
    let points = drawing.strokes().iter().flat_map(|s| s.points.iter());
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in points {
        min_x = min_x.min(p.x);
        min_y = min_y.min(p.y);
        max_x = max_x.max(p.x);
        max_y = max_y.max(p.y);
    }
    let extent = (max_x - min_x).max(max_y - min_y).max(1e-9);
    let scale = (SIDE - 2.0 * MARGIN) / extent;
    let (dx, dy) = (
        (SIDE - (max_x - min_x) * scale) / 2.0,
        (SIDE - (max_y - min_y) * scale) / 2.0,
    );
    let mut path = String::new();
    for stroke in drawing.strokes() {
        for (i, p) in stroke.points.iter().enumerate() {
            let (x, y) = ((p.x - min_x) * scale + dx, (p.y - min_y) * scale + dy);
            path.push_str(&format!("{}{x:.1} {y:.1} ", if i == 0 { "M" } else { "L" }));
        }
        if stroke.points.len() == 1 {
            path.push_str("l 0 0 "); // a dot still shows with round caps
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\" fill=\"none\" \
         stroke=\"#1d1d1f\" stroke-width=\"4\" stroke-linecap=\"round\" \
         stroke-linejoin=\"round\">\n  <path d=\"{}\"/>\n</svg>\n",
        path.trim_end()
    )
}
