//! Whether routing sees a run's skill changes, decided without I/O: which skills the run gave
//! to whom (from the journal), which non-production queues can prove it, and what each test
//! interaction's answer means given when the routing cache settles.
//!
//! A 200 from the Admin API proves the database changed, not the routing engine's cache; reading
//! the user back shows only the database too. A test interaction is answered from the cache, so
//! it is the only proof, and "nobody routed" means something only once the propagation window
//! has passed.

use std::collections::BTreeMap;

use jiff::Timestamp;
use skillsync_core::{DefinitionId, UserId};
use skillsync_cxone::{Queue, Routed};
use skillsync_store::{WriteRecord, WriteStatus, WriteTarget};

/// One skill a run gave to one agent: added, raised in level, or made active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The locale-specific skill definition.
    pub skill: DefinitionId,
    /// `name (locale)`, for people to read: filled by the caller from the journal's mappings.
    pub label: Option<String>,
    /// The agent.
    pub user: UserId,
    /// The level written.
    pub level: u8,
    /// When the routing cache will show it.
    pub settles_at: Option<Timestamp>,
}

/// The grants in a run's journaled writes: only applied writes of skill lists count, and only
/// entries the written list holds active that the list as read before did not (or held
/// inactive, or at a lower level). A later failed record of the same user (the read-back found
/// the write not kept) takes that user's grants back. Records from before the journal was
/// typed are skipped.
pub fn grants(writes: &[WriteRecord]) -> Vec<Grant> {
    // Keyed so a later applied write to the same user and skill replaces an earlier one.
    let mut found: BTreeMap<(DefinitionId, UserId), Grant> = BTreeMap::new();
    for write in writes {
        if write.target != WriteTarget::UserSkills {
            continue;
        }
        // After a write is applied, the write path records nothing more for that user but
        // the read-back's finding that the tenant did not keep it: what it granted is gone.
        if write.status == WriteStatus::Failed {
            found.retain(|(_, user), _| user.as_str() != write.subject);
            continue;
        }
        if write.status != WriteStatus::Applied {
            continue;
        }
        let (Some(before), Some(after)) = (write.before.user(), write.after.user()) else {
            continue;
        };
        let (previous, Some(written)) =
            (before.skills.as_deref().unwrap_or_default(), &after.skills)
        else {
            continue;
        };
        let user = UserId(write.subject.clone());
        for now in written.iter().filter(|a| a.active) {
            let held = previous
                .iter()
                .find(|a| a.definition_id == now.definition_id)
                .map(|a| (a.level, a.active));
            if is_grant(held, now.level) {
                let skill = DefinitionId(now.definition_id.clone());
                found.insert(
                    (skill.clone(), user.clone()),
                    Grant {
                        skill,
                        label: None,
                        user: user.clone(),
                        level: now.level,
                        settles_at: write.settles_at,
                    },
                );
            }
        }
    }
    found.into_values().collect()
}

/// Whether an active assignment at `level` gives the agent something routing did not have:
/// it is new, it was inactive, or its level went up.
fn is_grant(before: Option<(u8, bool)>, level: u8) -> bool {
    match before {
        None => true,
        Some((before_level, before_active)) => !before_active || level > before_level,
    }
}

/// A non-production queue that requires a granted skill, with the agents who should qualify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCheck {
    /// The queue (never a production one).
    pub queue: Queue,
    /// The skill's label, when known.
    pub label: Option<String>,
    /// Agents the run gave the skill at the queue's minimum level or above, highest first.
    pub expected: Vec<(UserId, u8)>,
    /// When the routing cache will show every one of them.
    pub settles_at: Option<Timestamp>,
}

/// Why a granted skill cannot be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCovered {
    /// No queue requires it.
    NoQueue,
    /// Only production queues require it, and those take no test interactions.
    ProductionOnly {
        /// Their names.
        queues: Vec<String>,
    },
    /// Non-production queues require it at a level no agent of this run reached.
    BelowMinLevel {
        /// The least demanding of them.
        queue: String,
        /// Its minimum level.
        min_level: u8,
        /// The highest level the run gave.
        highest: u8,
    },
}

impl NotCovered {
    /// A stable name for output, camelCase like every JSON value of the tool: `noQueue`,
    /// `productionOnly`, `belowMinLevel`.
    pub fn name(&self) -> &'static str {
        match self {
            NotCovered::NoQueue => "noQueue",
            NotCovered::ProductionOnly { .. } => "productionOnly",
            NotCovered::BelowMinLevel { .. } => "belowMinLevel",
        }
    }
}

