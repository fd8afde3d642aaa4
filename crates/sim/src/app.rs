//! The simulator's shared state: one tenant under one lock (and the CXone dialect's under its
//! own), plus the gateway's books.

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::Knobs;
use crate::cxone::CxoneTenant;
use crate::gateway::Limits;
use crate::model::Tenant;
use crate::other_writer::OtherWriterLog;
use crate::stats::Stats;

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct App {
    /// The live tenant. One lock keeps every write atomic; operations under it are short.
    pub tenant: Mutex<Tenant>,
    /// What `POST /sim/reset` restores.
    pub initial: Tenant,
    /// Current knobs; the other writer watches them for changes of its rate.
    pub knobs: watch::Sender<Knobs>,
    /// The simulator's clock.
    pub clock: Clock,
    /// Clients and tokens.
    pub auth: Auth,
    /// Counters.
    pub stats: Mutex<Stats>,
    /// Rate limiter buckets and in-flight counts.
    pub limits: Limits,
    /// What the other integration last wrote to each user.
    pub other_writer: Mutex<OtherWriterLog>,
    /// Held by the other integration for each read-merge-write cycle, and by readers of its
    /// log: once its rate is 0, reading the log waits out a cycle in progress, so a test that
    /// pauses it sees a log and a tenant that agree without guessing how long to wait.
    pub other_writer_cycle: tokio::sync::Mutex<()>,
    /// The CXone dialect's tenant: its data is its own (integer ids, no locales, proficiencies
    /// 1–20), so it has its own lock, and a call to one dialect never waits on the other.
    pub cxone: Mutex<CxoneTenant>,
    /// What `POST /sim/reset` restores in the CXone dialect.
    pub cxone_initial: CxoneTenant,
}

impl App {
    /// A snapshot of the knobs.
    pub fn knobs(&self) -> Knobs {
        self.knobs.borrow().clone()
    }

    /// Restores the initial tenant and clears every counter. Issued tokens stay valid.
    pub fn reset(&self) {
        *self.tenant.lock() = self.initial.clone();
        *self.cxone.lock() = self.cxone_initial.clone();
        *self.stats.lock() = Stats::default();
        *self.other_writer.lock() = OtherWriterLog::default();
        self.limits.reset();
    }
}
