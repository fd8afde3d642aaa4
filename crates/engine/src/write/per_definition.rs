//! The first writes of a dialect that writes assignments per definition (CXone): each user's
//! write becomes the difference from the user as read, and the differences of all users are
//! sent grouped by (definition, operation), as many agents per call as the tenant takes. The
//! fewest calls a plan can cost in that dialect.
//!
//! Each call's result set settles its agents' operations one by one: journaled as its answer
//! arrives (each operation an entry, its before the agent's list as this run left it so far),
//! the breaker and the lease checked before each call. A user is settled once all of its
//! operations are: every one applied → updated (pending the read-back); one the tenant refused
//! → failed with its reason; one found not as assumed, or whose answer was lost → re-read and
//! rewritten by the write path's usual loop, which sends only what is still missing.

use std::collections::BTreeMap;
use std::sync::Mutex;

use skillsync_core::{Assignment, AssignmentOp, DefinitionId, UserId};
use skillsync_cxone::{AgentAssignment, DefinitionWrite, EntryOutcome};
use skillsync_store::{Snapshot, UserLists, WriteStatus, WriteTarget};

use super::{Entry, FailureKind, Job, UserOutcome, Writer};
use crate::error::explain;
use crate::fan_out::fan_out;

/// One call to make: the definition, the operation, and which of the jobs' operations it
/// carries.
struct Call {
    write: DefinitionWrite,
    /// (job, the operation's assignment) per agent, in the call's order.
    carries: Vec<(usize, Assignment)>,
}

/// Where one user's operations stand.
struct Pending {
    job: Job,
    /// The user's skills as this run has left them so far (the journal's before).
    current: Vec<Assignment>,
    left: usize,
    applied: usize,
    total: usize,
    not_sent: Option<crate::StopReason>,
    conflict: bool,
    lost: bool,
    gone: bool,
    refused: Option<String>,
    counted: bool,
}

/// Groups the jobs' differences into calls, in a stable order (by operation, then definition),
/// and counts each job's operations.
fn calls(jobs: &[Job], per_call: usize) -> (Vec<Call>, Vec<usize>) {
    let mut grouped: BTreeMap<(AssignmentOp, &DefinitionId), Vec<(usize, Assignment)>> =
        BTreeMap::new();
    let mut counts = vec![0; jobs.len()];
    let mut ops_of: Vec<Vec<(AssignmentOp, Assignment)>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let (before, unmapped) = match &job.write.as_read {
            Some(read) => (read.skills.as_slice(), &read.unmapped),
            None => (&[][..], &Default::default()),
        };
        let after = job.write.skills.as_deref().unwrap_or_default();
        ops_of.push(skillsync_core::assignment_difference(
            before, unmapped, after,
        ));
    }
    for (index, ops) in ops_of.iter().enumerate() {
        counts[index] = ops.len();
        for (op, assignment) in ops {
            grouped
                .entry((*op, &assignment.definition))
                .or_default()
                .push((index, assignment.clone()));
        }
    }
    let mut out = Vec::new();
    for ((op, definition), entries) in grouped {
        for chunk in entries.chunks(per_call.max(1)) {
            out.push(Call {
                write: DefinitionWrite {
                    definition: definition.clone(),
                    op,
                    agents: chunk
                        .iter()
                        .map(|(index, a)| AgentAssignment {
                            user_id: jobs[*index].write.user_id.clone(),
                            level: a.level,
                            active: a.active,
                        })
                        .collect(),
                },
                carries: chunk.to_vec(),
            });
        }
    }
    (out, counts)
}

fn skills_snapshot(list: &[Assignment]) -> Snapshot {
    Snapshot::User(UserLists {
        version: None,
        skills: Some(
            list.iter()
                .map(|a| skillsync_store::Held {
                    definition_id: a.definition.to_string(),
                    level: a.level.get(),
                    active: a.active,
                })
                .collect(),
        ),
        proficiencies: None,
    })
}

