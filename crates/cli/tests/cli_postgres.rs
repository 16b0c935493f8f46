//! The command line on PostgreSQL: `--db postgres://…` and `RUNJOURNAL_DB`
//! for every command, read-only commands that never create the schema,
//! errors without the password, and `copy` between any two stores.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;
use runjournal_postgres::testing::{as_url, test_server_url, TestDatabase};

fn database() -> (TestDatabase, String) {
    let server = test_server_url().unwrap_or_else(|error| panic!("{error}"));
    let database = TestDatabase::create(&server).unwrap();
    let url = as_url(database.url());
    (database, url)
}

/// The binary with `args`, the database named only by `RUNJOURNAL_DB`.
fn with_env(db: &str, args: &[&str]) -> Output {
    let dir = std::env::temp_dir();
    Command::new(BIN)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RUNJOURNAL_DB", db)
        .args(args)
        .output()
        .unwrap()
}

fn schema_exists(database: &TestDatabase) -> bool {
    let mut admin = postgres::Client::connect(database.url(), postgres::NoTls).unwrap();
    admin
        .query_one("SELECT to_regclass('runjournal_migrations') IS NOT NULL", &[])
        .unwrap()
        .get(0)
}

#[test]
fn a_postgres_url_serves_every_command_through_db_and_runjournal_db() {
    let (_database, url) = database();
    let (dir, _) = fresh();
    let imported = json(&run_in(
        dir.path(),
        Some(Path::new(&url)),
        &["--json", "import", example("session.jsonl").to_str().unwrap()],
    ));
    assert_eq!(imported["runs"][0]["id"], session_id().as_str());
    let rows = json(&with_env(&url, &["--json", "runs"]));
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["id"], session_id().as_str());
    let verified = json(&with_env(&url, &["--json", "verify"]));
    assert_eq!(verified["ok"], true);
    let shown = ok(&with_env(&url, &["show", &session_id(), "--no-pager"]));
    assert!(shown.contains("run_started"), "{shown}");
    let exported = ok(&with_env(&url, &["export", &session_id()]));
    let file = write(dir.path(), "from-postgres.jsonl", &[exported.trim_end().to_owned()]);
    let sled = dir.path().join("sled.db");
    ok(&import(&sled, &file));
    assert_eq!(
        ok(&rj(&sled, &["export"])),
        exported,
        "an export from PostgreSQL imports into sled and exports byte for byte"
    );
}

#[test]
fn read_only_commands_never_create_the_schema() {
    let (database, url) = database();
    for args in [&["runs"][..], &["verify"], &["recover"], &["export"]] {
        let error = fails_with(&with_env(&url, args), "not_found");
        assert!(error.contains("no database at"), "{args:?}: {error}");
        assert!(!schema_exists(&database), "{args:?} created the schema");
    }
    let (dir, _) = fresh();
    ok(&run_in(
        dir.path(),
        Some(Path::new(&url)),
        &["import", example("session.jsonl").to_str().unwrap()],
    ));
    assert!(schema_exists(&database), "import creates the schema");
}

#[test]
fn errors_never_print_the_password() {
    let (_database, url) = database();
    let secret = "s3cr3t-pa55";
    let missing = url.replacen("postgres://postgres@", &format!("postgres://postgres:{secret}@"), 1)
        + "&dbname=runjournal_no_such_database";
    for json_flag in [false, true] {
        let mut args = vec!["runs"];
        if json_flag {
            args.insert(0, "--json");
        }
        let output = with_env(&missing, &args);
        let error = if json_flag {
            fails_json(&output, "not_found")
        } else {
            fails_with(&output, "not_found")
        };
        assert!(!stderr(&output).contains(secret), "{error}");
        assert!(
            error.contains("postgres:***@"),
            "the location is named, its password hidden: {error}"
        );
    }
    let in_query = format!("{url}&password={secret}&dbname=runjournal_no_such_database");
    let output = with_env(&in_query, &["runs"]);
    fails_with(&output, "not_found");
    assert!(!stderr(&output).contains(secret), "{}", stderr(&output));
}

#[test]
fn copy_sled_to_postgres_to_sled_exports_byte_identical() {
    let (_database, url) = database();
    let (dir, parent) = fresh();
    ok(&import(&parent, &example("session.jsonl")));
    ok(&rj(&parent, &["fork", &session_id(), "--at", "5"]));
    let original = ok(&rj(&parent, &["export"]));
    let to_postgres = json(&run_in(
        dir.path(),
        None,
        &["--json", "copy", "--from", parent.to_str().unwrap(), "--to", &url],
    ));
    assert_eq!(to_postgres["copied"], 2);
    let rows = to_postgres["runs"].as_array().unwrap();
    assert_eq!(rows[0]["run"]["episode"], 0, "the parent before its fork");
    assert_eq!(rows[1]["run"]["episode"], 1);
    assert_eq!(
        ok(&with_env(&url, &["export"])),
        original,
        "sled → PostgreSQL is byte-identical"
    );
    let back = dir.path().join("back.db");
    let to_sled = json(&run_in(
        dir.path(),
        None,
        &["--json", "copy", "--from", &url, "--to", back.to_str().unwrap()],
    ));
    assert_eq!(to_sled["copied"], 2);
    assert_eq!(
        ok(&rj(&back, &["export"])),
        original,
        "PostgreSQL → sled is byte-identical"
    );
    assert_eq!(json(&rj(&back, &["--json", "verify"]))["ok"], true);
}

