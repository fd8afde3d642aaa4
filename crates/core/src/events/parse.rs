//! A request body read into typed events, every refusal at its JSON field path.
//!
//! Values follow the same rules as in the HRIS files (`crate::hris::rules`), with the same
//! messages, so an integrator who knows one knows the other. A hostile body costs time linear
//! in its size and at most [`MAX_PROBLEMS`] problems (plus one saying there were more).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use jiff::{SignedDuration, Timestamp};

use super::json::Json;
use super::{Change, Event, EventId, EventProblem, MAX_EVENTS_PER_REQUEST, TYPES};
use crate::desired::{Code, EmployeeId};
use crate::domain::{Level, Locale, UserId};
use crate::hris::rules::{self, MAX_ID, MAX_LOCALE, MAX_WORD, Rule, excerpt};
use crate::hris::suggestions::closest;

/// Problems kept before the parse stops: enough to fix a body in one go, few enough that a
/// hostile body cannot produce unbounded output.
pub(super) const MAX_PROBLEMS: usize = 20;

/// How far after the server's clock `occurredAt` may be: the HRIS's clock may run a little
/// ahead, but an event from further in the future would outrank every later real one.
const FUTURE_SLACK: SignedDuration = SignedDuration::from_mins(5);

/// Longest `occurredAt` worth reading (RFC 3339 with nanoseconds and an offset is 35).
const MAX_TIME: usize = 64;

/// An example, for messages about the body's shape.
const SHAPES: &str = r#"send one event object, or {"events": [ ...event objects... ]}"#;

/// Parses a request body: one event object, or `{"events": [...]}` with 1 to
/// [`MAX_EVENTS_PER_REQUEST`] of them. The events in the order given, an id given twice with
/// the same content kept once; or every problem found (at most 20, then one saying there were
/// more), each at its JSON field path. `now` is the server's clock: an event more than five
/// minutes after it is refused. Never panics, whatever the bytes.
pub fn parse_events(body: &[u8], now: Timestamp) -> Result<Vec<Event>, Vec<EventProblem>> {
    let mut problems = Problems::default();
    let events = read_body(body, now, &mut problems);
    if problems.list.is_empty() {
        Ok(events)
    } else {
        Err(problems.finish())
    }
}

/// The problems found so far, bounded.
#[derive(Default)]
struct Problems {
    list: Vec<EventProblem>,
    /// A problem was found after the list was full: the parse stops.
    more: bool,
}

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(EventProblem {
                field: field.into(),
                message: message.into(),
            });
        } else {
            self.more = true;
        }
    }

    fn len(&self) -> usize {
        self.list.len()
    }

    fn finish(mut self) -> Vec<EventProblem> {
        if self.more {
            self.list.push(EventProblem {
                field: "body".to_string(),
                message: format!(
                    "more problems not shown after the first {MAX_PROBLEMS}: fix these and send it again"
                ),
            });
        }
        self.list
    }
}

fn read_body(body: &[u8], now: Timestamp, problems: &mut Problems) -> Vec<Event> {
    // JSON forbids a byte order mark but allows a reader to ignore one (RFC 8259 §8.1), and
    // some HTTP clients on Windows add it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Err(e) = std::str::from_utf8(body) {
        problems.push(
            "body",
            format!(
                "the body is not valid UTF-8 (from byte {}): send JSON encoded as UTF-8",
                e.valid_up_to()
            ),
        );
        return Vec::new();
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        problems.push("body", format!("the body is empty: {SHAPES}"));
        return Vec::new();
    }
    let json = match serde_json::from_slice::<Json>(body) {
        Ok(json) => json,
        Err(e) => {
            problems.push("body", format!("the body is not JSON ({e}): {SHAPES}"));
            return Vec::new();
        }
    };
    match json {
        Json::Object(fields) if fields.iter().any(|(key, _)| key == "events") => {
            read_batch(fields, now, problems)
        }
        Json::Object(fields) => read_event(fields, &Path::Single, now, problems)
            .into_iter()
            .collect(),
        Json::Array(_) => {
            problems.push(
                "body",
                r#"the body is an array: wrap a batch as {"events": [ ...event objects... ]}"#,
            );
            Vec::new()
        }
        other => {
            problems.push("body", format!("the body is {}: {SHAPES}", other.kind()));
            Vec::new()
        }
    }
}

