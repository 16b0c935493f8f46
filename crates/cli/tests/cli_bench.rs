//! `bench`: the harness in a build with the `bench` feature
//! (`cargo test -p runjournal-cli --features bench`), and one line saying how
//! to get it in a build without.
#![allow(clippy::unwrap_used, reason = "test code: a failed call fails the test")]

mod common;

use common::*;

#[cfg(not(feature = "bench"))]
#[test]
fn bench_without_the_feature_says_how_to_get_it() {
    let (dir, db) = fresh();
    let error = fails(&run_in(dir.path(), Some(&db), &["bench"]));
    assert!(
        error.contains("built without the benchmark harness")
            && error.contains("cargo install --locked --path crates/cli --features bench"),
        "{error}"
    );
    assert!(!db.exists(), "bench created no database");
}

#[cfg(feature = "bench")]
#[test]
fn bench_reports_every_row_in_json() {
    let (dir, _db) = fresh();
    let bench_dir = dir.path().to_str().unwrap();
    let output = run_in(
        dir.path(),
        None,
        &["bench", "--scale", "0.01", "--json", "--dir", bench_dir],
    );
    let report = json(&output);
    let rows = report["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{report:#}");
    assert!(stderr(&output).contains("bench: "), "progress on stderr");
    let error = fails(&run_in(dir.path(), None, &["bench", "--scale", "0"]));
    assert!(error.contains("--scale must be a positive number"), "{error}");
}
