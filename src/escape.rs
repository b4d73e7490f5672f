//! Text from files and programs made safe for a terminal: control characters (ESC, CR, BEL,
//! C1 controls such as CSI) and bidirectional overrides are shown as escapes like `\x1b`
//! instead of being sent raw, so a scenario, a topology or a program's output cannot move the
//! cursor, recolour, retitle or hide text on the user's terminal.

use std::borrow::Cow;
use std::fmt::Write;

/// One line for a terminal: every control character, newlines included, is escaped.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Text of several lines for a terminal: newlines are kept, every other control character is
/// escaped.
pub fn text(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn needs_escape(c: char, keep_newlines: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !keep_newlines,
        // Bidirectional embeddings, overrides and isolates reorder what the user reads.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        c => c.is_control(),
    }
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_escape(c, keep_newlines)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c, keep_newlines) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\n' => write!(out, "\\n"),
            '\r' => write!(out, "\\r"),
            c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:x}}}", c as u32),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        assert!(matches!(
            line("Message #1 from client Alice\twith tab"),
            Cow::Borrowed(_)
        ));
        assert_eq!(text("a\nb"), "a\nb");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(line("\x1b[2J\x07title\r"), "\\x1b[2J\\x07title\\r");
        assert_eq!(line("a\nb"), "a\\nb");
        assert_eq!(text("a\x1b]0;x\x07\nb"), "a\\x1b]0;x\\x07\nb");
        assert_eq!(line("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(line("x\u{202e}y\x7f"), "x\\u{202e}y\\x7f");
    }

    #[test]
    fn escaped_text_has_no_control_left() {
        let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        assert!(!line(&all).chars().any(|c| c.is_control() && c != '\t'));
        assert!(
            !text(&all)
                .chars()
                .any(|c| c.is_control() && c != '\t' && c != '\n')
        );
    }
}
