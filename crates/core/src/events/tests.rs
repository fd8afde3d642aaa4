//! The event parser, checks and overlay, on literal bodies and a small desired state.

use jiff::Timestamp;

use super::parse::MAX_PROBLEMS;
use super::*;
use crate::desired::{Desired, Retired, RetiredMode, Wanted};
use crate::dialect::DialectCarries;
use crate::hris::{Source, read_desired};

const NOW: &str = "2025-03-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn parse(body: &str) -> Result<Vec<Event>, Vec<EventProblem>> {
    parse_events(body.as_bytes(), now())
}

fn one(body: &str) -> Event {
    let events = parse(body).unwrap_or_else(|p| panic!("{body}: {}", show(&p)));
    assert_eq!(events.len(), 1);
    events.into_iter().next().unwrap()
}

fn problems(body: &str) -> Vec<EventProblem> {
    match parse(body) {
        Ok(events) => panic!("accepted {body}: {events:?}"),
        Err(problems) => problems,
    }
}

fn show(problems: &[EventProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}\n"))
        .collect::<String>()
}

/// The one problem at `field`, whose message contains `needle`.
#[track_caller]
fn expect(problems: &[EventProblem], field: &str, needle: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.field == field && p.message.contains(needle)),
        "no `{field}: …{needle}…` in\n{}",
        show(problems)
    );
}

/// A valid event of each type, as JSON text.
const SET: &str = r#"{"id":"ev-1","type":"assignment.set","occurredAt":"2025-03-01T11:00:00+01:00","employeeId":"E1","code":"PAY","level":7,"active":false}"#;
const REMOVED: &str = r#"{"id":"ev-2","type":"assignment.removed","occurredAt":"2025-03-01T10:00:00Z","employeeId":"E1","code":"QA"}"#;
const LOCALE: &str = r#"{"id":"ev-3","type":"agent.locale","occurredAt":"2025-03-01T10:00:00.250Z","employeeId":"E2","locale":"en-us"}"#;
const ADDED: &str = r#"{"id":"ev-4","type":"agent.added","occurredAt":"2025-02-28T23:59:59-08:00","employeeId":"E9","userId":"u-9","locale":"de-de"}"#;
const LEFT: &str =
    r#"{"id":"ev-5","type":"agent.left","occurredAt":"2025-03-01T12:04:59Z","employeeId":"E2"}"#;

