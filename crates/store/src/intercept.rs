//! A journal that passes every call through to another, around a hook: for tests that need a
//! real journal which fails, stalls or counts on cue, and for the benchmark that times the
//! journal's calls. One wrapper instead of each of them repeating every method of [`Journal`].

use std::time::Duration;

use jiff::Timestamp;

use crate::{
    Acquired, Journal, Lease, LeaseHolder, Mapping, NewRun, Retirement, RunCounts, RunId,
    RunOutcome, RunSummary, StoreError, WriteRecord, WriteTarget,
};

/// Which method of [`Journal`] is called, with what a hook may need of its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalCall {
    /// [`Journal::start_run`].
    StartRun,
    /// [`Journal::record_writes`].
    RecordWrites {
        /// How many records the batch holds.
        records: usize,
    },
    /// [`Journal::finish_run`].
    FinishRun,
    /// [`Journal::runs`].
    Runs,
    /// [`Journal::run`].
    Run,
    /// [`Journal::writes`].
    Writes,
    /// [`Journal::last_write`].
    LastWrite,
    /// [`Journal::last_writes`].
    LastWrites,
    /// [`Journal::settles_at`].
    SettlesAt,
    /// [`Journal::remember_mappings`].
    RememberMappings,
    /// [`Journal::mappings`].
    Mappings,
    /// [`Journal::record_retirement`].
    RecordRetirement,
    /// [`Journal::retirements`].
    Retirements,
    /// [`Journal::forget_retirement`].
    ForgetRetirement,
    /// [`Journal::acquire_lease`].
    AcquireLease,
    /// [`Journal::renew_lease`].
    RenewLease,
    /// [`Journal::release_lease`].
    ReleaseLease,
    /// [`Journal::fence_run`].
    FenceRun,
}

impl JournalCall {
    /// The method's name, as in [`Journal`].
    pub fn name(self) -> &'static str {
        match self {
            JournalCall::StartRun => "start_run",
            JournalCall::RecordWrites { .. } => "record_writes",
            JournalCall::FinishRun => "finish_run",
            JournalCall::Runs => "runs",
            JournalCall::Run => "run",
            JournalCall::Writes => "writes",
            JournalCall::LastWrite => "last_write",
            JournalCall::LastWrites => "last_writes",
            JournalCall::SettlesAt => "settles_at",
            JournalCall::RememberMappings => "remember_mappings",
            JournalCall::Mappings => "mappings",
            JournalCall::RecordRetirement => "record_retirement",
            JournalCall::Retirements => "retirements",
            JournalCall::ForgetRetirement => "forget_retirement",
            JournalCall::AcquireLease => "acquire_lease",
            JournalCall::RenewLease => "renew_lease",
            JournalCall::ReleaseLease => "release_lease",
            JournalCall::FenceRun => "fence_run",
        }
    }
}

/// What an [`Intercepted`] journal does around each call: `call` is the wrapped journal's
/// answer, not started until awaited, so a hook may also answer in its place.
pub trait Hook: Send + Sync {
    /// Runs (or answers in place of) one call of the wrapped journal.
    fn around<'a, T: Send + 'a>(
        &'a self,
        method: JournalCall,
        call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'a;
}

/// `inner` with `hook` around every call.
pub struct Intercepted<H> {
    /// The journal that answers.
    pub inner: Box<dyn Journal>,
    /// What runs around each of its calls.
    pub hook: H,
}

impl<H: Hook> Intercepted<H> {
    /// `inner` with `hook` around every call.
    pub fn new(inner: impl Journal + 'static, hook: H) -> Self {
        Intercepted {
            inner: Box::new(inner),
            hook,
        }
    }
}

#[async_trait::async_trait]
impl<H: Hook> Journal for Intercepted<H> {
    async fn start_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        let call = self.inner.start_run(run);
        self.hook.around(JournalCall::StartRun, call).await
    }

    async fn record_writes(&self, writes: &[WriteRecord]) -> Result<(), StoreError> {
        let method = JournalCall::RecordWrites {
            records: writes.len(),
        };
        self.hook
            .around(method, self.inner.record_writes(writes))
            .await
    }

    async fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        counts: &RunCounts,
        ended_at: Timestamp,
    ) -> Result<(), StoreError> {
        let call = self.inner.finish_run(run, outcome, counts, ended_at);
        self.hook.around(JournalCall::FinishRun, call).await
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let call = self.inner.runs(limit);
        self.hook.around(JournalCall::Runs, call).await
    }

    async fn run(&self, id: RunId) -> Result<Option<RunSummary>, StoreError> {
        let call = self.inner.run(id);
        self.hook.around(JournalCall::Run, call).await
    }

    async fn writes(&self, run: RunId) -> Result<Vec<WriteRecord>, StoreError> {
        let call = self.inner.writes(run);
        self.hook.around(JournalCall::Writes, call).await
    }

    async fn last_write(
        &self,
        subject: &str,
        target: WriteTarget,
    ) -> Result<Option<WriteRecord>, StoreError> {
        let call = self.inner.last_write(subject, target);
        self.hook.around(JournalCall::LastWrite, call).await
    }

    async fn last_writes(
        &self,
        subjects: &[&str],
        target: WriteTarget,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        let call = self.inner.last_writes(subjects, target);
        self.hook.around(JournalCall::LastWrites, call).await
    }

    async fn settles_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError> {
        let call = self.inner.settles_at(run);
        self.hook.around(JournalCall::SettlesAt, call).await
    }

    async fn remember_mappings(&self, mappings: &[Mapping]) -> Result<(), StoreError> {
        let call = self.inner.remember_mappings(mappings);
        self.hook.around(JournalCall::RememberMappings, call).await
    }

    async fn mappings(&self) -> Result<Vec<Mapping>, StoreError> {
        let call = self.inner.mappings();
        self.hook.around(JournalCall::Mappings, call).await
    }

    async fn record_retirement(&self, retirement: &Retirement) -> Result<(), StoreError> {
        let call = self.inner.record_retirement(retirement);
        self.hook.around(JournalCall::RecordRetirement, call).await
    }

    async fn retirements(&self) -> Result<Vec<Retirement>, StoreError> {
        let call = self.inner.retirements();
        self.hook.around(JournalCall::Retirements, call).await
    }

    async fn forget_retirement(&self, code: &str, locale: &str) -> Result<bool, StoreError> {
        let call = self.inner.forget_retirement(code, locale);
        self.hook.around(JournalCall::ForgetRetirement, call).await
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<Acquired, StoreError> {
        let call = self.inner.acquire_lease(key, holder, ttl);
        self.hook.around(JournalCall::AcquireLease, call).await
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        let call = self.inner.renew_lease(lease, ttl);
        self.hook.around(JournalCall::RenewLease, call).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let call = self.inner.release_lease(lease);
        self.hook.around(JournalCall::ReleaseLease, call).await
    }

    async fn fence_run(&self, run: RunId, lease: &Lease) -> Result<(), StoreError> {
        let call = self.inner.fence_run(run, lease);
        self.hook.around(JournalCall::FenceRun, call).await
    }
}