/// `{"events": [...]}`.
fn read_batch(fields: Vec<(String, Json)>, now: Timestamp, problems: &mut Problems) -> Vec<Event> {
    let mut items = None;
    for (key, value) in fields {
        if key != "events" {
            problems.push(
                Path::Single.at(&excerpt(&key)),
                format!(
                    "unknown field `{}`: a batch has only `events`, a list of event objects",
                    excerpt(&key)
                ),
            );
        } else if items.is_some() {
            problems.push("events", "`events` is given twice: send one list");
        } else {
            items = Some(value);
        }
    }
    let items = match items {
        Some(Json::Array(items)) => items,
        Some(other) => {
            problems.push(
                "events",
                format!("must be an array of event objects, not {}", other.kind()),
            );
            return Vec::new();
        }
        None => return Vec::new(),
    };
    if items.is_empty() {
        problems.push("events", "the batch is empty: send at least one event");
        return Vec::new();
    }
    if items.len() > MAX_EVENTS_PER_REQUEST {
        problems.push(
            "events",
            format!(
                "{} events, more than the {MAX_EVENTS_PER_REQUEST} one request may carry: send them in several requests",
                items.len()
            ),
        );
        return Vec::new();
    }
    let mut events: Vec<Event> = Vec::with_capacity(items.len());
    // Each id's first position in the batch and in `events`.
    let mut first: HashMap<EventId, (usize, usize)> = HashMap::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if problems.more {
            break;
        }
        let Json::Object(fields) = item else {
            problems.push(
                format!("events[{i}]"),
                format!("must be an event object, not {}", item.kind()),
            );
            continue;
        };
        let Some(event) = read_event(fields, &Path::Batch(i), now, problems) else {
            continue;
        };
        match first.entry(event.id.clone()) {
            Entry::Vacant(vacant) => {
                vacant.insert((i, events.len()));
                events.push(event);
            }
            // The same event twice (a sender's retry folded into one batch) is kept once.
            Entry::Occupied(earlier) => {
                let (j, k) = *earlier.get();
                if events[k] != event {
                    problems.push(
                        format!("events[{i}].id"),
                        format!(
                            "event id `{}` is also the id of events[{j}], with different content: give every event its own id",
                            event.id
                        ),
                    );
                }
            }
        }
    }
    events
}

/// Where an event is in the body: field paths are `level` alone, `events[3].level` in a batch.
enum Path {
    Single,
    Batch(usize),
}

impl Path {
    fn at(&self, field: &str) -> String {
        // An empty key still needs a path that shows where it is.
        let field = if field.is_empty() { "\"\"" } else { field };
        match self {
            Path::Single => field.to_string(),
            Path::Batch(i) => format!("events[{i}].{field}"),
        }
    }
}

/// Every field any event type has, in the order they are checked and written.
const FIELDS: [&str; 9] = [
    "id",
    "type",
    "occurredAt",
    "employeeId",
    "code",
    "level",
    "active",
    "userId",
    "locale",
];
const ID: usize = 0;
const TYPE: usize = 1;
const OCCURRED_AT: usize = 2;
const EMPLOYEE: usize = 3;
const CODE: usize = 4;
const LEVEL: usize = 5;
const ACTIVE: usize = 6;
const USER: usize = 7;
const LOCALE: usize = 8;

/// The fields of an event of type `TYPES[t]`, beyond the four every event has.
fn own_fields(t: usize) -> &'static [usize] {
    match t {
        0 => &[CODE, LEVEL, ACTIVE],
        1 => &[CODE],
        2 => &[LOCALE],
        3 => &[USER, LOCALE],
        _ => &[],
    }
}

/// The fields of an event of type `TYPES[t]`, for messages.
fn field_list(t: usize) -> String {
    let names: Vec<String> = [ID, TYPE, OCCURRED_AT, EMPLOYEE]
        .iter()
        .chain(own_fields(t))
        .map(|&k| format!("`{}`", FIELDS[k]))
        .collect();
    names.join(", ")
}

/// One event object's fields, as they are read.
struct Reader<'p> {
    path: &'p Path,
    /// Each known field's value, by its index in [`FIELDS`]; taken as it is read.
    values: [Option<Json>; FIELDS.len()],
    /// Fields an unknown field's did-you-mean already points at: not reported missing too.
    suggested: [bool; FIELDS.len()],
    /// The type's name, for messages, once known.
    type_name: &'static str,
}

