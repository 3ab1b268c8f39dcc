//! Delivery methods: how an ended export reaches the person at the other end. Each is
//! one file behind [`DeliveryMethod`], declared by its `mod` line and registered by one
//! line in `register!` below. A method checks its own part of the request
//! (`delivery.*`, parsed into its parameters type) when the export is asked for, and
//! announces the ended export when the notifier, which only claims the job and
//! dispatches, hands it over.

mod email;
mod external_storage;
mod file_storage;
mod params;
mod webhook;

use crate::error::RequestError;
use crate::job::{DeliveryAttempt, Job};
use crate::outbound::OutboundPolicy;
use crate::ports::{BoxError, BucketTarget, Buckets, Mailer};
use crate::request::Delivery;
use crate::seal::Sealer;
use crate::tenancy::ExternalIds;
use async_trait::async_trait;
use labelport_model::Project;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

pub use email::compose as compose_email;
pub use webhook::{event_body as webhook_event, signature_header as webhook_signature};

/// Every delivery method, in the order the API lists them.
macro_rules! register {
    ($($method:expr),* $(,)?) => {
        /// The registered delivery methods.
        pub static METHODS: &[&dyn RegisteredMethod] = &[$(&$method),*];
    };
}

register! {
    file_storage::FileStorage,
    email::Email,
    webhook::Webhook,
    external_storage::ExternalStorage,
}

/// The object written and deleted in a customer's folder to check that an export may be
/// written there.
pub const ACCESS_PROBE: &str = ".labelport-access-check";

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            method: DeliveryMethod::name(&file_storage::FileStorage).to_owned(),
            params: Map::new(),
        }
    }
}

/// What the platform allows deliveries to do, set by its operator.
#[derive(Debug, Clone, Default)]
pub struct DeliveryPolicy {
    /// Addresses (`ops@example.com`) and domains (`@example.com`) that may receive an
    /// export's e-mail besides the project's members.
    pub email_allow_list: Vec<String>,
    /// Where webhooks may go.
    pub outbound: OutboundPolicy,
    /// The platform's own buckets, never a delivery target.
    pub own_buckets: Vec<String>,
}

/// What a method's asynchronous preparation of an accepted request may use.
pub struct Prepare<'a> {
    /// The project exported.
    pub project: &'a str,
    /// The tenant it belongs to.
    pub tenant: &'a str,
    /// The platform's rules.
    pub policy: &'a DeliveryPolicy,
    /// Seals secrets the job must not hold in clear.
    pub sealer: &'a Sealer,
    /// Opens customers' buckets (to check access).
    pub buckets: &'a dyn Buckets,
    /// Issues tenants' external ids; `None` where customer roles are not set up.
    pub external_ids: Option<&'a ExternalIds>,
}

impl Prepare<'_> {
    /// The tenant's external id, or why there is none (said to the requester).
    pub async fn external_id(&self) -> Result<String, String> {
        let Some(ids) = self.external_ids else {
            return Err("customer roles are not set up on this deployment".into());
        };
        ids.of(self.tenant).await.map_err(|e| {
            tracing::error!(error = %crate::error::chain(e.as_ref()), "reading the external id key");
            "the platform could not read its external id key; try again later".to_owned()
        })
    }
}

/// What a method checks a request against.
pub struct Requested<'a> {
    /// The project exported.
    pub project: &'a Project,
    /// Who asked (their verified e-mail).
    pub requester: &'a str,
    /// The platform's rules.
    pub policy: &'a DeliveryPolicy,
}

/// An ended export, as the notifier hands it to the method.
pub struct Notice<'a> {
    /// The job, ended.
    pub job: &'a Job,
    /// A signed link to the export's first file (none if it failed).
    pub download: Option<String>,
    /// A signed link to the errors report, if there is one.
    pub report: Option<String>,
    /// Every file of the export with its signed link.
    pub files: Vec<(&'a crate::job::ResultFile, String)>,
    /// The status route (needs sign-in).
    pub status: String,
    /// When the signed links stop working.
    pub links_expire: chrono::DateTime<chrono::Utc>,
}

/// The backends methods announce through.
#[derive(Clone)]
pub struct Backends {
    /// Sends e-mail.
    pub mailer: Arc<dyn Mailer>,
    /// Opens sealed secrets.
    pub sealer: Arc<Sealer>,
    /// Where webhooks may go.
    pub outbound: OutboundPolicy,
}

/// What a method did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announced {
    /// Nothing to send: the customer downloads from the API.
    Nothing,
    /// An e-mail went to the recipients.
    Emailed,
    /// The receiver accepted the webhook.
    Posted,
    /// The files are in the customer's bucket: that is the delivery.
    Stored,
}

