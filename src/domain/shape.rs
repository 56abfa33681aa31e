//! Shape names: the labels players are prompted with and models learn.

use std::fmt;

use thiserror::Error;

use super::text::trimmed_within;

/// The longest shape name accepted.
pub const MAX_SHAPE_NAME_LEN: usize = 64;
/// The longest shape description accepted, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 200;
/// The easiest difficulty.
pub const MIN_DIFFICULTY: i64 = 1;
/// The hardest difficulty.
pub const MAX_DIFFICULTY: i64 = 5;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("a shape name must be 1 to {MAX_SHAPE_NAME_LEN} characters of a-z, 0-9, space, '_' or '-', starting with a letter or digit")]
    InvalidName,
    #[error(
        "a description must be 1 to {MAX_DESCRIPTION_LEN} characters, without control characters"
    )]
    InvalidDescription,
    #[error("difficulty must be a whole number from {MIN_DIFFICULTY} to {MAX_DIFFICULTY}")]
    InvalidDifficulty,
}

/// Validates a shape's description (what players read under the prompt); trims it.
pub fn parse_description(raw: &str) -> Result<String, ShapeError> {
    let text = trimmed_within(raw, MAX_DESCRIPTION_LEN).ok_or(ShapeError::InvalidDescription)?;
    Ok(text.to_owned())
}

/// Validates a shape's difficulty.
pub fn parse_difficulty(raw: i64) -> Result<i64, ShapeError> {
    if (MIN_DIFFICULTY..=MAX_DIFFICULTY).contains(&raw) {
        Ok(raw)
    } else {
        Err(ShapeError::InvalidDifficulty)
    }
}

/// A validated shape name such as `circle` or `smiley face`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeName(String);

impl ShapeName {
    pub fn parse(raw: &str) -> Result<Self, ShapeError> {
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ' ' | '_' | '-');
        let starts_well = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if raw.len() > MAX_SHAPE_NAME_LEN || !starts_well || !raw.chars().all(ok_char) {
            return Err(ShapeError::InvalidName);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShapeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_names_are_lowercase_words() {
        assert!(ShapeName::parse("circle").is_ok());
        assert!(ShapeName::parse("smiley face").is_ok());
        assert!(ShapeName::parse("").is_err());
        assert!(ShapeName::parse("Circle").is_err());
        assert!(ShapeName::parse(" circle").is_err());
        assert!(ShapeName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn descriptions_are_trimmed_text_and_difficulties_run_from_1_to_5() {
        assert_eq!(
            parse_description("  a round shape "),
            Ok("a round shape".into())
        );
        assert_eq!(
            parse_description("   "),
            Err(ShapeError::InvalidDescription)
        );
        assert_eq!(
            parse_description("a\nb"),
            Err(ShapeError::InvalidDescription)
        );
        assert_eq!(
            parse_description(&"x".repeat(MAX_DESCRIPTION_LEN + 1)),
            Err(ShapeError::InvalidDescription)
        );
        assert_eq!(parse_difficulty(1), Ok(1));
        assert_eq!(parse_difficulty(5), Ok(5));
        assert_eq!(parse_difficulty(0), Err(ShapeError::InvalidDifficulty));
        assert_eq!(parse_difficulty(6), Err(ShapeError::InvalidDifficulty));
    }
}
