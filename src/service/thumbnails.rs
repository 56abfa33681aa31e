//! Thumbnails for the review screens: a drawing's strokes rendered with tiny-skia into a
//! square PNG, anti-aliased, in the drawing's own colours and widths on white, and a
//! byte-bounded LRU cache of the PNGs by (drawing, size). Strokes never change, so a cached
//! thumbnail is never invalidated; it is only evicted when the cache is full.
//!
//! Unlike the ML rasterizer (`ml::raster`, white on black, normalised to the bounding box),
//! this one keeps the canvas the player drew on, so a thumbnail looks like what they saw.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tiny_skia::{
    Color, FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Stroke, Transform,
};

use crate::domain::{Drawing, DrawingId};

/// Smallest thumbnail side, in pixels.
pub const MIN_SIZE: u32 = 32;
/// Largest thumbnail side, in pixels.
pub const MAX_SIZE: u32 = 512;
/// Side when the client names none.
pub const DEFAULT_SIZE: u32 = 96;
/// Bytes of PNGs the cache keeps (a 96 px thumbnail is 1 to 3 KB).
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Stroke width when the drawing gives none, in canvas units.
const DEFAULT_STROKE_WIDTH: f32 = 3.0;
/// Thinnest line drawn, in thumbnail pixels, so small thumbnails still show every stroke.
const MIN_LINE_PX: f32 = 1.0;
/// Empty border on each side, as a fraction of the side.
const MARGIN_FRACTION: f32 = 0.04;

/// Why a thumbnail could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThumbnailError {
    #[error("size {0} is outside {MIN_SIZE}..={MAX_SIZE}")]
    SizeOutOfRange(u32),
    #[error("could not encode the PNG: {0}")]
    Encode(String),
}

/// Renders `drawing` as a `size`×`size` PNG. Blocking (CPU work): call it off the runtime.
pub fn render_png(drawing: &Drawing, size: u32) -> Result<Vec<u8>, ThumbnailError> {
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        return Err(ThumbnailError::SizeOutOfRange(size));
    }
    // The size was just checked, so the pixmap is neither empty nor too large.
    let mut pixmap = Pixmap::new(size, size).expect("a checked size makes a valid pixmap");
    pixmap.fill(Color::WHITE);
    let canvas = drawing.canvas();
    let side = size as f32;
    let margin = side * MARGIN_FRACTION;
    let (w, h) = (canvas.width.max(1) as f32, canvas.height.max(1) as f32);
    let scale = ((side - 2.0 * margin) / w).min((side - 2.0 * margin) / h);
    let (dx, dy) = ((side - w * scale) / 2.0, (side - h * scale) / 2.0);
    let transform = Transform::from_row(scale, 0.0, 0.0, scale, dx, dy);
    for stroke in drawing.strokes() {
        let mut paint = Paint {
            anti_alias: true,
            ..Paint::default()
        };
        paint.set_color(parse_color(stroke.color.as_deref()));
        let width = stroke
            .width
            .map_or(DEFAULT_STROKE_WIDTH, |w| w as f32)
            .max(MIN_LINE_PX / scale);
        let points = &stroke.points;
        let Some(first) = points.first() else {
            continue;
        };
        if points.iter().all(|p| p.x == first.x && p.y == first.y) {
            // A tap: a round dot as wide as the stroke.
            let (x, y) = (first.x as f32, first.y as f32);
            if let Some(dot) = PathBuilder::from_circle(x, y, width / 2.0) {
                pixmap.fill_path(&dot, &paint, FillRule::Winding, transform, None);
            }
            continue;
        }
        let mut path = PathBuilder::new();
        path.move_to(first.x as f32, first.y as f32);
        for p in &points[1..] {
            path.line_to(p.x as f32, p.y as f32);
        }
        if let Some(path) = path.finish() {
            let line = Stroke {
                width,
                line_cap: LineCap::Round,
                line_join: LineJoin::Round,
                ..Stroke::default()
            };
            pixmap.stroke_path(&path, &paint, &line, transform, None);
        }
    }
    pixmap
        .encode_png()
        .map_err(|e| ThumbnailError::Encode(e.to_string()))
}

