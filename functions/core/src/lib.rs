//! labelport's domain around the engine: export requests, job records, the worker and
//! the notifier, delivery, the HTTP API router, and the ports that the AWS and local
//! adapters implement. The streaming path itself is `labelport-engine`; this crate
//! knows no cloud: see `labelport-aws` and the CLI.
#![deny(missing_docs)]

pub mod api;
pub mod delivery;
pub mod error;
pub mod job;
pub mod links;
pub mod messages;
pub mod notify;
pub mod outbound;
pub mod ports;
pub mod project;
pub mod request;
pub mod seal;
pub mod service;
pub mod sweep;
pub mod tenancy;
pub mod worker;
