//! JSON written the way a worker's own encoder writes it.
//!
//! Node.js's `JSON.stringify` writes compact JSON, as serde_json does; Python's `json.dumps`
//! (which the bootstrap uses, as Lambda's Python runtime does) separates with `", "` and
//! `": "` and escapes every non-ASCII character. An event written in its function's style
//! comes back byte for byte when the function returns part of it unchanged, so a caller can
//! recognise an unchanged result by comparing bytes instead of parsing it.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, Serializer};

use crate::Language;

/// How a runtime's encoder lays out JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// No whitespace; only `"`, `\` and control characters escaped (`JSON.stringify`).
    Compact,
    /// `json.dumps` defaults: `", "` and `": "`, non-ASCII and DEL escaped as `\uXXXX`.
    Python,
}

impl Language {
    /// The layout of the JSON this language's bootstrap writes.
    pub fn json_style(self) -> JsonStyle {
        match self {
            Language::Node => JsonStyle::Compact,
            Language::Python => JsonStyle::Python,
        }
    }
}

impl JsonStyle {
    /// Appends `value` as JSON in this style.
    pub fn write<T: Serialize + ?Sized>(
        self,
        out: &mut Vec<u8>,
        value: &T,
    ) -> serde_json::Result<()> {
        match self {
            JsonStyle::Compact => {
                value.serialize(&mut Serializer::with_formatter(out, CompactFormatter))
            }
            JsonStyle::Python => {
                value.serialize(&mut Serializer::with_formatter(out, PythonFormatter))
            }
        }
    }

    /// What separates a key from its value.
    pub fn key_separator(self) -> &'static str {
        match self {
            JsonStyle::Compact => ":",
            JsonStyle::Python => ": ",
        }
    }

    /// What separates the members of an object or array.
    pub fn item_separator(self) -> &'static str {
        match self {
            JsonStyle::Compact => ",",
            JsonStyle::Python => ", ",
        }
    }
}

/// `json.dumps` with its default arguments (`ensure_ascii=True`, separators `", "`, `": "`).
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(w, first)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(JsonStyle::Python.key_separator().as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has escaped quotes, backslashes and control characters already (with
        // the same escapes Python uses); what is left is what ensure_ascii adds.
        let mut plain = 0;
        for (at, c) in fragment.char_indices() {
            if c.is_ascii() && c != '\u{7f}' {
                continue;
            }
            w.write_all(&fragment.as_bytes()[plain..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            plain = at + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[plain..])
    }
}

/// `", "` before every member but the first.
fn item_separator<W: ?Sized + io::Write>(w: &mut W, first: bool) -> io::Result<()> {
    if first {
        Ok(())
    } else {
        w.write_all(JsonStyle::Python.item_separator().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(style: JsonStyle, v: &serde_json::Value) -> String {
        let mut out = Vec::new();
        style.write(&mut out, v).expect("serialisable");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn compact_is_serde_json() {
        let v = json!({"a": [1, "é\u{1f}"], "b": {"c": null}});
        assert_eq!(
            text(JsonStyle::Compact, &v),
            serde_json::to_string(&v).unwrap()
        );
    }

    #[test]
    fn python_matches_json_dumps() {
        // What `json.dumps` prints for the same value (checked against CPython 3.11).
        let v = json!({"a": [1, "é\u{1f}\n\"\\\u{7f}😀"], "b": {"c": null, "d": true}});
        assert_eq!(
            text(JsonStyle::Python, &v),
            r#"{"a": [1, "\u00e9\u001f\n\"\\\u007f\ud83d\ude00"], "b": {"c": null, "d": true}}"#
        );
    }
}
