//! How the status pages say times, durations, counts and changes: times in the tenant's zone
//! (the one `[sync] window` and `full_sync_at` are written in), the server's own where it
//! helps; a journaled write as before → after, definitions named by their HRIS code.

use std::collections::{BTreeSet, HashMap};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use skillsync_core::plan::AssignmentChange;
use skillsync_store::{Held, Snapshot, WriteTarget};

/// The tenant's time zone and the server's.
pub struct Clocks {
    pub tenant: TimeZone,
    /// The tenant zone's IANA name (`UTC` when none is configured).
    pub tenant_name: String,
    pub local: TimeZone,
}

impl Clocks {
    /// `2026-12-03 04:35:12 CET`, in the tenant's zone.
    pub fn tenant(&self, at: Timestamp) -> String {
        at.to_zoned_datetime(self.tenant.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// The same instant in the server's zone.
    pub fn local(&self, at: Timestamp) -> String {
        at.to_zoned_datetime(self.local.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// For table cells: the tenant's time without the date when it is `now`'s date.
    pub fn short(&self, at: Timestamp, now: Timestamp) -> String {
        let zoned = at.to_zoned_datetime(self.tenant.clone());
        if zoned.date() == now.to_zoned_datetime(self.tenant.clone()).date() {
            zoned.strftime("%H:%M:%S").to_string()
        } else {
            zoned.strftime("%Y-%m-%d %H:%M").to_string()
        }
    }
}

/// `850 ms`, `42 s`, `3 min 05 s`, `2 h 07 min`, `3 d 4 h`.
pub fn duration(span: SignedDuration) -> String {
    let span = span.abs();
    let ms = span.as_millis();
    let secs = span.as_secs();
    match secs {
        _ if ms < 1000 => format!("{ms} ms"),
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {:02} s", secs / 60, secs % 60),
        3600..86400 => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86400, secs % 86400 / 3600),
    }
}

/// `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share in percent with one decimal: `0.4%`.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".into();
    }
    format!("{:.1}%", part as f64 * 100.0 / whole as f64)
}

/// One change of a plan, as `skillsync drift` words it.
pub fn plan_change(change: &AssignmentChange) -> String {
    let what = format!("{} {} ({})", change.kind, change.name, change.locale);
    let active = |a: bool| if a { "" } else { ", inactive" };
    match (change.before, change.after) {
        (None, Some(after)) => format!(
            "+ {what}: missing in the tenant; the HRIS says level {}",
            after.level
        ),
        (Some(before), None) => format!(
            "− {what}: in the tenant at level {}; not in the HRIS for this agent",
            before.level
        ),
        (Some(before), Some(after)) => format!(
            "~ {what}: tenant level {}{}, HRIS level {}{}",
            before.level,
            active(before.active),
            after.level,
            active(after.active)
        ),
        (None, None) => what,
    }
}

/// Definition ids named as `CODE (locale)`, from the journal's mappings.
pub type Names = HashMap<String, String>;

/// What a journaled write changed, one line per assignment or field: `+ Billing (en-us) 5`,
/// `Billing (en-us) 3 → 5`, `− Billing (en-us) (was 3)`.
pub fn write_change(
    target: WriteTarget,
    before: &Snapshot,
    after: &Snapshot,
    names: &Names,
) -> Vec<String> {
    let lines = match (before, after) {
        (Snapshot::User(b), Snapshot::User(a)) => {
            let mut lines = Vec::new();
            for (kind, b, a) in [
                ("skills", &b.skills, &a.skills),
                ("proficiencies", &b.proficiencies, &a.proficiencies),
            ] {
                let Some(a) = a else { continue };
                let empty = Vec::new();
                let b = b.as_ref().unwrap_or(&empty);
                if a.is_empty() && !b.is_empty() {
                    lines.push(format!("all {kind} removed ({} before)", b.len()));
                    continue;
                }
                lines.extend(list_change(b, a, names));
            }
            lines
        }
        (Snapshot::Absent, Snapshot::Definition(d)) => {
            vec![format!("created {} {} ({})", d.kind, d.name, d.locale)]
        }
        (Snapshot::Definition(d), Snapshot::Absent) => {
            vec![format!("deleted {} {} ({})", d.kind, d.name, d.locale)]
        }
        (Snapshot::Definition(b), Snapshot::Definition(a)) => {
            let mut lines = Vec::new();
            if b.active != a.active {
                lines.push(format!("{}: active {} → {}", a.name, b.active, a.active));
            }
            if b.description != a.description {
                lines.push(format!(
                    "{}: description “{}” → “{}”",
                    a.name, b.description, a.description
                ));
            }
            if b.routing_profile_id != a.routing_profile_id {
                lines.push(format!(
                    "{}: profile {} → {}",
                    a.name, b.routing_profile_id, a.routing_profile_id
                ));
            }
            lines
        }
        (Snapshot::Profile(b), Snapshot::Profile(a)) => vec![format!(
            "profile {}: {} skills, {} proficiencies → {} skills, {} proficiencies",
            a.name,
            b.skills.len(),
            b.proficiencies.len(),
            a.skills.len(),
            a.proficiencies.len()
        )],
        (Snapshot::Legacy { .. }, _) | (_, Snapshot::Legacy { .. }) => {
            vec!["written before the journal was typed (see `skillsync history`)".into()]
        }
        _ => vec![format!("{} written", target.as_str().replace('_', " "))],
    };
    if lines.is_empty() {
        vec!["no change (found as wanted)".into()]
    } else {
        lines
    }
}

/// The entries of one list that differ, by definition.
fn list_change(before: &[Held], after: &[Held], names: &Names) -> Vec<String> {
    let find = |list: &[Held], id: &str| list.iter().find(|h| h.definition_id == id).cloned();
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let flag = |h: &Held| if h.active { "" } else { " (inactive)" };
    let ids: BTreeSet<&str> = before
        .iter()
        .chain(after)
        .map(|h| h.definition_id.as_str())
        .collect();
    let mut lines = Vec::new();
    for id in ids {
        match (find(before, id), find(after, id)) {
            (None, Some(a)) => lines.push(format!("+ {} {}{}", name(id), a.level, flag(&a))),
            (Some(b), None) => lines.push(format!("− {} (was {})", name(id), b.level)),
            (Some(b), Some(a)) if b != a => lines.push(format!(
                "{} {}{} → {}{}",
                name(id),
                b.level,
                flag(&b),
                a.level,
                flag(&a)
            )),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use skillsync_store::UserLists;

    #[test]
    fn durations_and_counts_read_at_a_glance() {
        assert_eq!(duration(SignedDuration::from_millis(850)), "850 ms");
        assert_eq!(duration(SignedDuration::from_secs(42)), "42 s");
        assert_eq!(duration(SignedDuration::from_secs(185)), "3 min 05 s");
        assert_eq!(duration(SignedDuration::from_secs(7620)), "2 h 07 min");
        assert_eq!(duration(SignedDuration::from_secs(-42)), "42 s");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 0), "—");
    }

    #[test]
    fn a_user_write_reads_as_the_entries_it_changed() {
        let held = |id: &str, level: u8, active: bool| Held {
            definition_id: id.into(),
            level,
            active,
        };
        let lists = |skills: Vec<Held>| {
            Snapshot::User(UserLists {
                version: Some(1),
                skills: Some(skills),
                proficiencies: None,
            })
        };
        let names: Names = [("d1".to_string(), "Billing (en-us)".to_string())].into();
        let before = lists(vec![
            held("d1", 3, true),
            held("d2", 4, true),
            held("d3", 1, true),
        ]);
        let after = lists(vec![
            held("d1", 5, true),
            held("d3", 1, true),
            held("d4", 2, false),
        ]);
        assert_eq!(
            write_change(WriteTarget::UserSkills, &before, &after, &names),
            ["Billing (en-us) 3 → 5", "− d2 (was 4)", "+ d4 2 (inactive)"]
        );
        assert_eq!(
            write_change(WriteTarget::UserSkills, &after, &after, &names),
            ["no change (found as wanted)"]
        );
    }
}
