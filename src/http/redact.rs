//! Keeping the server's disk layout out of answers: a job's error text is often an I/O
//! error that names the file it failed on (`reading /srv/doodlebox/jobs/uploads/3.ndjson:
//! …`). Answers show such a path cut to its last component (`…/3.ndjson`), which still
//! tells an admin which file it was; the full text stays in the server's log.

/// Characters after which a `/` starts a path (and not, say, a URL's or a fraction's).
const PATH_OPENERS: [char; 6] = [' ', '"', '\'', '(', '=', '['];

/// Characters that end a path.
const PATH_CLOSERS: [char; 6] = ['"', '\'', ')', ',', ';', ']'];

/// `text` with every absolute path of two or more components cut to `…/` and its last
/// component (a trailing `/` kept). A path ends at whitespace, a quote or bracket, or a `:` before whitespace.
pub fn without_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let opens =
            c == '/' && previous.is_none_or(|p| PATH_OPENERS.contains(&p) || p.is_whitespace());
        if opens {
            let end = path_end(rest);
            let path = &rest[..end];
            let trimmed = path.trim_end_matches('/');
            match trimmed.rsplit_once('/') {
                Some((dir, name)) if !dir.is_empty() => {
                    out.push_str("…/");
                    out.push_str(name);
                    out.push_str(&path[trimmed.len()..]);
                }
                _ => out.push_str(path),
            }
            previous = path.chars().last();
            rest = &rest[end..];
        } else {
            out.push(c);
            previous = Some(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Where the path at the start of `text` ends (a byte offset).
fn path_end(text: &str) -> usize {
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let colon_ends = c == ':' && chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        if c.is_whitespace() || PATH_CLOSERS.contains(&c) || colon_ends {
            return at;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::without_paths;

    #[test]
    fn absolute_paths_are_cut_to_their_last_component_and_other_text_is_left_alone() {
        assert_eq!(
            without_paths(
                "reading /srv/doodlebox/jobs/uploads/3.ndjson: No such file or directory (os error 2)"
            ),
            "reading …/3.ndjson: No such file or directory (os error 2)"
        );
        assert_eq!(
            without_paths("cannot open \"/tmp/x/backup-1\" (denied)"),
            "cannot open \"…/backup-1\" (denied)"
        );
        assert_eq!(without_paths("/a/b"), "…/b");
        assert_eq!(
            without_paths("in /srv/data/backups/ now"),
            "in …/backups/ now"
        );
        assert_eq!(without_paths("path=/var/lib/d,then"), "path=…/d,then");
        for unchanged in [
            "a 1/2 split",
            "see /metrics",
            "fetch http://host/a/b failed",
            "no path at all",
            "",
        ] {
            assert_eq!(without_paths(unchanged), unchanged);
        }
    }
}