#[test]
fn copy_skips_a_run_the_target_holds_and_refuses_a_different_one() {
    let (dir, from) = fresh();
    ok(&import(&from, &example("session.jsonl")));
    let to = dir.path().join("to.db");
    let args = [
        "--json",
        "copy",
        "--from",
        from.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ];
    assert_eq!(json(&run_in(dir.path(), None, &args))["copied"], 1);
    let again = json(&run_in(dir.path(), None, &args));
    assert_eq!(again["copied"], 0);
    assert_eq!(again["skipped"], 1);
    ok(&rj(&from, &["resume", &session_id()]));
    let error = fails_with(&run_in(dir.path(), None, &args[1..]), "conflict");
    assert!(error.contains("differs"), "{error}");
    assert_eq!(
        json(&rj(&to, &["--json", "verify"]))["runs"][0]["events"],
        json(&rj(&to, &["--json", "runs"]))[0]["events"],
        "the target's run is unchanged"
    );
}

#[test]
fn copy_of_one_run_brings_its_ancestors_whole() {
    let (dir, from) = fresh();
    ok(&import(&from, &example("session.jsonl")));
    let forked = json(&rj(&from, &["--json", "fork", &session_id(), "--at", "3"]));
    let child = forked["id"].as_str().unwrap().to_owned();
    let to = dir.path().join("to.db");
    let copied = json(&run_in(
        dir.path(),
        None,
        &[
            "--json",
            "copy",
            "--from",
            from.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
            &child,
        ],
    ));
    assert_eq!(copied["copied"], 2, "{copied}");
    let parent_events = json(&rj(&from, &["--json", "runs"]))
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == session_id().as_str())
        .unwrap()["events"]
        .clone();
    assert_eq!(copied["runs"][0]["events"], parent_events, "the parent is copied whole");
}

#[test]
fn copy_of_a_damaged_run_stores_nothing_of_it() {
    let (_database, url) = database();
    let (dir, from) = session_db();
    corrupt_event(&from, 0, 3);
    let error = fails_with(
        &run_in(
            dir.path(),
            None,
            &["copy", "--from", from.to_str().unwrap(), "--to", &url],
        ),
        "integrity",
    );
    assert!(error.contains("seq 3"), "the damage is named: {error}");
    let rows = json(&with_env(&url, &["--json", "runs"]));
    assert_eq!(
        rows,
        Value::Array(Vec::new()),
        "no prefix of the damaged run was published"
    );
}

/// Waits (polling, with a deadline) until `path` exists.
fn wait_for(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::yield_now();
    }
}

/// Stops `child` with SIGTERM and returns its output.
fn terminate(child: std::process::Child) -> Output {
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

#[test]
fn serve_on_a_postgres_url_needs_a_socket() {
    let (_database, url) = database();
    let error = fails_with(&with_env(&url, &["serve"]), "usage");
    assert!(error.contains("--socket PATH"), "{error}");
    assert!(!error.contains("password"), "{error}");
}

#[test]
fn serve_on_a_postgres_url_serves_its_socket_to_connected_clients() {
    let (_database, url) = database();
    let (dir, _) = fresh();
    let socket = dir.path().join("pg.sock");
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .env("RUNJOURNAL_DB", &url)
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&socket);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");
    let key = RunKey::new("served-pg", 0, "agent").unwrap();
    {
        let journal = Journal::connect(&socket, runjournal::ConnectOptions::default()).unwrap();
        assert!(journal.is_remote());
        let run = journal.begin(key.clone(), runjournal::RunMeta::default()).unwrap();
        run.custom("note", "through the socket").unwrap();
        let history = journal.history(&key).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].seq, 1);
    }
    let output = terminate(child);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!socket.exists(), "the socket outlived the server");
    // What went through the socket is in PostgreSQL.
    let journal = Journal::open_existing(Path::new(&url), Options::default()).unwrap();
    assert_eq!(journal.history(&key).unwrap().len(), 2);
}

/// One `connection: close` request to the ui at `address`: status and body.
fn ui_request(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_owned())
}

#[test]
fn ui_on_a_postgres_url_answers_the_api_and_the_page() {
    use std::io::BufRead;
    let (_database, url) = database();
    let (dir, _) = fresh();
    ok(&run_in(
        dir.path(),
        Some(Path::new(&url)),
        &["import", example("session.jsonl").to_str().unwrap()],
    ));
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env("RUNJOURNAL_DB", &url)
        .args(["ui", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.contains("password"), "{line}");
    let address = line
        .split(" at http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, page) = ui_request(&address, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<html"), "{page}");
    let (status, body) = ui_request(&address, "/v1/runs");
    assert_eq!(status, 200, "{body}");
    let runs: Value = serde_json::from_str(&body).unwrap();
    let text = runs.to_string();
    assert!(text.contains("fix-login-bug"), "{text}");
    let (status, body) = ui_request(&address, "/v1/runs/fix-login-bug/0/orchestrator-0/state");
    assert_eq!(status, 200, "{body}");
    let (status, body) = ui_request(&address, "/ui/outline/fix-login-bug/0/orchestrator-0");
    assert_eq!(status, 200, "{body}");
    let outline: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outline["len"], 7);
    let output = terminate(child);
    assert!(output.status.success(), "{}", stderr(&output));
}
