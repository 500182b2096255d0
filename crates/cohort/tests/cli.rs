//! The `cohort` command line, run as a user would: keys, import, export, demo,
//! configuration precedence and graceful shutdown.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn cohort(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(args)
        .current_dir(dir)
        .env_remove("COHORT_DATABASE_URL")
        .env_remove("COHORT_LISTEN")
        .env_remove("COHORT_CONFIG")
        .output()
        .expect("cohort runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn a_created_key_is_printed_alone_on_the_last_line_and_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&cohort(
        dir.path(),
        &[
            "keys",
            "create",
            "--name",
            "ci",
            "--scope",
            "read",
            "--scope",
            "public:shop",
        ],
    ));
    let key = out.lines().last().unwrap();
    assert!(key.starts_with("ck_") && !key.contains(' '), "{out}");
    assert!(
        dir.path().join("cohort-data/cohort.db").exists(),
        "the default store is a local sqlite file"
    );

    let listed = stdout(&cohort(dir.path(), &["keys", "list"]));
    let id = key.split('_').nth(1).unwrap();
    assert!(listed.contains(id) && listed.contains("read public:shop"), "{listed}");
    let secret = key.rsplit('_').next().unwrap();
    assert!(!listed.contains(secret), "the secret must never be listed");
    let stored = std::fs::read(dir.path().join("cohort-data/cohort.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains(secret),
        "the secret must not be stored"
    );

    stdout(&cohort(dir.path(), &["keys", "revoke", id]));
    assert!(
        stdout(&cohort(dir.path(), &["keys", "list"]))
            .lines()
            .nth(1)
            .unwrap()
            .contains('Z')
    );
    assert!(
        !cohort(dir.path(), &["keys", "create", "--name", "x", "--scope", "root"])
            .status
            .success()
    );
    assert!(!cohort(dir.path(), &["keys", "revoke", "nope"]).status.success());
}

#[test]
fn a_csv_import_reports_bad_rows_by_line_and_keeps_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,age:number,birthdate:date,zip,active\nc1,41,1985-03-01,01234,true\nc2,forty,,,\nc 3,1,,,\nc4,,,,no\n";
    std::fs::write(dir.path().join("customers.csv"), csv).unwrap();
    let output = cohort(dir.path(), &["import", "customers", "customers.csv"]);
    assert!(!output.status.success(), "a failed row makes the exit status non-zero");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3: age:number:"), "{stderr}");
    assert!(stderr.contains("line 4: id:"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("imported 2 customers, 2 lines failed"));

    let exported = stdout(&cohort(dir.path(), &["export", "customers"]));
    let lines: Vec<Value> = exported.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["attributes"],
        serde_json::json!({"age": 41, "birthdate": "1985-03-01", "zip": "01234"})
    );
    assert_eq!(lines[1]["active"], false);
}

#[test]
fn an_ndjson_export_imports_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = "{\"id\":\"a\",\"attributes\":{\"tags\":[\"ski\",\"bike\"],\"vip\":true},\"profiling_consent\":true}\n{\"id\":\"b\"}\n";
    std::fs::write(dir.path().join("in.ndjson"), ndjson).unwrap();
    stdout(&cohort(dir.path(), &["import", "customers", "in.ndjson"]));
    let first = stdout(&cohort(dir.path(), &["export", "customers"]));
    std::fs::write(dir.path().join("again.ndjson"), &first).unwrap();
    let other = tempfile::tempdir().unwrap();
    let copy = |p: &str| format!("--database-url=sqlite://{}/{p}", other.path().display());
    stdout(&cohort(
        dir.path(),
        &[&copy("c.db"), "import", "customers", "again.ndjson"],
    ));
    assert_eq!(
        stdout(&cohort(dir.path(), &[&copy("c.db"), "export", "customers"])),
        first
    );
}

#[test]
fn the_demo_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    assert!(stdout(&cohort(dir.path(), &["demo"])).contains("demo data loaded: 5000 customers"));
    assert!(stdout(&cohort(dir.path(), &["demo"])).contains("not loaded"));
    let exported = stdout(&cohort(dir.path(), &["export", "customers"]));
    assert_eq!(exported.lines().count(), 5000);

    // The demo's builders have run: a full build again changes nothing.
    let built = stdout(&cohort(dir.path(), &["segments", "build"]));
    assert!(
        built.contains("built 5000 customers") && built.contains(": 0 memberships added, 0 removed"),
        "{built}"
    );
    let one = stdout(&cohort(dir.path(), &["segments", "build", "--builder", "1"]));
    assert!(one.contains("0 memberships added"), "{one}");
    let missing = cohort(dir.path(), &["segments", "build", "--builder", "99"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("segment builder 99 does not exist"));
}

#[test]
fn flags_win_over_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cohort.toml"),
        "database_url = \"sqlite://from-file.db\"\n",
    )
    .unwrap();
    let run = |env: Option<&str>, flag: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cohort"));
        command
            .current_dir(dir.path())
            .env_remove("COHORT_DATABASE_URL")
            .args(["--config", "cohort.toml"]);
        if let Some(env) = env {
            command.env("COHORT_DATABASE_URL", env);
        }
        if let Some(flag) = flag {
            command.args(["--database-url", flag]);
        }
        assert!(command.arg("migrate").stdout(Stdio::null()).status().unwrap().success());
    };
    run(None, None);
    assert!(dir.path().join("from-file.db").exists());
    run(Some("sqlite://from-env.db"), None);
    assert!(dir.path().join("from-env.db").exists());
    run(Some("sqlite://from-env2.db"), Some("sqlite://from-flag.db"));
    assert!(dir.path().join("from-flag.db").exists());
    assert!(!dir.path().join("from-env2.db").exists());

    std::fs::write(dir.path().join("bad.toml"), "colour = 1\n").unwrap();
    let output = cohort(dir.path(), &["--config", "bad.toml", "migrate"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid config file"));
}

#[test]
fn serve_with_demo_data_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("COHORT_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut demo_loaded = false;
    let address = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        demo_loaded |= line.contains("demo data loaded") && line.contains("customers=5000");
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(demo_loaded, "serve --demo loads the demo data before listening");
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(lines.any(|l| l.unwrap().contains("stopped")));
}

#[test]
fn memberships_are_imported_into_an_import_service_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&cohort(dir.path(), &["demo"]));
    std::fs::write(
        dir.path().join("ok.ndjson"),
        "{\"customer\":\"C000001\",\"segment\":\"value/vip\"}\n",
    )
    .unwrap();
    let out = stdout(&cohort(
        dir.path(),
        &["import", "segments", "ok.ndjson", "--service", "crm"],
    ));
    assert!(
        out.contains("1 memberships added") && out.contains("1 segments created"),
        "{out}"
    );
    std::fs::write(dir.path().join("bad.ndjson"), "{\"customer\":\"C000001\"}\n").unwrap();
    let failed = cohort(dir.path(), &["import", "segments", "bad.ndjson", "--service", "crm"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("line 1: segment:"));
    let standard = cohort(
        dir.path(),
        &["import", "segments", "ok.ndjson", "--service", "standard"],
    );
    assert!(!standard.status.success(), "the standard service takes no imports");
}
