//! agentfleet's doctor: reads what other people's agents already have (their logs, tracebacks
//! and error bodies) and says which credential failure each one is, the evidence, and the fix.
//!
//! It depends only on the config layer, for the shapes of keys, so that it can run where no
//! agentfleet config exists. It reads text given to it and nothing else: no environment, no
//! file of its own choosing.

pub mod explain;

pub use explain::{Cause, Diagnosis, explain};
