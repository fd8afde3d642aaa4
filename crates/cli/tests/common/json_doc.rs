//! Holds a JSON document's page in `docs/` to what a command prints: the field names each
//! table of the page lists, per object, against the keys the printed JSON has, per object.
//!
//! A page documents an object with a table whose header row starts `| Field |`, one field per
//! row, its name in backticks in the first column. The object is named by the first backticked
//! span of the nearest heading above the table: a path such as `queues[]` (each element of the
//! top-level `queues` array) or `retired.api`; a heading without one names the top level.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

/// Field names per object path.
pub type Fields = BTreeMap<String, BTreeSet<String>>;

/// The text of `docs/NAME`.
pub fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fields the page's tables list, per object path. Panics on two tables for one object
/// or a row without a backticked name, so a page cannot document a field by accident.
pub fn documented(page: &str) -> Fields {
    let mut fields = Fields::new();
    let mut object = String::new();
    let mut table: Option<BTreeSet<String>> = None;
    let mut fenced = false;
    let mut close = |table: &mut Option<BTreeSet<String>>, object: &str| {
        if let Some(names) = table.take() {
            assert!(
                fields.insert(object.to_string(), names).is_none(),
                "two field tables document `{object}`"
            );
        }
    };
    for line in page.lines() {
        let line = line.trim_end();
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        if table.is_some() && !line.starts_with('|') {
            close(&mut table, &object);
        }
        if let Some(names) = &mut table {
            if !line.starts_with("|---") {
                let first = line.split('|').nth(1).unwrap_or_default();
                let name = backticked(first)
                    .unwrap_or_else(|| panic!("a field row without a `name`: {line}"));
                assert!(names.insert(name.to_string()), "`{name}` twice in {object}");
            }
        } else if line.starts_with('#') {
            object = backticked(line).unwrap_or_default().to_string();
        } else if line.starts_with("| Field |") {
            table = Some(BTreeSet::new());
        }
    }
    close(&mut table, &object);
    fields
}

/// The first span between backticks.
fn backticked(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

/// Adds the keys of every object in `value` to `fields`, per path below `root` (`""` for a
/// document's top level). The objects at `opaque` paths are maps whose keys are data: they
/// are not descended into.
pub fn printed(value: &Value, root: &str, opaque: &[&str], fields: &mut Fields) {
    match value {
        Value::Object(map) => {
            let names = fields.entry(root.to_string()).or_default();
            names.extend(map.keys().cloned());
            for (key, child) in map {
                let path = if root.is_empty() {
                    key.clone()
                } else {
                    format!("{root}.{key}")
                };
                if !opaque.contains(&path.as_str()) {
                    printed(child, &path, opaque, fields);
                }
            }
        }
        Value::Array(items) => {
            let path = format!("{root}[]");
            for item in items {
                printed(item, &path, opaque, fields);
            }
        }
        _ => {}
    }
}

/// Fails, naming every difference, unless the page documents exactly the fields printed.
pub fn assert_same(page: &str, documented: &Fields, printed: &Fields) {
    let mut problems = Vec::new();
    let objects: BTreeSet<&String> = documented.keys().chain(printed.keys()).collect();
    let empty = BTreeSet::new();
    for object in objects {
        let doc = documented.get(object).unwrap_or(&empty);
        let out = printed.get(object).unwrap_or(&empty);
        let shown = if object.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{object}`")
        };
        let undocumented: Vec<&String> = out.difference(doc).collect();
        if !undocumented.is_empty() {
            problems.push(format!(
                "printed in {shown} but not documented: {undocumented:?}"
            ));
        }
        let gone: Vec<&String> = doc.difference(out).collect();
        if !gone.is_empty() {
            problems.push(format!("documented in {shown} but not printed: {gone:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/{page} and the command disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The page's ```json blocks, parsed.
pub fn examples(page: &str) -> Vec<Value> {
    page.split("```json\n")
        .skip(1)
        .map(|rest| {
            let block = rest.split("```").next().unwrap();
            serde_json::from_str(block)
                .unwrap_or_else(|e| panic!("an example is not JSON ({e}):\n{block}"))
        })
        .collect()
}

/// Fails unless every field of an example is documented at its path.
pub fn assert_example_documented(page: &str, documented: &Fields, example: &Fields) {
    let missing: Vec<String> = example
        .iter()
        .flat_map(|(object, names)| {
            let doc = documented.get(object);
            names
                .iter()
                .filter(move |n| doc.is_none_or(|d| !d.contains(*n)))
                .map(move |n| format!("{object}: {n}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the examples of docs/{page} hold undocumented fields: {missing:?}"
    );
}
