//! The API's OpenAPI 3.1 document, generated from the routes' `#[utoipa::path]`
//! annotations and the types they take and return, and served at `/v1/openapi.json`.
//! The parts that come from registries (the formats and their options, the delivery
//! methods) are generated from the registries, so a new format or method shows up in
//! the document without an edit here.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, ServerBuilder};
use utoipa::Modify;

/// The route that serves the document.
pub const DOCUMENT_PATH: &str = "/v1/openapi.json";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "labelport export API",
        description = "Exports of a project's labelled tasks, in the format the customer needs, delivered as a signed download link, an e-mail, a signed webhook or into the customer's own bucket.\n\nEvery route but the signed download link and this document takes a bearer token (a JWT whose verified e-mail is a manager of the project). Errors are RFC 9457 problem details (`application/problem+json`): `code` says which error, `pointer` (a JSON Pointer into the body) or `parameter` names the part of the request at fault.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    security(("bearerAuth" = [])),
    tags((name = "exports", description = "Asking for exports, following them, downloading them.")),
    modifiers(&BearerAuth),
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An identity provider's JWT (API Gateway checks it on AWS; `labelport token` makes one for `labelport serve`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The version and the server a document describes.
pub(super) fn finish(mut doc: OpenApi, public_url: &str) -> OpenApi {
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.servers = Some(vec![ServerBuilder::new()
        .url(public_url.trim_end_matches('/'))
        .build()]);
    doc
}

/// `GET /v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "getOpenApi",
    tag = "exports",
    summary = "This document",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
pub(super) async fn document(
    axum::extract::State(api): axum::extract::State<std::sync::Arc<super::Api>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        api.document.get().cloned().unwrap_or_default(),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use labelport_encoders::Format;
    use serde_json::Value;

    fn document() -> Value {
        let doc = super::super::openapi_document("http://127.0.0.1:8080");
        serde_json::from_str(&doc.to_json().unwrap()).unwrap()
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_reference_resolves() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let name = reference.split('"').next().unwrap();
            let name = name.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referred to, not defined"
            );
        }
        // Every route but the signed link and the document itself takes a token.
        let mut open = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(operation["operationId"].is_string(), "{method} {path}");
                if operation["security"] == serde_json::json!([{}]) {
                    open.push(path.as_str());
                }
            }
        }
        open.sort();
        assert_eq!(open, ["/v1/exports/{id}/download", "/v1/openapi.json"]);
    }

    #[test]
    fn every_route_with_a_token_documents_its_errors_as_problem_details() {
        let doc = document();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if operation["security"] == serde_json::json!([{}]) {
                    continue;
                }
                for status in ["400", "401", "403", "404", "500"] {
                    let response = &operation["responses"][status];
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path} {status}"
                    );
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 7, "the routes that take a token");
    }

    /// Every `default` in the document, with where it is.
    fn defaults<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a Value)>) {
        match value {
            Value::Object(members) => {
                if let Some(default) = members.get("default") {
                    found.push((at.clone(), default));
                }
                for (key, member) in members {
                    defaults(member, format!("{at}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    defaults(item, format!("{at}/{index}"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn no_default_is_an_object_so_client_generators_keep_every_operation() {
        // openapi-python-client refuses an object `default` and drops every operation
        // whose body holds it (infra/client_test.sh runs it on this document).
        let doc = document();
        let mut found = Vec::new();
        defaults(&doc, String::new(), &mut found);
        let objects: Vec<&str> = found
            .iter()
            .filter(|(_, default)| default.is_object())
            .map(|(at, _)| at.as_str())
            .collect();
        assert!(objects.is_empty(), "object defaults at {objects:?}");
        // The delivery's default is told in its description instead.
        let delivery = &doc["components"]["schemas"]["ExportRequest"]["properties"]["delivery"];
        assert!(delivery["description"]
            .as_str()
            .unwrap()
            .contains(r#"Default: `{"method": "FILE_STORAGE"}`"#));
    }

    #[test]
    fn the_request_schema_comes_from_the_registries() {
        let doc = document();
        let request = &doc["components"]["schemas"]["ExportRequest"];
        let formats: Vec<&str> = request["properties"]["format"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            formats,
            Format::all().map(Format::as_str).collect::<Vec<_>>()
        );
        for format in Format::all() {
            for option in format.spec().options {
                let described = request["properties"][option.key]["description"]
                    .as_str()
                    .unwrap_or_default();
                assert!(
                    described.contains(format.as_str()),
                    "{}: {described}",
                    option.key
                );
            }
        }
        let methods = request["properties"]["delivery"]["oneOf"]
            .as_array()
            .unwrap();
        assert_eq!(methods.len(), crate::delivery::METHODS.len());
        for (method, schema) in crate::delivery::METHODS.iter().zip(methods) {
            assert_eq!(schema["properties"]["method"]["enum"][0], method.name());
            // The method's own JSON Schema reaches the document whole.
            let fields = method.fields();
            for (name, field) in fields["properties"].as_object().unwrap() {
                assert_eq!(
                    &schema["properties"][name],
                    field,
                    "{}.{name}",
                    method.name()
                );
            }
            let mut required = vec![Value::from("method")];
            required.extend(fields["required"].as_array().cloned().unwrap_or_default());
            assert_eq!(
                schema["required"],
                Value::from(required),
                "{}",
                method.name()
            );
        }
    }
}