/// `#rrggbb` or `#rgb`; anything else (or none) is black.
fn parse_color(text: Option<&str>) -> Color {
    let hex = text.and_then(|t| t.strip_prefix('#')).unwrap_or("");
    let digits: Option<Vec<u8>> = match hex.len() {
        6 => (0..3)
            .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok())
            .collect(),
        3 => hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| (d * 17) as u8))
            .collect(),
        _ => None,
    };
    match digits.as_deref() {
        Some([r, g, b]) => Color::from_rgba8(*r, *g, *b, 255),
        _ => Color::BLACK,
    }
}

/// PNG thumbnails by (drawing, size), least recently used evicted first once they take more
/// than the byte budget.
pub struct ThumbnailCache {
    inner: Mutex<CacheInner>,
    budget: usize,
}

/// A cached thumbnail's key: the drawing and the side in pixels.
type Key = (DrawingId, u32);

#[derive(Default)]
struct CacheInner {
    /// Each thumbnail and the tick of its last use.
    entries: HashMap<Key, (Arc<Vec<u8>>, u64)>,
    /// Ticks of last use, oldest first: the eviction order.
    by_use: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

impl ThumbnailCache {
    /// A cache that keeps at most `budget` bytes of PNGs.
    pub fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::new(CacheInner::default()),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // A panic while holding the lock leaves maps that are still consistent enough to
        // serve (at worst a stale byte count); a thumbnail cache need not stop the server.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached PNG, marked as just used.
    pub fn get(&self, id: DrawingId, size: u32) -> Option<Arc<Vec<u8>>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let (png, last) = inner.entries.get_mut(&(id, size))?;
        let (png, old) = (png.clone(), std::mem::replace(last, tick));
        inner.by_use.remove(&old);
        inner.by_use.insert(tick, (id, size));
        Some(png)
    }

    /// Keeps a PNG, evicting the least recently used ones beyond the budget.
    pub fn insert(&self, id: DrawingId, size: u32, png: Arc<Vec<u8>>) {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner.bytes += png.len();
        if let Some((old, last)) = inner.entries.insert((id, size), (png, tick)) {
            inner.bytes -= old.len();
            inner.by_use.remove(&last);
        }
        inner.by_use.insert(tick, (id, size));
        while inner.bytes > self.budget {
            let Some((_, key)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some((old, _)) = inner.entries.remove(&key) {
                inner.bytes -= old.len();
            }
        }
    }

    /// Thumbnails cached now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> DrawingId {
        DrawingId::from_u128(n)
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_thumbnail_first() {
        let cache = ThumbnailCache::new(30);
        cache.insert(id(1), 96, Arc::new(vec![0; 10]));
        cache.insert(id(2), 96, Arc::new(vec![0; 10]));
        cache.insert(id(3), 96, Arc::new(vec![0; 10]));
        assert!(cache.get(id(1), 96).is_some()); // 2 is now the oldest
        cache.insert(id(4), 96, Arc::new(vec![0; 10]));
        assert!(cache.get(id(2), 96).is_none());
        for n in [1, 3, 4] {
            assert!(cache.get(id(n), 96).is_some(), "{n} evicted");
        }
        assert!(cache.get(id(1), 128).is_none(), "sizes are cached apart");
    }

    #[test]
    fn colours_parse_from_six_or_three_hex_digits_and_default_to_black() {
        assert_eq!(
            parse_color(Some("#ff8800")),
            Color::from_rgba8(255, 136, 0, 255)
        );
        assert_eq!(
            parse_color(Some("#f80")),
            Color::from_rgba8(255, 136, 0, 255)
        );
        assert_eq!(parse_color(Some("red")), Color::BLACK);
        assert_eq!(parse_color(None), Color::BLACK);
    }
}