/// A granted skill no test interaction can prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    /// The skill.
    pub skill: DefinitionId,
    /// Its label, when known.
    pub label: Option<String>,
    /// The agents the run gave it to.
    pub users: Vec<UserId>,
    /// Why.
    pub why: NotCovered,
}

/// What can be verified, and what cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// One test interaction each, in queue-name order.
    pub checks: Vec<QueueCheck>,
    /// Granted skills no non-production queue can prove, in skill order.
    pub uncovered: Vec<Uncovered>,
}

/// Chooses the queues to test: every non-production queue that requires a granted skill at a
/// level one of the agents reached. Production queues are never chosen: they take no test
/// interactions, and a test there would reach real customers' routing.
pub fn coverage(grants: &[Grant], queues: &[Queue]) -> Coverage {
    let mut by_skill: BTreeMap<&DefinitionId, Vec<&Grant>> = BTreeMap::new();
    for grant in grants {
        by_skill.entry(&grant.skill).or_default().push(grant);
    }
    let mut coverage = Coverage::default();
    for (skill, granted) in by_skill {
        let label = granted.iter().find_map(|g| g.label.clone());
        let highest = granted.iter().map(|g| g.level).max().unwrap_or(0);
        let requiring: Vec<&Queue> = queues.iter().filter(|q| &q.skill_id == skill).collect();
        let testable: Vec<&Queue> = requiring
            .iter()
            .copied()
            .filter(|q| !q.production)
            .collect();
        let mut covered = false;
        for queue in &testable {
            let mut expected: Vec<(UserId, u8)> = granted
                .iter()
                .filter(|g| g.level >= queue.min_level)
                .map(|g| (g.user.clone(), g.level))
                .collect();
            if expected.is_empty() {
                continue;
            }
            expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let settles_at = granted
                .iter()
                .filter(|g| g.level >= queue.min_level)
                .filter_map(|g| g.settles_at)
                .max();
            coverage.checks.push(QueueCheck {
                queue: (*queue).clone(),
                label: label.clone(),
                expected,
                settles_at,
            });
            covered = true;
        }
        if covered {
            continue;
        }
        let why = match testable.iter().min_by_key(|q| q.min_level) {
            Some(queue) => NotCovered::BelowMinLevel {
                queue: queue.name.clone(),
                min_level: queue.min_level,
                highest,
            },
            None if requiring.is_empty() => NotCovered::NoQueue,
            None => NotCovered::ProductionOnly {
                queues: requiring.iter().map(|q| q.name.clone()).collect(),
            },
        };
        coverage.uncovered.push(Uncovered {
            skill: skill.clone(),
            label,
            users: granted.iter().map(|g| g.user.clone()).collect(),
            why,
        });
    }
    coverage
        .checks
        .sort_by(|a, b| a.queue.name.cmp(&b.queue.name));
    coverage
}

/// What one test interaction showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Routed to an agent this run gave the skill: routing sees the change.
    Routed {
        /// The agent.
        user: UserId,
    },
    /// Routed to an agent this run did not change. After settling that can be right (the
    /// highest level wins, so that agent holds the skill at least as high as ours) but proves
    /// nothing about our agents; before settling our agents may simply not be visible yet.
    RoutedToOther {
        /// The agent, if the tenant named one.
        user: Option<UserId>,
        /// Whether the run's change had settled when the interaction was submitted.
        settled: bool,
    },
    /// Nobody was routed, but the change had not settled yet: not a failure, ask again later.
    NotYetRoutable {
        /// The tenant's reason.
        reason: Option<String>,
    },
    /// Nobody was routed although the change had settled: routing does not see it.
    Failed {
        /// The tenant's reason.
        reason: Option<String>,
    },
    /// The test interaction could not be submitted.
    Unanswered {
        /// The error.
        error: String,
    },
}

impl Verdict {
    /// A stable name for output, camelCase like every JSON value of the tool: `routed`,
    /// `routedToOther`, `notYetRoutable`, `failed`, `unanswered`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Routed { .. } => "routed",
            Verdict::RoutedToOther { .. } => "routedToOther",
            Verdict::NotYetRoutable { .. } => "notYetRoutable",
            Verdict::Failed { .. } => "failed",
            Verdict::Unanswered { .. } => "unanswered",
        }
    }
}

