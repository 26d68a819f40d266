//! Track names: what a name may hold, and how clashing names are told apart.

/// The names `count` live lineages pushed under `name` are shown as, earliest first: the
/// first keeps `name`, the others take `name (2)`, `name (3)`… passing over any such name
/// that a track was pushed under itself.
pub fn shown_names(name: &str, count: usize, pushed: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return out;
    }
    out.push(name.to_string());
    let mut n = 2u64;
    while out.len() < count {
        let candidate = suffixed(name, n);
        n += 1;
        if !pushed(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// `name (n)`: how a clash is told apart.
pub fn suffixed(name: &str, n: u64) -> String {
    format!("{name} ({n})")
}

/// `X` for a name of the form `X (n)` with n ≥ 2, as [`suffixed`] writes it.
pub fn suffix_parent(name: &str) -> Option<&str> {
    let inner = name.strip_suffix(')')?;
    let open = inner.rfind(" (")?;
    let digits = &inner[open + 2..];
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    (canonical && digits != "1").then(|| &name[..open])
}

/// The longest track name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// Track names end up in file names (`get` writes `./NAME.<ext>`) and in one-line terminal
/// output, so anything that could escape a directory or garble a line is refused.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("track name is empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "track name is too long ({} bytes, at most {MAX_NAME_BYTES})",
            name.len()
        ));
    }
    if name.contains(['/', '\\']) {
        return Err(format!(
            "track name {name:?} contains a path separator ('/' or '\\')"
        ));
    }
    if name.contains('\0') {
        return Err(format!("track name {name:?} contains a NUL byte"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("track name {name:?} contains a control character"));
    }
    if let Some(c) = name.chars().find(|c| is_invisible_format(*c)) {
        return Err(format!(
            "track name {name:?} contains an invisible or direction-changing character (U+{:04X})",
            c as u32
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("track name {name:?} is not a name"));
    }
    Ok(())
}

/// Bidirectional overrides and isolates, and zero-width characters: they make a name show as
/// something else (`\u{202e}gnp.exe` shows as `exe.png`).
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
        | '\u{202a}'..='\u{202e}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{061c}' // Arabic letter mark
        | '\u{feff}' // zero-width no-break space
        | '\u{180e}' // Mongolian vowel separator
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_names_parse_back() {
        assert_eq!(suffix_parent("a (2)"), Some("a"));
        assert_eq!(suffix_parent("a (b) (12)"), Some("a (b)"));
        assert_eq!(suffix_parent("a (1)"), None);
        assert_eq!(suffix_parent("a (02)"), None);
        assert_eq!(suffix_parent("a ()"), None);
        assert_eq!(suffix_parent("a"), None);
        assert_eq!(suffix_parent(&suffixed("x", 7)), Some("x"));
        assert_eq!(
            shown_names("x", 3, |n| n == "x (2)"),
            ["x", "x (3)", "x (4)"]
        );
    }

    #[test]
    fn name_validation() {
        assert!(validate_name("Song – 01 (live).flac").is_ok());
        assert!(validate_name(&"é".repeat(100)).is_ok());
        assert_eq!(validate_name("").unwrap_err(), "track name is empty");
        let long = validate_name(&"a".repeat(201)).unwrap_err();
        assert!(long.contains("too long (201 bytes"), "{long}");
        assert!(
            validate_name(&"é".repeat(101))
                .unwrap_err()
                .contains("too long")
        );
        assert!(validate_name("a/b").unwrap_err().contains("path separator"));
        assert!(
            validate_name("a\\b")
                .unwrap_err()
                .contains("path separator")
        );
        assert!(validate_name("a\0b").unwrap_err().contains("NUL"));
        for bad in [
            "\u{202e}gnp.exe",
            "a\u{200b}b",
            "x\u{2067}y",
            "\u{feff}song",
        ] {
            assert!(
                validate_name(bad).unwrap_err().contains("invisible"),
                "{bad:?}"
            );
        }
        assert!(validate_name(".").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("...").is_ok());
        for bad in ["a\nb", "a\tb", "\u{1b}[31m", "a\u{7f}", "a\u{85}"] {
            assert!(
                validate_name(bad)
                    .unwrap_err()
                    .contains("control character"),
                "{bad:?}"
            );
        }
    }
}
