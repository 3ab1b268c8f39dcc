//! A method's fields of `delivery`, read into its parameters type. The type is the one
//! source: its derived schema is what the OpenAPI document shows and what a request may
//! name, and serde parses it once, when the request is accepted, naming the path at
//! fault (`delivery.recipients[1]`).
//!
//! The field helpers at the bottom keep the messages the API has always given for a
//! value of the wrong type ("must be a string"), where serde's own ("invalid type:
//! integer `5`, expected a string") would be new text to clients.

use crate::error::RequestError;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A parameters type's fields as JSON Schema: `properties`, and `required` if any.
pub(super) fn fields<P: utoipa::PartialSchema>() -> Value {
    // A schema that does not serialize would be a bug in utoipa; it shows as a method
    // that takes no fields, which refuses every field rather than accepting any.
    let schema = serde_json::to_value(P::schema()).unwrap_or_default();
    let mut fields = Map::new();
    fields.insert(
        "properties".into(),
        schema
            .get("properties")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    if let Some(required) = schema.get("required") {
        fields.insert("required".into(), required.clone());
    }
    Value::Object(fields)
}

/// Refuses the first field of `given` that `refused` names, with its reason.
pub(super) fn refuse(
    refused: &[(&str, &str)],
    given: &Map<String, Value>,
) -> Result<(), RequestError> {
    match refused.iter().find(|(name, _)| given.contains_key(*name)) {
        None => Ok(()),
        Some((name, why)) => Err(RequestError::new(format!("delivery.{name}"), *why)),
    }
}

/// Refuses the first field of `given` that is not in `fields` (see [`fields`]), naming
/// it and the fields the method takes. Checked before the values, as it always was, so
/// a misspelt field is what a request is told about first.
pub(super) fn only_fields(
    method: &str,
    fields: &Value,
    given: &Map<String, Value>,
) -> Result<(), RequestError> {
    // Sorted, the order the message has always listed them in: `properties` keeps the
    // struct's order wherever serde_json's `preserve_order` is on in the build.
    let mut takes: Vec<&str> = fields["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    takes.sort_unstable();
    match given.keys().find(|k| !takes.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(RequestError::new(
            format!("delivery.{key}"),
            if takes.is_empty() {
                format!("unknown field `{key}`: {method} takes no fields")
            } else {
                format!("unknown field `{key}`: {method} takes {}", takes.join(", "))
            },
        )),
    }
}

/// Parses the request's fields into the method's parameters type, whose fields are
/// `fields` (see [`fields`]).
pub(super) fn parse<P: DeserializeOwned>(
    fields: &Value,
    given: &Map<String, Value>,
) -> Result<P, RequestError> {
    serde_path_to_error::deserialize(given).map_err(|e| {
        let path = e.path().to_string();
        if path != "." {
            return RequestError::new(format!("delivery.{path}"), e.into_inner().to_string());
        }
        // serde reports a missing field on the object, naming it only in its message;
        // the request is told on the field.
        let missing = fields["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|name| !given.contains_key(*name));
        match missing {
            Some(name) => RequestError::new(format!("delivery.{name}"), "is required"),
            None => RequestError::new("delivery", e.into_inner().to_string()),
        }
    })
}

/// The accepted parameters as the job keeps them: a JSON object beside `method`.
pub(super) fn record<P: Serialize>(
    method: &str,
    accepted: &P,
) -> Result<Map<String, Value>, RequestError> {
    match serde_json::to_value(accepted) {
        Ok(Value::Object(fields)) => Ok(fields),
        // A parameters type is a struct, which serializes to an object.
        _ => Err(RequestError::new(
            "delivery",
            format!("{method}'s fields could not be recorded"),
        )),
    }
}

/// What a field that must be text is told when it is not.
const NOT_A_STRING: &str = "must be a string";

/// A text field: absent is `None`; `null` or any other value than a string is refused.
pub(super) fn string<'de, D: Deserializer<'de>>(field: D) -> Result<Option<String>, D::Error> {
    String::deserialize(field)
        .map(Some)
        .map_err(|_| D::Error::custom(NOT_A_STRING))
}

/// A text field where `null` is the same as leaving it out.
pub(super) fn string_or_null<'de, D: Deserializer<'de>>(
    field: D,
) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(field).map_err(|_| D::Error::custom(NOT_A_STRING))
}

/// A text field where `null` means leaving it out, but is kept as given (`Some(None)`):
/// the job has always recorded such a field as the request gave it, and the status
/// shows it and the idempotency fingerprint covers it.
pub(super) fn string_or_kept_null<'de, D: Deserializer<'de>>(
    field: D,
) -> Result<Option<Option<String>>, D::Error> {
    string_or_null(field).map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A method's parameters as a new method would write them: plain types.
    #[derive(Debug, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Push {
        host: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_folder: Option<String>,
    }

    fn read(given: Value) -> Result<Push, RequestError> {
        let fields = fields::<Push>();
        let given = given.as_object().unwrap();
        only_fields("PUSH", &fields, given)?;
        parse(&fields, given)
    }

    fn refusal(given: Value) -> (String, String) {
        let e = read(given).unwrap_err();
        (e.field, e.message)
    }

    #[test]
    fn each_refusal_names_the_field() {
        let named = |field: &str, message: &str| (field.to_owned(), message.to_owned());
        assert_eq!(
            refusal(json!({"host": "h", "folder": "x"})),
            named(
                "delivery.folder",
                "unknown field `folder`: PUSH takes host, remoteFolder"
            )
        );
        assert_eq!(
            refusal(json!({"remoteFolder": "x"})),
            named("delivery.host", "is required")
        );
        assert_eq!(
            refusal(json!({"host": 5})),
            named(
                "delivery.host",
                "invalid type: integer `5`, expected a string"
            )
        );
        let read_back = read(json!({"host": "h", "remoteFolder": "in"})).unwrap();
        assert_eq!(
            Value::from(record("PUSH", &read_back).unwrap()),
            json!({"host": "h", "remoteFolder": "in"})
        );
        assert_eq!(fields::<Push>()["required"], json!(["host"]));
    }
}
