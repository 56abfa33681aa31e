//! An admin's credentials as they arrive from a form, a JSON body or the command line,
//! checked before anything is hashed or stored: a [`Username`] and a [`Password`].

use thiserror::Error;

/// Shortest username.
const USERNAME_MIN: usize = 2;
/// Longest username.
const USERNAME_MAX: usize = 64;
/// Shortest password. Length is what makes a password strong; composition rules are not
/// asked for (NIST SP 800-63B).
pub const PASSWORD_MIN: usize = 10;
/// Longest password, in bytes: hashing cost must not depend on what a stranger sends.
pub const PASSWORD_MAX: usize = 1024;

/// Why a username or password is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("a username has {USERNAME_MIN} to {USERNAME_MAX} characters: letters, digits, '.', '_' or '-'")]
    Username,
    #[error("a password needs at least {PASSWORD_MIN} characters")]
    PasswordTooShort,
    #[error("a password has at most {PASSWORD_MAX} bytes")]
    PasswordTooLong,
}

/// A valid username (compared without regard to case by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, CredentialError> {
        let text = text.trim();
        let length_ok = (USERNAME_MIN..=USERNAME_MAX).contains(&text.chars().count());
        let chars_ok = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if length_ok && chars_ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(CredentialError::Username)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password good enough to set. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// A new password: long enough, not absurdly long. Surrounding whitespace counts.
    pub fn parse_new(text: &str) -> Result<Self, CredentialError> {
        if text.len() > PASSWORD_MAX {
            return Err(CredentialError::PasswordTooLong);
        }
        if text.chars().count() < PASSWORD_MIN {
            return Err(CredentialError::PasswordTooShort);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_take_letters_digits_and_a_few_marks() {
        assert_eq!(Username::parse(" ms.lee_2 ").unwrap().as_str(), "ms.lee_2");
        for bad in ["", "a", "has space", "émile", "x/y", &"a".repeat(65)] {
            assert_eq!(
                Username::parse(bad),
                Err(CredentialError::Username),
                "{bad}"
            );
        }
    }

    #[test]
    fn passwords_must_be_long_enough_and_never_show_in_debug_output() {
        assert_eq!(
            Password::parse_new("short").unwrap_err(),
            CredentialError::PasswordTooShort
        );
        assert_eq!(
            Password::parse_new(&"x".repeat(PASSWORD_MAX + 1)).unwrap_err(),
            CredentialError::PasswordTooLong
        );
        let password = Password::parse_new("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
