//! labelport's streaming export path, and nothing else: source files are listed and
//! opened ([`source`]), cut into records and decoded ([`decode`]), filtered
//! ([`filter`]), encoded on every core and put back in order ([`pipeline`]), and
//! written into the format's files with the errors report ([`assembly`]).
//!
//! It knows no jobs, queues, HTTP or cloud: the worker and `labelport export` both
//! drive it through a [`plan::Plan`], reading sources through the [`store`] port and
//! stopping it through [`pipeline::Options::cancel`].
#![deny(missing_docs)]

pub mod assembly;
pub mod decode;
pub mod filter;
pub mod import;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod source;
pub mod store;
