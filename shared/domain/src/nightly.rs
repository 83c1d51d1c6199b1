//! What every nightly job shares (the Logo sync, the Express poll): one run item per tenant and
//! integration that is at once the checkpoint a cut-off run resumes from and the lease that
//! keeps two invocations from running it together; the loop that saves it every few seconds
//! and stops before the invocation's deadline; and the fan-out of one queued job per connected
//! tenant. An integration brings its run type (its phases, offsets and report) and its steps.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::PortError;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::ports::EventQueue;
use crate::tenant::TenantId;

/// How often a run's checkpoint is saved (and its lease renewed) while pages go by: a resumed
/// run redoes at most these seconds of pages (idempotent writes), and the run item is not
/// rewritten a hundred times a minute.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The lease part of a run item (flattened into it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub lease_owner: String,
    pub lease_until: DateTime<Utc>,
    /// Moves with every save; a save expects the version it read (the lease's guard). 0: never
    /// saved.
    pub version: u64,
    /// How many invocations the run took (a cut-off one resumes in the next).
    pub invocations: u32,
}

impl Lease {
    /// A lease not yet saved (`version`: the stored previous run's, 0 if none).
    pub fn new(owner: String, now: DateTime<Utc>, version: u64) -> Self {
        Lease {
            lease_owner: owner,
            lease_until: now,
            version,
            invocations: 1,
        }
    }
}

/// A nightly job's run item.
pub trait Checkpointed: Serialize + DeserializeOwned + Clone + Send + Sync {
    type Phase: Copy + PartialEq + Send;
    fn lease(&self) -> &Lease;
    fn lease_mut(&mut self) -> &mut Lease;
    fn phase(&self) -> Self::Phase;
    fn is_done(&self) -> bool;
    /// Marks the run finished (its last save).
    fn finish(&mut self, at: DateTime<Utc>);
}

/// The stored run of each tenant and integration, as JSON text with its version.
#[async_trait]
pub trait RunStore: Send + Sync {
    async fn load(
        &self,
        tenant: &TenantId,
        integration: Integration,
    ) -> Result<Option<String>, PortError>;
    /// Saves `body` at `version` if the stored version is still `expected` (`None`: nothing
    /// stored yet); `false` when another invocation saved first.
    async fn save(
        &self,
        tenant: &TenantId,
        integration: Integration,
        body: &str,
        version: u64,
        expected: Option<u64>,
    ) -> Result<bool, PortError>;
}

/// One page (or one bounded piece) of a run's work; the run says where it stands.
#[async_trait]
pub trait Steps<R>: Send {
    async fn step(&mut self, run: &mut R) -> Result<(), PortError>;
}

#[derive(Debug)]
pub enum Driven<R> {
    /// Every phase done; the run is saved finished and released.
    Done(R),
    /// The invocation's deadline came; the checkpoint is saved and the lease released.
    OutOfTime(R),
    /// Another invocation holds the run.
    Busy,
}

/// The runs of one integration.
#[derive(Clone)]
pub struct Runs {
    pub store: Arc<dyn RunStore>,
    pub integration: Integration,
    /// How long an invocation holds the run past its last checkpoint.
    pub lease: Duration,
}

/// The lease of `seconds` (at least 1).
pub fn lease(seconds: i64) -> Duration {
    Duration::seconds(seconds.max(1))
}

impl Runs {
    pub async fn current<R: Checkpointed>(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<R>, PortError> {
        let Some(body) = self.store.load(tenant, self.integration).await? else {
            return Ok(None);
        };
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| PortError::Rejected(format!("stored run unreadable: {e}")))
    }

    /// The unfinished run if its lease has lapsed, or a new one made by `fresh` from the last
    /// finished run, held by `owner` and saved; `None` while another invocation holds it.
    pub async fn acquire<R: Checkpointed>(
        &self,
        tenant: &TenantId,
        owner: String,
        now: DateTime<Utc>,
        fresh: impl FnOnce(Option<R>) -> R,
    ) -> Result<Option<R>, PortError> {
        let mut run = match self.current::<R>(tenant).await? {
            Some(run) if !run.is_done() && run.lease().lease_until > now => return Ok(None),
            Some(mut run) if !run.is_done() => {
                let lease = run.lease_mut();
                lease.lease_owner = owner;
                lease.invocations += 1;
                run
            }
            previous => fresh(previous),
        };
        Ok(self
            .checkpoint(tenant, &mut run, now, true)
            .await?
            .then_some(run))
    }

