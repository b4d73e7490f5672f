//! Quantities as people write them.

/// Seconds as a person writes them: `3`, `0.5`, `2.25`.
pub fn fmt_secs(secs: f64) -> String {
    let s = format!("{secs:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_render_without_noise() {
        assert_eq!(fmt_secs(3.0), "3");
        assert_eq!(fmt_secs(0.5), "0.5");
        assert_eq!(fmt_secs(2.25), "2.25");
    }
}
