//! labelport's domain: export requests, job records, filters, the streaming export
//! pipeline, the worker and the notifier, the HTTP API router, and the ports that the
//! AWS and local adapters implement. Knows no cloud: see `labelport-aws` and the CLI.
#![deny(missing_docs)]

pub mod api;
pub mod decode;
pub mod delivery;
pub mod error;
pub mod filter;
pub mod import;
pub mod job;
pub mod links;
pub mod messages;
pub mod notify;
pub mod outbound;
pub mod output;
pub mod pipeline;
pub mod ports;
pub mod project;
pub mod request;
pub mod seal;
pub mod source;
pub mod sweep;
pub mod tenancy;
pub mod worker;

pub use labelport_encoders as encoders;
pub use labelport_model as model;
