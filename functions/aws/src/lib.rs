//! labelport's AWS adapters: the S3 store and presigner, the SQS queue, the SES
//! mailer, the caller's identity from API Gateway, and the Lambda glue that the three
//! function binaries call. Each function's wiring from its environment is in
//! [`functions`], so the binaries stay a few lines long.
#![deny(missing_docs)]

pub mod buckets;
pub mod config;
pub mod functions;
pub mod identity;
pub mod lambda;
pub mod logs;
pub mod metrics;
pub mod s3;
pub mod secrets;
pub mod ses;
pub mod sqs;

pub use identity::ApiGatewayClaims;
pub use s3::S3Store;
pub use ses::SesMailer;
pub use sqs::SqsQueue;
