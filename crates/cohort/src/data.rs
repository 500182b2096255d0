//! Data commands: `migrate`, `demo`, `import customers`, `export customers`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use cohort_app::import::{Importer, OnError, parse_ndjson_line, read_csv};
use cohort_app::{App, Clock, SystemClock, demo};
use cohort_core::customer::CustomerUpsert;
use cohort_core::{Invalid, PageRequest};
use cohort_store::codec::attributes_to_json;
use cohort_store::{CustomerFilter, Store, StoreError};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::cli::Format;
use crate::config::Config;

pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    cohort_app::open_store(&config.database_url)
        .await
        .context("cannot open the database")
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    println!("migrations applied ({})", store.backend());
    Ok(())
}

pub async fn demo(config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    match demo::load(&App::new(store.clone(), Arc::new(SystemClock))).await? {
        demo::Loaded::Loaded { customers, segments } => {
            println!("demo data loaded: {customers} customers, {segments} segments, 2 applications")
        }
        demo::Loaded::AlreadyPopulated => {
            println!("the database already has data: demo not loaded")
        }
    }
    Ok(())
}

type Parsed = (u64, Result<CustomerUpsert, Invalid>);

pub async fn import_customers(config: &Config, file: &Path, format: Option<Format>) -> anyhow::Result<()> {
    let store = open(config).await?;
    let format = format.unwrap_or(if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        Format::Csv
    } else {
        Format::Ndjson
    });
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let bar = progress_bar(size);
    let input = bar.wrap_read(input);

    // Parsing runs on a blocking thread, writing on this one: the two overlap.
    let (tx, mut rx) = mpsc::channel::<Vec<Parsed>>(8);
    let parser = tokio::task::spawn_blocking(move || parse(input, format, tx));
    let mut importer = Importer::new(store.clone(), OnError::Skip, SystemClock.now());
    while let Some(chunk) = rx.recv().await {
        for (line, parsed) in chunk {
            importer.push(line, parsed).await?;
        }
    }
    parser.await.context("the parser stopped")??;
    let report = importer.finish().await?;
    bar.finish_and_clear();

    for e in &report.errors {
        let field = if e.error.field.is_empty() {
            String::new()
        } else {
            format!(" {}:", e.error.field)
        };
        eprintln!("line {}:{field} {}", e.line, e.error.reason);
    }
    if report.failed as usize > report.errors.len() {
        eprintln!(
            "… and {} more failed lines",
            report.failed as usize - report.errors.len()
        );
    }
    println!("imported {} customers, {} lines failed", report.written, report.failed);
    if report.failed > 0 {
        bail!("{} lines could not be imported", report.failed);
    }
    Ok(())
}

fn parse(input: impl Read, format: Format, tx: mpsc::Sender<Vec<Parsed>>) -> anyhow::Result<()> {
    const CHUNK: usize = 1_000;
    let mut chunk = Vec::with_capacity(CHUNK);
    let send = |item: Parsed, chunk: &mut Vec<Parsed>| -> Result<(), StoreError> {
        chunk.push(item);
        if chunk.len() >= CHUNK {
            tx.blocking_send(std::mem::take(chunk))
                .map_err(|_| StoreError::Backend("import stopped".into()))?;
        }
        Ok(())
    };
    match format {
        Format::Ndjson => {
            for (i, line) in BufReader::new(input).lines().enumerate() {
                let line = line.context("cannot read the input")?;
                if !line.trim().is_empty() {
                    send((i as u64 + 1, parse_ndjson_line(&line)), &mut chunk)?;
                }
            }
        }
        Format::Csv => read_csv(input, |line, parsed| send((line, parsed), &mut chunk))?,
    }
    if !chunk.is_empty() {
        tx.blocking_send(chunk)
            .map_err(|_| StoreError::Backend("import stopped".into()))?;
    }
    Ok(())
}

fn progress_bar(size: Option<u64>) -> ProgressBar {
    match size {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .expect("a valid progress template"),
        ),
        None => ProgressBar::new_spinner(),
    }
}

pub async fn export_customers(config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    let now = SystemClock.now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = None;
    loop {
        let page = store
            .list_customers(&CustomerFilter::default(), PageRequest::new(after, Some(1_000))?, now)
            .await?;
        for c in &page.items {
            let line = serde_json::json!({
                "id": c.id.as_str(),
                "attributes": attributes_to_json(&c.attributes),
                "active": c.active,
                "profiling_consent": c.profiling_consent,
            });
            writeln!(out, "{line}")?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    out.flush()?;
    Ok(())
}

pub async fn import_segments(config: &Config, file: &Path, service: &str, delta: bool) -> anyhow::Result<()> {
    let service = cohort_core::ServiceId::parse("service", service)?;
    let store = open(config).await?;
    let input: Box<dyn Read> = if file == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(file).with_context(|| format!("cannot open {}", file.display()))?)
    };
    let (mut lines, mut failed) = (Vec::new(), 0u64);
    for (i, line) in BufReader::new(input).lines().enumerate() {
        let line = line.context("cannot read the input")?;
        if line.trim().is_empty() {
            continue;
        }
        match cohort_app::import::parse_membership_line(&line) {
            Ok(parsed) if !delta && parsed.remove => {
                failed += 1;
                eprintln!(
                    "line {}: remove: a snapshot lists memberships: use --delta to remove",
                    i + 1
                );
            }
            Ok(parsed) => lines.push(parsed),
            Err(e) => {
                failed += 1;
                eprintln!("line {}: {}: {}", i + 1, e.field, e.reason);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} lines are invalid: nothing was imported");
    }
    let mode = if delta {
        cohort_store::ImportMode::Delta
    } else {
        cohort_store::ImportMode::Snapshot
    };
    let summary = store
        .import_memberships(&service, mode, &lines, SystemClock.now())
        .await?;
    println!(
        "{} memberships added, {} removed, {} unchanged, {} segments created",
        summary.added, summary.removed, summary.unchanged, summary.segments_created
    );
    Ok(())
}
