//! Where each key of `skillsync.toml` sits, so that a problem found after parsing (a value of
//! the right type but wrong, a secret file that is missing) names the line as a parse error
//! does.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The span of every key's value, by dotted path (`sync.max_removals`).
#[derive(Debug, Clone, Default)]
pub struct Locations {
    values: Vec<(String, Range<usize>)>,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Keys set from the environment, and the variable that set each (see `env.rs`).
    from_env: Vec<(String, String)>,
}

impl Locations {
    /// The places of `text`'s keys; none when it does not parse (then toml's own error has the
    /// place).
    pub fn of(text: &str) -> Locations {
        let mut values = Vec::new();
        if let Ok(table) = DeTable::parse(text) {
            collect(table.get_ref(), "", &mut values);
        }
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Locations {
            values,
            line_starts,
            from_env: Vec::new(),
        }
    }

    /// Records that `key` was set by the environment variable `var`: a problem with it is
    /// about the variable, not the file's line.
    pub fn set_from_env(&mut self, key: &str, var: &str) {
        self.from_env.push((key.to_string(), var.to_string()));
    }

    /// The environment variable that set `key`, if one did.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.from_env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, var)| var.as_str())
    }

    /// The 1-based line and column of `key`'s value, if the file has it.
    pub fn key(&self, key: &str) -> Option<(u64, u64)> {
        let span = self.values.iter().find(|(k, _)| k == key)?.1.clone();
        Some(self.line_and_column(span.start))
    }

    /// The innermost key whose value holds `offset`: what a type error at `offset` is about.
    pub fn key_at(&self, offset: usize) -> Option<&str> {
        self.values
            .iter()
            .filter(|(_, span)| span.start <= offset && offset <= span.end)
            .min_by_key(|(_, span)| span.end - span.start)
            .map(|(key, _)| key.as_str())
    }

    /// The 1-based line and column of a byte offset (columns count bytes: toml's spans do).
    pub fn line_and_column(&self, offset: usize) -> (u64, u64) {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        (line as u64, (offset - start.min(offset)) as u64 + 1)
    }
}

fn collect(table: &DeTable<'_>, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if let DeValue::Table(inner) = value.get_ref() {
            collect(inner, &path, out);
        }
        out.push((path, value.span()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_tables_and_inline_tables_have_their_lines() {
        let text = "[tenant]\napi_base = \"x\"\nclient_secret = { file = \"s\" }\n\n[sync]\nmax_removals = -3\n";
        let at = Locations::of(text);
        assert_eq!(at.key("tenant.api_base"), Some((2, 12)));
        assert_eq!(at.key("tenant.client_secret.file"), Some((3, 26)));
        assert_eq!(at.key("sync.max_removals"), Some((6, 16)));
        assert_eq!(at.key("sync.window"), None);
        let offset = text.find("-3").unwrap();
        assert_eq!(at.key_at(offset), Some("sync.max_removals"));
    }
}
