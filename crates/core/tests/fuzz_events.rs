//! Property-based fuzzing of the HRIS event parser (`docs/events.md`): arbitrary bytes,
//! JSON-looking text, and valid bodies with structured damage (fields dropped, renamed,
//! retyped or repeated; huge and unicode strings; deep nesting; numbers JSON cannot hold;
//! truncation and stray bytes). Whatever the body:
//!
//! - parsing never panics;
//! - a refusal has at least one problem and at most 21 (twenty, then one saying there were
//!   more), each with a field path and a message of bounded size;
//! - an accepted body holds 1 to 1000 events with distinct ids, and every event written back
//!   with `Event::to_json` parses to itself, alone or in a batch.
//!
//! The number of cases comes from `PROPTEST_CASES` (proptest reads it; 256 when unset, a few
//! seconds), so the same target can run for an hour:
//! `PROPTEST_CASES=2000000 cargo test -p skillsync-core --release --test fuzz_events`.

use std::collections::HashSet;

use jiff::Timestamp;
use jiff::tz::Offset;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use skillsync_core::{Event, EventProblem, MAX_EVENTS_PER_REQUEST, parse_events};

fn now() -> Timestamp {
    "2025-03-01T12:00:00Z".parse().unwrap()
}

/// Parses a body and checks every invariant that holds whatever it contains.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    match parse_events(body, now()) {
        Err(problems) => {
            prop_assert!(!problems.is_empty());
            prop_assert!(problems.len() <= 21, "{} problems", problems.len());
            for p in &problems {
                prop_assert!(!p.field.is_empty() && !p.message.is_empty(), "{p:?}");
                let shown = p.to_string();
                prop_assert!(
                    shown.len() < 4096,
                    "{} bytes: {}…",
                    shown.len(),
                    &shown[..200]
                );
            }
        }
        Ok(events) => {
            prop_assert!((1..=MAX_EVENTS_PER_REQUEST).contains(&events.len()));
            let ids: HashSet<_> = events.iter().map(|e| &e.id).collect();
            prop_assert_eq!(ids.len(), events.len(), "ids repeat: {:?}", events);
            for event in &events {
                let json = event.to_json();
                let again: Result<Vec<Event>, Vec<EventProblem>> =
                    parse_events(json.as_bytes(), now());
                prop_assert_eq!(again, Ok(vec![event.clone()]), "{}", json);
            }
            let texts: Vec<String> = events.iter().map(Event::to_json).collect();
            let batch = format!(r#"{{"events":[{}]}}"#, texts.join(","));
            prop_assert_eq!(parse_events(batch.as_bytes(), now()), Ok(events));
        }
    }
    Ok(())
}

const TYPES: [&str; 5] = [
    "assignment.set",
    "assignment.removed",
    "agent.locale",
    "agent.added",
    "agent.left",
];
const FIELDS: [&str; 10] = [
    "id",
    "type",
    "occurredAt",
    "employeeId",
    "code",
    "level",
    "active",
    "userId",
    "locale",
    "events",
];

/// A valid event object of any type.
fn valid_event() -> impl Strategy<Value = Value> {
    (
        0usize..5,
        "[a-z0-9][a-z0-9-]{0,10}",
        "E[0-9]{1,3}",
        prop::sample::select(vec!["PAY", "QA", "XS", "Sales_Upgrades"]),
        1u8..=10,
        prop::option::of(any::<bool>()),
        prop::sample::select(vec!["en-us", "de-de", "fr-fr", "zh-hant-tw"]),
        "u-[0-9]{1,3}",
        // Seconds before now (up to ~3 years) or up to 5 minutes after; an offset in
        // quarter hours; a fraction of a second or none.
        -100_000_000i64..=300,
        -48i32..=56,
        prop::option::of(0i64..1_000_000_000),
    )
        .prop_map(
            |(t, id, employee, code, level, active, locale, user, secs, quarters, nanos)| {
                let mut at = now()
                    .checked_add(jiff::SignedDuration::from_secs(secs))
                    .unwrap();
                if let Some(n) = nanos {
                    at = at.checked_sub(jiff::SignedDuration::from_nanos(n)).unwrap();
                }
                let offset = Offset::from_seconds(quarters * 900).unwrap();
                let mut event = Map::new();
                event.insert("id".into(), id.into());
                event.insert("type".into(), TYPES[t].into());
                event.insert(
                    "occurredAt".into(),
                    at.display_with_offset(offset).to_string().into(),
                );
                event.insert("employeeId".into(), employee.into());
                match t {
                    0 => {
                        event.insert("code".into(), code.into());
                        event.insert("level".into(), level.into());
                        if let Some(active) = active {
                            event.insert("active".into(), active.into());
                        }
                    }
                    1 => {
                        event.insert("code".into(), code.into());
                    }
                    2 => {
                        event.insert("locale".into(), locale.into());
                    }
                    3 => {
                        event.insert("userId".into(), user.into());
                        event.insert("locale".into(), locale.into());
                    }
                    _ => {}
                }
                Value::Object(event)
            },
        )
}

