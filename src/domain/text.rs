//! Free text people type (a key's name, a shape's description, a nickname), read the way
//! the API document describes it: the limits apply to the text as sent, and only then are
//! the spaces around it trimmed.

/// The trimmed text, when the text as sent has 1 to `max_chars` characters, no control
/// characters (not even ones that trimming would remove, such as U+0085) and something left
/// once trimmed.
pub fn trimmed_within(raw: &str, max_chars: usize) -> Option<&str> {
    if raw.chars().count() > max_chars || raw.chars().any(char::is_control) {
        return None;
    }
    Some(raw.trim()).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::trimmed_within;

    #[test]
    fn limits_apply_to_the_text_as_sent_and_spaces_are_trimmed_after() {
        assert_eq!(trimmed_within("  lab key ", 10), Some("lab key"));
        assert_eq!(trimmed_within("lab key", 7), Some("lab key"));
        assert_eq!(trimmed_within("  lab key", 8), None, "9 characters as sent");
        assert_eq!(trimmed_within("DL\u{85}", 80), None, "U+0085 is a control");
        assert_eq!(trimmed_within("a\tb", 80), None);
        assert_eq!(trimmed_within(" \u{a0} ", 80), None, "nothing left");
        assert_eq!(trimmed_within("", 80), None);
    }
}