/// Reads the answer to the test interaction submitted to `check`'s queue at `asked_at`. The
/// submission time decides "settled", so an answer that arrives just after the settle time is
/// never taken for proof that the cache had the change.
pub fn classify(check: &QueueCheck, answer: &Routed, asked_at: Timestamp) -> Verdict {
    let settled = check.settles_at.is_none_or(|at| asked_at >= at);
    match (answer.routed, &answer.user_id) {
        (true, Some(user)) if check.expected.iter().any(|(u, _)| u == user) => {
            Verdict::Routed { user: user.clone() }
        }
        (true, user) => Verdict::RoutedToOther {
            user: user.clone(),
            settled,
        },
        (false, _) if settled => Verdict::Failed {
            reason: answer.reason.clone(),
        },
        (false, _) => Verdict::NotYetRoutable {
            reason: answer.reason.clone(),
        },
    }
}

/// The result of a whole verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every tested queue routed as expected.
    Verified,
    /// Some queue could not be judged yet because the change had not settled.
    NotYetRoutable,
    /// Some queue failed to route after settling, or could not be asked.
    Failed,
    /// No non-production queue covers any skill the run gave.
    NothingToVerify,
    /// Every queue was judged and none failed, but some routed, after settling, to an agent
    /// this run did not change: one who holds the skill at least as high as ours and so
    /// outranks them. That can be right, but it cannot prove routing sees our assignment.
    Inconclusive,
}

impl Outcome {
    /// A stable name for output, camelCase like every JSON value of the tool: `verified`,
    /// `notYetRoutable`, `failed`, `nothingToVerify`, `inconclusive`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Verified => "verified",
            Outcome::NotYetRoutable => "notYetRoutable",
            Outcome::Failed => "failed",
            Outcome::NothingToVerify => "nothingToVerify",
            Outcome::Inconclusive => "inconclusive",
        }
    }

    /// How much this outcome outweighs another when queues disagree: a failure is worst; a
    /// queue not judged yet may still prove (or fail) once settled; a queue another agent took
    /// proves nothing, which still outweighs the proof the other queues gave.
    fn weight(self) -> u8 {
        match self {
            Outcome::NothingToVerify => 0,
            Outcome::Verified => 1,
            Outcome::Inconclusive => 2,
            Outcome::NotYetRoutable => 3,
            Outcome::Failed => 4,
        }
    }
}

/// Rolls the verdicts up: any failure wins, then anything not yet settled, then any queue
/// routed after settling to an agent the run did not change (inconclusive); only when every
/// queue routed to one of the run's agents is the run verified. No verdicts: nothing to verify.
pub fn outcome<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> Outcome {
    verdicts
        .into_iter()
        .map(|verdict| match verdict {
            Verdict::Failed { .. } | Verdict::Unanswered { .. } => Outcome::Failed,
            Verdict::NotYetRoutable { .. } | Verdict::RoutedToOther { settled: false, .. } => {
                Outcome::NotYetRoutable
            }
            Verdict::RoutedToOther { settled: true, .. } => Outcome::Inconclusive,
            Verdict::Routed { .. } => Outcome::Verified,
        })
        .max_by_key(|outcome| outcome.weight())
        .unwrap_or(Outcome::NothingToVerify)
}

#[cfg(test)]
mod tests {
    use skillsync_store::{Held, RunId, Snapshot, UserLists};

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn lists(skills: &[(&str, u8, bool)]) -> Snapshot {
        Snapshot::User(UserLists {
            version: Some(3),
            skills: Some(
                skills
                    .iter()
                    .map(|(id, level, active)| Held {
                        definition_id: (*id).into(),
                        level: *level,
                        active: *active,
                    })
                    .collect(),
            ),
            proficiencies: None,
        })
    }

    fn write(
        subject: &str,
        before: &[(&str, u8, bool)],
        written: &[(&str, u8, bool)],
        status: WriteStatus,
    ) -> WriteRecord {
        WriteRecord {
            run: RunId(1),
            target: WriteTarget::UserSkills,
            subject: subject.into(),
            before: lists(before),
            after: lists(written),
            status,
            detail: None,
            at: at(0),
            settles_at: (status == WriteStatus::Applied).then(|| at(30)),
        }
    }

    fn queue(id: &str, skill: &str, min_level: u8, production: bool) -> Queue {
        Queue {
            id: id.into(),
            name: format!("Q_{id}"),
            skill_id: DefinitionId(skill.into()),
            min_level,
            production,
        }
    }

    fn grant(skill: &str, user: &str, level: u8) -> Grant {
        Grant {
            skill: DefinitionId(skill.into()),
            label: None,
            user: UserId(user.into()),
            level,
            settles_at: Some(at(30)),
        }
    }

