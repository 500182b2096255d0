//! `cohort serve`: opens the store, optionally loads the demo, serves until a signal.

use std::sync::Arc;

use anyhow::Context;
use cohort_app::targeting::TargetingSettings;
use cohort_app::targeting::geo::Geo;
use cohort_app::{App, Clock, FileClock, SystemClock, demo};
use cohort_core::{ApplicationId, ApplicationPatch, KeyScope, Name, Origin};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::data::open;

/// How often the segment index follows the membership log written by other processes.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// How often queued customers are built and schedules checked.
const BUILD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often due automation actions are run.
const AUTOMATION_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often visitors changed in memory are saved.
const VISITORS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `clock_file`: read the time from a file (process-level tests) instead of the system.
pub async fn run(config: &Config, load_demo: bool, clock_file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let store = open(config).await?;
    let geo = match &config.geoip {
        Some(path) => Some(Geo::open(path).map_err(|e| anyhow::anyhow!("cannot use the GeoIP database {e}"))?),
        None => None,
    };
    let settings = TargetingSettings {
        geo,
        session_timeout_micros: i64::from(config.session_minutes) * 60 * 1_000_000,
        token_secret: config.token_secret.as_ref().map(|s| s.0.clone()),
        visitor_retention_micros: i64::from(config.visitor_retention_days) * 24 * 3_600 * 1_000_000,
    };
    let clock: Arc<dyn Clock> = match clock_file {
        Some(path) => {
            tracing::warn!(path = %path.display(), "the time is read from a file, not the system clock");
            Arc::new(FileClock(path))
        }
        None => Arc::new(SystemClock),
    };
    let app = App::new(store, clock)
        .with_webhook_secret(config.webhook_secret.as_ref().map(|s| s.0.as_str()))
        .with_targeting(settings);
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
    let (stop_automation, automation_stopped) = tokio::sync::oneshot::channel::<()>();
    let automation = tokio::spawn(app.automation.clone().run_until_stopped(AUTOMATION_EVERY, async {
        let _ = automation_stopped.await;
    }));
    let (stop_visitors, visitors_stopped) = tokio::sync::oneshot::channel::<()>();
    let visitors = tokio::spawn(app.targeting.clone().run_until_stopped(VISITORS_EVERY, async {
        let _ = visitors_stopped.await;
    }));
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, store = app.store.backend(), "cohort is listening");
    if load_demo {
        demo_page(&app, address).await?;
    }
    cohort_http::serve(listener, app, shutdown_signal()).await?;
    let _ = stop_index.send(());
    let _ = stop_building.send(());
    let _ = stop_visitors.send(());
    let _ = stop_automation.send(());
    let _ = index.await;
    let _ = building.await;
    let _ = visitors.await;
    let _ = automation.await;
    tracing::info!("stopped");
    Ok(())
}

/// Prints the demo page's address with a fresh public key of the demo's web shop (the
/// key a page embeds; the one of the previous start is revoked).
async fn demo_page(app: &App, address: std::net::SocketAddr) -> anyhow::Result<()> {
    const LABEL: &str = "demo page (serve --demo)";
    let shop = "web-shop";
    if app
        .store
        .application(&ApplicationId::parse("app", shop)?)
        .await?
        .is_none()
    {
        return Ok(());
    }
    // The page is served from where cohort listens: let that origin call it.
    let origin = Origin::parse("origin", &format!("http://{address}"))?;
    let id = ApplicationId::parse("app", shop)?;
    if let Some(application) = app.store.application(&id).await?
        && !application.allowed_origins.contains(&origin)
    {
        let mut origins = application.allowed_origins;
        origins.push(origin);
        let patch = ApplicationPatch {
            allowed_origins: Some(origins),
            ..ApplicationPatch::default()
        };
        app.store.update_application(&id, patch).await?;
    }
    for key in app.keys.list().await? {
        if key.name.as_str() == LABEL && key.revoked_at.is_none() {
            app.keys.revoke(&key.id).await?;
        }
    }
    let created = app
        .keys
        .create(
            Name::parse("name", LABEL)?,
            vec![KeyScope::parse("scope", &format!("public:{shop}"))?],
        )
        .await?;
    println!("Demo page: http://{address}/demo/{shop}?key={}", created.secret);
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
