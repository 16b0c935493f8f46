//! Usage totals (rule 12 (docs/resume-state.md)): the sum of every `usage` event.
//!
//! Invariants: absent fields count as 0; token sums saturate instead of
//! wrapping; counters add per name and are kept in name order (a `BTreeMap`),
//! so the totals, their JSON and their snapshot bytes are deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The sums of every `usage` event of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct UsageTotals {
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Named counters, summed per name.
    pub counters: BTreeMap<String, f64>,
}

impl UsageTotals {
    /// Adds one `usage` event's fields.
    pub(crate) fn add(
        &mut self,
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        cost_usd: Option<f64>,
        counters: Option<&BTreeMap<String, f64>>,
    ) {
        self.input_tokens = self.input_tokens.saturating_add(input_tokens.unwrap_or(0));
        self.output_tokens = self.output_tokens.saturating_add(output_tokens.unwrap_or(0));
        self.cost_usd += cost_usd.unwrap_or(0.0);
        for (name, value) in counters.into_iter().flatten() {
            *self.counters.entry(name.clone()).or_insert(0.0) += value;
        }
    }
}
