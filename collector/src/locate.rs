//! Lines of keys in a TOML document, for error messages about values that parsed but failed
//! validation.

use std::fmt;

use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl Seg {
    /// A key step.
    pub fn k(s: &str) -> Self {
        Self::Key(s.to_owned())
    }

    /// An index step.
    pub fn i(n: usize) -> Self {
        Self::Index(n)
    }
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(k) => f.write_str(k),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// 1-based line of byte `offset`.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of the deepest part of `path` present in `text` (the key itself when written, else
/// the closest enclosing table or array element).
pub fn line_of_key(text: &str, path: &[Seg]) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<usize> = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut value: Option<&DeValue<'_>> = None;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                let ((Some(t), _) | (None, Some(DeValue::Table(t)))) = (table.take(), value) else { return best };
                let (key, v) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k.as_str())?;
                // A key of a `[[table]]` header spans nothing useful; prefer the value's span then.
                let span = if key.span().is_empty() { v.span() } else { key.span() };
                if !span.is_empty() {
                    best = Some(line_of_offset(text, span.start));
                }
                value = Some(v.get_ref());
            }
            Seg::Index(i) => {
                let Some(DeValue::Array(a)) = value else { return best };
                let el = a.get(*i)?;
                if !el.span().is_empty() {
                    best = Some(line_of_offset(text, el.span().start));
                }
                value = Some(el.get_ref());
                table = None;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_arrays_of_tables_and_inline_tables() {
        let t = "[global]\nscrape_interval = \"15s\"\n\n[[scrape_configs]]\njob_name = \"a\"\n\n[[scrape_configs]]\njob_name = \"b\"\nscrape_timeout = \"1m\"\nrelabel_configs = [\n  { action = \"keep\" },\n  { action = \"hashmod\" },\n]\n";
        assert_eq!(line_of_key(t, &[Seg::k("global"), Seg::k("scrape_interval")]), Some(2));
        assert_eq!(line_of_key(t, &[Seg::k("scrape_configs"), Seg::i(1), Seg::k("scrape_timeout")]), Some(9));
        assert_eq!(line_of_key(t, &[Seg::k("scrape_configs"), Seg::i(0), Seg::k("job_name")]), Some(5));
        assert_eq!(
            line_of_key(t, &[Seg::k("scrape_configs"), Seg::i(1), Seg::k("relabel_configs"), Seg::i(1)]),
            Some(12)
        );
    }
}
