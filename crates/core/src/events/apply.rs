//! Events laid over the desired state read from the HRIS files.

use super::{Change, Event};
use crate::desired::{Agent, Desired, Wanted};
use crate::domain::Locale;

/// Lays events over the desired state, in the order given (the caller orders by
/// `occurred_at`): a later event about the same assignment or agent wins.
pub fn overlay(desired: &mut Desired, events: &[Event]) {
    for event in events {
        apply_event(desired, event);
    }
}

/// Lays one event over the desired state. Assignments and agents it creates carry line 0
/// ("from an event"). An event [`super::check_event`] would reject is applied only as far as
/// it leaves a state the HRIS readers would accept (an assignment needs a known agent and a
/// variant in their locale; a locale change may strand no assignment; a user belongs to one
/// employee); the rest is skipped.
pub fn apply_event(desired: &mut Desired, event: &Event) {
    let employee = &event.employee_id;
    match &event.change {
        Change::AssignmentSet {
            code,
            level,
            active,
        } => {
            let Some(agent) = desired.agents.get(employee) else {
                return;
            };
            if desired.catalog.entry(code, &agent.locale).is_none() {
                return;
            }
            desired
                .assignments
                .entry(employee.clone())
                .or_default()
                .insert(
                    code.clone(),
                    Wanted {
                        level: *level,
                        active: *active,
                        line: 0,
                    },
                );
        }
        Change::AssignmentRemoved { code } => {
            if let Some(wanted) = desired.assignments.get_mut(employee) {
                wanted.remove(code);
                // No entry and an empty one mean the same; keeping none keeps states equal.
                if wanted.is_empty() {
                    desired.assignments.remove(employee);
                }
            }
        }
        Change::AgentLocale { locale } => {
            if strands_assignments(desired, event, locale) {
                return;
            }
            if let Some(agent) = desired.agents.get_mut(employee) {
                agent.locale = locale.clone();
            }
        }
        Change::AgentAdded { user_id, locale } => {
            if strands_assignments(desired, event, locale) {
                return;
            }
            let taken = desired
                .agents
                .values()
                .any(|a| &a.user_id == user_id && &a.employee_id != employee);
            match desired.agents.get_mut(employee) {
                // Added again: the agent keeps their agents.csv line for messages.
                Some(agent) if &agent.user_id == user_id => agent.locale = locale.clone(),
                Some(_) => {}
                None if taken => {}
                None => {
                    desired.agents.insert(
                        employee.clone(),
                        Agent {
                            employee_id: employee.clone(),
                            user_id: user_id.clone(),
                            locale: locale.clone(),
                            line: 0,
                        },
                    );
                }
            }
        }
        Change::AgentLeft => {
            desired.agents.remove(employee);
            desired.assignments.remove(employee);
        }
    }
}

/// Some code the event's employee wants has no variant in `locale`.
fn strands_assignments(desired: &Desired, event: &Event, locale: &Locale) -> bool {
    desired
        .assignments
        .get(&event.employee_id)
        .is_some_and(|wanted| {
            wanted
                .keys()
                .any(|code| desired.catalog.entry(code, locale).is_none())
        })
}
