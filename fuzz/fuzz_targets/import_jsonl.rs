//! Fuzzes the JSON-lines import: arbitrary input is either imported whole or
//! refused with a line-numbered error, never a panic; a refused file stores
//! nothing, and an imported one verifies.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use runjournal::{Journal, Options, RunFilter};
use runjournal_core::MemoryStore;

fuzz_target!(|bytes: &[u8]| {
    let Ok(journal) = Journal::with_store(Arc::new(MemoryStore::new()), Options::default()) else {
        return;
    };
    match journal.import(bytes) {
        Ok(_) => {
            for record in journal.runs(&RunFilter::default()).unwrap_or_default() {
                assert!(journal.verify(&record.key).is_ok(), "an imported run verifies");
            }
        }
        Err(_) => assert!(
            journal.runs(&RunFilter::default()).map(|runs| runs.is_empty()).unwrap_or(true),
            "a refused import stores nothing"
        ),
    }
});
