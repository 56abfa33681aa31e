//! What an anonymous player may tell us about themselves: for now a nickname, checked here
//! so that the store only ever holds a short line of visible text: normalised (NFC, so the
//! same name typed on two keyboards is one name), without control or bidirectional
//! override characters (which can reverse what the admin portal shows), and never made of
//! invisible characters alone.

use std::fmt;

use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

use super::text::trimmed_within;

/// Longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 40;

/// Why a nickname is refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("a nickname is 1 to {MAX_NICKNAME_CHARS} characters with something visible in it, and no control or text-direction characters")]
pub struct NicknameError;

/// A trimmed nickname of 1 to [`MAX_NICKNAME_CHARS`] characters without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

impl Nickname {
    pub fn parse(raw: &str) -> Result<Self, NicknameError> {
        let trimmed = trimmed_within(raw, MAX_NICKNAME_CHARS).ok_or(NicknameError)?;
        let nickname: String = trimmed.nfc().collect();
        // NFC can spell a few characters longer (U+0958 becomes two), hence the second count.
        if nickname.chars().count() > MAX_NICKNAME_CHARS
            || nickname.chars().any(is_direction_control)
            || nickname.chars().all(is_invisible)
        {
            return Err(NicknameError);
        }
        Ok(Self(nickname))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that change the direction text is shown in (embeddings, overrides, isolates
/// and marks): in a name they can make the portal show something other than what is stored.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing: white space, zero-width and format characters, fillers,
/// variation selectors and tags. A name of these alone would look empty.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202F}'
                | '\u{205F}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}'
        )
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

    #[test]
    fn nicknames_are_normalised_and_direction_tricks_and_invisible_names_are_refused() {
        // "é" typed as e + combining accent is stored as the one character.
        assert_eq!(
            Nickname::parse("Ame\u{301}lie").unwrap().as_str(),
            "Am\u{e9}lie"
        );
        for bad in [
            "evil\u{202E}txt.exe",
            "\u{2066}Ada\u{2069}",
            "\u{200B}\u{200B}",
            "\u{3164}",
            "\u{FEFF}\u{200D}",
            "\u{FE0F}",
        ] {
            assert_eq!(Nickname::parse(bad), Err(NicknameError), "{bad:?}");
        }
        assert!(Nickname::parse("Zoë 🦊").is_ok());
        assert!(
            Nickname::parse("אבי").is_ok(),
            "right-to-left letters themselves are fine"
        );
    }
}
