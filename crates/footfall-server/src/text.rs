//! Rules for text configured by operators and shown to visitors: site names, footer
//! labels, trust records. A leaf: it imports nothing of the crate.

/// Characters refused in every configured text shown to visitors, and replaced by U+FFFD
/// where text is rendered anyway: controls (XML cannot carry most of them at all), the
/// line and paragraph separators U+2028 and U+2029 (line breaks to some renderers, string
/// ends to older JavaScript), and every bidirectional formatting character, the marks
/// LRM, RLM and ALM (U+200E, U+200F, U+061C) as much as the embeddings, overrides and
/// isolates, since each can make a text read differently from its data (a number or a
/// domain shown reversed). Everything else is escaped where it is rendered.
pub fn is_disallowed_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_separators_and_bidi_formatting_are_refused_vietnamese_is_not() {
        for c in [
            '\0', '\n', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}', '\u{200e}', '\u{200f}',
            '\u{061c}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
        ] {
            assert!(is_disallowed_char(c), "U+{:04X}", u32::from(c));
        }
        // Vietnamese text, precomposed or with combining marks, and joiners are allowed.
        let allowed = "Thống kê truy cập · Đang online \u{301}\u{200d}\u{200c}";
        assert!(!allowed.chars().any(is_disallowed_char));
    }
}