/// What a method did, and each attempt it made to reach the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The outcome.
    pub announced: Announced,
    /// Attempts, for the job record (webhooks).
    pub attempts: Vec<DeliveryAttempt>,
}

impl From<Announced> for Announcement {
    fn from(announced: Announced) -> Self {
        Announcement {
            announced,
            attempts: Vec::new(),
        }
    }
}

/// Why an announcement failed. A permanent failure (a receiver that refused, an
/// address that is not allowed) is recorded and not retried; any other is retried.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct DeliveryError {
    /// What went wrong, for the customer (no internal text).
    pub what: String,
    /// Whether trying again cannot help.
    pub permanent: bool,
    /// Attempts made, for the job record.
    pub attempts: Vec<DeliveryAttempt>,
    /// Recipients reached before it failed, recorded so that a retry skips them.
    pub reached: Vec<String>,
    /// The backend's error, for the log.
    #[source]
    pub source: Option<BoxError>,
}

/// One way of delivering an export. The registry holds it as a [`RegisteredMethod`],
/// which reads the request's fields into [`DeliveryMethod::Params`] before `accept`.
#[async_trait]
pub trait DeliveryMethod: Sync {
    /// The method's fields of `delivery` (besides `method`): a struct deriving
    /// `Deserialize` (`deny_unknown_fields`, `camelCase`), `Serialize` and
    /// `utoipa::ToSchema`. Its schema is what the OpenAPI document shows and what a
    /// request may name; a field it does not have is refused by name.
    type Params: DeserializeOwned + Serialize + utoipa::PartialSchema;
    /// Fields a request must never give, each with why, refused before anything else.
    const REFUSED: &'static [(&'static str, &'static str)] = &[];
    /// The `delivery.method` value (`EMAIL`).
    fn name(&self) -> &'static str;
    /// One line for the method list.
    fn summary(&self) -> &'static str;
    /// Checks the request's parameters and returns them as the job keeps them, defaults
    /// filled in. Errors name the field (`delivery.recipients[1]`).
    fn accept(
        &self,
        params: Self::Params,
        requested: &Requested<'_>,
    ) -> Result<Self::Params, RequestError>;
    /// Finishes what `accept` cannot do without the network or keys, before the export
    /// is queued: resolving a host, checking access, sealing a secret (fields whose name
    /// starts with `sealed` are kept on the job and never shown). `params`, here and
    /// below, are the job's: what `accept` returned, and what `prepare` added.
    async fn prepare(
        &self,
        params: Map<String, Value>,
        _prepare: &Prepare<'_>,
    ) -> Result<Map<String, Value>, RequestError> {
        Ok(params)
    }
    /// Where the worker writes the export instead of the platform bucket, and under
    /// which path: `None` (the default) keeps it in the platform bucket.
    fn target(&self, _params: &Map<String, Value>) -> Option<(BucketTarget, String)> {
        None
    }
    /// Tells the customer the export ended.
    async fn announce(
        &self,
        notice: &Notice<'_>,
        params: &Map<String, Value>,
        backends: &Backends,
    ) -> Result<Announcement, DeliveryError>;
}

/// A delivery method as the registry holds it, whatever its parameters type: the
/// request's fields are parsed here, once, so no method reads them by hand.
#[async_trait]
pub trait RegisteredMethod: Sync {
    /// [`DeliveryMethod::name`].
    fn name(&self) -> &'static str;
    /// [`DeliveryMethod::summary`].
    fn summary(&self) -> &'static str;
    /// The method's fields of `delivery` (besides `method`) as JSON Schema: an object
    /// with `properties` and, if any, `required`, generated from its parameters type.
    fn fields(&self) -> Value;
    /// Refuses what [`DeliveryMethod::REFUSED`] names, then fields the parameters type
    /// does not have, parses the request's fields (`given`) into it, runs
    /// [`DeliveryMethod::accept`] and returns what it accepted as the job keeps it.
    fn accept(
        &self,
        given: &Map<String, Value>,
        requested: &Requested<'_>,
    ) -> Result<Map<String, Value>, RequestError>;
    /// [`DeliveryMethod::prepare`].
    async fn prepare(
        &self,
        params: Map<String, Value>,
        prepare: &Prepare<'_>,
    ) -> Result<Map<String, Value>, RequestError>;
    /// [`DeliveryMethod::target`].
    fn target(&self, params: &Map<String, Value>) -> Option<(BucketTarget, String)>;
    /// [`DeliveryMethod::announce`].
    async fn announce(
        &self,
        notice: &Notice<'_>,
        params: &Map<String, Value>,
        backends: &Backends,
    ) -> Result<Announcement, DeliveryError>;
}

