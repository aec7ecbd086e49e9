//! Free text made fit for ISO 20022 text types and for XML.
//!
//! ISO 20022 text types (`Max35Text`, `Max140Text`, ...) limit the number of characters, 1 to
//! N, counted after XML parsing; so limits here count `char`s, and escaping does not change
//! the count.

/// Characters XML 1.0 cannot carry at all, not even escaped, become U+FFFD: the C0 controls
/// other than tab, line feed and carriage return, and the non-characters U+FFFE and U+FFFF.
pub(crate) fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if is_xml_char(c) {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect()
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `s` cut to at most `max_chars` characters, on a character boundary.
pub(crate) fn truncate_chars(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// Free text for a `MaxNText` element: made XML-safe, trimmed, and cut to `max_chars`
/// characters. `None` when nothing is left, since these types need at least one character.
pub(crate) fn free_text(s: &str, max_chars: usize) -> Option<String> {
    let safe = xml_safe(s);
    let cut = truncate_chars(safe.trim(), max_chars).trim_end();
    (!cut.is_empty()).then(|| cut.to_string())
}

/// Appends `s` to `out` escaped for XML text or a double-quoted attribute value: the five
/// predefined entities, and carriage return as a character reference so that a parser's
/// line-end normalisation does not turn it into a line feed.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escape(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn escapes_the_markup_characters() {
        assert_eq!(
            escape(r#"a & b < c > d " e ' f"#),
            "a &amp; b &lt; c &gt; d &quot; e &apos; f"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("line\r\nnext"), "line&#xD;\nnext");
        assert_eq!(escape("Zürich 東京 🦀"), "Zürich 東京 🦀");
    }

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate_chars("abc", 5), "abc");
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abc", 2), "ab");
        assert_eq!(truncate_chars("ééé", 2), "éé");
        assert_eq!(truncate_chars("🦀🦀🦀", 1), "🦀");
        assert_eq!(truncate_chars("abc", 0), "");
    }

    #[test]
    fn replaces_what_xml_cannot_carry() {
        assert_eq!(
            xml_safe("a\u{0}b\u{1b}c\u{FFFE}d"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d"
        );
        assert_eq!(xml_safe("tab\tlf\ncr\r"), "tab\tlf\ncr\r");
    }

    #[test]
    fn free_text_is_trimmed_cut_and_never_empty() {
        assert_eq!(free_text("  memo  ", 140).as_deref(), Some("memo"));
        assert_eq!(free_text("   ", 140), None);
        assert_eq!(free_text("", 140), None);
        assert_eq!(free_text("abcdef", 3).as_deref(), Some("abc"));
        // A cut that ends in a space does not leave trailing whitespace.
        assert_eq!(free_text("ab cd", 3).as_deref(), Some("ab"));
        assert_eq!(
            free_text(&"ä".repeat(200), 140).unwrap().chars().count(),
            140
        );
    }
}