fn read_event(
    fields: Vec<(String, Json)>,
    path: &Path,
    now: Timestamp,
    problems: &mut Problems,
) -> Option<Event> {
    let before = problems.len();
    let mut reader = Reader {
        path,
        values: Default::default(),
        suggested: [false; FIELDS.len()],
        type_name: "",
    };
    let mut unknown = Vec::new();
    let mut repeated = [false; FIELDS.len()];
    for (key, value) in fields {
        match FIELDS.iter().position(|f| *f == key) {
            Some(k) if reader.values[k].is_some() => repeated[k] = true,
            Some(k) => reader.values[k] = Some(value),
            None => unknown.push(key),
        }
    }
    for k in (0..FIELDS.len()).filter(|&k| repeated[k]) {
        problems.push(
            path.at(FIELDS[k]),
            format!("`{}` is given twice: give each field once", FIELDS[k]),
        );
    }
    let t = reader.event_type(problems);
    if let Some(t) = t {
        reader.type_name = TYPES[t];
    }
    reader.unknown_fields(&unknown, t, problems);
    let id = reader.text(ID, Rule::Id, problems);
    let occurred_at = reader.occurred_at(now, problems);
    let employee = reader.text(EMPLOYEE, Rule::Text(MAX_ID), problems);
    let change = match t? {
        0 => {
            let code = reader.text(CODE, Rule::Text(MAX_ID), problems);
            let level = reader.level(problems);
            let active = reader.active(problems);
            Change::AssignmentSet {
                code: Code(code?),
                level: level?,
                active: active?,
            }
        }
        1 => Change::AssignmentRemoved {
            code: Code(reader.text(CODE, Rule::Text(MAX_ID), problems)?),
        },
        2 => Change::AgentLocale {
            locale: reader.locale(problems)?,
        },
        3 => {
            let user = reader.text(USER, Rule::Id, problems);
            let locale = reader.locale(problems);
            Change::AgentAdded {
                user_id: UserId(user?),
                locale: locale?,
            }
        }
        _ => Change::AgentLeft,
    };
    // A repeated or unknown field refuses the event even when every known field is fine.
    if problems.len() != before || problems.more {
        return None;
    }
    Some(Event {
        id: EventId(id?),
        occurred_at: occurred_at?,
        employee_id: EmployeeId(employee?),
        change,
    })
}

