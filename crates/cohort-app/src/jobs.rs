//! Build jobs: full builds started through the API or by schedules, run in the
//! background one at a time, with their progress; and the worker loop that drains
//! the incremental queue and starts scheduled builds.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cohort_core::{BuilderId, Timestamp};
use cohort_store::{StoreError, StoreResult};
use futures::FutureExt;
use tokio::sync::watch;

use crate::Clock;
use crate::building::{Builds, Progress};

/// Finished jobs kept for their callers to read.
const KEPT: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// A job as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub id: u64,
    /// The one builder built, or all enabled ones.
    pub builder: Option<BuilderId>,
    pub status: JobStatus,
    /// `starting`, `evaluating` (every builder) or `scoring` (RFM scales).
    pub phase: &'static str,
    /// Customers gone through in this phase, of `total`.
    pub processed: u64,
    pub total: u64,
    pub added: u64,
    pub removed: u64,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Why a failed job failed (the cause is logged).
    pub error: Option<String>,
}

struct Watched(watch::Sender<JobView>);

impl Progress for Watched {
    fn phase(&self, name: &'static str, total: u64) {
        self.0.send_modify(|v| {
            v.phase = name;
            v.total = total;
            v.processed = 0;
        });
    }

    fn advance(&self, customers: u64) {
        self.0.send_modify(|v| v.processed += customers);
    }
}

pub struct Jobs {
    builds: Arc<Builds>,
    clock: Arc<dyn Clock>,
    jobs: Mutex<(u64, VecDeque<watch::Receiver<JobView>>)>,
    /// When each builder's schedule last started a build, so a failing one waits for
    /// its next occurrence instead of starting again at every tick.
    scheduled: Mutex<HashMap<BuilderId, Timestamp>>,
}

impl Jobs {
    pub fn new(builds: Arc<Builds>, clock: Arc<dyn Clock>) -> Self {
        Self {
            builds,
            clock,
            jobs: Mutex::new((0, VecDeque::new())),
            scheduled: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a full build in the background; refused while another one runs.
    pub fn start(self: &Arc<Self>, builder: Option<BuilderId>) -> StoreResult<JobView> {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if let Some(running) = jobs.1.iter().find(|j| j.borrow().status == JobStatus::Running) {
            let id = running.borrow().id;
            return Err(StoreError::conflict(
                "builder",
                format!("build job {id} is still running"),
            ));
        }
        jobs.0 += 1;
        let view = JobView {
            id: jobs.0,
            builder,
            status: JobStatus::Running,
            phase: "starting",
            processed: 0,
            total: 0,
            added: 0,
            removed: 0,
            started_at: self.clock.now(),
            finished_at: None,
            error: None,
        };
        let (tx, rx) = watch::channel(view.clone());
        jobs.1.push_front(rx);
        while jobs.1.len() > KEPT {
            jobs.1.pop_back();
        }
        let this = self.clone();
        tokio::spawn(async move {
            let progress = Watched(tx);
            // A panic in a build fails its job instead of leaving it running forever.
            let result = AssertUnwindSafe(this.builds.run_full(builder, &progress))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(StoreError::Backend("the build panicked".into())));
            let finished_at = this.clock.now();
            progress.0.send_modify(|v| {
                v.finished_at = Some(finished_at);
                match result {
                    Ok(report) => {
                        v.status = JobStatus::Succeeded;
                        v.added = report.added;
                        v.removed = report.removed;
                    }
                    Err(e) => {
                        tracing::error!(job = v.id, error = %e, "build job failed");
                        v.status = JobStatus::Failed;
                        v.error = Some(match e {
                            StoreError::Backend(_) => "storage failure".to_owned(),
                            other => other.to_string(),
                        });
                    }
                }
            });
        });
        Ok(view)
    }

    fn receiver(&self, id: u64) -> Option<watch::Receiver<JobView>> {
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.1.iter().find(|j| j.borrow().id == id).cloned()
    }

    pub fn get(&self, id: u64) -> Option<JobView> {
        self.receiver(id).map(|r| r.borrow().clone())
    }

    /// The job once it has finished, or as it is after `wait`.
    pub async fn wait(&self, id: u64, wait: Duration) -> Option<JobView> {
        let mut rx = self.receiver(id)?;
        let _ = tokio::time::timeout(wait, rx.wait_for(|v| v.status != JobStatus::Running)).await;
        let view = rx.borrow().clone();
        Some(view)
    }

    /// Recent jobs, newest first.
    pub fn list(&self) -> Vec<JobView> {
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.1.iter().map(|j| j.borrow().clone()).collect()
    }

    /// One round of background work: builds the queued customers, then starts the
    /// builds whose schedule has come (one job at a time; the others wait their turn).
    pub async fn tick(self: &Arc<Self>) -> StoreResult<u64> {
        let mut built = 0;
        loop {
            let report = self.builds.run_queued(1_000).await?;
            built += report.customers;
            if report.customers == 0 {
                break;
            }
        }
        let now = self.clock.now();
        let attempted = self.scheduled.lock().expect("schedule lock").clone();
        for builder in self.builds.due(now, &attempted).await? {
            if self.start(Some(builder)).is_err() {
                break;
            }
            self.scheduled.lock().expect("schedule lock").insert(builder, now);
        }
        Ok(built)
    }

    /// Runs `tick` every `every` until `stop` resolves.
    pub async fn run_until_stopped(self: Arc<Self>, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "segment building failed; retrying");
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
