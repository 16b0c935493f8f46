//! docs/openapi.json and docs/http-api.md describe exactly the routes the
//! server registers (the router is built from `ROUTES` alone).
#![allow(clippy::unwrap_used, reason = "a failed call fails the test")]

use std::collections::BTreeSet;
use std::path::Path;

fn docs(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name)).unwrap()
}

fn registered() -> BTreeSet<(String, String)> {
    runjournal::ROUTES
        .iter()
        .map(|route| (route.method.to_string(), route.path.to_string()))
        .collect()
}

#[test]
fn every_registered_route_is_in_the_openapi_document_and_nothing_else() {
    let document: serde_json::Value = serde_json::from_str(&docs("openapi.json")).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let registered = registered();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "registered but not in docs/openapi.json: {undocumented:?}"
    );
    assert!(
        unregistered.is_empty(),
        "in docs/openapi.json but not registered: {unregistered:?}"
    );
}

#[test]
fn every_registered_route_has_a_section_in_the_http_api_guide() {
    let guide = docs("http-api.md");
    for (method, path) in registered() {
        let short = path.replace("/{goal}/{episode}/{agent}", "/{k}");
        let heading = format!("`{method} {short}`");
        assert!(guide.contains(&heading), "docs/http-api.md has no {heading}");
    }
}
