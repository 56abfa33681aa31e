//! Shape names: the labels players are prompted with and models learn.

use std::fmt;

use thiserror::Error;

/// The longest shape name accepted.
pub const MAX_SHAPE_NAME_LEN: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("a shape name must be 1 to {MAX_SHAPE_NAME_LEN} characters of a-z, 0-9, space, '_' or '-', starting with a letter or digit")]
    InvalidName,
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
}