impl Writer<'_> {
    /// Sends the jobs' first writes per definition; returns the users to re-read.
    pub(crate) async fn send_per_definition(
        &self,
        jobs: Vec<Job>,
        per_call: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<UserId> {
        let (calls, counts) = calls(&jobs, per_call);
        let total_users = jobs.len();
        let pending: Vec<Mutex<Pending>> = jobs
            .into_iter()
            .zip(counts)
            .map(|(job, total)| {
                let current = job
                    .write
                    .as_read
                    .as_ref()
                    .map(|r| r.skills.clone())
                    .unwrap_or_default();
                Mutex::new(Pending {
                    job,
                    current,
                    left: total,
                    applied: 0,
                    total,
                    not_sent: None,
                    conflict: false,
                    lost: false,
                    gone: false,
                    refused: None,
                    counted: false,
                })
            })
            .collect();
        let settled = std::sync::atomic::AtomicUsize::new(0);
        let mut reread = Vec::new();
        // A user whose write changes nothing the tenant would see (only the list's order).
        for slot in &pending {
            let pending = slot.lock().expect("not poisoned");
            if pending.total == 0 {
                self.settle(&pending.job.write.user_id, UserOutcome::AlreadyCurrent);
                settled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let finished: Vec<Vec<UserId>> = fan_out(
            calls,
            self.options.concurrency,
            |_| 1,
            |_| {},
            |call| {
                let pending = &pending;
                let settled = &settled;
                async move {
                    let stopped = self.should_stop().await;
                    let result = match &stopped {
                        Some(_) => None,
                        None => {
                            let fresh = call
                                .carries
                                .iter()
                                .filter(|(index, _)| {
                                    let mut p = pending[*index].lock().expect("not poisoned");
                                    !std::mem::replace(&mut p.counted, true)
                                })
                                .count();
                            self.sent(fresh);
                            Some(self.api.write_definition(&call.write).await)
                        }
                    };
                    let mut entries: Vec<Entry> = Vec::new();
                    let mut done_users = Vec::new();
                    for (at, (index, assignment)) in call.carries.iter().enumerate() {
                        let mut p = pending[*index].lock().expect("not poisoned");
                        let user = p.job.write.user_id.clone();
                        let before = skills_snapshot(&p.current);
                        let (status, detail) = match (&stopped, &result) {
                            (Some(why), _) => {
                                p.not_sent.get_or_insert(why.clone());
                                p.left -= 1;
                                if p.left == 0 {
                                    done_users.push(*index);
                                }
                                continue;
                            }
                            (None, Some(Ok(outcomes))) => match outcomes.get(at) {
                                Some(EntryOutcome::Applied(_)) => {
                                    skillsync_core::apply_assignment_op(
                                        &mut p.current,
                                        call.write.op,
                                        assignment,
                                    );
                                    p.applied += 1;
                                    (WriteStatus::Applied, None)
                                }
                                Some(EntryOutcome::Conflict) => {
                                    p.conflict = true;
                                    (
                                        WriteStatus::Conflict,
                                        Some("not as read: re-read and written again".to_string()),
                                    )
                                }
                                Some(EntryOutcome::NotFound) | None => {
                                    p.gone = true;
                                    (WriteStatus::Failed, Some("no such agent".to_string()))
                                }
                                Some(EntryOutcome::Rejected(why)) => {
                                    p.refused.get_or_insert_with(|| {
                                        format!(
                                            "{} of {} refused: {why}",
                                            call.write.op, assignment.definition
                                        )
                                    });
                                    (WriteStatus::Failed, Some(why.clone()))
                                }
                            },
                            (None, Some(Err(error))) => {
                                let detail = explain(error);
                                if error.is_transient() {
                                    p.lost = true;
                                    (WriteStatus::Unknown, Some(detail))
                                } else {
                                    p.refused.get_or_insert_with(|| detail.clone());
                                    (WriteStatus::Failed, Some(detail))
                                }
                            }
                            (None, None) => unreachable!("a call not stopped was sent"),
                        };
                        let after = skills_snapshot(&p.current);
                        entries.push(Entry {
                            target: WriteTarget::UserSkills,
                            subject: user.to_string(),
                            before,
                            after,
                            status,
                            detail: Some(match detail {
                                Some(detail) => {
                                    format!("{} {}: {detail}", call.write.op, assignment.definition)
                                }
                                None => {
                                    format!("{} {}", call.write.op, assignment.definition)
                                }
                            }),
                            routes: true,
                        });
                        p.left -= 1;
                        if p.left == 0 {
                            done_users.push(*index);
                        }
                    }
                    self.record(entries).await;
                    let mut reread = Vec::new();
                    for index in done_users {
                        let p = pending[index].lock().expect("not poisoned");
                        if let Some(user) = self.conclude(&p) {
                            reread.push(user);
                        }
                        let done = settled.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        progress(done, total_users);
                    }
                    reread
                }
            },
        )
        .await;
        reread.extend(finished.into_iter().flatten());
        reread
    }

    /// Settles a user whose operations all have an answer (or were not sent); returns it when
    /// it must be re-read.
    fn conclude(&self, p: &Pending) -> Option<UserId> {
        let write = &p.job.write;
        let user = &write.user_id;
        if let Some(why) = &p.refused {
            let reason = if p.applied > 0 {
                format!("{why} ({} of its {} changes written)", p.applied, p.total)
            } else {
                why.clone()
            };
            self.settle(user, UserOutcome::failed(FailureKind::Refused, reason));
            return None;
        }
        if p.gone {
            self.settle(
                user,
                UserOutcome::failed(FailureKind::Gone, format!("agent {user} does not exist")),
            );
            return None;
        }
        if p.lost {
            // Only a read tells whether it landed.
            self.doubt(write, &p.job.before, true);
            return Some(user.clone());
        }
        if p.conflict {
            self.state().conflicts += 1;
            self.doubt(write, &p.job.before, false);
            return Some(user.clone());
        }
        if let Some(why) = &p.not_sent {
            let outcome = if p.applied == 0 {
                UserOutcome::NotAttempted(why.clone())
            } else {
                UserOutcome::failed(
                    FailureKind::Unresolved,
                    format!(
                        "{} of its {} changes written when the run stopped: {why}",
                        p.applied, p.total
                    ),
                )
            };
            self.settle(user, outcome);
            return None;
        }
        self.landed(write);
        None
    }
}
