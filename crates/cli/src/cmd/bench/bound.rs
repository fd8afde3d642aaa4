//! The fewest API calls any client needs for a sync, and the least time the tenant's token bucket
//! lets them take. Pure arithmetic over the scenario, so the benchmark's yardstick can be read
//! and tested on its own.

/// The largest page the tenant serves (SPEC 1.2, 1.3).
pub const MAX_PAGE_SIZE: usize = 500;
/// The most users one bulk write carries (SPEC 1.3).
pub const MAX_BULK_ENTRIES: usize = 100;

/// What a sync has to learn and change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncWork {
    /// Skill definitions in the tenant before the sync.
    pub skill_definitions: usize,
    /// Proficiency definitions in the tenant before the sync.
    pub proficiency_definitions: usize,
    /// Users in the tenant.
    pub tenant_users: usize,
    /// Users the HRIS manages (each must be read, one way or another).
    pub managed_users: usize,
    /// Definitions that do not exist yet.
    pub definitions_to_create: usize,
    /// Users whose skills or proficiencies change (one bulk entry each, both lists together).
    pub users_to_write: usize,
}

/// The tenant's published limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantLimits {
    /// Requests per second of the tenant-wide token bucket; `None` when unthrottled.
    pub requests_per_second: Option<f64>,
    /// The bucket's capacity.
    pub burst: u32,
    /// The shortest round trip.
    pub min_latency_seconds: f64,
}

/// The lower bound, call by call. It lists no routing profiles: a definition's profile is
/// checked by the tenant when the definition is written, and skillsync lists them (one call)
/// only when a definition it writes names a profile no definition of the tenant already
/// names, to refuse a missing one before any write; the benchmark's new codes name a profile
/// the tenant's definitions use, so neither its apply nor its re-sync needs the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LowerBound {
    /// One token (it has its own bucket, so it costs no tenant capacity).
    pub token: usize,
    /// Pages of skill and proficiency definitions.
    pub definition_pages: usize,
    /// One `POST` per missing definition.
    pub definition_creates: usize,
    /// Reading the managed users: whole pages, or one `GET` each when that is fewer.
    pub user_reads: usize,
    /// Bulk writes of at most 100 users.
    pub bulk_writes: usize,
    /// Reading back the users written, to prove the tenant kept the writes: the same choice
    /// between pages of the listing and one GET per user as the first read.
    pub read_backs: usize,
}

impl LowerBound {
    /// Every call, the token included.
    pub fn calls(&self) -> usize {
        self.token + self.tenant_calls()
    }

    /// The calls the tenant's token bucket charges for.
    pub fn tenant_calls(&self) -> usize {
        self.definition_pages
            + self.definition_creates
            + self.user_reads
            + self.bulk_writes
            + self.read_backs
    }

    /// Writes among them.
    pub fn writes(&self) -> usize {
        self.definition_creates + self.bulk_writes
    }

    /// The least wall time: the last charged call cannot leave before the bucket has refilled
    /// for it (counted from a bucket full at the first call), and no answer comes back faster
    /// than the shortest round trip. Work on the client (reading the HRIS files, planning)
    /// costs nothing here. Sequential steps
    /// (token, reads, creates, writes) each cost at least one round trip as well; the bound is
    /// whichever of the two is larger.
    pub fn seconds(&self, limits: &TenantLimits) -> f64 {
        let round_trip = limits.min_latency_seconds;
        let throttled = match limits.requests_per_second {
            Some(rate) if rate > 0.0 => {
                let beyond_burst = self.tenant_calls().saturating_sub(limits.burst as usize);
                beyond_burst as f64 / rate + round_trip
            }
            _ => 0.0,
        };
        let steps = [
            self.token,
            self.definition_pages + self.user_reads,
            self.definition_creates,
            self.bulk_writes,
            self.read_backs,
        ]
        .iter()
        .filter(|calls| **calls > 0)
        .count();
        throttled.max(steps as f64 * round_trip)
    }
}

/// The fewest calls a client needs for `work`.
pub fn lower_bound(work: &SyncWork) -> LowerBound {
    let pages = |items: usize| items.div_ceil(MAX_PAGE_SIZE).max(1);
    LowerBound {
        token: 1,
        definition_pages: pages(work.skill_definitions) + pages(work.proficiency_definitions),
        definition_creates: work.definitions_to_create,
        user_reads: pages(work.tenant_users).min(work.managed_users.max(1)),
        bulk_writes: work.users_to_write.div_ceil(MAX_BULK_ENTRIES),
        read_backs: if work.users_to_write == 0 {
            0
        } else {
            pages(work.tenant_users).min(work.users_to_write)
        },
    }
}

/// What a sync has to learn and change in the CXone dialect (`docs/sim-cxone.md`), where
/// assignments are read and written per skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CxoneWork {
    /// Skills in the tenant before the sync.
    pub skills: usize,
    /// Agents in the tenant.
    pub agents: usize,
    /// Assignments of the catalog's skills (what the read must fetch), per chunk of at most
    /// 100 skills one listing names.
    pub catalog_rows_per_chunk: Vec<usize>,
    /// Skills to create.
    pub skills_to_create: usize,
    /// Agents per (skill, operation) that changes.
    pub agents_per_write: Vec<usize>,
    /// Assignments of the skills written, after the writes, per chunk of at most 100 skills.
    pub written_rows_per_chunk: Vec<usize>,
}

