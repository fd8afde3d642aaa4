//! Keys of `skillsync.toml` set from the environment, for a container whose config file is
//! baked into the image: `SKILLSYNC_SECTION__KEY=value` sets `[section] key` over the file's
//! (`SKILLSYNC_SYNC__MAX_REMOVALS=5%`, `SKILLSYNC_LIMITS__BURST=40`). A double underscore
//! separates the parts, so the project's other variables (`SKILLSYNC_ADOPT`,
//! `SKILLSYNC_CACHE_DIR`) are never taken for keys. The value is read as a TOML value when it
//! is one (`40`, `true`, `"text"`, `["a", "b"]`), else as text (`5%`, `22:00-02:00`).
//!
//! Hand-written rather than layered by a crate such as figment: the file's problems keep their
//! line and column (see `locate.rs`), and a problem with a value from the environment names the
//! variable that set it.

use skillsync_core::Problem;

/// The prefix of every variable that sets a key.
const PREFIX: &str = "SKILLSYNC_";

/// One key set from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The variable, as the user wrote it: problems name it.
    pub var: String,
    /// The dotted key it sets (`sync.max_removals`).
    pub key: String,
    /// The value.
    pub value: toml::Value,
}

/// The overrides among `vars` (the process's environment), sorted by variable; a variable
/// whose value is not UTF-8 is a problem.
pub fn overrides(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<Override>, Vec<Problem>> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in vars {
        let Some(name) = name.to_str() else { continue };
        let Some(path) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if !path.contains("__") {
            continue;
        }
        let key = path
            .split("__")
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        match value.into_string() {
            Ok(text) => found.push(Override {
                var: name.to_string(),
                key,
                value: value_of(&text),
            }),
            Err(_) => problems.push(
                Problem::error(name, "the value is not UTF-8 text")
                    .hint(format!("it sets `{key}` of skillsync.toml")),
            ),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    found.sort_by(|a, b| a.var.cmp(&b.var));
    Ok(found)
}

/// `text` as a TOML value when it is one, else as text.
fn value_of(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("value = {text}"))
        .ok()
        .filter(|table| table.len() == 1)
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Sets `over`'s key in `table`, making the sections it names; a problem when a part of the
/// key is a value rather than a section.
pub fn apply(table: &mut toml::Table, over: &Override) -> Result<(), Problem> {
    let mut parts: Vec<&str> = over.key.split('.').collect();
    let last = parts.pop().unwrap_or_default();
    let mut here = table;
    for (i, part) in parts.iter().enumerate() {
        let entry = here
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = match entry {
            toml::Value::Table(inner) => inner,
            _ => {
                return Err(Problem::error(
                    &over.var,
                    format!("`{}` is a value, not a section", parts[..=i].join(".")),
                )
                .hint(format!("it sets `{}` of skillsync.toml", over.key)));
            }
        };
    }
    here.insert(last.to_string(), over.value.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn only_variables_with_a_double_underscore_set_keys_and_values_keep_their_toml_type() {
        let found = overrides(vars(&[
            ("SKILLSYNC_ADOPT", "all"),
            ("SKILLSYNC_SYNC__MAX_REMOVALS", "5%"),
            ("SKILLSYNC_LIMITS__BURST", "40"),
            ("SKILLSYNC_TENANT__SCOPES", "[\"a\", \"b\"]"),
            ("OTHER__KEY", "1"),
        ]))
        .unwrap();
        let keys: Vec<(&str, &toml::Value)> =
            found.iter().map(|o| (o.key.as_str(), &o.value)).collect();
        assert_eq!(
            keys,
            vec![
                ("limits.burst", &toml::Value::Integer(40)),
                ("sync.max_removals", &toml::Value::String("5%".into())),
                (
                    "tenant.scopes",
                    &toml::Value::Array(vec!["a".into(), "b".into()])
                ),
            ]
        );
    }

    #[test]
    fn a_value_that_would_add_keys_is_taken_as_text() {
        assert_eq!(
            value_of("1\nother = 2"),
            toml::Value::String("1\nother = 2".into())
        );
    }

    #[test]
    fn a_key_under_a_value_is_refused_naming_the_variable() {
        let mut table: toml::Table = toml::from_str("[sync]\nwindow = \"x\"\n").unwrap();
        let over = Override {
            var: "SKILLSYNC_SYNC__WINDOW__START".into(),
            key: "sync.window.start".into(),
            value: toml::Value::Integer(1),
        };
        let problem = apply(&mut table, &over).unwrap_err();
        assert_eq!(problem.file, "SKILLSYNC_SYNC__WINDOW__START");
        assert!(problem.message.contains("`sync.window` is a value"));
    }
}
