//! `cohort serve`: opens the store, optionally loads the demo, serves until a signal.

use std::sync::Arc;

use anyhow::Context;
use cohort_app::{App, SystemClock, demo};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::data::open;

/// How often the segment index follows the membership log written by other processes.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// How often queued customers are built and schedules checked.
const BUILD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn run(config: &Config, load_demo: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let app = App::new(store, Arc::new(SystemClock));
    if load_demo {
        match demo::load(&app).await? {
            demo::Loaded::Loaded { customers, segments } => {
                tracing::info!(customers, segments, "demo data loaded");
            }
            demo::Loaded::AlreadyPopulated => {
                tracing::info!("database not empty: demo data not loaded")
            }
        }
    }
    app.index.catch_up().await.context("cannot build the segment index")?;
    let (stop_index, index_stopped) = tokio::sync::oneshot::channel::<()>();
    let index = tokio::spawn(app.index.clone().run_until_stopped(INDEX_EVERY, async {
        let _ = index_stopped.await;
    }));
    let (stop_building, building_stopped) = tokio::sync::oneshot::channel::<()>();
    let building = tokio::spawn(app.jobs.clone().run_until_stopped(BUILD_EVERY, async {
        let _ = building_stopped.await;
    }));
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, store = app.store.backend(), "cohort is listening");
    cohort_http::serve(listener, app, shutdown_signal()).await?;
    let _ = stop_index.send(());
    let _ = stop_building.send(());
    let _ = index.await;
    let _ = building.await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