impl Reader<'_> {
    fn at(&self, k: usize) -> String {
        self.path.at(FIELDS[k])
    }

    /// `type`: the index of one of the five [`TYPES`].
    fn event_type(&mut self, problems: &mut Problems) -> Option<usize> {
        let types = "assignment.set, assignment.removed, agent.locale, agent.added or agent.left";
        let text = match self.values[TYPE].take() {
            None => {
                problems.push(
                    self.at(TYPE),
                    format!("`type` is missing: give the event's type, one of {types}"),
                );
                return None;
            }
            Some(Json::Str(text)) => text,
            Some(other) => {
                problems.push(
                    self.at(TYPE),
                    format!(
                        "`type` must be a string, not {}: one of {types}",
                        other.kind()
                    ),
                );
                return None;
            }
        };
        if let Some(t) = TYPES.iter().position(|t| *t == text) {
            return Some(t);
        }
        let message = match closest(&text, TYPES.iter().copied()) {
            _ if text.is_empty() => format!("type is empty: give one of {types}"),
            Some(near) => format!(
                "unknown type `{}` (did you mean `{near}`?): the types are {types}",
                excerpt(&text)
            ),
            None => format!("unknown type `{}`: the types are {types}", excerpt(&text)),
        };
        problems.push(self.at(TYPE), message);
        None
    }

    /// Fields no event has (with the nearest one it may mean), and fields another type has.
    fn unknown_fields(&mut self, unknown: &[String], t: Option<usize>, problems: &mut Problems) {
        let allowed = |k: usize| t.is_none_or(|t| k < 4 || own_fields(t).contains(&k));
        for key in unknown {
            if problems.more {
                return;
            }
            let shown = excerpt(key);
            let candidates = FIELDS
                .iter()
                .enumerate()
                .filter(|&(k, _)| allowed(k))
                .map(|(_, f)| *f);
            // A key of one or two letters is near every short field name: no guess.
            let near = closest(key, candidates)
                .filter(|near| key.chars().nth(2).is_some() || near.eq_ignore_ascii_case(key));
            let message = match near {
                Some(near) => {
                    if let Some(k) = FIELDS.iter().position(|f| *f == near) {
                        self.suggested[k] = true;
                    }
                    let case = if near.eq_ignore_ascii_case(key) {
                        ": field names are case-sensitive"
                    } else {
                        ""
                    };
                    format!("unknown field `{shown}` (did you mean `{near}`?){case}")
                }
                None => match t {
                    Some(t) => format!(
                        "unknown field `{shown}`: {} events have {}",
                        TYPES[t],
                        field_list(t)
                    ),
                    None => format!("unknown field `{shown}`"),
                },
            };
            problems.push(self.path.at(&shown), message);
        }
        let Some(t) = t else { return };
        let misplaced = (4..FIELDS.len()).filter(|&k| self.values[k].is_some() && !allowed(k));
        for k in misplaced.collect::<Vec<_>>() {
            self.values[k] = None;
            problems.push(
                self.at(k),
                format!(
                    "`{}` is not a field of {} events, which have {}",
                    FIELDS[k],
                    TYPES[t],
                    field_list(t)
                ),
            );
        }
    }

    /// A required field's value, reporting it missing (unless a did-you-mean already
    /// points here).
    fn required(&mut self, k: usize, problems: &mut Problems) -> Option<Json> {
        let value = self.values[k].take();
        if value.is_none() && !self.suggested[k] {
            let needs = if k < 4 {
                "every event needs it".to_string()
            } else {
                format!("{} events need it", self.type_name)
            };
            problems.push(
                self.at(k),
                format!("`{}` is missing: {needs} ({})", FIELDS[k], what(k)),
            );
        }
        value
    }

    /// A required string field.
    fn string(&mut self, k: usize, problems: &mut Problems) -> Option<String> {
        match self.required(k, problems)? {
            Json::Str(text) => Some(text),
            other => {
                problems.push(
                    self.at(k),
                    format!(
                        "`{}` must be a string, not {}: give {}",
                        FIELDS[k],
                        other.kind(),
                        what(k)
                    ),
                );
                None
            }
        }
    }

    /// A required, non-empty string field following `rule` as the CSV readers apply it.
    fn text(&mut self, k: usize, rule: Rule, problems: &mut Problems) -> Option<String> {
        let text = self.string(k, problems)?;
        let field = FIELDS[k];
        if text.is_empty() {
            problems.push(self.at(k), format!("{field} is empty: give {}", what(k)));
            return None;
        }
        if let Some(refusal) = rules::refusal(field, &text, rule) {
            problems.push(self.at(k), format!("{}; {}", refusal.message, refusal.hint));
            return None;
        }
        Some(text)
    }

    /// `occurredAt`: RFC 3339 with an offset, not more than [`FUTURE_SLACK`] after `now`.
    fn occurred_at(&mut self, now: Timestamp, problems: &mut Problems) -> Option<Timestamp> {
        let text = self.string(OCCURRED_AT, problems)?;
        let at = self.at(OCCURRED_AT);
        let example = "such as 2024-05-01T09:30:00Z or 2024-05-01T11:30:00+02:00";
        if text.is_empty() {
            problems.push(
                at,
                format!("occurredAt is empty: give when it happened in the HRIS, in RFC 3339 with an offset, {example}"),
            );
            return None;
        }
        if let Some(refusal) = rules::refusal("occurredAt", &text, Rule::Word(MAX_TIME)) {
            problems.push(at, format!("{}; {}", refusal.message, refusal.hint));
            return None;
        }
        if !rfc3339_shape(&text) {
            problems.push(
                at,
                format!(
                    "occurredAt `{}` is not an RFC 3339 time with an offset: write one {example}",
                    excerpt(&text)
                ),
            );
            return None;
        }
        // The shape is ASCII; jiff reads the designators in upper case only.
        let occurred = match text.to_ascii_uppercase().parse::<Timestamp>() {
            Ok(t) => t,
            Err(e) => {
                problems.push(
                    at,
                    format!("occurredAt `{}` is not a valid time ({e})", excerpt(&text)),
                );
                return None;
            }
        };
        let latest = now.checked_add(FUTURE_SLACK).unwrap_or(Timestamp::MAX);
        if occurred > latest {
            let ahead = SignedDuration::from_secs(occurred.duration_since(now).as_secs());
            problems.push(
                at,
                format!(
                    "occurredAt `{text}` is {ahead:#} after the server's clock ({now}): events \
                     more than 5 minutes in the future are refused; check the sender's clock"
                ),
            );
            return None;
        }
        Some(occurred)
    }

    /// `level`: a JSON integer from 1 to 10.
    fn level(&mut self, problems: &mut Problems) -> Option<Level> {
        let fix = "use a whole number from 1 (lowest) to 10 (highest)";
        let message = match self.required(LEVEL, problems)? {
            Json::Int(n) => match i64::try_from(n).map(Level::new) {
                Ok(Ok(level)) => return Some(level),
                Ok(Err(e)) => format!("{e}: {fix}"),
                Err(_) => format!("level {n} is outside 1–10: {fix}"),
            },
            Json::Float(f) if f.fract() != 0.0 => {
                format!("level {f:?} is not a whole number: {fix}")
            }
            Json::Float(f) if (1.0..=10.0).contains(&f) => {
                format!("level {f:?} must be written without a fraction: write {f:.0}")
            }
            Json::Float(f) => format!("level {f:?} is outside 1–10: {fix}"),
            Json::Str(s) if s.len() <= MAX_WORD && s.parse::<i64>().is_ok() => {
                format!("`level` must be a number, not a string: write {s}, not \"{s}\"")
            }
            other => format!("`level` must be a number, not {}: {fix}", other.kind()),
        };
        problems.push(self.at(LEVEL), message);
        None
    }

    /// `active`: true or false; true when left out.
    fn active(&mut self, problems: &mut Problems) -> Option<bool> {
        let message = match self.values[ACTIVE].take() {
            None => return Some(true),
            Some(Json::Bool(active)) => return Some(active),
            Some(Json::Str(s)) if s == "true" || s == "false" => {
                format!("`active` must be a boolean, not a string: write {s}, not \"{s}\"")
            }
            Some(other) => format!(
                "`active` must be true or false, not {} (leave it out for true)",
                other.kind()
            ),
        };
        problems.push(self.at(ACTIVE), message);
        None
    }

    /// `locale`: a lowercase BCP 47 tag, refused as the CSV readers refuse one.
    fn locale(&mut self, problems: &mut Problems) -> Option<Locale> {
        let tag = self.string(LOCALE, problems)?;
        if let Some(refusal) = rules::refusal("locale", &tag, Rule::Word(MAX_LOCALE)) {
            problems.push(
                self.at(LOCALE),
                format!("{}; {}", refusal.message, refusal.hint),
            );
            return None;
        }
        match Locale::parse(&tag) {
            Ok(locale) => Some(locale),
            Err(e) => {
                let (message, hint) = rules::locale_refusal(&tag, &e);
                problems.push(self.at(LOCALE), format!("{message}; {hint}"));
                None
            }
        }
    }
}

