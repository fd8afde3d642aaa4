//! A user's lists as the journal stores them, written straight into a string.
//!
//! These are the same bytes serde_json writes for [`Snapshot::User`] and for the `before`
//! stored against the lists written ([`crate::row::before_json`]); the tests hold the two to
//! each other. serde_json escapes every key and every definition id byte by byte, which was
//! the largest single cost of journaling a 100,000-agent apply once SQLite's own was cut
//! (docs/BENCHMARKS.md): here a string is copied as it is when no byte of it needs escaping,
//! which is every id a tenant issues, and handed to serde_json otherwise.

use crate::{Held, UserLists};

/// One entry of a `before` list stored against the written list.
pub(crate) enum Entry<'a> {
    /// The written list's entry at this index.
    Same(usize),
    /// This entry, whole.
    Held(&'a Held),
}

/// `{"type":TAG,"version":…,"skills":…,"proficiencies":…}` of a user snapshot.
pub(crate) fn user(tag: &str, lists: &UserLists) -> String {
    let mut out = String::with_capacity(64 + 80 * list_len(&lists.skills, &lists.proficiencies));
    open(&mut out, tag, lists.version);
    out.push_str(r#","skills":"#);
    list(
        &mut out,
        lists.skills.as_deref().map(|l| l.iter().map(Entry::Held)),
    );
    out.push_str(r#","proficiencies":"#);
    list(
        &mut out,
        lists
            .proficiencies
            .as_deref()
            .map(|l| l.iter().map(Entry::Held)),
    );
    out.push('}');
    out
}

/// The same document with each list given as [`Entry`]s.
pub(crate) fn delta<'a>(
    tag: &str,
    version: Option<u64>,
    skills: Option<impl Iterator<Item = Entry<'a>>>,
    proficiencies: Option<impl Iterator<Item = Entry<'a>>>,
) -> String {
    let mut out = String::with_capacity(256);
    open(&mut out, tag, version);
    out.push_str(r#","skills":"#);
    list(&mut out, skills);
    out.push_str(r#","proficiencies":"#);
    list(&mut out, proficiencies);
    out.push('}');
    out
}

fn list_len(skills: &Option<Vec<Held>>, proficiencies: &Option<Vec<Held>>) -> usize {
    skills.as_ref().map_or(0, Vec::len) + proficiencies.as_ref().map_or(0, Vec::len)
}

fn open(out: &mut String, tag: &str, version: Option<u64>) {
    out.push_str(r#"{"type":"#);
    string(out, tag);
    out.push_str(r#","version":"#);
    match version {
        Some(version) => number(out, version),
        None => out.push_str("null"),
    }
}

fn list<'a>(out: &mut String, entries: Option<impl Iterator<Item = Entry<'a>>>) {
    let Some(entries) = entries else {
        out.push_str("null");
        return;
    };
    out.push('[');
    for (n, entry) in entries.enumerate() {
        if n > 0 {
            out.push(',');
        }
        match entry {
            Entry::Same(index) => number(out, index as u64),
            Entry::Held(held) => {
                out.push_str(r#"{"definitionId":"#);
                string(out, &held.definition_id);
                out.push_str(r#","level":"#);
                number(out, u64::from(held.level));
                out.push_str(if held.active {
                    r#","active":true}"#
                } else {
                    r#","active":false}"#
                });
            }
        }
    }
    out.push(']');
}

fn number(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// `text` as a JSON string: as it is when nothing in it needs escaping, else as serde_json
/// escapes it (a control character, a quote, a backslash).
fn string(out: &mut String, text: &str) {
    // Every byte looked at, without stopping at the first to escape: the loop then runs on
    // whole vectors of bytes.
    let needs_escaping = text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escaping {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).expect("a string serializes to JSON"));
    }
}
