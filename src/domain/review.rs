//! Which drawings an admin is looking at: the review filter ([`DrawingFilter`]), parsed from
//! query parameters into validated values, and the keyset page ([`Page`], [`Cursor`]) of a
//! listing. Pure: no I/O. The listing, counts and export all take the same filter, so a
//! drawing an admin sees in the review screen is exactly one the export would write.

use std::fmt;

use thiserror::Error;

use super::{DrawingId, PlayerId, ShapeName};

/// Drawings in one page when the client names no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most drawings in one page.
pub const MAX_LIMIT: u32 = 500;

/// The query parameters [`DrawingFilter::parse`] reads; others are left to the caller.
pub const FILTER_PARAMETERS: &[&str] = &[
    "shape",
    "flagged",
    "deleted",
    "reviewed",
    "min_quality",
    "max_quality",
    "player",
    "from",
    "to",
];

/// The query parameters [`Page::parse`] reads.
pub const PAGE_PARAMETERS: &[&str] = &["limit", "cursor"];

/// A query parameter that cannot be used, and why. The API answers it with
/// `422 invalid_filter`, naming the parameter.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("query parameter `{parameter}`: {reason}")]
pub struct FilterError {
    /// The parameter's name as the client sent it.
    pub parameter: String,
    pub reason: String,
}

impl FilterError {
    fn new(parameter: &str, reason: impl Into<String>) -> Self {
        Self {
            parameter: parameter.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Whether soft-deleted drawings are listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeletedFilter {
    /// Only drawings that are not deleted (the default: what the game and training see).
    #[default]
    Exclude,
    /// Only soft-deleted drawings (the bin).
    Only,
    /// Both.
    Any,
}

/// The drawings an admin asks for. Every field narrows the set; the default is every drawing
/// that is not soft-deleted. Fields are private: a filter only comes from [`DrawingFilter::parse`]
/// or the builder methods, so its ranges are always valid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrawingFilter {
    shape: Option<ShapeName>,
    flagged: Option<bool>,
    deleted: DeletedFilter,
    reviewed: Option<bool>,
    min_quality: Option<f64>,
    max_quality: Option<f64>,
    player: Option<PlayerId>,
    /// Inclusive lower bound of `created_at`, ms since the Unix epoch.
    from_ms: Option<u64>,
    /// Exclusive upper bound of `created_at`.
    to_ms: Option<u64>,
}

impl DrawingFilter {
    /// Reads the filter parameters ([`FILTER_PARAMETERS`]) from decoded query pairs; any other
    /// name is ignored so that callers (listing, export) can add their own. A parameter given
    /// twice, or with a value that does not parse, is an error naming it.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FilterError> {
        let mut filter = Self::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in pairs {
            let Some(known) = FILTER_PARAMETERS.iter().find(|p| **p == name) else {
                continue;
            };
            if seen.contains(known) {
                return Err(FilterError::new(name, "given more than once"));
            }
            seen.push(known);
            match name {
                "shape" => {
                    filter.shape = Some(
                        ShapeName::parse(value)
                            .map_err(|e| FilterError::new(name, e.to_string()))?,
                    )
                }
                "flagged" => filter.flagged = Some(parse_bool(name, value)?),
                "reviewed" => filter.reviewed = Some(parse_bool(name, value)?),
                "deleted" => {
                    filter.deleted = match value {
                        "false" => DeletedFilter::Exclude,
                        "true" => DeletedFilter::Only,
                        "any" => DeletedFilter::Any,
                        _ => return Err(FilterError::new(name, "expected false, true or any")),
                    }
                }
                "min_quality" => filter.min_quality = Some(parse_quality(name, value)?),
                "max_quality" => filter.max_quality = Some(parse_quality(name, value)?),
                "player" => {
                    filter.player = Some(PlayerId::parse_cookie(value).ok_or_else(|| {
                        FilterError::new(name, "expected a player id (32 lowercase hex digits)")
                    })?)
                }
                "from" => filter.from_ms = Some(parse_ms(name, value)?),
                "to" => filter.to_ms = Some(parse_ms(name, value)?),
                _ => unreachable!("every name in FILTER_PARAMETERS has an arm"),
            }
        }
        if let (Some(min), Some(max)) = (filter.min_quality, filter.max_quality) {
            if min > max {
                return Err(FilterError::new(
                    "min_quality",
                    format!("{min} is above max_quality {max}"),
                ));
            }
        }
        if let (Some(from), Some(to)) = (filter.from_ms, filter.to_ms) {
            if from > to {
                return Err(FilterError::new("from", format!("{from} is after to {to}")));
            }
        }
        Ok(filter)
    }

    /// Only drawings of this shape.
    pub fn with_shape(mut self, shape: ShapeName) -> Self {
        self.shape = Some(shape);
        self
    }

    /// Only flagged (`true`) or unflagged (`false`) drawings.
    pub fn with_flagged(mut self, flagged: bool) -> Self {
        self.flagged = Some(flagged);
        self
    }

    /// Which soft-deleted drawings to take.
    pub fn with_deleted(mut self, deleted: DeletedFilter) -> Self {
        self.deleted = deleted;
        self
    }

    /// Only drawings by this player.
    pub fn with_player(mut self, player: PlayerId) -> Self {
        self.player = Some(player);
        self
    }

    pub fn shape(&self) -> Option<&ShapeName> {
        self.shape.as_ref()
    }

    pub fn flagged(&self) -> Option<bool> {
        self.flagged
    }

    pub fn deleted(&self) -> DeletedFilter {
        self.deleted
    }

    pub fn reviewed(&self) -> Option<bool> {
        self.reviewed
    }

    /// Inclusive lower bound of the quality score (unscored drawings never match a bound).
    pub fn min_quality(&self) -> Option<f64> {
        self.min_quality
    }

    /// Inclusive upper bound of the quality score.
    pub fn max_quality(&self) -> Option<f64> {
        self.max_quality
    }

    pub fn player(&self) -> Option<PlayerId> {
        self.player
    }

    /// Inclusive lower bound of `created_at` (ms).
    pub fn from_ms(&self) -> Option<u64> {
        self.from_ms
    }

    /// Exclusive upper bound of `created_at` (ms).
    pub fn to_ms(&self) -> Option<u64> {
        self.to_ms
    }
}

/// Where a page starts: just after the last drawing of the previous page, in the listing's
/// order (newest first, by `created_at` then id). Sent to clients as an opaque string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_ms: i64,
    pub id: DrawingId,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:032x}", self.created_at_ms, self.id.as_u128())
    }
}

