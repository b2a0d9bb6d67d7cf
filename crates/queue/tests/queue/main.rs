//! The queue's tests. The conformance suite is written once and run against each backend:
//! SQLite in a temporary file, and PostgreSQL at 127.0.0.1:5432 in a schema of each test's own.
//! A PostgreSQL test fails when `CI` is set and the server is unreachable, and skips with a loud
//! message otherwise.

/// Opening a fresh queue on each backend.
mod backends;

/// The semantics both backends must share, one test per rule.
mod conformance;

/// Many leasers at once, in one process and in several, and a leaser killed mid-lease.
mod processes;

/// PostgreSQL going away and coming back.
mod outage;
