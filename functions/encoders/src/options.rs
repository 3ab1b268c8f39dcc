//! Format options: top-level request keys that only some formats read (`structure`,
//! `split`). The request keeps them as JSON; each format parses the ones it declares
//! in its [`FormatSpec::options`](crate::FormatSpec), so a new format brings its
//! options with it and an error names the key's full path.

use crate::ConfigError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A format option: the request key, and its schema for the API's OpenAPI document.
/// Formats that read the same option share one `FormatOption`.
pub struct FormatOption {
    /// The top-level request key (`split`).
    pub key: &'static str,
    /// The option's JSON Schema, generated from the type the format parses it into.
    pub schema: fn() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
}

/// `structure`: which task structure the JSON family writes.
pub static STRUCTURE: FormatOption = FormatOption {
    key: "structure",
    schema: <Structure as utoipa::PartialSchema>::schema,
};

/// `compat`: write the layout another tool's converter writes, where users depend on
/// it (docs/label-studio.md says what each format changes).
pub static COMPAT: FormatOption = FormatOption {
    key: "compat",
    schema: <Compat as utoipa::PartialSchema>::schema,
};

/// Whose layout a format writes instead of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Compat {
    /// Label Studio's converter (label-studio-sdk): its class numbering (the config's
    /// `category` ids, then the other labels by name, from 0), its file names (the
    /// image's own), and each format's columns and rounding.
    LabelStudio,
}

impl Compat {
    /// The `compat` option among `options`, if given.
    pub fn of(options: &FormatOptions) -> Result<Option<Compat>, ConfigError> {
        options.get(COMPAT.key)
    }
}

/// The format options of a request, as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FormatOptions(pub serde_json::Map<String, serde_json::Value>);

impl FormatOptions {
    /// Parses option `key`, if present; an error names the path (`split.maxFileBytes`).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some(value) = self.0.get(key) else {
            return Ok(None);
        };
        serde_path_to_error::deserialize(value)
            .map(Some)
            .map_err(|e| {
                let inner = e.path().to_string();
                let field = if inner == "." {
                    key.to_owned()
                } else {
                    format!("{key}.{inner}")
                };
                ConfigError::new(field, e.into_inner().to_string())
            })
    }

    /// The keys given.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// Whether no option was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which task structure the JSON family writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Structure {
    /// One task per asset with `tools`, `totalDuration` and full stage history.
    #[default]
    Current,
    /// The earlier structure: a `tasks` list per asset, `objects` for tools, a
    /// `duration`, and stage history without annotations (see docs/json-formats.md).
    Legacy,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Split {
        #[allow(dead_code)]
        max_file_bytes: Option<u64>,
    }

    fn options(json: &str) -> FormatOptions {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn errors_name_the_full_path() {
        let o = options(r#"{"split":{"maxFileBytes":"big"},"structure":"old"}"#);
        let e = o.get::<Split>("split").unwrap_err();
        assert_eq!(e.field, "split.maxFileBytes");
        let e = o.get::<Structure>("structure").unwrap_err();
        assert_eq!(e.field, "structure");
        assert!(e.message.contains("legacy"), "{}", e.message);
        assert_eq!(options("{}").get::<Structure>("structure").unwrap(), None);
    }
}