    #[test]
    fn writes_grant_added_raised_and_activated_skills_only() {
        let before = [
            ("s-same", 5, true),
            ("s-up", 2, true),
            ("s-on", 5, false),
            ("s-down", 6, true),
            ("s-off", 6, true),
            ("s-gone", 6, true),
            ("ext-1", 3, true),
        ];
        let written = [
            ("s-same", 5, true),
            ("s-add", 4, true),
            ("s-up", 6, true),
            ("s-on", 5, true),
            ("s-down", 3, true),
            ("s-off", 6, false),
            ("ext-1", 3, true),
        ];
        let found = grants(&[write("u1", &before, &written, WriteStatus::Applied)]);
        let skills: Vec<(&str, u8)> = found.iter().map(|g| (g.skill.as_str(), g.level)).collect();
        assert_eq!(skills, [("s-add", 4), ("s-on", 5), ("s-up", 6)]);
        assert_eq!(found[0].settles_at, Some(at(30)));
        // A user who had no skills at all.
        let found = grants(&[write("u2", &[], &[("s1", 2, true)], WriteStatus::Applied)]);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn only_applied_skill_writes_count() {
        let written = [("s1", 4, true)];
        for status in [
            WriteStatus::Failed,
            WriteStatus::Conflict,
            WriteStatus::Unknown,
        ] {
            assert!(grants(&[write("u1", &[], &written, status)]).is_empty());
        }
        let mut proficiencies = write("u1", &[], &written, WriteStatus::Applied);
        proficiencies.target = WriteTarget::UserProficiencies;
        assert!(grants(&[proficiencies]).is_empty());
        // A write the read-back found not kept grants nothing.
        let mut not_kept = write("u1", &written, &[], WriteStatus::Failed);
        not_kept.detail = Some("read-back: the tenant did not keep the write".into());
        assert!(grants(&[write("u1", &[], &written, WriteStatus::Applied), not_kept]).is_empty());
        // Records written before the journal was typed prove nothing either way.
        let mut legacy = write("u1", &[], &written, WriteStatus::Applied);
        legacy.before = Snapshot::Legacy {
            value: serde_json::json!([]),
        };
        assert!(grants(&[legacy]).is_empty());
    }

    #[test]
    fn production_queues_are_never_tested() {
        let queues = [queue("prod", "s1", 1, true), queue("test", "s1", 1, false)];
        let coverage = coverage(&[grant("s1", "u1", 5)], &queues);
        let tested: Vec<&str> = coverage
            .checks
            .iter()
            .map(|c| c.queue.id.as_str())
            .collect();
        assert_eq!(tested, ["test"]);
        assert!(coverage.uncovered.is_empty());
    }

    #[test]
    fn skills_without_a_testable_queue_say_why() {
        let queues = [
            queue("prod", "s-prod", 1, true),
            queue("high", "s-high", 8, false),
            queue("higher", "s-high", 9, false),
        ];
        let grants = [
            grant("s-none", "u1", 5),
            grant("s-prod", "u1", 5),
            grant("s-high", "u1", 5),
        ];
        let coverage = coverage(&grants, &queues);
        assert!(coverage.checks.is_empty());
        let why: Vec<(&str, &NotCovered)> = coverage
            .uncovered
            .iter()
            .map(|u| (u.skill.as_str(), &u.why))
            .collect();
        assert_eq!(
            why,
            [
                (
                    "s-high",
                    &NotCovered::BelowMinLevel {
                        queue: "Q_high".into(),
                        min_level: 8,
                        highest: 5
                    }
                ),
                ("s-none", &NotCovered::NoQueue),
                (
                    "s-prod",
                    &NotCovered::ProductionOnly {
                        queues: vec!["Q_prod".into()]
                    }
                ),
            ]
        );
    }

    #[test]
    fn expected_agents_are_those_at_the_queue_minimum_or_above() {
        let queues = [queue("q", "s1", 5, false)];
        let mut late = grant("s1", "u-late", 9);
        late.settles_at = Some(at(90));
        let grants = [grant("s1", "u-low", 4), grant("s1", "u-mid", 6), late];
        let coverage = coverage(&grants, &queues);
        let check = &coverage.checks[0];
        let expected: Vec<&str> = check.expected.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(expected, ["u-late", "u-mid"]);
        assert_eq!(check.settles_at, Some(at(90)));
    }

    fn answer(routed: bool, user: Option<&str>) -> Routed {
        Routed {
            interaction_id: "i1".into(),
            routed,
            user_id: user.map(|u| UserId(u.into())),
            reason: (!routed).then(|| "no agent in the routing cache".to_string()),
        }
    }

    #[test]
    fn answers_are_read_against_the_settle_time() {
        let coverage = coverage(&[grant("s1", "u1", 5)], &[queue("q", "s1", 1, false)]);
        let check = &coverage.checks[0];
        let (before, after) = (at(29), at(30));
        assert!(matches!(
            classify(check, &answer(true, Some("u1")), before),
            Verdict::Routed { .. }
        ));
        assert!(matches!(
            classify(check, &answer(true, Some("u1")), after),
            Verdict::Routed { .. }
        ));
        assert!(matches!(
            classify(check, &answer(false, None), before),
            Verdict::NotYetRoutable { .. }
        ));
        assert!(matches!(
            classify(check, &answer(false, None), after),
            Verdict::Failed { .. }
        ));
        assert_eq!(
            classify(check, &answer(true, Some("u9")), before),
            Verdict::RoutedToOther {
                user: Some(UserId("u9".into())),
                settled: false
            }
        );
        assert_eq!(
            classify(check, &answer(true, Some("u9")), after),
            Verdict::RoutedToOther {
                user: Some(UserId("u9".into())),
                settled: true
            }
        );
    }

    #[test]
    fn failures_outrank_waiting_which_outranks_inconclusive_which_outranks_success() {
        let routed = Verdict::Routed {
            user: UserId("u1".into()),
        };
        let waiting = Verdict::NotYetRoutable { reason: None };
        let failed = Verdict::Failed { reason: None };
        let other_settled = Verdict::RoutedToOther {
            user: None,
            settled: true,
        };
        let other_early = Verdict::RoutedToOther {
            user: None,
            settled: false,
        };
        assert_eq!(outcome([]), Outcome::NothingToVerify);
        assert_eq!(outcome([&routed, &routed]), Outcome::Verified);
        // Routed, after settling, to an agent who outranks ours: proves nothing about ours,
        // alone or beside queues that did route to ours, in any order.
        assert_eq!(outcome([&other_settled]), Outcome::Inconclusive);
        assert_eq!(outcome([&routed, &other_settled]), Outcome::Inconclusive);
        assert_eq!(outcome([&other_settled, &routed]), Outcome::Inconclusive);
        assert_eq!(
            outcome([&routed, &waiting, &routed]),
            Outcome::NotYetRoutable
        );
        assert_eq!(outcome([&other_early, &routed]), Outcome::NotYetRoutable);
        assert_eq!(outcome([&other_settled, &waiting]), Outcome::NotYetRoutable);
        assert_eq!(
            outcome([&other_early, &other_settled]),
            Outcome::NotYetRoutable
        );
        assert_eq!(outcome([&waiting, &failed, &routed]), Outcome::Failed);
        assert_eq!(outcome([&other_settled, &failed]), Outcome::Failed);
        let unanswered = Verdict::Unanswered {
            error: "403".into(),
        };
        assert_eq!(outcome([&routed, &unanswered]), Outcome::Failed);
    }

    /// The names are the values of the JSON document (docs/verify-json.md): camelCase, like
    /// every other JSON value of the tool.
    #[test]
    fn verify_output_names_are_camel_case() {
        let verdicts = [
            Verdict::Routed {
                user: UserId("u1".into()),
            },
            Verdict::RoutedToOther {
                user: None,
                settled: true,
            },
            Verdict::NotYetRoutable { reason: None },
            Verdict::Failed { reason: None },
            Verdict::Unanswered {
                error: "403".into(),
            },
        ];
        assert_eq!(
            verdicts.iter().map(Verdict::name).collect::<Vec<_>>(),
            [
                "routed",
                "routedToOther",
                "notYetRoutable",
                "failed",
                "unanswered"
            ]
        );
        let outcomes = [
            Outcome::Verified,
            Outcome::NotYetRoutable,
            Outcome::Failed,
            Outcome::NothingToVerify,
            Outcome::Inconclusive,
        ];
        assert_eq!(
            outcomes.map(Outcome::name),
            [
                "verified",
                "notYetRoutable",
                "failed",
                "nothingToVerify",
                "inconclusive"
            ]
        );
        let why = [
            NotCovered::NoQueue,
            NotCovered::ProductionOnly {
                queues: vec!["Q_prod".into()],
            },
            NotCovered::BelowMinLevel {
                queue: "Q_high".into(),
                min_level: 8,
                highest: 5,
            },
        ];
        assert_eq!(
            why.iter().map(NotCovered::name).collect::<Vec<_>>(),
            ["noQueue", "productionOnly", "belowMinLevel"]
        );
    }
}