/// The CXone dialect's limits (`docs/sim-cxone.md`).
pub const CXONE_LIST_TOP: usize = 1000;
/// Rows of one assignment listing page.
pub const CXONE_ASSIGNMENT_TOP: usize = 10_000;
/// Entries of one write.
pub const CXONE_WRITE_ENTRIES: usize = 100;

/// The fewest calls a client needs for `work` in the CXone dialect: the token; the skill pages;
/// the agent pages (which agents exist is known before the first write, so that the plan
/// names an agent the tenant lacks instead of writing to it); the catalog skills' assignments,
/// page by page of a listing naming up to 100 skills; creates of up to 100 skills each; one
/// write per (skill, operation) per 100 agents; and the written skills' assignments read back.
pub fn cxone_lower_bound(work: &CxoneWork) -> LowerBound {
    let pages = |rows: &usize| rows.div_ceil(CXONE_ASSIGNMENT_TOP).max(1);
    LowerBound {
        token: 1,
        definition_pages: work.skills.div_ceil(CXONE_LIST_TOP).max(1),
        definition_creates: work.skills_to_create.div_ceil(CXONE_WRITE_ENTRIES),
        user_reads: work.agents.div_ceil(CXONE_LIST_TOP).max(1)
            + work.catalog_rows_per_chunk.iter().map(pages).sum::<usize>(),
        bulk_writes: work
            .agents_per_write
            .iter()
            .map(|agents| agents.div_ceil(CXONE_WRITE_ENTRIES))
            .sum(),
        read_backs: work.written_rows_per_chunk.iter().map(pages).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(users: usize, to_write: usize) -> SyncWork {
        SyncWork {
            skill_definitions: 24,
            proficiency_definitions: 10,
            tenant_users: users,
            managed_users: users,
            definitions_to_create: 4,
            users_to_write: to_write,
        }
    }

    const LIMITS: TenantLimits = TenantLimits {
        requests_per_second: Some(10.0),
        burst: 20,
        min_latency_seconds: 0.02,
    };

    #[test]
    fn ten_thousand_agents_thirty_percent_changed() {
        let bound = lower_bound(&work(10_000, 3_000));
        assert_eq!(
            bound,
            LowerBound {
                token: 1,
                definition_pages: 2,
                definition_creates: 4,
                user_reads: 20,
                bulk_writes: 30,
                read_backs: 20,
            }
        );
        assert_eq!(bound.calls(), 77);
        assert_eq!(bound.writes(), 34);
        // 76 charged calls, 20 of them from the burst: 56 at 10/s, then one round trip.
        assert!((bound.seconds(&LIMITS) - 5.62).abs() < 1e-9);
    }

    #[test]
    fn cxone_counts_one_write_per_skill_and_operation_per_hundred_agents() {
        let bound = cxone_lower_bound(&CxoneWork {
            skills: 50,
            agents: 10_000,
            catalog_rows_per_chunk: vec![45_000],
            skills_to_create: 4,
            agents_per_write: vec![100, 101, 3],
            written_rows_per_chunk: vec![40_001],
        });
        assert_eq!(
            bound,
            LowerBound {
                token: 1,
                definition_pages: 1,
                definition_creates: 1,
                user_reads: 10 + 5,
                bulk_writes: 1 + 2 + 1,
                read_backs: 5,
            }
        );
    }

    #[test]
    fn partial_pages_and_batches_round_up() {
        let bound = lower_bound(&work(501, 101));
        assert_eq!(bound.user_reads, 2);
        assert_eq!(bound.bulk_writes, 2);
    }

    #[test]
    fn a_few_managed_users_are_cheaper_to_read_one_by_one() {
        let bound = lower_bound(&SyncWork {
            managed_users: 3,
            ..work(100_000, 3)
        });
        assert_eq!(bound.user_reads, 3);
        assert_eq!(bound.read_backs, 3, "three users written, three read back");
    }

    #[test]
    fn nothing_to_change_means_reads_only() {
        let bound = lower_bound(&SyncWork {
            definitions_to_create: 0,
            ..work(10_000, 0)
        });
        assert_eq!(bound.writes(), 0);
        assert_eq!(bound.calls(), 23);
    }

    #[test]
    fn within_the_burst_only_round_trips_count() {
        let bound = lower_bound(&work(100, 10));
        assert!(bound.tenant_calls() <= 20);
        // Token, reads, creates, writes, read-back: five sequential round trips.
        assert!((bound.seconds(&LIMITS) - 0.10).abs() < 1e-9);
        let unthrottled = TenantLimits {
            requests_per_second: None,
            ..LIMITS
        };
        assert!((bound.seconds(&unthrottled) - 0.10).abs() < 1e-9);
    }
}