/// What a field holds, for "missing" and "must be" messages.
fn what(k: usize) -> &'static str {
    match k {
        ID => "a unique id for the event, such as a UUID",
        TYPE => "the event's type",
        OCCURRED_AT => "when it happened, in RFC 3339 with an offset",
        EMPLOYEE => "the HRIS id of the employee",
        CODE => "a code from the catalog",
        LEVEL => "a whole number from 1 to 10",
        ACTIVE => "true or false",
        USER => "the tenant's user id of the employee",
        _ => "a lowercase locale tag such as en-us or de-de",
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` and `Z` in either case (RFC 3339 §5.6).
/// jiff alone would also take a space for `T`, an offset without minutes or a time zone
/// annotation, which other readers of the stored event might not.
fn rfc3339_shape(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let is = |i: usize, set: &[u8]| b.get(i).is_some_and(|c| set.contains(c));
    let date_time = digits(0..4)
        && is(4, b"-")
        && digits(5..7)
        && is(7, b"-")
        && digits(8..10)
        && is(10, b"Tt")
        && digits(11..13)
        && is(13, b":")
        && digits(14..16)
        && is(16, b":")
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut i = 19;
    if is(i, b".") {
        let start = i + 1;
        i = start;
        while is(i, b"0123456789") {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3) && is(i + 3, b":") && digits(i + 4..i + 6) && i + 6 == b.len()
        }
        _ => false,
    }
}
