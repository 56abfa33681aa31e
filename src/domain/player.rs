//! What an anonymous player may tell us about themselves: for now a nickname, checked here
//! so that the store only ever holds a short line of printable text.

use std::fmt;

use thiserror::Error;

/// Longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 40;

/// Why a nickname is refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("a nickname is 1 to {MAX_NICKNAME_CHARS} characters, no control characters")]
pub struct NicknameError;

/// A trimmed nickname of 1 to [`MAX_NICKNAME_CHARS`] characters without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

impl Nickname {
    pub fn parse(raw: &str) -> Result<Self, NicknameError> {
        let nickname = raw.trim();
        let count = nickname.chars().count();
        if count == 0 || count > MAX_NICKNAME_CHARS || nickname.chars().any(char::is_control) {
            return Err(NicknameError);
        }
        Ok(Self(nickname.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_trimmed_short_printable_text() {
        assert_eq!(Nickname::parse("  Ada ").unwrap().as_str(), "Ada");
        assert_eq!(Nickname::parse("   "), Err(NicknameError));
        assert_eq!(Nickname::parse(&"x".repeat(41)), Err(NicknameError));
        assert_eq!(Nickname::parse("a\tb"), Err(NicknameError));
    }
}
