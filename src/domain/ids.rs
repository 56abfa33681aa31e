//! Identifiers as newtypes: drawings, players, idempotency keys, shapes, API keys and model
//! versions are never bare strings or bare integers once they cross a service boundary, so
//! two ids of different things cannot be mixed up or compared as text.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why a string is not a valid identifier.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdError {
    #[error("`{0}` is not a valid drawing id (expected a UUID)")]
    Drawing(String),
    #[error("the Idempotency-Key header must be 1 to 255 printable ASCII characters")]
    IdempotencyKey,
    #[error("`{0}` is not a valid API key id (expected a positive integer)")]
    ApiKey(String),
    #[error("`{0}` is not a valid model version")]
    ModelVersion(String),
}

/// The longest text an error message quotes from a rejected id.
const QUOTED_ID_CHARS: usize = 64;

fn quoted(s: &str) -> String {
    s.chars().take(QUOTED_ID_CHARS).collect()
}

/// A drawing's id: a UUIDv7, so ids sort by creation time. The group-commit writer hands
/// them out in strictly increasing order, which is what lets start-up reconciliation look
/// only at the tail of the stroke store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DrawingId(u128);

impl DrawingId {
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }

    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Big-endian bytes: the sled key, so that byte order equals id order.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    /// A new UUIDv7 for `unix_ms`, strictly greater than `after` (if given).
    pub fn next(unix_ms: u64, after: Option<DrawingId>) -> Self {
        let random: u128 = rand::random();
        // 48 bits of milliseconds, version 7, 12 random bits, variant 0b10, 62 random bits.
        let fresh = (u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80)
            | (0x7 << 76)
            | (random & (0xFFF << 64))
            | (0b10 << 62)
            | (random & ((1 << 62) - 1));
        match after {
            Some(last) if fresh <= last.0 => Self(last.0 + 1),
            _ => Self(fresh),
        }
    }
}

impl fmt::Display for DrawingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_u128(self.0).hyphenated().fmt(f)
    }
}

impl FromStr for DrawingId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(|u| Self(u.as_u128()))
            .map_err(|_| IdError::Drawing(quoted(s)))
    }
}

/// An anonymous player: a random 128-bit session id carried in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayerId(u128);

impl PlayerId {
    pub fn random() -> Self {
        Self(rand::random())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Parses the cookie form (32 lowercase hex digits); `None` for anything else.
    pub fn parse_cookie(value: &str) -> Option<Self> {
        if value.len() != 32
            || !value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        u128::from_str_radix(value, 16).ok().map(Self)
    }
}

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A client's `Idempotency-Key`: 1 to 255 printable ASCII characters, scoped to a player.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, IdError> {
        let printable = raw.iter().all(|b| (0x20..0x7f).contains(b));
        if raw.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY_LEN || !printable {
            return Err(IdError::IdempotencyKey);
        }
        // Printable ASCII is valid UTF-8.
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A shape's row id: what a drawing row points at. Only the store hands these out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShapeId(i64);

impl ShapeId {
    /// Wraps a row id read from the store.
    pub fn from_row(id: i64) -> Self {
        Self(id)
    }

    /// The row id, for the store.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// An implementor API key's row id, as lists show it and `DELETE /admin/keys/{id}` and
/// `doodlebox keys revoke ID` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiKeyId(i64);

impl ApiKeyId {
    /// Wraps a row id read from the store.
    pub fn from_row(id: i64) -> Self {
        Self(id)
    }

    /// The row id, for the store.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ApiKeyId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| IdError::ApiKey(quoted(s)))
    }
}

/// An admin account's row id: who a portal session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdminId(i64);

impl AdminId {
    /// Wraps a row id read from the store.
    pub fn from_row(id: i64) -> Self {
        Self(id)
    }

    /// The row id, for the store.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for AdminId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The longest model version accepted.
pub const MAX_MODEL_VERSION_LEN: usize = 64;

/// A model version (`v1`, `v2`, ...): the name of one trained artifact in the registry.
/// Parsing admits any short name of ASCII letters, digits, `.`, `_` and `-`, so that a
/// version the registry never handed out is simply not found rather than malformed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelVersion(String);

impl ModelVersion {
    /// Parses a version named by a client (a path, a query, a CLI argument).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let valid = !s.is_empty()
            && s.len() <= MAX_MODEL_VERSION_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::ModelVersion(quoted(s)))
        }
    }

    /// Wraps a version read from the store, which only holds versions it handed out.
    pub fn from_row(version: String) -> Self {
        Self(version)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModelVersion {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_ids_are_strictly_increasing_even_within_one_millisecond() {
        let mut last = None;
        for _ in 0..1000 {
            let id = DrawingId::next(1_700_000_000_000, last);
            assert!(last.is_none_or(|l| id > l));
            last = Some(id);
        }
        let again: DrawingId = last.unwrap().to_string().parse().unwrap();
        assert_eq!(again, last.unwrap());
    }

    #[test]
    fn a_drawing_id_is_a_version_7_uuid() {
        let id = DrawingId::next(1_700_000_000_000, None);
        let uuid = uuid::Uuid::from_u128(id.as_u128());
        assert_eq!(uuid.get_version_num(), 7);
    }

    #[test]
    fn idempotency_keys_reject_empty_long_and_control_characters() {
        assert!(IdempotencyKey::parse(b"abc-123").is_ok());
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(&[b'a'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"a\nb").is_err());
        assert!(IdempotencyKey::parse("é".as_bytes()).is_err());
    }

    #[test]
    fn player_cookies_must_be_32_lowercase_hex_digits() {
        let p = PlayerId::random();
        assert_eq!(PlayerId::parse_cookie(&p.to_string()), Some(p));
        assert_eq!(PlayerId::parse_cookie("xyz"), None);
        assert_eq!(PlayerId::parse_cookie(&"A".repeat(32)), None);
    }

    #[test]
    fn api_key_ids_are_positive_integers_and_round_trip_through_text() {
        let id: ApiKeyId = "42".parse().unwrap();
        assert_eq!(id, ApiKeyId::from_row(42));
        assert_eq!(id.to_string(), "42");
        assert!("0".parse::<ApiKeyId>().is_err());
        assert!("-3".parse::<ApiKeyId>().is_err());
        assert!("abc".parse::<ApiKeyId>().is_err());
    }

    #[test]
    fn model_versions_admit_short_plain_names_only() {
        assert_eq!(ModelVersion::parse("v12").unwrap().as_str(), "v12");
        assert!(ModelVersion::parse("").is_err());
        assert!(ModelVersion::parse("../v1").is_err());
        assert!(ModelVersion::parse(&"v".repeat(65)).is_err());
    }
}
