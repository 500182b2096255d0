//! `cohort segments build`: a full build from the command line, with a progress bar.

use std::sync::Arc;
use std::time::Instant;

use cohort_app::building::Progress;
use cohort_app::{App, SystemClock};
use cohort_core::BuilderId;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::data::open;

struct Bar(ProgressBar);

impl Progress for Bar {
    fn phase(&self, name: &'static str, total: u64) {
        self.0.set_message(name);
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, customers: u64) {
        self.0.inc(customers);
    }
}

pub async fn build(config: &Config, builder: Option<i64>) -> anyhow::Result<()> {
    let store = open(config).await?;
    let app = App::new(store, Arc::new(SystemClock));
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:>10} {bar:40} {pos}/{len} customers {per_sec} eta {eta}")
            .expect("a valid progress template"),
    );
    let started = Instant::now();
    let report = app
        .builds
        .run_full(builder.map(BuilderId::new), &Bar(bar.clone()))
        .await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "built {} customers in {:.1} s: {} memberships added, {} removed",
        report.customers,
        started.elapsed().as_secs_f64(),
        report.added,
        report.removed
    );
    Ok(())
}
