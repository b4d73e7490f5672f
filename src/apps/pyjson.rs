//! JSON written as the sandbox's Python writes it (`json.dumps` with its defaults): `", "` and
//! `": "` between items, and every character outside printable ASCII escaped as `\uXXXX`
//! (UTF-16 surrogate pairs above U+FFFF). The UDP apps send their text as a JSON string, so the
//! bytes on the wire, and the lines the sandbox's apps print from them, are the same whether a
//! datagram came from tcplab's app or the sandbox's.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

/// serde_json's compact output with Python's separators and `ensure_ascii`.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    // serde_json has already escaped `"`, `\` and the control characters below 0x20 exactly as
    // Python does (`\n`, `\u001f`...); what is left to escape is DEL and everything non-ASCII.
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() && c != '\x7f' {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// `value` as Python's `json.dumps(value)` writes it.
pub fn dumps<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising strings, numbers, vectors and maps into memory cannot fail, and the formatter
    // writes ASCII only.
    match value.serialize(&mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_as_python_writes_them() {
        // Each expected value is what `python3 -c 'import json; print(json.dumps(S))'` prints.
        assert_eq!(
            dumps("Message #1 from client Alice"),
            r#""Message #1 from client Alice""#
        );
        assert_eq!(dumps("Zoë"), r#""Zo\u00eb""#);
        assert_eq!(dumps("a\"b\\c\n\t\x01\x7f"), r#""a\"b\\c\n\t\u0001\u007f""#);
        assert_eq!(dumps("🦀"), r#""\ud83e\udd80""#);
    }

    #[test]
    fn separators_as_python_writes_them() {
        let v = serde_json::json!({"client_name": "A", "sequence_number": 1, "n": [1, 2]});
        assert_eq!(
            dumps(&v),
            r#"{"client_name": "A", "n": [1, 2], "sequence_number": 1}"#
        );
    }
}
