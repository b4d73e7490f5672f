//! Finds where a field of a TOML file sits, so that errors found after parsing still point at
//! a line.

use toml::de::{DeTable, DeValue};

use super::resolve::{FieldPath, Segment};

/// Line and column (1-based) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // An offset inside a character counts from the character's start.
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The byte offset of the deepest part of `path` present in `text`.
pub fn offset_of(text: &str, path: &FieldPath) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut best = None;
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut value: Option<&DeValue> = None;
    for seg in &path.0 {
        match seg {
            Segment::Key(_) | Segment::Name(_) => {
                let key = match seg {
                    Segment::Key(k) => *k,
                    Segment::Name(n) => n.as_str(),
                    Segment::Index(_) => unreachable!("matched above"),
                };
                let t = match (table, value) {
                    (Some(t), _) => t,
                    (None, Some(DeValue::Table(t))) => t,
                    _ => break,
                };
                let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
                    break;
                };
                best = Some(k.span().start);
                if !matches!(v.get_ref(), DeValue::Array(_) | DeValue::Table(_)) {
                    best = Some(v.span().start);
                }
                table = None;
                value = Some(v.get_ref());
            }
            Segment::Index(i) => {
                let Some(DeValue::Array(items)) = value else {
                    break;
                };
                let Some(item) = items.get(*i) else {
                    break;
                };
                best = Some(item.span().start);
                table = None;
                value = Some(item.get_ref());
            }
        }
    }
    best
}

/// The byte offset of each item of the top-level array `key` (`[[expect]]` tables, say), in
/// order, from one parse of `text` (a line per item for thousands of items costs one parse).
pub fn item_offsets(text: &str, key: &str) -> Vec<usize> {
    let Ok(root) = DeTable::parse(text) else {
        return Vec::new();
    };
    match root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v.get_ref())
    {
        Some(DeValue::Array(items)) => items.iter().map(|i| i.span().start).collect(),
        _ => Vec::new(),
    }
}

/// The byte offset of the first key named `key` at any depth inside item `index` of the
/// top-level array `array` (where an unknown field of a `[[step]]` sits, say).
pub fn key_in_item(text: &str, array: &str, index: usize, key: &str) -> Option<usize> {
    fn find(value: &DeValue, key: &str) -> Option<usize> {
        match value {
            DeValue::Table(t) => t.iter().find_map(|(k, v)| {
                if k.get_ref().as_ref() == key {
                    Some(k.span().start)
                } else {
                    find(v.get_ref(), key)
                }
            }),
            DeValue::Array(items) => items.iter().find_map(|i| find(i.get_ref(), key)),
            _ => None,
        }
    }
    let root = DeTable::parse(text).ok()?;
    let (_, items) = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == array)?;
    match items.get_ref() {
        DeValue::Array(items) => find(items.get(index)?.get_ref(), key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_past_the_end_or_inside_a_character_do_not_panic() {
        assert_eq!(line_col("a\né", 4), (2, 2));
        assert_eq!(line_col("a\né", 3), (2, 1));
        assert_eq!(line_col("a\n", 99), (2, 1));
    }

    #[test]
    fn finds_nested_fields() {
        let text = "subnet = \"10.0.0.0/24\"\n\n[[host]]\nname = \"a\"\n\n[[host]]\nname = \"b\"\naddress = \"10.0.0.9\"\n";
        let path = FieldPath(vec![
            Segment::Key("host"),
            Segment::Index(1),
            Segment::Key("address"),
        ]);
        let (line, col) = line_col(text, offset_of(text, &path).unwrap());
        assert_eq!((line, col), (8, 11));
        let missing = FieldPath(vec![
            Segment::Key("host"),
            Segment::Index(0),
            Segment::Key("address"),
        ]);
        assert_eq!(line_col(text, offset_of(text, &missing).unwrap()).0, 3);
    }

    #[test]
    fn finds_each_item_of_an_array_of_tables() {
        let text = "a = 1\n\n[[expect]]\nkind = \"x\"\n\n# why\n[[expect]]\nkind = \"y\"\n[[step]]\n[[expect]]\nkind = \"z\"\n";
        let lines: Vec<usize> = item_offsets(text, "expect")
            .into_iter()
            .map(|o| line_col(text, o).0)
            .collect();
        assert_eq!(lines, [3, 7, 10]);
        assert!(item_offsets(text, "missing").is_empty());
        assert!(item_offsets("not = [toml", "expect").is_empty());
    }
}
