//! tcplab reproduces cloud TCP connectivity failures (connect timeouts, refused connections,
//! unreachable hosts...) on one Linux machine, and checks them on the wire.

pub mod apps;
pub mod capture;
pub mod contain;
pub mod error_class;
pub mod escape;
pub mod expect;
pub mod firewall;
pub mod lab;
pub mod netns;
pub mod output;
pub mod proc;
pub mod report;
pub mod scenario;
pub mod session;
pub mod spec;
pub mod trace;
pub mod units;
pub mod wire;

pub use error_class::ErrorClass;

// The README's Rust examples compile as doctests (those that need root do not run here; the
// same code runs in the integration tests).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