    /// Saves the run if it is still ours; `hold` renews the lease, otherwise it is released.
    pub async fn checkpoint<R: Checkpointed>(
        &self,
        tenant: &TenantId,
        run: &mut R,
        now: DateTime<Utc>,
        hold: bool,
    ) -> Result<bool, PortError> {
        let lease = run.lease_mut();
        let expected = (lease.version > 0).then_some(lease.version);
        lease.version += 1;
        lease.lease_until = if hold { now + self.lease } else { now };
        let version = lease.version;
        let body = serde_json::to_string(run)
            .map_err(|e| PortError::Rejected(format!("run not serialisable: {e}")))?;
        self.store
            .save(tenant, self.integration, &body, version, expected)
            .await
    }

    /// Takes the tenant's run (the unfinished one whose lease has lapsed, or a new one from
    /// `fresh`) for `owner` and drives it with `steps`; `Busy` while another invocation holds it.
    pub async fn run<R: Checkpointed>(
        &self,
        tenant: &TenantId,
        clock: &dyn crate::ports::Clock,
        owner: String,
        fresh: impl FnOnce(Option<R>) -> R,
        steps: &mut dyn Steps<R>,
        deadline: Instant,
    ) -> Result<Driven<R>, PortError> {
        match self.acquire(tenant, owner, clock.now(), fresh).await? {
            Some(run) => self.drive(tenant, clock, run, steps, deadline).await,
            None => Ok(Driven::Busy),
        }
    }

    /// Runs `steps` from the acquired `run` until every phase is done or `deadline` passes
    /// (checked between steps; at least one step per invocation, so a run always moves).
    pub async fn drive<R: Checkpointed>(
        &self,
        tenant: &TenantId,
        clock: &dyn crate::ports::Clock,
        mut run: R,
        steps: &mut dyn Steps<R>,
        deadline: Instant,
    ) -> Result<Driven<R>, PortError> {
        let mut saved = Instant::now();
        // The run as last saved: a failed step's counts must not outlive it.
        let mut last_saved = run.clone();
        loop {
            if run.is_done() {
                run.finish(clock.now());
                if !self
                    .checkpoint(tenant, &mut run, clock.now(), false)
                    .await?
                {
                    return Ok(Driven::Busy);
                }
                return Ok(Driven::Done(run));
            }
            let phase = run.phase();
            if let Err(error) = steps.step(&mut run).await {
                // Free the run for the retry from its last checkpoint: the pages since (the
                // failed one too) are done again and counted once.
                let _ = self
                    .checkpoint(tenant, &mut last_saved, clock.now(), false)
                    .await;
                return Err(error);
            }
            let out_of_time = Instant::now() >= deadline && !run.is_done();
            if out_of_time || run.phase() != phase || saved.elapsed() >= CHECKPOINT_EVERY {
                if !self
                    .checkpoint(tenant, &mut run, clock.now(), !out_of_time)
                    .await?
                {
                    return Ok(Driven::Busy);
                }
                saved = Instant::now();
                last_saved = run.clone();
            }
            if out_of_time {
                return Ok(Driven::OutOfTime(run));
            }
        }
    }
}

/// A queued job of a nightly integration (its payload is the integration's job).
pub fn job_envelope(
    integration: Integration,
    kind: &str,
    tenant: &TenantId,
    external_id: String,
    trace_id: &str,
    payload: serde_json::Value,
    at: DateTime<Utc>,
) -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        tenant_id: tenant.clone(),
        integration,
        kind: kind.into(),
        external_id,
        trace_id: TraceId::new(trace_id.to_string()),
        received_at: at,
        ordering_key: None,
        replay_of: None,
        payload,
    }
}

/// The nightly schedule's fan-out: one job per connected tenant onto the jobs queue (ten to an
/// SQS request, the queue adapter's batches), each opening its trace with a `scheduled`
/// record. Returns how many were queued.
pub async fn fan_out(
    queue: &dyn EventQueue,
    log: &IntegrationLog,
    integration: Integration,
    tenants: &[TenantId],
    job: impl Fn(&TenantId, String) -> Envelope,
) -> Result<usize, PortError> {
    let now = log.clock().now();
    let envelopes: Vec<Envelope> = tenants
        .iter()
        .map(|tenant| job(tenant, log.ids().new_id()))
        .collect();
    queue.enqueue(&envelopes).await?;
    for e in &envelopes {
        let operation = format!("{}.scheduled", e.kind);
        log.write(
            LogEntry::new(
                e.tenant_id.clone(),
                integration,
                LogDirection::Inbound,
                &operation,
                LogResult::Success,
                e.trace_id.clone(),
            )
            .starts_trace(now),
        )
        .await;
    }
    Ok(envelopes.len())
}

