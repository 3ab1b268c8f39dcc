//! Configuration from the environment, read once at cold start.

use std::time::Duration;

/// A required variable is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    name: &'static str,
    problem: String,
}

/// Reads a required variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError {
        name,
        problem: "is not set".into(),
    })
}

/// Reads an optional variable.
pub fn optional(name: &'static str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Reads a duration in seconds.
pub fn seconds(name: &'static str, default: u64) -> Result<Duration, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(Duration::from_secs(default)),
        Ok(v) => v.parse().map(Duration::from_secs).map_err(|_| ConfigError {
            name,
            problem: format!("`{v}` is not a number of seconds"),
        }),
    }
}

/// Reads a whole number.
pub fn number(name: &'static str, default: u32) -> Result<u32, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v.parse().map_err(|_| ConfigError {
            name,
            problem: format!("`{v}` is not a whole number"),
        }),
    }
}

/// Reads a duration in minutes.
pub fn minutes(name: &'static str, default: u32) -> Result<Duration, ConfigError> {
    number(name, default).map(|m| Duration::from_secs(u64::from(m) * 60))
}

/// The shared AWS configuration. `AWS_ENDPOINT_URL` (and per-service variables such as
/// `AWS_ENDPOINT_URL_SES`) point the SDK at an emulator.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An S3 client. Path-style addressing when `S3_FORCE_PATH_STYLE=true` (emulators).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = optional("S3_FORCE_PATH_STYLE", "false") == "true";
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// Logs as Powertools-style JSON lines: see [`crate::logs`].
pub fn init_tracing() {
    crate::logs::init();
}
