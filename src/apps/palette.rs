//! The sandbox server's per-connection colours: red, green, blue, yellow, magenta, cyan, then
//! the light variants, cycling. anstream strips them for NO_COLOR and non-terminals.

use anstyle::{AnsiColor, Style};

const COLOURS: [AnsiColor; 12] = [
    AnsiColor::Red,
    AnsiColor::Green,
    AnsiColor::Blue,
    AnsiColor::Yellow,
    AnsiColor::Magenta,
    AnsiColor::Cyan,
    AnsiColor::BrightRed,
    AnsiColor::BrightGreen,
    AnsiColor::BrightBlue,
    AnsiColor::BrightYellow,
    AnsiColor::BrightMagenta,
    AnsiColor::BrightCyan,
];

/// The style of worker `n` (1-based, as printed).
pub(crate) fn worker_style(n: usize) -> Style {
    let colour = COLOURS[n.saturating_sub(1) % COLOURS.len()];
    Style::new().fg_color(Some(colour.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_after_twelve() {
        assert_eq!(worker_style(1), worker_style(13));
        assert_ne!(worker_style(1), worker_style(2));
        assert_ne!(worker_style(1), worker_style(7));
    }
}
