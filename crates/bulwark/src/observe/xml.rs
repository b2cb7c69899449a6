//! Text for XML documents: the status page's Atom feed and the drill's SVG
//! charts both carry names and notes an operator typed.

/// Escapes text for XML element content and attribute values, and drops
/// the characters XML 1.0 does not allow at all, escaped or not (control
/// characters other than tab, newline and carriage return, and U+FFFE and
/// U+FFFF): an admin's pasted log line must not make a whole feed or chart
/// unparsable.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            escape("<script>a & 'b' \"c\"\u{1}</script>"),
            "&lt;script&gt;a &amp; &apos;b&apos; &quot;c&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    /// The drill's copy turned control characters into spaces and let
    /// U+FFFE and U+FFFF through, which no XML 1.0 parser accepts.
    #[test]
    fn keeps_only_characters_xml_allows() {
        assert_eq!(escape("a\u{1}b\u{1f}c"), "abc");
        assert_eq!(escape("a\u{fffe}b\u{ffff}c"), "abc");
        assert_eq!(escape("tab\tline\ncr\r"), "tab\tline\ncr\r");
        assert_eq!(escape("\u{fffd}\u{10000}é"), "\u{fffd}\u{10000}é");
    }
}