/// A record a nightly job left out: one error record naming it (the part of the first field
/// before its dot, `Arps[120.01.7]`) and every field's problem; the run goes on.
pub async fn log_skipped(
    log: &IntegrationLog,
    tenant: &TenantId,
    integration: Integration,
    trace: &TraceId,
    operation: &str,
    errors: &[crate::error::FieldError],
) {
    let Some(first) = errors.first() else {
        return;
    };
    let message = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    let record = first
        .field
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    log.write(
        LogEntry::new(
            tenant.clone(),
            integration,
            LogDirection::Inbound,
            operation,
            LogResult::Error,
            trace.clone(),
        )
        .error(&first.code, message)
        .external_id(record),
    )
    .await;
}

/// A queued job's payload, checked against its envelope's tenant.
pub fn read_job<J: DeserializeOwned>(
    envelope: &Envelope,
    tenant_of: impl Fn(&J) -> &TenantId,
) -> Result<J, crate::batch::ProcessError> {
    use crate::batch::ProcessError;
    let job: J = serde_json::from_value(envelope.payload.clone()).map_err(|e| {
        ProcessError::permanent(
            "invalid_payload",
            format!("not a {} job: {e}", envelope.kind),
        )
    })?;
    if tenant_of(&job) != &envelope.tenant_id {
        return Err(ProcessError::permanent(
            "invalid_payload",
            "the job names another tenant than its envelope",
        ));
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Clock;
    use crate::testing::{FixedClock, MemoryRuns};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Count {
        at: u32,
        #[serde(flatten)]
        lease: Lease,
        finished: Option<DateTime<Utc>>,
    }

    impl Checkpointed for Count {
        type Phase = bool;
        fn lease(&self) -> &Lease {
            &self.lease
        }
        fn lease_mut(&mut self) -> &mut Lease {
            &mut self.lease
        }
        fn phase(&self) -> bool {
            self.at >= 5
        }
        fn is_done(&self) -> bool {
            self.at >= 10
        }
        fn finish(&mut self, at: DateTime<Utc>) {
            self.finished = Some(at);
        }
    }

    struct Up(u32);

    #[async_trait]
    impl Steps<Count> for Up {
        async fn step(&mut self, run: &mut Count) -> Result<(), PortError> {
            self.0 += 1;
            if self.0 == 7 {
                return Err(PortError::Unavailable("partner down".into()));
            }
            run.at += 1;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_run_is_held_once_resumes_from_its_checkpoint_and_finishes() {
        let clock = FixedClock::at("2026-11-26T23:30:00Z");
        let runs = Runs {
            store: Arc::new(MemoryRuns::default()),
            integration: Integration::Express,
            lease: lease(120),
        };
        let tenant = TenantId::parse("acme").unwrap();
        let fresh = |_: Option<Count>| Count {
            at: 0,
            lease: Lease::new("a".into(), clock.now(), 0),
            finished: None,
        };
        let run = runs
            .acquire(&tenant, "a".into(), clock.now(), fresh)
            .await
            .unwrap()
            .unwrap();
        // A second invocation meanwhile finds it held.
        let second = runs
            .acquire(&tenant, "b".into(), clock.now(), fresh)
            .await
            .unwrap();
        assert!(second.is_none());
        let mut steps = Up(0);
        let far = Instant::now() + std::time::Duration::from_secs(60);
        // Fails at the 7th step: released at the phase-change checkpoint (at = 5).
        let failed = runs.drive(&tenant, &clock, run, &mut steps, far).await;
        assert!(failed.is_err());
        let stored: Count = runs.current(&tenant).await.unwrap().unwrap();
        assert_eq!(stored.at, 5);
        assert!(stored.lease.lease_until <= clock.now());
        let run = runs
            .acquire(&tenant, "c".into(), clock.now(), fresh)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((run.at, run.lease.invocations), (5, 2));
        // Out of time at once: one step, saved, released.
        let past = Instant::now();
        let Driven::OutOfTime(run) = runs
            .drive(&tenant, &clock, run, &mut steps, past)
            .await
            .unwrap()
        else {
            panic!("expected out of time")
        };
        assert_eq!(run.at, 6);
        let run = runs
            .acquire(&tenant, "d".into(), clock.now(), fresh)
            .await
            .unwrap()
            .unwrap();
        let Driven::Done(run) = runs
            .drive(&tenant, &clock, run, &mut steps, far)
            .await
            .unwrap()
        else {
            panic!("expected done")
        };
        assert_eq!((run.at, run.lease.invocations), (10, 3));
        assert!(run.finished.is_some());
        // The next acquire starts a fresh run from the finished one, at its version.
        let next = runs
            .acquire(
                &tenant,
                "e".into(),
                clock.now(),
                |previous: Option<Count>| {
                    let previous = previous.unwrap();
                    Count {
                        at: 0,
                        lease: Lease::new("e".into(), clock.now(), previous.lease.version),
                        finished: None,
                    }
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.at, 0);
    }
}
