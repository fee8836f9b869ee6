//! Rules for text configured by operators and shown to visitors (site names, footer
//! labels, trust records): which characters are refused, how text is escaped in HTML and
//! SVG, and which letter a Vietnamese letter is measured as. A leaf: it imports nothing of
//! the crate, so every renderer can use it.

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

/// Escapes text for HTML and SVG (XML) text and double- or single-quoted attributes:
/// `& < > " '` become references.
pub fn escape_html(text: &str) -> String {
    escape_html_replacing(text, |_| false)
}

/// Escapes `text` for HTML or SVG text content and double- or single-quoted attribute
/// values: `& < > " '` become references, and [`is_disallowed_char`] characters become
/// U+FFFD, so nothing in `text` can end an element, an attribute or a comment, open a
/// tag, or reorder what is displayed. The trust renderers' rule.
pub fn escape_markup(text: &str) -> String {
    escape_html_replacing(text, is_disallowed_char)
}

/// [`escape_html`], also replacing every character for which `replace` holds with
/// U+FFFD.
fn escape_html_replacing(text: &str, replace: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if replace(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Vietnamese precomposed letters by base letter. Tone marks and the breve, circumflex
/// and horn sit above or below the base glyph and barely change its advance width, so a
/// precomposed letter is measured as its base letter.
const VIETNAMESE_BY_BASE: &[(char, &str)] = &[
    ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
    ('A', "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ"),
    ('e', "èéẻẽẹêềếểễệ"),
    ('E', "ÈÉẺẼẸÊỀẾỂỄỆ"),
    ('i', "ìíỉĩị"),
    ('I', "ÌÍỈĨỊ"),
    ('o', "òóỏõọôồốổỗộơờớởỡợ"),
    ('O', "ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ"),
    ('u', "ùúủũụưừứửữự"),
    ('U', "ÙÚỦŨỤƯỪỨỬỮỰ"),
    ('y', "ỳýỷỹỵ"),
    ('Y', "ỲÝỶỸỴ"),
    ('d', "đ"),
    ('D', "Đ"),
];

/// The letter whose width `c` has when text is measured for SVG: itself, or the base
/// Latin letter of a precomposed Vietnamese letter (`ệ` → `e`, `Đ` → `D`).
pub fn width_base(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    VIETNAMESE_BY_BASE
        .iter()
        .find(|(_, letters)| letters.contains(c))
        .map_or(c, |(base, _)| *base)
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

    #[test]
    fn escaping_is_exact() {
        assert_eq!(
            escape_markup("<a href=\"x\">'&'</a>\u{202e}\u{2028}ệ"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{fffd}\u{fffd}ệ"
        );
    }

    #[test]
    fn vietnamese_letters_are_measured_as_their_base_letter() {
        assert_eq!(width_base('ệ'), 'e');
        assert_eq!(width_base('Đ'), 'D');
        assert_eq!(width_base('x'), 'x');
        assert_eq!(width_base('漢'), '漢');
    }
}