/// A valid body: one event, or a batch of a few (sometimes the same event twice).
fn valid_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        valid_event(),
        (prop::collection::vec(valid_event(), 1..6), any::<bool>()).prop_map(
            |(mut events, repeat)| {
                // Generated ids may collide; a batch's events each get their own.
                for (i, event) in events.iter_mut().enumerate() {
                    let id = format!("{}-{i}", event["id"].as_str().unwrap_or("ev"));
                    event["id"] = id.into();
                }
                if repeat {
                    events.push(events[0].clone());
                }
                json!({ "events": events })
            }
        ),
    ]
}

/// Text written in place of a placeholder: numbers and words `serde_json` cannot produce.
const RAW: [&str; 10] = [
    "1e400",
    "-0",
    "1.0e1",
    "NaN",
    "Infinity",
    "-Infinity",
    "100000000000000000000000000000",
    "5.000000000000001",
    "\"\\ud800\"",
    "\"\\u0000\"",
];
const PLACEHOLDER: &str = "\u{1}raw\u{1}";

/// One way of damaging a valid body.
#[derive(Debug, Clone)]
enum Damage {
    Drop(usize),
    Rename(usize, String),
    Retype(usize, Value),
    Huge(usize, usize, char),
    Deep(usize, usize, bool),
    Text(usize, String),
    Raw(usize, usize),
    Repeat(usize),
    Truncate(f64),
    Bytes(f64, Vec<u8>),
}

/// Any JSON value of a few levels.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-20i64..=20).prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn damage() -> impl Strategy<Value = Damage> {
    let field = 0usize..FIELDS.len();
    prop_oneof![
        field.clone().prop_map(Damage::Drop),
        (
            field.clone(),
            prop_oneof![
                Just("employeeID".to_string()),
                Just("occured_at".to_string()),
                Just("Type".to_string()),
                Just(String::new()),
                "\\PC{0,12}",
                any::<String>(),
            ]
        )
            .prop_map(|(f, name)| Damage::Rename(f, name)),
        (field.clone(), any_value()).prop_map(|(f, v)| Damage::Retype(f, v)),
        (
            field.clone(),
            0usize..100_000,
            prop::sample::select(vec!['x', 'é', '🚀', '=', '\u{0}'])
        )
            .prop_map(|(f, n, c)| Damage::Huge(f, n, c)),
        (field.clone(), 1usize..400, any::<bool>()).prop_map(|(f, d, o)| Damage::Deep(f, d, o)),
        (
            field.clone(),
            prop_oneof![
                "\\PC{0,40}",
                any::<String>(),
                "[=+@\\-\t\r][a-zA-Z0-9]{0,8}",
                "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?([Zz]|[+-][0-9]{2}(:[0-9]{2})?)?",
                "[a-zA-Z]{2,3}[-_][a-zA-Z]{2}",
            ]
        )
            .prop_map(|(f, s)| Damage::Text(f, s)),
        (field.clone(), 0usize..RAW.len()).prop_map(|(f, r)| Damage::Raw(f, r)),
        field.prop_map(Damage::Repeat),
        (0.0f64..=1.0).prop_map(Damage::Truncate),
        ((0.0f64..=1.0), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Damage::Bytes(at, b)),
    ]
}

/// The event objects of a body (the body itself, or its batch's).
fn objects(body: &mut Value) -> Vec<&mut Map<String, Value>> {
    if body.get("events").is_some() {
        return match body.get_mut("events") {
            Some(Value::Array(items)) => {
                items.iter_mut().filter_map(Value::as_object_mut).collect()
            }
            _ => vec![],
        };
    }
    match body {
        Value::Object(map) => vec![map],
        _ => vec![],
    }
}