impl std::str::FromStr for Cursor {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || FilterError::new("cursor", "not a cursor this server handed out");
        let (time, id) = text.split_once('.').ok_or_else(bad)?;
        if id.len() != 32 || time.is_empty() || time.len() > 16 {
            return Err(bad());
        }
        Ok(Self {
            created_at_ms: i64::from_str_radix(time, 16).map_err(|_| bad())?,
            id: DrawingId::from_u128(u128::from_str_radix(id, 16).map_err(|_| bad())?),
        })
    }
}

/// One page of a keyset-paginated listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1..=[`MAX_LIMIT`].
    limit: u32,
    after: Option<Cursor>,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl Page {
    /// Reads `limit` and `cursor` ([`PAGE_PARAMETERS`]); other names are ignored.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FilterError> {
        let mut page = Self::default();
        let (mut limit_seen, mut cursor_seen) = (false, false);
        for (name, value) in pairs {
            match name {
                "limit" => {
                    if std::mem::replace(&mut limit_seen, true) {
                        return Err(FilterError::new(name, "given more than once"));
                    }
                    page.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            FilterError::new(name, format!("expected 1 to {MAX_LIMIT}"))
                        })?;
                }
                "cursor" => {
                    if std::mem::replace(&mut cursor_seen, true) {
                        return Err(FilterError::new(name, "given more than once"));
                    }
                    page.after = Some(value.parse()?);
                }
                _ => {}
            }
        }
        Ok(page)
    }

    /// A page of `limit` (clamped to 1..=[`MAX_LIMIT`]) after `after`.
    pub fn new(limit: u32, after: Option<Cursor>) -> Self {
        Self {
            limit: limit.clamp(1, MAX_LIMIT),
            after,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn after(&self) -> Option<Cursor> {
        self.after
    }
}

/// What an admin does to drawings, one at a time or in bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    /// Looked at and fine: reviewed, not flagged.
    Approve,
    /// Looked at and doubtful: reviewed, flagged (kept out of training unless asked).
    Flag,
    /// Reviewed, no longer flagged.
    Unflag,
    /// Soft delete: hidden from the game, training and export until restored or purged.
    Delete,
    /// Undo a soft delete.
    Restore,
}

impl std::str::FromStr for ReviewAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "approve" => Self::Approve,
            "flag" => Self::Flag,
            "unflag" => Self::Unflag,
            "delete" => Self::Delete,
            "restore" => Self::Restore,
            other => {
                return Err(format!(
                    "unknown action {other:?} (approve, flag, unflag, delete, restore)"
                ))
            }
        })
    }
}

/// Where a page of the player list starts (newest players first, by `created_at` then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerCursor {
    pub created_at_ms: i64,
    pub id: PlayerId,
}

impl fmt::Display for PlayerCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{}", self.created_at_ms, self.id)
    }
}

impl std::str::FromStr for PlayerCursor {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || FilterError::new("cursor", "not a cursor this server handed out");
        let (time, id) = text.split_once('.').ok_or_else(bad)?;
        if time.is_empty() || time.len() > 16 {
            return Err(bad());
        }
        Ok(Self {
            created_at_ms: i64::from_str_radix(time, 16).map_err(|_| bad())?,
            id: PlayerId::parse_cookie(id).ok_or_else(bad)?,
        })
    }
}

