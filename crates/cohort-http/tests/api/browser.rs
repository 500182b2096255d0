//! The website tracker in a real browser: headless Chromium (Debian's `chromium`,
//! installed by `scripts/test`) loads the demo page served by cohort three times with
//! one profile — the home page shows the default banner, a ski page makes a rule
//! assign the `skiers` target group, and the home page then shows the skiers' banner.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;

const CHROMIUM: &str = "chromium";

/// The page's DOM after cohort.js finished (Chromium waits for its request within
/// the virtual time budget).
async fn render(profile: &Path, url: &str) -> String {
    let run = tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finishes within 90 s")
        .unwrap_or_else(|e| panic!("cannot run {CHROMIUM} (scripts/test installs it): {e}"));
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 DOM")
}

/// Whether the hero's variant is the one shown (not `hidden`).
fn shown(dom: &str, variant: &str) -> bool {
    let tag = format!("<div data-cohort-variant=\"{variant}\"");
    let at = dom
        .find(&tag)
        .unwrap_or_else(|| panic!("no variant {variant} in {dom}"));
    let end = at + dom[at..].find('>').expect("a closed tag");
    !dom[at..end].contains("hidden")
}

#[tokio::test]
async fn the_demo_page_changes_its_banner_in_chromium_after_a_rule_matched() {
    let app = spawn_app().await;
    app.create(
        "/v1/applications",
        json!({"id": "shop", "name": "Shop", "default_currency": "EUR", "allowed_origins": [app.base]}),
    )
    .await;
    let skiers = app.create("/v1/target-groups", json!({"name": "skiers"})).await;
    app.create(
        "/v1/targeting/rules",
        json!({"name": "ski department", "conditions": {"url": "/demo/shop/ski"},
               "actions": [{"assign_target_group": skiers["id"]}]}),
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let page = |path: &str| format!("{}/demo/shop{path}?key={}", app.base, app.public_shop);

    let home = render(profile.path(), &page("")).await;
    assert!(home.contains("data-cohort=\"ready\""), "{home}");
    assert!(shown(&home, "default") && !shown(&home, "skiers"), "{home}");

    let ski = render(profile.path(), &page("/ski")).await;
    assert!(ski.contains("data-cohort=\"ready\""), "{ski}");
    assert!(ski.contains("skiers (#"), "the panel lists the target group: {ski}");

    let again = render(profile.path(), &page("")).await;
    assert!(shown(&again, "skiers") && !shown(&again, "default"), "{again}");
}
