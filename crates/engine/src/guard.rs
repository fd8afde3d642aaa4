//! Guards checked before the first write: a run that would remove too much, or strip agents of
//! every skill, stops with a count and the way to override it (as identity-provisioning tools
//! do with deletion thresholds).

use skillsync_core::Plan;
use skillsync_core::plan::Why;

/// How many removals a run may make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RemovalLimit {
    /// At most this many.
    Count(u64),
    /// At most this percentage of the assignments skillsync owns.
    Percent(f64),
}

/// Why a run was refused before writing anything.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Too many removals.
    #[error(
        "refusing to apply: {removals} removals ({share:.1}% of {owned} owned assignments) exceed max_removals {limit}; \
         review them with `skillsync plan`, then raise [sync] max_removals or pass --max-removals {suggest} for this run"
    )]
    TooManyRemovals {
        /// Removals the plan makes (moves to the right locale or off a duplicate excluded).
        removals: u64,
        /// Owned assignments now.
        owned: u64,
        /// Their share.
        share: f64,
        /// The limit, as configured.
        limit: String,
        /// A limit that would let this run through.
        suggest: String,
    },
    /// Agents would be left with no skills at all.
    #[error(
        "refusing to apply: {count} agent(s) would be left with no skills and drop out of every queue (first: {first}); \
         if the HRIS really means that, pass --allow-empty-skills"
    )]
    EmptySkills {
        /// How many.
        count: usize,
        /// The first few employee ids.
        first: String,
    },
    /// The plan the caller asked for is not the one the tenant allows now (a saved plan made
    /// against a tenant that changed since): the reason, with what to do.
    #[error("refusing to apply: {0}")]
    Outdated(String),
}

/// Removals that really take something away: moving an assignment to the agent's own locale
/// or off a duplicate definition is not a loss.
pub fn real_removals(plan: &Plan) -> u64 {
    plan.users
        .iter()
        .flat_map(|u| u.changes())
        .filter(|c| c.is_remove() && c.why == Why::NotDesired)
        .count() as u64
}

/// Checks the plan against the guards; `Ok` means writing may start.
pub fn check(plan: &Plan, limit: RemovalLimit, allow_empty_skills: bool) -> Result<(), Refusal> {
    let removals = real_removals(plan);
    let owned = plan.totals.owned_assignments_before as u64;
    let share = if owned == 0 {
        0.0
    } else {
        removals as f64 * 100.0 / owned as f64
    };
    let (exceeded, limit_text) = match limit {
        RemovalLimit::Count(n) => (removals > n, n.to_string()),
        RemovalLimit::Percent(p) => (share > p, format!("{p}%")),
    };
    if exceeded {
        let suggest = match limit {
            RemovalLimit::Count(_) => removals.to_string(),
            RemovalLimit::Percent(_) => format!("{}%", share.ceil() as u64),
        };
        return Err(Refusal::TooManyRemovals {
            removals,
            owned,
            share,
            limit: limit_text,
            suggest,
        });
    }
    let emptied: Vec<&str> = plan
        .users
        .iter()
        .filter(|u| u.left_without_skills)
        // A user no longer in the HRIS has no employee id: named by its tenant id.
        .map(|u| {
            if u.absent_from_hris {
                u.user_id.as_str()
            } else {
                u.employee_id.as_str()
            }
        })
        .collect();
    if !emptied.is_empty() && !allow_empty_skills {
        return Err(Refusal::EmptySkills {
            count: emptied.len(),
            first: emptied
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(())
}