fn batch(events: &[&str]) -> String {
    format!(r#"{{"events":[{}]}}"#, events.join(","))
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn level(n: i64) -> Level {
    Level::new(n).unwrap()
}

fn locale(tag: &str) -> Locale {
    Locale::parse(tag).unwrap()
}

#[test]
fn each_event_type_is_parsed_from_a_literal() {
    assert_eq!(
        one(SET),
        Event {
            id: EventId::from("ev-1"),
            occurred_at: ts("2025-03-01T10:00:00Z"),
            employee_id: EmployeeId::from("E1"),
            change: Change::AssignmentSet {
                code: Code::from("PAY"),
                level: level(7),
                active: false
            },
        }
    );
    assert_eq!(
        one(REMOVED).change,
        Change::AssignmentRemoved {
            code: Code::from("QA")
        }
    );
    let e = one(LOCALE);
    assert_eq!(
        (e.change, e.occurred_at),
        (
            Change::AgentLocale {
                locale: locale("en-us")
            },
            ts("2025-03-01T10:00:00.25Z")
        )
    );
    assert_eq!(
        one(ADDED).change,
        Change::AgentAdded {
            user_id: UserId::from("u-9"),
            locale: locale("de-de")
        }
    );
    let e = one(LEFT);
    assert_eq!(
        (e.type_name(), e.change, e.employee_id),
        ("agent.left", Change::AgentLeft, EmployeeId::from("E2"))
    );
    // `active` defaults to true.
    let e = one(&SET.replace(r#","active":false"#, ""));
    assert!(matches!(
        e.change,
        Change::AssignmentSet { active: true, .. }
    ));
}

#[test]
fn a_batch_keeps_its_order_and_reads_each_event_as_a_single_one_would() {
    let all = [SET, REMOVED, LOCALE, ADDED, LEFT];
    let events = parse(&batch(&all)).unwrap();
    let singles: Vec<Event> = all.iter().map(|e| one(e)).collect();
    assert_eq!(events, singles);
    let names: Vec<_> = events.iter().map(Event::type_name).collect();
    assert_eq!(names, TYPES);
    // A byte order mark and surrounding white space are ignored.
    let body = format!("\u{feff}\n  {}\n", batch(&[SET]));
    assert_eq!(parse(&body).unwrap().len(), 1);
}

#[test]
fn field_paths_are_bare_for_one_event_and_indexed_in_a_batch() {
    let bad = SET.replace(r#""level":7"#, r#""level":11"#);
    let p = problems(&bad);
    assert_eq!(p.len(), 1, "{}", show(&p));
    assert_eq!(p[0].field, "level");
    assert_eq!(
        p[0].to_string(),
        "level: level 11 is outside 1–10: use a whole number from 1 (lowest) to 10 (highest)"
    );
    let p = problems(&batch(&[REMOVED, &bad]));
    assert_eq!(p.len(), 1, "{}", show(&p));
    assert_eq!(p[0].field, "events[1].level");
}

#[test]
fn a_body_of_the_wrong_shape_is_refused_as_a_whole() {
    let cases: &[(&[u8], &str, &str)] = &[
        (b"", "body", "the body is empty"),
        (b"  \n", "body", "the body is empty"),
        (b"{\"id\": ", "body", "the body is not JSON (EOF"),
        (
            b"{\"id\": \"\xff\"}",
            "body",
            "not valid UTF-8 (from byte 8)",
        ),
        (b"[{}]", "body", "wrap a batch as {\"events\""),
        (b"\"assignment.set\"", "body", "the body is a string"),
        (b"null", "body", "the body is null"),
        (
            b"{\"events\": {}}",
            "events",
            "must be an array of event objects, not an object",
        ),
        (b"{\"events\": []}", "events", "the batch is empty"),
        (
            b"{\"events\": [1, []]}",
            "events[0]",
            "must be an event object, not a number",
        ),
        (
            b"{\"events\": [{}], \"events\": []}",
            "events",
            "given twice",
        ),
        (
            b"{\"events\": [], \"source\": \"x\"}",
            "source",
            "a batch has only `events`",
        ),
    ];
    for &(body, field, needle) in cases {
        let p = parse_events(body, now()).unwrap_err();
        expect(&p, field, needle);
    }
    let p = parse_events(b"{\"events\": [1, []]}", now()).unwrap_err();
    expect(&p, "events[1]", "not an array");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    expect(&problems(&deep), "body", "recursion limit");
}

#[test]
fn more_than_a_thousand_events_are_refused_without_reading_them() {
    let body = batch(&vec![LEFT; MAX_EVENTS_PER_REQUEST + 1]);
    let p = problems(&body);
    assert_eq!(p.len(), 1, "{}", show(&p));
    expect(
        &p,
        "events",
        "1001 events, more than the 1000 one request may carry",
    );
    // A thousand is fine (and one id repeated with the same content is one event).
    assert_eq!(parse(&batch(&vec![LEFT; 1000])).unwrap().len(), 1);
}

#[test]
fn every_field_refusal_names_its_path() {
    // (what to replace in SET, with what, the field, a piece of the message)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            r#""id":"ev-1""#,
            r#""id":"../x""#,
            "id",
            "id `../x` is not an id",
        ),
        (r#""id":"ev-1""#, r#""id":"""#, "id", "id is empty"),
        (
            r#""id":"ev-1""#,
            r#""id":7"#,
            "id",
            "`id` must be a string, not a number",
        ),
        (
            r#""id":"ev-1","#,
            "",
            "id",
            "`id` is missing: every event needs it",
        ),
        (
            r#""type":"assignment.set""#,
            r#""type":"assignment_set""#,
            "type",
            "unknown type `assignment_set` (did you mean `assignment.set`?): the types are assignment.set, assignment.removed, agent.locale, agent.added or agent.left",
        ),
        (
            r#""type":"assignment.set""#,
            r#""type":"hire""#,
            "type",
            "unknown type `hire`: the types are",
        ),
        (
            r#""type":"assignment.set""#,
            r#""type":null"#,
            "type",
            "`type` must be a string, not null",
        ),
        (
            r#""employeeId":"E1""#,
            r#""employeeId":"=E1""#,
            "employeeId",
            "employeeId `=E1` starts with `=`, which a spreadsheet runs as a formula; remove the leading `=`",
        ),
        (
            r#""employeeId":"E1""#,
            r#""employeeId":"-E1""#,
            "employeeId",
            "starts with `-`",
        ),
        (
            r#""employeeId":"E1""#,
            r#""employeeId":"\tE1""#,
            "employeeId",
            "starts with a tab, which a spreadsheet runs as a formula; remove the leading tab:",
        ),
        (
            r#""employeeId":"E1""#,
            r#""employeeId":"E\u0001""#,
            "employeeId",
            "control character U+0001",
        ),
        (
            r#""employeeId":"E1""#,
            r#""employeeId":"""#,
            "employeeId",
            "employeeId is empty: give the HRIS id of the employee",
        ),
        (
            r#""code":"PAY""#,
            r#""code":"@SUM(A1)""#,
            "code",
            "code `@SUM(A1)` starts with `@`",
        ),
        (
            r#""code":"PAY","#,
            "",
            "code",
            "`code` is missing: assignment.set events need it",
        ),
        (
            r#""level":7"#,
            r#""level":0"#,
            "level",
            "level 0 is outside 1–10",
        ),
        (
            r#""level":7"#,
            r#""level":-3"#,
            "level",
            "level -3 is outside 1–10",
        ),
        (
            r#""level":7"#,
            r#""level":99999999999999999999"#,
            "level",
            "is outside 1–10",
        ),
        (
            r#""level":7"#,
            r#""level":5.5"#,
            "level",
            "level 5.5 is not a whole number",
        ),
        (
            r#""level":7"#,
            r#""level":5.0"#,
            "level",
            "level 5.0 must be written without a fraction: write 5",
        ),
        (
            r#""level":7"#,
            r#""level":"7""#,
            "level",
            "`level` must be a number, not a string: write 7, not \"7\"",
        ),
        (
            r#""level":7"#,
            r#""level":[7]"#,
            "level",
            "`level` must be a number, not an array",
        ),
        (
            r#""active":false"#,
            r#""active":"false""#,
            "active",
            "write false, not \"false\"",
        ),
        (
            r#""active":false"#,
            r#""active":null"#,
            "active",
            "`active` must be true or false, not null",
        ),
        (
            r#""occurredAt":"2025-03-01T11:00:00+01:00""#,
            r#""occurredAt":"2025-03-01T11:00:00""#,
            "occurredAt",
            "is not an RFC 3339 time with an offset",
        ),
        (
            r#""occurredAt":"2025-03-01T11:00:00+01:00""#,
            r#""occurredAt":"2025-03-01 11:00:00Z""#,
            "occurredAt",
            "is not an RFC 3339 time",
        ),
        (
            r#""occurredAt":"2025-03-01T11:00:00+01:00""#,
            r#""occurredAt":"2025-03-01T11:00:00+01""#,
            "occurredAt",
            "is not an RFC 3339 time",
        ),
        (
            r#""occurredAt":"2025-03-01T11:00:00+01:00""#,
            r#""occurredAt":"2025-02-30T11:00:00Z""#,
            "occurredAt",
            "is not a valid time",
        ),
        (
            r#""occurredAt":"2025-03-01T11:00:00+01:00""#,
            r#""occurredAt":1740826800"#,
            "occurredAt",
            "must be a string, not a number",
        ),
        (
            r#""occurredAt":"2025-03-01T11:00:00+01:00""#,
            r#""occurredAt":"""#,
            "occurredAt",
            "occurredAt is empty",
        ),
    ];
    for &(from, to, field, needle) in cases {
        assert!(SET.contains(from), "{from}");
        let body = SET.replace(from, to);
        let p = problems(&body);
        expect(&p, field, needle);
        assert_eq!(p.len(), 1, "{body}\n{}", show(&p));
        // The same event second in a batch: the same problem, at its indexed path.
        let p = problems(&batch(&[LEFT, &body]));
        expect(&p, &format!("events[1].{field}"), needle);
    }
    let long = format!(r#""employeeId":"{}""#, "E".repeat(100_000));
    let p = problems(&SET.replace(r#""employeeId":"E1""#, &long));
    expect(
        &p,
        "employeeId",
        "employeeId is 100000 characters long, more than the 128 allowed",
    );
    assert!(p[0].message.len() < 300, "{}", p[0]);
    // The limit itself is fine.
    let at_limit = format!(r#""employeeId":"{}""#, "E".repeat(128));
    one(&SET.replace(r#""employeeId":"E1""#, &at_limit));
    let p = problems(&ADDED.replace(r#""userId":"u-9""#, r#""userId":"a b""#));
    expect(&p, "userId", "userId `a b` is not an id");
}

#[test]
fn an_underscored_or_uppercase_locale_is_told_its_dashed_lowercase_form() {
    let p = problems(&LOCALE.replace("en-us", "en_US"));
    assert_eq!(p.len(), 1, "{}", show(&p));
    assert_eq!(
        p[0].to_string(),
        "locale: locale `en_US` must be lowercase (write `en-us`); write `en-us`: locales are \
         compared exactly, in lower case"
    );
    let p = problems(&ADDED.replace("de-de", "de_de"));
    expect(
        &p,
        "locale",
        "`de_de` is not a locale tag such as en-us or de-de; write `de-de`",
    );
    let p = problems(&ADDED.replace("de-de", "german"));
    expect(&p, "locale", "`german` is not a locale tag");
    let p = problems(&ADDED.replace("\"de-de\"", "\"\""));
    expect(&p, "locale", "locale is empty");
}

#[test]
fn an_unknown_field_is_refused_with_the_field_it_may_mean() {
    let p = problems(&SET.replace("employeeId", "employeeID"));
    // The typo explains the missing employeeId: one problem, not two.
    assert_eq!(p.len(), 1, "{}", show(&p));
    assert_eq!(
        p[0].to_string(),
        "employeeID: unknown field `employeeID` (did you mean `employeeId`?): field names are \
         case-sensitive"
    );
    let p = problems(&SET.replace("occurredAt", "occuredAt"));
    expect(
        &p,
        "occuredAt",
        "unknown field `occuredAt` (did you mean `occurredAt`?)",
    );
    let p = problems(&SET.replace(r#""active":false"#, r#""active":false,"comment":"x""#));
    expect(
        &p,
        "comment",
        "unknown field `comment`: assignment.set events have `id`, `type`, `occurredAt`, \
         `employeeId`, `code`, `level`, `active`",
    );
    // Another type's field is named as such.
    let p = problems(&LEFT.replace(
        r#""employeeId":"E2""#,
        r#""employeeId":"E2","locale":"en-us""#,
    ));
    expect(&p, "locale", "`locale` is not a field of agent.left events");
    // A field given twice is refused even when both say the same.
    let p = problems(&SET.replace(r#""level":7"#, r#""level":7,"level":7"#));
    expect(&p, "level", "`level` is given twice");
    assert_eq!(p.len(), 1, "{}", show(&p));
}

#[test]
fn a_repeated_id_is_kept_once_when_identical_and_refused_when_not() {
    // The same event written differently (another offset for the same instant) is the same.
    let same = SET.replace("2025-03-01T11:00:00+01:00", "2025-03-01T10:00:00Z");
    let events = parse(&batch(&[SET, REMOVED, &same])).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], one(SET));
    let other = SET.replace(r#""level":7"#, r#""level":8"#);
    let p = problems(&batch(&[SET, REMOVED, &other]));
    assert_eq!(p.len(), 1, "{}", show(&p));
    assert_eq!(
        p[0].to_string(),
        "events[2].id: event id `ev-1` is also the id of events[0], with different content: give \
         every event its own id"
    );
}

#[test]
fn an_event_from_more_than_five_minutes_ahead_is_refused() {
    // LEFT is 4 min 59 s ahead of NOW.
    one(LEFT);
    let ahead = LEFT.replace("12:04:59Z", "12:05:01Z");
    let p = problems(&ahead);
    assert_eq!(
        p[0].to_string(),
        "occurredAt: occurredAt `2025-03-01T12:05:01Z` is 5m 1s after the server's clock \
         (2025-03-01T12:00:00Z): events more than 5 minutes in the future are refused; check the \
         sender's clock"
    );
    let p = problems(&LEFT.replace("2025-03-01T12:04:59Z", "2999-12-31T23:59:59+00:00"));
    expect(&p, "occurredAt", "after the server's clock");
    // Lowercase designators are RFC 3339 too, and far past times are fine.
    let e = one(&LEFT.replace("2025-03-01T12:04:59Z", "1999-01-01t00:00:00.123456789z"));
    assert_eq!(e.occurred_at, ts("1999-01-01T00:00:00.123456789Z"));
}

#[test]
fn a_hostile_body_stops_after_twenty_problems() {
    let bad = SET.replace(r#""level":7"#, r#""level":70"#);
    let p = problems(&batch(&vec![bad.as_str(); 500]));
    assert_eq!(p.len(), MAX_PROBLEMS + 1, "{}", show(&p));
    expect(&p, "events[19].level", "level 70");
    assert_eq!(
        p[MAX_PROBLEMS].to_string(),
        "body: more problems not shown after the first 20: fix these and send it again"
    );
    // Many unknown keys in one event stop the same way.
    let keys: Vec<String> = (0..10_000).map(|i| format!(r#""k{i}":1"#)).collect();
    let p = problems(&format!("{{{}}}", keys.join(",")));
    assert_eq!(p.len(), MAX_PROBLEMS + 1, "{}", show(&p));
    // Twenty exactly: no summary.
    let p = problems(&batch(&vec![bad.as_str(); 20]));
    assert_eq!(p.len(), 20, "{}", show(&p));
    assert!(p.iter().all(|p| p.field.ends_with(".level")));
}

#[test]
fn to_json_is_canonical_and_reads_back_equal() {
    for text in [SET, REMOVED, LOCALE, ADDED, LEFT] {
        let event = one(text);
        let json = event.to_json();
        assert_eq!(one(&json), event, "{json}");
        assert_eq!(one(&json).to_json(), json);
    }
    assert_eq!(
        one(SET).to_json(),
        r#"{"id":"ev-1","type":"assignment.set","occurredAt":"2025-03-01T10:00:00Z","employeeId":"E1","code":"PAY","level":7,"active":false}"#
    );
    assert_eq!(
        one(ADDED).to_json(),
        r#"{"id":"ev-4","type":"agent.added","occurredAt":"2025-03-01T07:59:59Z","employeeId":"E9","userId":"u-9","locale":"de-de"}"#
    );
    // Text that JSON must escape survives.
    let odd = SET.replace(r#""code":"PAY""#, r#""code":"Pä\"y\\ 🚀""#);
    let event = one(&odd);
    assert_eq!(one(&event.to_json()), event);
}

// ---- check_event, apply_event, overlay ----

const CATALOG: &str = "code,kind,locale,name,description,routing_profile_id
PAY,skill,en-us,Payments,,rp-1
PAY,skill,de-de,Zahlungen,,rp-1
QA,proficiency,en-us,Quality,,rp-1
QA,proficiency,de-de,Qualitaet,,rp-1
XS,skill,en-us,Cross-sell,,rp-1
FR,skill,fr-fr,Facturation,,rp-1
";
const AGENTS: &str = "employee_id,user_id,locale\nE1,u-1,en-us\nE2,u-2,de-de\nE3,u-3,fr-fr\n";
const ASSIGNMENTS: &str =
    "employee_id,code,level,active\nE1,PAY,5,\nE1,QA,3,\nE1,XS,4,\nE2,PAY,7,false\n";

const ROUTING: DialectCarries = DialectCarries {
    dialect: "routing",
    proficiencies: true,
    inactive_assignments: true,
};
const USERS: DialectCarries = DialectCarries {
    dialect: "users",
    proficiencies: false,
    inactive_assignments: false,
};

fn desired() -> Desired {
    let source = |name: &str, text: &'static str| Source {
        name: name.to_string(),
        reader: text.as_bytes(),
    };
    read_desired(
        source("hris/catalog.csv", CATALOG),
        source("hris/agents.csv", AGENTS),
        source("hris/assignments.csv", ASSIGNMENTS),
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
    .desired
}

fn event(employee: &str, change: Change) -> Event {
    Event {
        id: EventId::from("ev"),
        occurred_at: now(),
        employee_id: EmployeeId::from(employee),
        change,
    }
}

fn set(employee: &str, code: &str, n: i64, active: bool) -> Event {
    event(
        employee,
        Change::AssignmentSet {
            code: Code::from(code),
            level: level(n),
            active,
        },
    )
}

fn removed(employee: &str, code: &str) -> Event {
    event(
        employee,
        Change::AssignmentRemoved {
            code: Code::from(code),
        },
    )
}

fn moved(employee: &str, tag: &str) -> Event {
    event(
        employee,
        Change::AgentLocale {
            locale: locale(tag),
        },
    )
}

fn added(employee: &str, user: &str, tag: &str) -> Event {
    event(
        employee,
        Change::AgentAdded {
            user_id: UserId::from(user),
            locale: locale(tag),
        },
    )
}

#[track_caller]
fn rejected(event: &Event, desired: &Desired, carries: &DialectCarries, needle: &str) -> String {
    match check_event(event, desired, carries) {
        Ok(lane) => panic!("accepted in lane {lane:?}: {event:?}"),
        Err(why) => {
            assert!(why.contains(needle), "{why}\n does not contain\n{needle}");
            why
        }
    }
}

#[test]
fn an_assignment_takes_the_lane_of_its_codes_kind() {
    let d = desired();
    assert_eq!(
        check_event(&set("E1", "PAY", 9, true), &d, &ROUTING),
        Ok(Lane::Skills)
    );
    assert_eq!(
        check_event(&set("E1", "QA", 9, false), &d, &ROUTING),
        Ok(Lane::Proficiencies)
    );
    assert_eq!(
        check_event(&removed("E1", "QA"), &d, &ROUTING),
        Ok(Lane::Proficiencies)
    );
    // Removing what the agent does not hold is fine: the state already says so.
    assert_eq!(
        check_event(&removed("E2", "PAY"), &d, &USERS),
        Ok(Lane::Skills)
    );
}

#[test]
fn an_assignment_needs_a_known_agent_and_a_catalog_code() {
    let d = desired();
    let why = rejected(
        &set("E9", "PAY", 5, true),
        &d,
        &ROUTING,
        "employee `E9` is not an agent",
    );
    assert!(
        why.contains("send agent.added first, or add them to hris/agents.csv"),
        "{why}"
    );
    rejected(
        &removed("E9", "PAY"),
        &d,
        &ROUTING,
        "employee `E9` is not an agent",
    );
    rejected(
        &set("E1", "PYA", 5, true),
        &d,
        &ROUTING,
        "unknown code `PYA`: it is not in hris/catalog.csv; did you mean `PAY`?",
    );
    rejected(
        &removed("E1", "NOPE_AT_ALL"),
        &d,
        &ROUTING,
        "add it to hris/catalog.csv, or correct the code",
    );
}

#[test]
fn an_assignment_needs_a_variant_in_the_agents_own_locale() {
    let d = desired();
    // XS exists only in en-us; E2 works in de-de. No fallback to en-us.
    let why = rejected(
        &set("E2", "XS", 5, true),
        &d,
        &ROUTING,
        "code `XS` has no variant in de-de, employee `E2`'s locale (it has en-us)",
    );
    assert!(
        why.contains("add a de-de row for `XS` to hris/catalog.csv"),
        "{why}"
    );
    rejected(&removed("E3", "PAY"), &d, &ROUTING, "it has de-de, en-us");
}

#[test]
fn a_retired_variant_is_neither_assigned_nor_removed() {
    let mut d = desired();
    d.retired.push(Retired {
        code: Code::from("PAY"),
        locale: locale("de-de"),
        definitions: Vec::new(),
        mode: RetiredMode::Soft,
        run: 12,
    });
    rejected(
        &set("E2", "PAY", 5, true),
        &d,
        &ROUTING,
        "code `PAY` in de-de was retired (soft, run 12)",
    );
    rejected(&removed("E2", "PAY"), &d, &ROUTING, "was retired");
    // The en-us variant is not retired.
    assert_eq!(
        check_event(&set("E1", "PAY", 5, true), &d, &ROUTING),
        Ok(Lane::Skills)
    );
}

#[test]
fn a_set_the_dialect_cannot_carry_is_rejected() {
    let d = desired();
    let why = rejected(
        &set("E1", "QA", 5, true),
        &d,
        &USERS,
        "employee `E1` is assigned proficiency `QA`, but the users dialect cannot write proficiencies",
    );
    assert!(
        why.contains("use dialect = \"routing\" in [tenant]"),
        "{why}"
    );
    let why = rejected(
        &set("E1", "PAY", 5, false),
        &d,
        &USERS,
        "employee `E1` is assigned `PAY` inactive, but the users dialect has no active flag",
    );
    assert!(why.contains("send assignment.removed"), "{why}");
    assert_eq!(
        check_event(&set("E1", "PAY", 5, true), &d, &USERS),
        Ok(Lane::Skills)
    );
}

#[test]
fn a_locale_change_needs_every_wanted_code_in_the_new_locale() {
    let d = desired();
    assert_eq!(
        check_event(&moved("E2", "en-us"), &d, &USERS),
        Ok(Lane::Skills)
    );
    // E1 wants PAY, QA and XS; de-de lacks XS.
    let why = rejected(
        &moved("E1", "de-de"),
        &d,
        &ROUTING,
        "employee `E1` cannot move to de-de: `XS` has no variant in de-de",
    );
    assert!(
        why.contains("add de-de rows for it to hris/catalog.csv"),
        "{why}"
    );
    rejected(
        &moved("E1", "fr-fr"),
        &d,
        &ROUTING,
        "`PAY`, `QA`, `XS` have no variant in fr-fr",
    );
    rejected(
        &moved("E9", "en-us"),
        &d,
        &ROUTING,
        "employee `E9` is not an agent",
    );
    rejected(
        &moved("E3", "it-it"),
        &d,
        &ROUTING,
        "unknown locale: employee `E3` would work in it-it, but no row of hris/catalog.csv is in it-it (it has de-de, en-us, fr-fr)",
    );
}

#[test]
fn an_added_agent_is_new_or_the_same_and_owns_its_user() {
    let d = desired();
    assert_eq!(
        check_event(&added("E9", "u-9", "de-de"), &d, &USERS),
        Ok(Lane::Skills)
    );
    // The same agent again: idempotent, and a locale change is checked as one.
    assert_eq!(
        check_event(&added("E1", "u-1", "en-us"), &d, &USERS),
        Ok(Lane::Skills)
    );
    rejected(
        &added("E1", "u-1", "de-de"),
        &d,
        &USERS,
        "`XS` has no variant in de-de",
    );
    rejected(
        &added("E1", "u-7", "en-us"),
        &d,
        &USERS,
        "employee `E1` is already an agent, on user `u-1`, not `u-7`; send agent.left first",
    );
    rejected(
        &added("E9", "u-2", "en-us"),
        &d,
        &USERS,
        "user `u-2` already belongs to employee `E2`",
    );
    rejected(&added("E9", "u-9", "it-it"), &d, &USERS, "unknown locale");
}

#[test]
fn only_an_agent_can_leave() {
    let d = desired();
    assert_eq!(
        check_event(&event("E2", Change::AgentLeft), &d, &USERS),
        Ok(Lane::Skills)
    );
    rejected(
        &event("E9", Change::AgentLeft),
        &d,
        &USERS,
        "employee `E9` is not an agent, so there is nothing to remove",
    );
}

fn wanted(d: &Desired, employee: &str, code: &str) -> Option<Wanted> {
    d.assignments
        .get(&EmployeeId::from(employee))?
        .get(&Code::from(code))
        .copied()
}

#[test]
fn overlay_applies_in_order_and_the_later_event_wins() {
    let mut d = desired();
    overlay(
        &mut d,
        &[set("E1", "PAY", 9, false), set("E1", "PAY", 2, true)],
    );
    assert_eq!(
        wanted(&d, "E1", "PAY"),
        Some(Wanted {
            level: level(2),
            active: true,
            line: 0
        })
    );
    // Set then removed: gone. Removed then set: there.
    overlay(&mut d, &[set("E2", "PAY", 3, true), removed("E2", "PAY")]);
    assert_eq!(wanted(&d, "E2", "PAY"), None);
    assert!(
        !d.assignments.contains_key(&EmployeeId::from("E2")),
        "no empty entry left"
    );
    overlay(&mut d, &[removed("E1", "XS"), set("E1", "XS", 4, true)]);
    assert_eq!(wanted(&d, "E1", "XS").map(|w| w.level), Some(level(4)));
}

#[test]
fn overlay_adds_an_agent_before_assigning_and_forgets_one_who_left() {
    let mut d = desired();
    let events = [added("E9", "u-9", "de-de"), set("E9", "QA", 6, true)];
    // Checked one by one against the state the earlier events left.
    for e in &events {
        check_event(e, &d, &ROUTING).unwrap();
        apply_event(&mut d, e);
    }
    let agent = &d.agents[&EmployeeId::from("E9")];
    assert_eq!(
        (agent.user_id.as_str(), agent.locale.as_str(), agent.line),
        ("u-9", "de-de", 0)
    );
    assert_eq!(wanted(&d, "E9", "QA").map(|w| w.line), Some(0));
    // Assigned before being added: nothing to assign to, so nothing happens.
    let mut d2 = desired();
    overlay(
        &mut d2,
        &[set("E8", "PAY", 6, true), added("E8", "u-8", "en-us")],
    );
    assert_eq!(wanted(&d2, "E8", "PAY"), None);
    assert!(d2.agents.contains_key(&EmployeeId::from("E8")));

    overlay(&mut d, &[event("E1", Change::AgentLeft)]);
    assert!(!d.agents.contains_key(&EmployeeId::from("E1")));
    assert!(!d.assignments.contains_key(&EmployeeId::from("E1")));
    // Added again on the same user keeps the agents.csv line; a locale change moves them.
    overlay(&mut d, &[added("E2", "u-2", "en-us"), moved("E3", "en-us")]);
    assert_eq!(d.agents[&EmployeeId::from("E2")].line, 3);
    assert_eq!(d.agents[&EmployeeId::from("E2")].locale.as_str(), "en-us");
    assert_eq!(d.agents[&EmployeeId::from("E3")].locale.as_str(), "en-us");
}

#[test]
fn applying_an_event_the_check_rejects_changes_nothing_it_cannot_keep_valid() {
    let original = desired();
    let rejected_events = [
        set("E9", "PAY", 5, true),   // not an agent
        set("E1", "NOPE", 5, true),  // not in the catalog
        set("E2", "XS", 5, true),    // no de-de variant
        moved("E1", "de-de"),        // would strand XS
        added("E1", "u-7", "en-us"), // another user
        added("E9", "u-2", "en-us"), // someone else's user
        removed("E9", "PAY"),        // nothing to remove
        event("E9", Change::AgentLeft),
    ];
    let mut d = original.clone();
    for e in &rejected_events {
        assert!(check_event(e, &d, &ROUTING).is_err(), "{e:?}");
        apply_event(&mut d, e);
    }
    assert_eq!(d, original);
}
