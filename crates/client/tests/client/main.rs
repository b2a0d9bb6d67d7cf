//! Model-client tests over loopback HTTP: recorded provider bodies served by a recorder that
//! also keeps what the client sent, and every surface of the stand-in.

/// A loopback server that answers with canned responses and records each request.
mod recorder;

/// Each provider's client against recorded bodies: URLs, headers, bodies, parsing, streams.
mod recorded;

/// Error bodies, classification, hints, retries, and where a key may appear.
mod errors;

/// Every surface of the stand-in, streaming and not, through the real client.
mod standin;