/// Applies structural damage to the value, and returns text-level damage still to apply.
fn damage_value(body: &mut Value, damage: &Damage, which: usize) -> Option<Damage> {
    let mut objects = objects(body);
    let count = objects.len();
    let set = |objects: &mut Vec<&mut Map<String, Value>>, f: usize, value: Value| {
        if let Some(object) = objects.get_mut(which % count.max(1)) {
            object.insert(FIELDS[f].to_string(), value);
        }
    };
    match damage {
        Damage::Drop(f) => {
            if let Some(object) = objects.get_mut(which % count.max(1)) {
                object.shift_remove(FIELDS[*f]);
            }
        }
        Damage::Rename(f, name) => {
            if let Some(object) = objects.get_mut(which % count.max(1))
                && let Some(value) = object.shift_remove(FIELDS[*f])
            {
                object.insert(name.clone(), value);
            }
        }
        Damage::Retype(f, value) => set(&mut objects, *f, value.clone()),
        Damage::Huge(f, n, c) => set(
            &mut objects,
            *f,
            std::iter::repeat_n(*c, *n).collect::<String>().into(),
        ),
        Damage::Deep(f, depth, object) => {
            let mut value = Value::from(5);
            for _ in 0..*depth {
                value = if *object {
                    json!({ "level": value })
                } else {
                    json!([value])
                };
            }
            set(&mut objects, *f, value);
        }
        Damage::Text(f, s) => set(&mut objects, *f, s.clone().into()),
        Damage::Raw(f, _) => {
            set(&mut objects, *f, PLACEHOLDER.into());
            return Some(damage.clone());
        }
        Damage::Repeat(_) | Damage::Truncate(_) | Damage::Bytes(..) => return Some(damage.clone()),
    }
    None
}

/// Applies text-level damage to the serialised body.
fn damage_text(text: &mut Vec<u8>, damage: &Damage) {
    let at = |f: f64, len: usize| ((len as f64 * f) as usize).min(len);
    match damage {
        Damage::Raw(_, r) => {
            // Bytes, not text: earlier damage may have left the body invalid UTF-8.
            let placeholder = serde_json::to_string(PLACEHOLDER).unwrap();
            let placeholder = placeholder.as_bytes();
            if let Some(i) = text
                .windows(placeholder.len())
                .position(|w| w == placeholder)
            {
                text.splice(i..i + placeholder.len(), RAW[*r].bytes());
            }
        }
        Damage::Repeat(f) => {
            // The field again, first in the (first) object: a key given twice.
            let key = format!("\"{}\":3,", FIELDS[*f]);
            if let Some(i) = text.iter().rposition(|&b| b == b'{') {
                text.splice(i + 1..i + 1, key.bytes());
            }
        }
        Damage::Truncate(f) => text.truncate(at(*f, text.len())),
        Damage::Bytes(f, bytes) => {
            let i = at(*f, text.len());
            text.splice(i..i, bytes.iter().copied());
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Failures are reproduced from the seed proptest prints; no regression file is kept
        // for inputs this large.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The generator itself: undamaged bodies are accepted.
    #[test]
    fn valid_bodies_are_accepted_and_round_trip(body in valid_body()) {
        let text = body.to_string();
        let parsed = parse_events(text.as_bytes(), now());
        prop_assert!(parsed.is_ok(), "{text}: {:?}", parsed.err());
        check(text.as_bytes())?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_every_refusal_is_bounded(
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        check(&body)?;
    }

    #[test]
    fn json_looking_text_never_panics(
        body in "[\\[\\]{}\",:0-9a-zA-Z.eE+\\-\\\\ \t\n]{0,300}",
    ) {
        check(body.as_bytes())?;
    }

    #[test]
    fn damaged_valid_bodies_never_panic_and_accepted_ones_round_trip(
        mut body in valid_body(),
        damages in prop::collection::vec((damage(), 0usize..8), 1..4),
    ) {
        let mut later = Vec::new();
        for (damage, which) in &damages {
            later.extend(damage_value(&mut body, damage, *which));
        }
        let mut text = body.to_string().into_bytes();
        for damage in &later {
            damage_text(&mut text, damage);
        }
        check(&text)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig {
        // A thousand events a case: an eighth of the cases keeps the default run short.
        cases: ProptestConfig::default().cases.div_ceil(8),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn batches_of_any_size_never_panic(
        event in valid_event(),
        n in prop_oneof![0usize..3, 995usize..1005],
        bad in prop::option::of(0usize..1005),
    ) {
        let mut events = vec![event; n];
        if let Some(i) = bad.filter(|&i| i < n) {
            events[i] = json!({"level": 11});
        }
        check(json!({ "events": events }).to_string().as_bytes())?;
    }
}
