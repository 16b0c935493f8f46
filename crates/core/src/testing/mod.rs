//! Test support shared by every store and by the journal's own tests; only
//! built with the `testing` feature, so the product never compiles it.
//!
//! - [`conformance`]: the storage trait's contract as one function per rule,
//!   which every [`Store`](crate::Store) implementation runs in its tests
//!   (through [`conformance_tests!`](crate::conformance_tests));
//! - [`faulty`]: [`FaultyStore`](faulty::FaultyStore), a wrapper that injects
//!   storage failures.

pub mod conformance;
pub mod faulty;