/// The player list's query: `limit` (1..=[`MAX_LIMIT`]) and `cursor`.
pub fn parse_player_page(
    pairs: &[(&str, &str)],
) -> Result<(u32, Option<PlayerCursor>), FilterError> {
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    for (name, value) in pairs {
        match *name {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| FilterError::new(name, format!("expected 1 to {MAX_LIMIT}")))?
            }
            "cursor" => after = Some(value.parse()?),
            _ => return Err(FilterError::new(name, "unknown parameter")),
        }
    }
    Ok((limit, after))
}

/// The listing's query: a filter and a page. Unknown parameter names are refused, so a typo
/// (`flaged=true`) is not silently ignored.
pub fn parse_listing<'a>(
    pairs: &[(&'a str, &'a str)],
) -> Result<(DrawingFilter, Page), FilterError> {
    if let Some((name, _)) = pairs
        .iter()
        .find(|(n, _)| !FILTER_PARAMETERS.contains(n) && !PAGE_PARAMETERS.contains(n))
    {
        return Err(FilterError::new(name, "unknown parameter"));
    }
    Ok((
        DrawingFilter::parse(pairs.iter().copied())?,
        Page::parse(pairs.iter().copied())?,
    ))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, FilterError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(FilterError::new(name, "expected true or false")),
    }
}

fn parse_quality(name: &str, value: &str) -> Result<f64, FilterError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|q| (0.0..=1.0).contains(q))
        .ok_or_else(|| FilterError::new(name, "expected a number from 0 to 1"))
}

fn parse_ms(name: &str, value: &str) -> Result<u64, FilterError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms <= i64::MAX as u64)
        .ok_or_else(|| FilterError::new(name, "expected milliseconds since the Unix epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<(DrawingFilter, Page), FilterError> {
        parse_listing(query)
    }

    #[test]
    fn no_parameters_mean_every_drawing_that_is_not_deleted_fifty_at_a_time() {
        let (filter, page) = parse(&[]).unwrap();
        assert_eq!(filter, DrawingFilter::default());
        assert_eq!(filter.deleted(), DeletedFilter::Exclude);
        assert_eq!(page.limit(), DEFAULT_LIMIT);
        assert_eq!(page.after(), None);
    }

    #[test]
    fn every_filter_parameter_is_read_into_its_field() {
        let player = "0123456789abcdef0123456789abcdef";
        let (filter, page) = parse(&[
            ("shape", "circle"),
            ("flagged", "true"),
            ("deleted", "any"),
            ("reviewed", "false"),
            ("min_quality", "0.2"),
            ("max_quality", "0.9"),
            ("player", player),
            ("from", "1000"),
            ("to", "2000"),
            ("limit", "500"),
        ])
        .unwrap();
        assert_eq!(filter.shape().unwrap().as_str(), "circle");
        assert_eq!(filter.flagged(), Some(true));
        assert_eq!(filter.deleted(), DeletedFilter::Any);
        assert_eq!(filter.reviewed(), Some(false));
        assert_eq!(filter.min_quality(), Some(0.2));
        assert_eq!(filter.max_quality(), Some(0.9));
        assert_eq!(filter.player().unwrap().to_string(), player);
        assert_eq!((filter.from_ms(), filter.to_ms()), (Some(1000), Some(2000)));
        assert_eq!(page.limit(), 500);
    }

    #[test]
    fn each_bad_parameter_is_refused_by_name() {
        for (name, value) in [
            ("shape", "Not A Shape!"),
            ("flagged", "yes"),
            ("deleted", "maybe"),
            ("reviewed", "1"),
            ("min_quality", "1.5"),
            ("max_quality", "nan"),
            ("player", "bob"),
            ("from", "-1"),
            ("to", "soon"),
            ("limit", "0"),
            ("limit", "501"),
            ("cursor", "abc"),
            ("flaged", "true"),
        ] {
            let error = parse(&[(name, value)]).unwrap_err();
            assert_eq!(error.parameter, name, "{name}={value}");
        }
    }

    #[test]
    fn crossed_ranges_and_repeated_parameters_are_refused() {
        let crossed = parse(&[("min_quality", "0.8"), ("max_quality", "0.2")]).unwrap_err();
        assert_eq!(crossed.parameter, "min_quality");
        let crossed = parse(&[("from", "5"), ("to", "4")]).unwrap_err();
        assert_eq!(crossed.parameter, "from");
        let twice = parse(&[("shape", "circle"), ("shape", "line")]).unwrap_err();
        assert_eq!(twice.parameter, "shape");
    }

    #[test]
    fn a_cursor_reads_back_as_itself() {
        let cursor = Cursor {
            created_at_ms: 1_764_000_000_123,
            id: DrawingId::from_u128(0x0192_3456_789a_7bcd_8123_4567_89ab_cdef),
        };
        let (_, page) = parse(&[("cursor", &cursor.to_string())]).unwrap();
        assert_eq!(page.after(), Some(cursor));
    }

    #[test]
    fn the_filter_alone_ignores_parameters_it_does_not_know() {
        let filter = DrawingFilter::parse([("format", "npy"), ("flagged", "false")]).unwrap();
        assert_eq!(filter.flagged(), Some(false));
    }
}
