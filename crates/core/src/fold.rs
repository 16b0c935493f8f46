//! The resume-state projection (SPEC §3).
