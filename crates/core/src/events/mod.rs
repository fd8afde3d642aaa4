//! HRIS events (SPEC section 4): changes the HRIS pushes to `skillsync serve` between full
//! syncs, laid over the desired state read from the HRIS files.
//!
//! Three pure steps, in the order the service takes them:
//!
//! 1. [`parse_events`] turns a request body into typed [`Event`]s, refusing anything the CSV
//!    readers would refuse in a file (ids shaped as ids, no formula-leading text, levels 1–10,
//!    lowercase locale tags) plus what only JSON can get wrong (types, unknown or repeated
//!    fields); every refusal names the JSON field (`events[3].level`).
//! 2. [`check_event`] decides whether one parsed event can be laid over the desired state as
//!    it stands (known agent, catalog code, a variant in the agent's locale, what the tenant's
//!    dialect carries), and which [`Lane`] processes it.
//! 3. [`overlay`] / [`apply_event`] lay accepted events over the desired state.
//!
//! The format and every message are documented for integrators in `docs/events.md`.

mod apply;
mod check;
mod json;
mod parse;

use std::fmt;

use serde::Serialize;

use crate::desired::{Code, EmployeeId};
use crate::domain::{Level, Locale, UserId};

pub use apply::{apply_event, overlay};
pub use check::check_event;
pub use parse::parse_events;

/// The most events one request may carry; a larger batch is refused whole (send several).
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// The sender's id of an event: the key a repeated delivery is recognised by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl EventId {
    /// As text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EventId {
    fn from(s: &str) -> Self {
        EventId(s.to_string())
    }
}

/// One HRIS event, parsed and valid on its own (not yet checked against the desired state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Unique per event; a repeated delivery carries the same id.
    pub id: EventId,
    /// When it happened in the HRIS: the service applies events in this order.
    pub occurred_at: jiff::Timestamp,
    /// The employee it is about.
    pub employee_id: EmployeeId,
    /// What changed.
    pub change: Change,
}

/// What an event changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Change {
    /// `assignment.set`: the employee should hold `code` at `level`, active or not.
    AssignmentSet {
        /// The catalog code.
        code: Code,
        /// 1–10.
        level: Level,
        /// Defaults to true.
        active: bool,
    },
    /// `assignment.removed`: the employee should no longer hold `code`.
    AssignmentRemoved {
        /// The catalog code.
        code: Code,
    },
    /// `agent.locale`: the employee now works in `locale`.
    AgentLocale {
        /// The new locale.
        locale: Locale,
    },
    /// `agent.added`: the employee is now an agent, on tenant user `user_id`.
    AgentAdded {
        /// The tenant's user.
        user_id: UserId,
        /// The locale they work in.
        locale: Locale,
    },
    /// `agent.left`: the employee is no longer an agent.
    AgentLeft,
}

/// The five event types as the wire spells them, in the order the documentation lists them.
pub(crate) const TYPES: [&str; 5] = [
    "assignment.set",
    "assignment.removed",
    "agent.locale",
    "agent.added",
    "agent.left",
];

impl Event {
    /// The event's type as the wire spells it (`assignment.set`, …).
    pub fn type_name(&self) -> &'static str {
        match self.change {
            Change::AssignmentSet { .. } => TYPES[0],
            Change::AssignmentRemoved { .. } => TYPES[1],
            Change::AgentLocale { .. } => TYPES[2],
            Change::AgentAdded { .. } => TYPES[3],
            Change::AgentLeft => TYPES[4],
        }
    }

    /// The event as one canonical JSON object in the wire format (fields in a fixed order,
    /// `occurredAt` in UTC, `active` always written), for storing verbatim:
    /// [`parse_events`] reads it back as an equal event.
    pub fn to_json(&self) -> String {
        let mut object = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            object.insert(key.to_string(), value);
        };
        put("id", self.id.as_str().into());
        put("type", self.type_name().into());
        put("occurredAt", self.occurred_at.to_string().into());
        put("employeeId", self.employee_id.as_str().into());
        match &self.change {
            Change::AssignmentSet {
                code,
                level,
                active,
            } => {
                put("code", code.as_str().into());
                put("level", level.get().into());
                put("active", (*active).into());
            }
            Change::AssignmentRemoved { code } => put("code", code.as_str().into()),
            Change::AgentLocale { locale } => put("locale", locale.as_str().into()),
            Change::AgentAdded { user_id, locale } => {
                put("userId", user_id.as_str().into());
                put("locale", locale.as_str().into());
            }
            Change::AgentLeft => {}
        }
        serde_json::Value::Object(object).to_string()
    }
}

/// Which path of the service processes an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Lane {
    /// The strict path: skills route, so they are written promptly and read back. Every
    /// agent event goes here too (a locale change or a departure moves the whole record).
    Skills,
    /// The eventual path: proficiencies never route, so they are batched.
    Proficiencies,
}

/// One thing wrong with a body, at a JSON field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventProblem {
    /// Where: `level` in a single event, `events[3].level` in a batch, `events` or `body`
    /// for the body as a whole.
    pub field: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl fmt::Display for EventProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[cfg(test)]
mod tests;