#[async_trait]
impl<M: DeliveryMethod> RegisteredMethod for M {
    fn name(&self) -> &'static str {
        DeliveryMethod::name(self)
    }

    fn summary(&self) -> &'static str {
        DeliveryMethod::summary(self)
    }

    fn fields(&self) -> Value {
        params::fields::<M::Params>()
    }

    fn accept(
        &self,
        given: &Map<String, Value>,
        requested: &Requested<'_>,
    ) -> Result<Map<String, Value>, RequestError> {
        let name = DeliveryMethod::name(self);
        let fields = self.fields();
        params::refuse(M::REFUSED, given)?;
        params::only_fields(name, &fields, given)?;
        let parsed = params::parse(&fields, given)?;
        let accepted = DeliveryMethod::accept(self, parsed, requested)?;
        params::record(name, &accepted)
    }

    async fn prepare(
        &self,
        params: Map<String, Value>,
        prepare: &Prepare<'_>,
    ) -> Result<Map<String, Value>, RequestError> {
        DeliveryMethod::prepare(self, params, prepare).await
    }

    fn target(&self, params: &Map<String, Value>) -> Option<(BucketTarget, String)> {
        DeliveryMethod::target(self, params)
    }

    async fn announce(
        &self,
        notice: &Notice<'_>,
        params: &Map<String, Value>,
        backends: &Backends,
    ) -> Result<Announcement, DeliveryError> {
        DeliveryMethod::announce(self, notice, params, backends).await
    }
}

/// The method called `name`.
pub fn method(name: &str) -> Option<&'static dyn RegisteredMethod> {
    METHODS.iter().copied().find(|m| m.name() == name)
}

impl Delivery {
    /// Checks the delivery part of a request; see [`RegisteredMethod::accept`].
    pub fn accept(&self, requested: &Requested<'_>) -> Result<Delivery, RequestError> {
        let method = method(&self.method).ok_or_else(|| {
            let names: Vec<&str> = METHODS.iter().map(|m| m.name()).collect();
            RequestError::new(
                "delivery.method",
                format!(
                    "`{}` is not a delivery method; the methods are {}",
                    self.method,
                    names.join(", ")
                ),
            )
        })?;
        Ok(Delivery {
            method: self.method.clone(),
            params: method.accept(&self.params, requested)?,
        })
    }

    /// Runs the method's [`DeliveryMethod::prepare`].
    pub async fn prepare(self, prepare: &Prepare<'_>) -> Result<Delivery, RequestError> {
        let Some(method) = self.registered() else {
            return Ok(self);
        };
        Ok(Delivery {
            params: method.prepare(self.params, prepare).await?,
            method: self.method,
        })
    }

    /// The registered method this delivery names.
    pub fn registered(&self) -> Option<&'static dyn RegisteredMethod> {
        method(&self.method)
    }

    /// The customer's bucket and path the export goes to, if the method writes there.
    pub fn target(&self) -> Option<(BucketTarget, String)> {
        self.registered()?.target(&self.params)
    }

    /// The delivery as shown and fingerprinted: sealed fields left out.
    pub fn shown(&self) -> Delivery {
        Delivery {
            method: self.method.clone(),
            params: self
                .params
                .iter()
                .filter(|(k, _)| !k.starts_with("sealed"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The request's `delivery` in the OpenAPI document: one of the registered methods,
/// each with the fields it declares.
impl utoipa::PartialSchema for Delivery {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        // The default is told in words, not as `default`: openapi-python-client refuses
        // an object default (and so drops the create operation), and openapi-typescript
        // makes a property with a default required.
        let mut one_of = OneOfBuilder::new().description(Some(
            "How the result reaches the customer. Default: `{\"method\": \"FILE_STORAGE\"}`.",
        ));
        for method in METHODS {
            let fields = method.fields();
            let mut object = ObjectBuilder::new()
                .schema_type(Type::Object)
                .title(Some(method.name()))
                .description(Some(method.summary()))
                .property(
                    "method",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([method.name()])),
                )
                .required("method")
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ));
            if let Some(properties) = fields["properties"].as_object() {
                for (name, schema) in properties {
                    // Each field's schema is its parameters type's, read back from
                    // `fields()` (a JSON object, so in name order, the order the document
                    // has always had); one that did not read back is caught by the
                    // document's test.
                    if let Ok(schema) = serde_json::from_value::<
                        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                    >(schema.clone())
                    {
                        object = object.property(name, schema);
                    }
                }
            }
            for name in fields["required"].as_array().into_iter().flatten() {
                if let Some(name) = name.as_str() {
                    object = object.required(name);
                }
            }
            one_of = one_of.item(object);
        }
        one_of.into()
    }
}

impl utoipa::ToSchema for Delivery {}
