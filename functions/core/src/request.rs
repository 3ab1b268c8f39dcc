//! An export request: what the API's POST body and a dropped request file say.
//! Parsing names the field at fault; validation against the project happens in
//! [`ExportRequest::validate`].

use crate::error::RequestError;
use labelport_encoders::{Compression, FieldToggles, Format, FormatOptions};
use labelport_engine::pipeline::InvalidLines;
use labelport_engine::plan::{ExportSpec, Filters};
use labelport_model::TaskState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /v1/projects/{project}/exports`.
///
/// Keys other than the ones below are the format's options (`structure`, `split`):
/// the format parses them, and refuses keys it does not take, when the request is
/// validated (unknown fields of the nested objects are refused while parsing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequest {
    /// The output format.
    pub format: Format,
    /// Which tasks to export.
    #[serde(default)]
    pub filters: Filters,
    /// Optional parts of each record (NDJSON).
    #[serde(default)]
    pub fields: FieldToggles,
    /// Compression of the output file.
    #[serde(default)]
    pub compression: Compression,
    /// How the result reaches the customer.
    #[serde(default)]
    pub delivery: Delivery,
    /// What to do with a malformed source line.
    #[serde(default)]
    pub invalid_lines: InvalidLines,
    /// Another tool's export to read instead of the project's task files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<labelport_engine::import::ImportSource>,
    /// The format's own options.
    #[serde(flatten)]
    pub options: FormatOptions,
}

/// The request's `delivery` object: the method, and the method's own fields. What a
/// method accepts, prepares and announces is `crate::delivery`'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `FILE_STORAGE`, `EMAIL`, ...
    pub method: String,
    /// The method's fields, as it accepted them (defaults filled in).
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

impl ExportRequest {
    /// Parses a request body, naming the field at fault (`filters.states[1]`).
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(RequestError::new("body", "a JSON object is required"));
        }
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            // A body that is not an object has no field to name.
            let field = if path == "." || path.starts_with('[') {
                "body".to_owned()
            } else {
                path
            };
            // serde_json's message ends with " at line L column C": useful in a file, noise in a field error.
            let message = err.inner().to_string();
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].to_owned(),
                None => message,
            };
            RequestError::new(field, message)
        })
    }

    /// The request as shown and fingerprinted: sealed secrets left out.
    pub fn shown(&self) -> ExportRequest {
        ExportRequest {
            delivery: self.delivery.shown(),
            ..self.clone()
        }
    }

    /// What the request writes, for the engine: the format, its options, the filters.
    pub fn spec(&self) -> ExportSpec<'_> {
        ExportSpec {
            format: self.format,
            filters: &self.filters,
            fields: self.fields,
            compression: self.compression,
            invalid_lines: self.invalid_lines,
            options: &self.options,
        }
    }
}

impl utoipa::PartialSchema for ExportRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        let described = |schema: RefOr<Schema>, text: &str| match schema {
            RefOr::T(Schema::Object(mut object)) => {
                object.description = Some(text.to_owned());
                RefOr::T(Schema::Object(object))
            }
            RefOr::T(Schema::Array(mut array)) => {
                array.description = Some(text.to_owned());
                RefOr::T(Schema::Array(array))
            }
            other => other,
        };
        let mut body = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "An export request. Keys besides these are the options of the formats that read them.",
            ))
            .property("format", Format::schema())
            .required("format")
            .property("filters", described(Filters::schema(), "Which tasks to export. Absent lists mean the format's defaults."))
            .property("fields", described(FieldToggles::schema(), "Optional parts of each record (NDJSON and JSON)."))
            .property("compression", described(Compression::schema(), "Compression of the output file (not for ZIP formats)."))
            .property("delivery", Delivery::schema())
            .property("invalidLines", described(InvalidLines::schema(), "What a malformed source line does: `fail` the export (default) or `skip` it."))
            .property("source", described(labelport_engine::import::ImportSource::schema(), "Another tool's export, uploaded under `projects/{project}/imports/`, to read instead of the project's task files: its settings give the mode and label schema."))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let mut seen: Vec<&str> = Vec::new();
        for format in Format::all() {
            for option in format.spec().options {
                if seen.contains(&option.key) {
                    continue;
                }
                seen.push(option.key);
                let readers: Vec<&str> = Format::all()
                    .filter(|f| f.spec().takes(option.key))
                    .map(Format::as_str)
                    .collect();
                let text = format!("An option of {}.", readers.join(", "));
                body = body.property(option.key, described((option.schema)(), &text));
            }
        }
        body.into()
    }
}

impl utoipa::ToSchema for ExportRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        // The schemas the inlined members refer to.
        <Filters as utoipa::ToSchema>::schemas(schemas);
        schemas.push((
            <TaskState as utoipa::ToSchema>::name().into_owned(),
            <TaskState as utoipa::PartialSchema>::schema(),
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::delivery::{DeliveryPolicy, Requested};
    use labelport_model::Project;

    /// The checks the export service runs on a request: its spec, then its delivery.
    trait Validate: Sized {
        fn validate(
            self,
            project: &Project,
            requester: &str,
            policy: &DeliveryPolicy,
        ) -> Result<Self, RequestError>;
    }

    impl Validate for ExportRequest {
        fn validate(
            mut self,
            project: &Project,
            requester: &str,
            policy: &DeliveryPolicy,
        ) -> Result<Self, RequestError> {
            self.spec().check(project)?;
            self.delivery = self.delivery.accept(&Requested {
                project,
                requester,
                policy,
            })?;
            Ok(self)
        }
    }
    use labelport_generate as generate;
    use labelport_model::Mode;

    fn project() -> Project {
        generate::project(&generate::Config::new("p1", Mode::Classification, 1, 1))
    }

    fn err(body: &str) -> RequestError {
        ExportRequest::parse(body.as_bytes()).expect_err("refused")
    }

    #[test]
    fn unknown_format_names_the_field_and_the_choices() {
        let e = err(r#"{"format":"XML"}"#);
        assert_eq!(e.field, "format");
        assert!(e.message.contains("unknown variant `XML`"), "{}", e.message);
        assert!(e.message.contains("CSV"), "{}", e.message);
    }

    #[test]
    fn unknown_field_is_refused_by_its_path() {
        let e = err(r#"{"format":"CSV","filters":{"state":["annotated"]}}"#);
        assert_eq!(e.field, "filters.state");
        assert!(e.message.contains("unknown field `state`"), "{}", e.message);
    }

    #[test]
    fn bad_filter_value_names_the_index() {
        let e = err(r#"{"format":"NDJSON","filters":{"states":["annotated","done"]}}"#);
        assert_eq!(e.field, "filters.states[1]");
    }

    #[test]
    fn missing_format_and_empty_body() {
        assert_eq!(err(r#"{}"#).message, "missing field `format`");
        assert_eq!(err("").field, "body");
        assert_eq!(err("[1]").field, "body");
    }

    #[test]
    fn csv_refuses_states_other_than_annotated_and_validated_and_toggles() {
        let r = ExportRequest::parse(
            br#"{"format":"CSV","filters":{"states":["validated","pending"]}}"#,
        )
        .unwrap();
        let e = r
            .validate(
                &project(),
                "manager@example.com",
                &DeliveryPolicy::default(),
            )
            .unwrap_err();
        assert_eq!(e.field, "filters.states[1]");
        let r =
            ExportRequest::parse(br#"{"format":"CSV","fields":{"stageHistory":true}}"#).unwrap();
        let e = r
            .validate(
                &project(),
                "manager@example.com",
                &DeliveryPolicy::default(),
            )
            .unwrap_err();
        assert_eq!(e.field, "fields.stageHistory");
    }

    #[test]
    fn unknown_stage_is_refused_with_the_project_stages() {
        let r =
            ExportRequest::parse(br#"{"format":"NDJSON","filters":{"stages":["Done"]}}"#).unwrap();
        let e = r
            .validate(
                &project(),
                "manager@example.com",
                &DeliveryPolicy::default(),
            )
            .unwrap_err();
        assert_eq!(e.field, "filters.stages[0]");
        assert!(e.message.contains("Complete"), "{}", e.message);
    }

    #[test]
    fn email_recipients_default_to_the_requester_and_are_members_or_allowed() {
        let policy = DeliveryPolicy {
            email_allow_list: vec!["@partner.com".into()],
            ..DeliveryPolicy::default()
        };
        let accept = |body: &str| {
            ExportRequest::parse(body.as_bytes()).unwrap().validate(
                &project(),
                "manager@example.com",
                &policy,
            )
        };
        let r = accept(r#"{"format":"CSV","delivery":{"method":"EMAIL"}}"#).unwrap();
        assert_eq!(r.delivery.method, "EMAIL");
        assert_eq!(
            r.delivery.params["recipients"],
            serde_json::json!(["manager@example.com"])
        );
        // A labeler is a member: the signed link needs no sign-in, so they can download.
        let r = accept(
            r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":["labeler1@example.com","ml@partner.com"]}}"#,
        )
        .unwrap();
        assert_eq!(
            r.delivery.params["recipients"],
            serde_json::json!(["labeler1@example.com", "ml@partner.com"])
        );
        let e = accept(
            r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":["manager@example.com","someone@elsewhere.com"]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "delivery.recipients[1]");
        assert!(e.message.contains("neither a member"), "{}", e.message);
        let e = accept(
            r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":["x\r\nBcc: y@z.com"]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.message, "not an e-mail address");
        let e = accept(r#"{"format":"CSV","delivery":{"method":"EMAIL","recipients":"a@b.co"}}"#)
            .unwrap_err();
        assert_eq!(e.field, "delivery.recipients");
        let e = accept(r#"{"format":"CSV","delivery":{"method":"EMAIL","to":["a@b.co"]}}"#)
            .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("delivery.to", "unknown field `to`: EMAIL takes recipients")
        );
    }

    #[test]
    fn an_unknown_method_names_the_methods() {
        let e = ExportRequest::parse(br#"{"format":"CSV","delivery":{"method":"FTP"}}"#)
            .unwrap()
            .validate(&project(), "m@x.io", &DeliveryPolicy::default())
            .unwrap_err();
        assert_eq!(e.field, "delivery.method");
        assert!(e.message.contains("FILE_STORAGE, EMAIL"), "{}", e.message);
        assert_eq!(
            err(r#"{"format":"CSV","delivery":{}}"#).message,
            "missing field `method`"
        );
    }

    #[test]
    fn defaults_come_from_the_format() {
        let csv = ExportRequest::parse(br#"{"format":"CSV"}"#).unwrap();
        assert_eq!(csv.format.as_str(), "CSV");
        assert_eq!(
            csv.spec().effective_states(),
            Some(vec![TaskState::Annotated, TaskState::Validated])
        );
        assert_eq!(csv.spec().effective_stages(), None);
        let nd = ExportRequest::parse(br#"{"format":"NDJSON"}"#).unwrap();
        assert_eq!(
            nd.spec().effective_stages(),
            Some(vec!["Complete".to_owned()])
        );
        assert_eq!(nd.delivery, Delivery::default());
    }

    fn refused(body: &str, mode: Mode) -> RequestError {
        let project = generate::project(&generate::Config::new("p1", mode, 1, 1));
        ExportRequest::parse(body.as_bytes())
            .unwrap()
            .validate(&project, "manager@example.com", &DeliveryPolicy::default())
            .unwrap_err()
    }

    #[test]
    fn format_options_are_checked_by_the_format() {
        let e = refused(r#"{"format":"CSV","structure":"legacy"}"#, Mode::Entity);
        assert_eq!(e.field, "structure");
        assert_eq!(
            e.message,
            "not an option of CSV; it takes cells, excel, compat"
        );
        let e = refused(r#"{"format":"NDJSON","strucure":"legacy"}"#, Mode::Entity);
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("strucure", "unknown field `strucure`")
        );
        let e = refused(
            r#"{"format":"NDJSON","split":{"maxFileBytes":5}}"#,
            Mode::Entity,
        );
        assert!(e.message.contains("it takes structure"), "{}", e.message);
        let e = refused(
            r#"{"format":"NDJSON_SPLIT","split":{"maxFileBytes":"x"}}"#,
            Mode::Entity,
        );
        assert_eq!(e.field, "split.maxFileBytes");
        let ok = ExportRequest::parse(br#"{"format":"JSON","structure":"legacy"}"#).unwrap();
        let project = generate::project(&generate::Config::new("p1", Mode::Entity, 1, 1));
        let ok = ok
            .validate(&project, "manager@example.com", &DeliveryPolicy::default())
            .unwrap();
        assert_eq!(
            ok.options
                .get::<labelport_encoders::Structure>("structure")
                .unwrap(),
            Some(labelport_encoders::Structure::Legacy)
        );
        let round_trip: ExportRequest =
            serde_json::from_str(&serde_json::to_string(&ok).unwrap()).unwrap();
        assert_eq!(round_trip, ok, "a job record keeps the options");
    }

    #[test]
    fn a_format_that_does_not_fit_the_mode_names_the_modes_it_fits() {
        let e = refused(r#"{"format":"JSON_SIMPLE"}"#, Mode::Element);
        assert_eq!(e.field, "format");
        assert_eq!(
            e.message,
            "JSON_SIMPLE cannot express element projects; it fits entity, token, row, document"
        );
        let e = refused(
            r#"{"format":"JSON_SIMPLE","compression":"gzip"}"#,
            Mode::Entity,
        );
        assert_eq!(e.field, "compression");
    }

    #[test]
    fn split_parts_of_less_than_a_megabyte_are_refused_on_their_option() {
        let e = refused(
            r#"{"format":"NDJSON_SPLIT","split":{"maxFileBytes":999999}}"#,
            Mode::Entity,
        );
        assert_eq!(e.field, "split.maxFileBytes");
        assert!(
            e.message.starts_with("must be at least 1000000"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_webhook_is_refused_on_its_url_for_a_port_other_than_443_or_an_ipv4_tunnel() {
        let webhook = |url: &str| {
            format!(
                r#"{{"format":"CSV","delivery":{{"method":"CUSTOM_WEBHOOK","url":"{url}","secret":"0123456789abcdef"}}}}"#
            )
        };
        for (url, why) in [
            (
                "https://hooks.example.com:8443/labelport",
                "port 8443 is not allowed: webhooks go to port 443 only (leave the port out)",
            ),
            (
                "https://[2002:a9fe:a9fe::1]/labelport",
                "2002:a9fe:a9fe::1 is not a public address: it is in 2002::/16 (6to4, which tunnels to IPv4)",
            ),
        ] {
            let e = refused(&webhook(url), Mode::Classification);
            assert_eq!((e.field.as_str(), e.message.as_str()), ("delivery.url", why));
        }
    }
}
