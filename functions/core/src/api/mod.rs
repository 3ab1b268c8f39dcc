//! export-api: the HTTP API as an axum `Router`. Lambda serves it through
//! `lambda_http`; the CLI serves the same router on localhost.
//!
//! Every route authenticates through the [`Authenticator`] it is given (API Gateway's
//! JWT claims on AWS, a locally signed JWT on a laptop) and authorizes against the
//! project's members: only managers create, read and download exports.

use crate::delivery::{DeliveryPolicy, Prepare};
use crate::error::{chain, RequestError};
use crate::job::{is_export_id, Job, JobError, JobState, JobStore, ResultFile};
use crate::links::{LinkError, LinkQuery, LinkSigner};
use crate::messages::ExportMessage;
use crate::ports::{
    Buckets, Condition, Metrics, NoBuckets, ObjectStore, Presigner, Queue, RequestServed,
    StoreError,
};
use crate::project::{is_project_id, load_project, ProjectError};
use crate::request::ExportRequest;
use crate::seal::Sealer;
use crate::tenancy::ExternalIds;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use bytes::Bytes;
use labelport_engine::progress::{Progress, SkippedLine};
use labelport_model::{ProjectState, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

mod openapi;
mod problem;

pub use openapi::DOCUMENT_PATH;

pub use problem::{json_pointer, ApiError, At, Problem, PROBLEM_JSON};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's e-mail, as the identity provider asserts it; for a service,
    /// `service:{client id}` (what its exports record as their requester).
    pub email: String,
    /// Whether the identity provider verified that the caller owns that address.
    /// Membership keys on the address, so an unverified one is refused (403).
    pub email_verified: bool,
    /// The OAuth client id of a service calling with its own token; `None` for a person.
    pub service: Option<String>,
}

impl Caller {
    /// A person, by e-mail.
    pub fn person(email: impl Into<String>, email_verified: bool) -> Self {
        Caller {
            email: email.into(),
            email_verified,
            service: None,
        }
    }

    /// A service, by the client id its client-credentials token carries.
    pub fn service(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Caller {
            email: format!("service:{client_id}"),
            email_verified: true,
            service: Some(client_id),
        }
    }
}

/// Why a caller could not be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Turns a request's credentials into a caller.
pub trait Authenticator: Send + Sync + 'static {
    /// Identifies the caller of a request.
    fn authenticate(&self, request: &Parts) -> Result<Caller, AuthError>;
}

/// How the API runs.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The API's public base URL, for `Location` headers and links.
    pub public_url: String,
    /// How long a download URL lives (it is made fresh at every click).
    pub download_ttl: Duration,
    /// The folder the worker writes exports under: a file is only presigned if its key
    /// lies under `{exports_prefix}/{project}/{id}/`.
    pub exports_prefix: String,
    /// At most this many unfinished (queued or running) exports per project; a request
    /// past it is a 429. 0: no limit.
    pub max_active_per_project: u32,
    /// At most this many unfinished exports per tenant, across its projects; a request
    /// past it is a 429. 0: no limit.
    pub max_active_per_tenant: u32,
    /// What deliveries may do (the e-mail allow-list).
    pub delivery: DeliveryPolicy,
    /// How long an export's files are kept (the bucket's lifecycle rule deletes them):
    /// after it the status says EXPIRED and downloads are 410. `None`: kept.
    pub retention: Option<Duration>,
    /// The unique ids (`AROA...` of a role, `AIDA...` of a user) of the principals that
    /// may drop request files; a file anyone else wrote is refused and deleted.
    pub request_writers: Vec<String>,
    /// The roles that write into customers' buckets (the worker's and the API's), which
    /// a customer's trust policy or bucket policy names.
    pub delivery_principals: Vec<String>,
}

/// A 429 for too many running exports, naming `parameter`.
fn too_many(parameter: &str, message: String) -> ApiError {
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "TOO_MANY_EXPORTS",
        at: Some(At::Parameter(parameter.to_owned())),
        message,
        retry_after: Some(RETRY_AFTER_LIMIT),
    }
}

/// How long a caller refused for too many running exports waits before asking again.
pub const RETRY_AFTER_LIMIT: Duration = Duration::from_secs(60);

/// The API and what it needs.
pub struct Api {
    store: Arc<dyn ObjectStore>,
    jobs: JobStore,
    queue: Arc<dyn Queue>,
    presigner: Arc<dyn Presigner>,
    auth: Arc<dyn Authenticator>,
    links: Arc<LinkSigner>,
    sealer: Sealer,
    buckets: Arc<dyn Buckets>,
    external_ids: Option<Arc<ExternalIds>>,
    settings: ApiSettings,
    /// The OpenAPI document, as served.
    document: std::sync::OnceLock<String>,
}

/// The authenticated caller of a request.
pub struct Authenticated(pub Caller);

impl FromRequestParts<Arc<Api>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let caller = api
            .auth
            .authenticate(parts)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", e.0))?;
        if !caller.email_verified {
            // Anyone can sign up with someone else's address at many identity providers;
            // only a verified one may stand for a project member.
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "EMAIL_NOT_VERIFIED",
                "the token's e-mail address is not verified; verify it with your identity provider and sign in again",
            ));
        }
        Ok(Authenticated(caller))
    }
}

/// The answer to a create: the export, and whether this request made it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The export id.
    pub id: String,
    /// Its state now.
    pub state: JobState,
    /// The project.
    pub project: String,
    /// Where to poll.
    pub status_url: String,
    /// Where to download once it succeeded (none when delivered to the customer's bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// False when an idempotency key returned an earlier export.
    #[serde(skip)]
    pub created: bool,
}

/// An export: its state, progress, files and links.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status<'a> {
    /// The export id.
    id: &'a str,
    /// The project.
    project: &'a str,
    /// `EXPIRED` once the files are past the deployment's retention.
    state: JobState,
    /// The output format.
    format: &'a str,
    /// Who asked for it.
    requested_by: &'a str,
    /// The request as accepted: defaults filled in, secrets left out.
    #[schema(value_type = Object)]
    request: ExportRequest,
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    attempts: u32,
    progress: &'a Progress,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<StatusResult<'a>>,
    /// Each attempt to reach the customer (webhooks), oldest first.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    delivery_attempts: &'a [crate::job::DeliveryAttempt],
    /// Why the delivery failed for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_error: Option<&'a str>,
    /// A signed link to the first file, once it succeeded (none when delivered to the
    /// customer's bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
    /// The export that replaced this one (the project replaces previous exports).
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<&'a str>,
    /// When a manager asked to cancel it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_requested_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it failed, with file and line where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a crate::error::Failure>,
    /// Whether the customer was told.
    notification: crate::job::NotificationState,
}

/// What the export produced, each file with its signed link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatusResult<'a> {
    /// The files, in order (parts in part order), the errors report last: at most
    /// 100 from `filesFrom`.
    files: Vec<StatusFile<'a>>,
    /// How many files the export has.
    files_total: usize,
    /// Pass as `filesFrom` for the next files; absent after the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_files_from: Option<usize>,
    /// The manifest's key.
    manifest_key: &'a str,
    /// The manifest: format, filters, counts (its file list is `files`).
    #[schema(value_type = Object)]
    manifest: &'a serde_json::Value,
    /// The first malformed lines skipped (`invalidLines: skip`), at most 100.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    skipped_lines: &'a [SkippedLine],
}

/// One file of an export.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct StatusFile<'a> {
    #[serde(flatten)]
    file: &'a ResultFile,
    /// A signed link, for files in the platform bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
    /// `s3://bucket/key`, for files delivered into the customer's bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdempotencyRecord {
    export_id: String,
    request_sha256: String,
}

/// The routes, each with its part of the OpenAPI document: a route cannot be added
/// without being documented.
fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<Api>> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(create_export, list_exports))
        .routes(routes!(latest_export))
        .routes(routes!(latest_download))
        .routes(routes!(delivery_identity))
        .routes(routes!(export_status))
        .routes(routes!(download))
        .routes(routes!(cancel_export))
        .routes(routes!(openapi::document))
}

/// The API's OpenAPI document, for a deployment at `public_url`.
pub fn openapi_document(public_url: &str) -> utoipa::openapi::OpenApi {
    openapi::finish(routes().into_openapi(), public_url)
}

/// Builds the router.
pub fn router(api: Arc<Api>) -> Router {
    let (router, doc) = routes().split_for_parts();
    let doc = openapi::finish(doc, &api.settings.public_url);
    let _ = api.document.set(doc.to_json().unwrap_or_default());
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route") })
        .with_state(api)
}

/// `router`, reporting each request to `metrics`: the method and the matched route's
/// template (`GET /v1/exports/{id}`, never the ids themselves, `UNMATCHED` for no route),
/// the response's status and the time taken.
pub fn metered(router: Router, metrics: Arc<dyn Metrics>) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let metrics = metrics.clone();
            async move {
                let started = std::time::Instant::now();
                let route = match request.extensions().get::<axum::extract::MatchedPath>() {
                    Some(path) => format!("{} {}", request.method(), path.as_str()),
                    None => "UNMATCHED".to_owned(),
                };
                let response = next.run(request).await;
                metrics.request_served(&RequestServed {
                    route: &route,
                    status: response.status().as_u16(),
                    duration: started.elapsed(),
                });
                response
            }
        },
    ))
}

#[utoipa::path(
    post,
    path = "/v1/projects/{project}/exports",
    operation_id = "createExport",
    tag = "exports",
    summary = "Ask for an export",
    description = "Validates the request against the project, checks the delivery (a customer bucket is probed, a webhook host resolved), and queues the export. With an `Idempotency-Key`, the same request again returns the first export (`200`).",
    params(
        ProjectPath,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; a repeat returns the first export."),
    ),
    request_body(content = ExportRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued.", body = Accepted,
            headers(("Location" = String, description = "The export's status path.")),
            links(
                ("getExport" = (operation_id = "getExport", parameters(("id" = "$response.body#/id")))),
                ("cancelExport" = (operation_id = "cancelExport", parameters(("id" = "$response.body#/id"))))
            )
        ),
        (status = 200, description = "An earlier request with the same `Idempotency-Key` made this export.", body = Accepted,
            headers(("Location" = String, description = "The export's status path."))),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's e-mail is not verified, or the caller is not a manager of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project has not started or is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The `Idempotency-Key` was used for a different request.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The project has as many unfinished exports as the deployment allows.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_export(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "UNSUPPORTED_MEDIA_TYPE",
            at: Some(At::Parameter("Content-Type".to_owned())),
            message: "the request body is JSON: send it with Content-Type: application/json"
                .to_owned(),
            retry_after: None,
        });
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| (1..=255).contains(&k.len()))
                .ok_or_else(|| {
                    ApiError::parameter(
                        "Idempotency-Key",
                        "must be 1 to 255 visible ASCII characters",
                    )
                })?
                .to_owned(),
        ),
    };
    // The Lambda glue has put the invocation's correlation id here (the caller's, when
    // well-formed, else API Gateway's request id); `create` checks it again.
    let correlation_id = headers
        .get(crate::messages::CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok());
    let accepted = api
        .create(&caller, &project, &body, key.as_deref(), correlation_id)
        .await?;
    let status = if accepted.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let location = HeaderValue::from_str(&format!("/v1/exports/{}", accepted.id))
        .map_err(|e| ApiError::internal("building the Location header", &e))?;
    Ok((status, [(header::LOCATION, location)], Json(accepted)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/exports/{id}",
    operation_id = "getExport",
    tag = "exports",
    summary = "An export's state, progress and files",
    params(ExportPath, FilesQuery),
    responses(
        (status = 200, description = "The export, with signed links to its files once it succeeded, 100 files at a time.", body = Status),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's e-mail is not verified, or the caller is not a manager of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export, or the caller is not a member of its project.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn export_status(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    query: Result<Query<FilesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::parameter("query", e.body_text()))?;
    let job = api.authorized_job(&caller, &id).await?;
    api.status_page(&job, query.files_from.unwrap_or(0)).await
}

/// `?filesFrom=` of the status route.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct FilesQuery {
    /// The first file to list (the `nextFilesFrom` of the answer before; default 0).
    #[param(minimum = 0)]
    files_from: Option<usize>,
}

/// The most files a status lists at once: an export may have up to
/// [`labelport_encoders::MAX_PARTS`] parts, and every listed file carries a signed link.
const FILES_PAGE: usize = 100;

/// `POST /v1/exports/{id}/cancel`: a queued export ends CANCELLED at once (`200`); a
/// running one is asked to stop (`202`), which its worker notices within seconds: it
/// aborts its uploads and ends the job CANCELLED, leaving nothing behind.
#[utoipa::path(
    post,
    path = "/v1/exports/{id}/cancel",
    operation_id = "cancelExport",
    tag = "exports",
    summary = "Cancel an export",
    description = "A queued export ends `CANCELLED` at once (`200`); a running one is asked to stop (`202`): its worker notices within seconds, aborts its uploads and ends it `CANCELLED`, leaving nothing behind.",
    params(ExportPath),
    responses(
        (status = 200, description = "Cancelled (or it already was).", body = Status),
        (status = 202, description = "Running: asked to stop. It stops at its next check, within seconds, unless it finishes first: then the status says SUCCEEDED (or FAILED) with `cancelRequestedAt`.", body = Status),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's e-mail is not verified, or the caller is not a manager of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export, or the caller is not a member of its project.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The export has ended; there is nothing to cancel.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_export(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.authorized_job(&caller, &id).await?;
    let ended = |state: JobState| {
        ApiError::new(
            StatusCode::CONFLICT,
            "EXPORT_ENDED",
            format!(
                "export {id} has ended ({}); there is nothing to cancel",
                state.as_str()
            ),
        )
    };
    let now = chrono::Utc::now();
    let by = caller.email.clone();
    // The state the cancel met, read by the same swap that records it: an export that
    // ended a moment before is told as ended, not as cancelled.
    let mut met = None;
    api.jobs
        .update(&id, |j| {
            met = Some(j.state);
            j.cancel(&by, now)
        })
        .await
        .map_err(|e| ApiError::internal("cancelling the export", &e))?;
    if let Some(state) = met.filter(|s| s.is_terminal() && *s != JobState::Cancelled) {
        return Err(ended(state));
    }
    let job = api
        .jobs
        .get(&id)
        .await
        .map_err(|e| ApiError::internal("reading the export", &e))?
        .job;
    tracing::info!(export_id = %id, state = job.state.as_str(), "cancel requested");
    let mut response = api.status_response(&job).await?;
    if !job.state.is_terminal() {
        *response.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(response)
}

/// `GET /v1/projects/{project}/exports/latest`: the latest export that succeeded, as
/// its status, for every manager of the project.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/exports/latest",
    operation_id = "getLatestExport",
    tag = "exports",
    summary = "The project's latest export that succeeded",
    params(ProjectPath),
    responses(
        (status = 200, description = "That export.", body = Status),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's e-mail is not verified, or the caller is not a manager of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, the caller is not a member, or no export has succeeded yet (`NO_EXPORT_YET`).", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The latest export has expired and its record is gone (`EXPORT_EXPIRED`).", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn latest_export(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let job = api.latest_job(&caller, &project).await?;
    api.status_response(&job).await
}

/// What a customer needs to let the project deliver into their bucket.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryIdentity {
    /// The tenant the project belongs to.
    tenant: String,
    /// The external id the customer's role must require (`sts:ExternalId` in its trust
    /// policy); absent where customer roles are not set up.
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    /// The roles that assume the customer's role, or that their bucket policy grants:
    /// the trust policy's principals.
    principals: Vec<String>,
    /// The buckets and folders the project may deliver into.
    destinations: Vec<ShownDestination>,
}

/// A bucket the project may deliver into.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShownDestination {
    /// The bucket.
    bucket: String,
    /// The folder exports land in or under (empty: anywhere).
    path: String,
    /// The customer's role that writes there; absent: the bucket's policy grants the
    /// principals.
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
}

/// `GET /v1/projects/{project}/delivery-identity`: the external id and principals a
/// customer puts in their role's trust policy or bucket policy.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/delivery-identity",
    operation_id = "getDeliveryIdentity",
    tag = "exports",
    summary = "What a customer's bucket or role must trust",
    description = "The tenant's external id (issued by the platform, one per tenant; a request never carries it), the roles that write into customers' buckets, and the buckets this project may deliver into.",
    params(ProjectPath),
    responses(
        (status = 200, description = "The identity.", body = DeliveryIdentity),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's e-mail is not verified, or the caller is not a manager of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn delivery_identity(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let manifest = api.authorize(&caller, &project).await?;
    let external_id = match &api.external_ids {
        Some(ids) => Some(
            ids.of(manifest.tenant())
                .await
                .map_err(|e| ApiError::internal("reading the external id key", e.as_ref()))?,
        ),
        None => None,
    };
    let identity = DeliveryIdentity {
        tenant: manifest.tenant().to_owned(),
        external_id,
        principals: api.settings.delivery_principals.clone(),
        destinations: manifest
            .exports
            .destinations
            .iter()
            .map(|d| ShownDestination {
                bucket: d.bucket.clone(),
                path: d.path.clone(),
                role_arn: d.role_arn.clone(),
            })
            .collect(),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(identity)).into_response())
}

/// `GET /v1/projects/{project}/exports/latest/download`: its first file, straight away
/// (the caller is a signed-in manager).
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/exports/latest/download",
    operation_id = "downloadLatestExport",
    tag = "exports",
    summary = "Download the project's latest export",
    params(ProjectPath),
    responses(
        (status = 302, description = "To a presigned URL of its first file, made now.",
            headers(("Location" = String, description = "The presigned URL."))),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's e-mail is not verified, or the caller is not a manager of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, no export yet, or it was delivered to the customer's bucket.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Its files have expired or were replaced.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn latest_download(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let job = api.latest_job(&caller, &project).await?;
    api.redirect_to_file(&job, None).await
}

/// The `{project}` of a route, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; the handlers take `Path<String>`
struct ProjectPath {
    /// The project id.
    #[param(pattern = r"^[a-z0-9_-][a-z0-9._-]{0,63}$")]
    project: String,
}

/// The `{id}` of a route, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; the handlers take `Path<String>`
struct ExportPath {
    /// The export id (a UUID, lower case).
    #[param(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    id: String,
}

/// `?state=&limit=&cursor=` of the list route.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only exports in this state.
    state: Option<JobState>,
    /// Exports per page (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `nextCursor` of the page before.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// One export in a list.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Listed<'a> {
    /// The export id.
    id: &'a str,
    /// Its state (`EXPIRED` past the retention).
    state: JobState,
    /// The output format.
    format: &'a str,
    /// Who asked for it.
    requested_by: &'a str,
    /// When it was asked for.
    created_at: chrono::DateTime<chrono::Utc>,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Tasks written.
    tasks: u64,
    /// Its status URL.
    status_url: String,
}

/// A page of a project's exports, newest first.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ExportList<'a> {
    /// The exports.
    exports: Vec<Listed<'a>>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The most exports a page holds, and the default.
const MAX_PAGE: usize = 100;
const DEFAULT_PAGE: usize = 20;
/// Index entries read per request at most when a state filter skips most of them; the
/// cursor then continues from there.
const MAX_SCANNED: usize = 1000;

/// `GET /v1/projects/{project}/exports`: newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/exports",
    operation_id = "listExports",
    tag = "exports",
    summary = "A project's exports, newest first",
    params(ProjectPath, ListQuery),
    responses(
        (status = 200, description = "A page of exports.", body = ExportList),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller's e-mail is not verified, or the caller is not a manager of the project.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project, or the caller is not a member of it.", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_exports(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::parameter("query", e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::parameter(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    api.authorize(&caller, &project).await?;
    let prefix = format!("{}{project}/", crate::job::INDEX_PREFIX);
    let mut after = match &query.cursor {
        None => None,
        Some(cursor) => {
            let key = decode_cursor(cursor)
                .filter(|k| k.starts_with(&prefix))
                .ok_or_else(|| ApiError::parameter("cursor", "not a cursor this route gave"))?;
            Some(key)
        }
    };
    let mut jobs = Vec::new();
    let mut scanned = 0;
    let mut exhausted = false;
    while jobs.len() < limit && scanned < MAX_SCANNED {
        let page = api
            .jobs
            .index_page(&project, after.as_deref(), limit.max(25))
            .await
            .map_err(|e| ApiError::internal("listing the exports", &e))?;
        if page.is_empty() {
            exhausted = true;
            break;
        }
        // The page's records are read at once: a hundred small GETs, not one after another.
        let read =
            futures::future::join_all(page.iter().map(|entry| api.jobs.get(&entry.id))).await;
        for (entry, job) in page.iter().zip(read) {
            scanned += 1;
            after = Some(entry.key.clone());
            let job = match job {
                Ok(v) => v.job,
                Err(JobError::NotFound(_)) => continue, // its request died before writing it
                Err(e) => return Err(ApiError::internal("reading an export", &e)),
            };
            let shown = if job.expired(api.settings.retention, chrono::Utc::now()) {
                JobState::Expired
            } else {
                job.state
            };
            if query.state.is_none_or(|state| state == shown) {
                jobs.push((shown, job));
                if jobs.len() == limit {
                    break;
                }
            }
        }
    }
    let base = api.settings.public_url.trim_end_matches('/');
    let exports: Vec<Listed<'_>> = jobs
        .iter()
        .map(|(state, job)| Listed {
            id: &job.id,
            state: *state,
            format: job.request.format.as_str(),
            requested_by: &job.requested_by,
            created_at: job.created_at,
            finished_at: job.finished_at,
            tasks: job.progress.tasks_exported,
            status_url: format!("{base}/v1/exports/{}", job.id),
        })
        .collect();
    let next_cursor = (!exhausted)
        .then(|| after.as_deref().map(encode_cursor))
        .flatten();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(ExportList {
            exports,
            next_cursor,
        }),
    )
        .into_response())
}

fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The download route's query: a signed link's `exp` and `sig`, and `file=NAME` for a
/// file other than the first.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DownloadQuery {
    /// The file's name, for a file other than the first.
    file: Option<String>,
    /// When the link expires (unix seconds), as signed.
    exp: Option<String>,
    /// The link's signature.
    sig: Option<String>,
}

/// A refused link: a page for a browser (the person clicked it in an e-mail), the JSON
/// error for anything else.
fn link_refused(error: ApiError, headers: &HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !wants_html {
        return error.into_response();
    }
    let title = match error.status {
        StatusCode::GONE => "This download link has expired",
        _ => "This download link does not work",
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title}</title>\
         <body style=\"font-family:sans-serif;max-width:36em;margin:4em auto\"><h1>{title}</h1><p>{}</p></body></html>",
        error.message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    );
    (
        error.status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// The download route: a signed link is the permission (no bearer token), checked, then
/// answered with a redirect to a presigned URL made now.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}/download",
    operation_id = "downloadExport",
    tag = "exports",
    summary = "Follow a signed download link",
    description = "No bearer token: the link's signature is the permission. A browser (`Accept: text/html`) gets a page that says what to do when the link is refused.",
    security(()),
    params(ExportPath, DownloadQuery),
    responses(
        (status = 302, description = "To a presigned URL of the file, made now.",
            headers(("Location" = String, description = "The presigned URL."))),
        (status = 400, description = "A path, query or body value is refused: `pointer` or `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No `sig` and `exp`: the route takes signed links only.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The link was changed or is incomplete.", content(
            (Problem = "application/problem+json"), (String = "text/html"))),
        (status = 404, description = "No such export or file, the export has not succeeded, or it was delivered to the customer's bucket.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The link, or the export's files, expired, or the export was replaced.", content(
            (Problem = "application/problem+json"), (String = "text/html"))),
        (status = 500, description = "Storage or the queue did not answer; try again.", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn download(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<DownloadQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let Query(query) =
        query.map_err(|e| ApiError::parameter("query", e.body_text()).into_response())?;
    if !is_export_id(&id) {
        return Err(ApiError::parameter("id", "not an export id").into_response());
    }
    let (Some(exp), Some(sig)) = (query.exp.as_deref(), query.sig.as_deref()) else {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "SIGNED_LINK_REQUIRED",
            at: Some(At::Parameter("sig".to_owned())),
            message: format!("a download needs a signed link: take `downloadUrl` (or a file's `downloadUrl`) from GET /v1/exports/{id}, or the link in the e-mail"),
            retry_after: None,
        }
        .into_response());
    };
    let link = LinkQuery {
        file: query.file.as_deref(),
        exp,
        sig,
    };
    match api.links.verify(&id, &link, chrono::Utc::now()).await {
        Ok(()) => {}
        Err(LinkError::Invalid) => {
            return Err(link_refused(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "LINK_INVALID",
                    "This link is incomplete or was changed. Copy the whole link from the e-mail, or take a fresh one from the export's status in your platform.",
                ),
                &headers,
            ))
        }
        Err(LinkError::Expired(at)) => {
            return Err(link_refused(
                ApiError::new(
                    StatusCode::GONE,
                    "LINK_EXPIRED",
                    format!(
                        "This link expired on {}. Take a fresh one from the export's status in your platform, or request the export again.",
                        at.format("%-d %B %Y at %H:%M UTC")
                    ),
                ),
                &headers,
            ))
        }
        Err(e @ LinkError::Keys(_)) => {
            return Err(ApiError::internal("checking the link", &e).into_response())
        }
    }
    let job = match api.jobs.get(&id).await {
        Ok(v) => v.job,
        Err(JobError::NotFound(_)) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "EXPORT_NOT_FOUND",
                format!("no export {id}"),
            )
            .into_response())
        }
        Err(e) => return Err(ApiError::internal("reading the export", &e).into_response()),
    };
    api.redirect_to_file(&job, query.file.as_deref())
        .await
        .map_err(IntoResponse::into_response)
}

impl Api {
    /// A 302 to a presigned URL of `file` (the first file when `None`) of a finished job.
    async fn redirect_to_file(&self, job: &Job, file: Option<&str>) -> Result<Response, ApiError> {
        let id = &job.id;
        if job.expired(self.settings.retention, chrono::Utc::now()) {
            return Err(ApiError::new(
                StatusCode::GONE,
                "EXPORT_EXPIRED",
                format!(
                    "export {id} has expired: its files are kept {} days; request the export again",
                    self.settings.retention.map_or(0, |r| r.as_secs() / 86_400)
                ),
            ));
        }
        if let Some(newer) = job
            .replaced_by
            .as_ref()
            .filter(|_| job.replaced_and_gone(chrono::Utc::now()))
        {
            return Err(ApiError::new(
                StatusCode::GONE,
                "EXPORT_REPLACED",
                format!("export {id} was replaced by export {newer}, and its files deleted; download that one"),
            ));
        }
        let files = match (&job.state, job.result.as_ref()) {
            (JobState::Succeeded, Some(result)) => &result.files,
            (state, _) => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "EXPORT_NOT_READY",
                    format!(
                        "export {id} is {}; the file is available once it is SUCCEEDED",
                        state.as_str()
                    ),
                ))
            }
        };
        // The default is the export's first file (its only one, or part 1).
        let wanted = file;
        let file = match wanted {
            None => files.first(),
            Some(name) => files.iter().find(|f| f.name == name),
        };
        let Some(file) = file else {
            let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                code: "FILE_NOT_FOUND",
                at: Some(At::Parameter("file".to_owned())),
                message: format!(
                    "export {id} has no file {:?}; its files are {}",
                    wanted.unwrap_or_default(),
                    names.join(", ")
                ),
                retry_after: None,
            });
        };
        if let Some(bucket) = &file.bucket {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "DELIVERED_TO_BUCKET",
                format!(
                    "export {id} was delivered to s3://{bucket}/{}; download it from there",
                    file.key
                ),
            ));
        }
        let own_folder = format!(
            "{}/{}/{}/",
            self.settings.exports_prefix.trim_end_matches('/'),
            job.project,
            job.id
        );
        // The key comes from a record in the bucket; presign it only where this export
        // writes, so a tampered record cannot hand out any other object.
        let inside = file.key.starts_with(&own_folder)
            && file.key[own_folder.len()..]
                .split('/')
                .all(|segment| !segment.is_empty() && segment != "..");
        if !inside {
            tracing::error!(export_id = %id, "a file key lies outside the export's folder; not presigned");
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "FILE_NOT_FOUND",
                format!("export {id} has no such file"),
            ));
        }
        let url = self
            .presigner
            .download_url(&file.key, &file.name, self.settings.download_ttl)
            .await
            .map_err(|e| ApiError::internal("signing the download URL", e.as_ref()))?;
        // The URL is a bearer credential: it goes to the caller only, never to a log.
        let location = HeaderValue::from_str(&url)
            .map_err(|e| ApiError::internal("building the redirect", &e))?;
        Ok((
            StatusCode::FOUND,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response())
    }

    /// Assembles the API. Download links are signed by `links`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        queue: Arc<dyn Queue>,
        presigner: Arc<dyn Presigner>,
        auth: Arc<dyn Authenticator>,
        links: Arc<LinkSigner>,
        settings: ApiSettings,
    ) -> Self {
        Api {
            jobs: JobStore::new(store.clone()),
            store,
            queue,
            presigner,
            auth,
            sealer: Sealer::new(links.keys()),
            buckets: Arc::new(NoBuckets),
            external_ids: None,
            links,
            settings,
            document: std::sync::OnceLock::new(),
        }
    }

    /// Checks access to customers' buckets through `buckets`
    /// (EXTERNAL_OBJECT_STORAGE).
    pub fn with_buckets(mut self, buckets: Arc<dyn Buckets>) -> Self {
        self.buckets = buckets;
        self
    }

    /// Assumes customers' roles with the external ids `ids` issues to their tenants;
    /// without it, a destination with a role is refused.
    pub fn with_external_ids(mut self, ids: Arc<ExternalIds>) -> Self {
        self.external_ids = Some(ids);
        self
    }

    /// The status body of `job`, with signed links to its first files.
    async fn status_response(&self, job: &Job) -> Result<Response, ApiError> {
        self.status_page(job, 0).await
    }

    /// The status body of `job`, with its files from the `files_from`th.
    async fn status_page(&self, job: &Job, files_from: usize) -> Result<Response, ApiError> {
        let now = chrono::Utc::now();
        let mut download_url = None;
        let mut result = None;
        let expired = job.expired(self.settings.retention, now);
        let live = job.state == JobState::Succeeded && !job.replaced_and_gone(now) && !expired;
        if let (true, Some(r)) = (live, job.result.as_ref()) {
            let page = r.files.iter().skip(files_from).take(FILES_PAGE);
            let mut files = Vec::with_capacity(FILES_PAGE.min(r.files.len()));
            for file in page {
                let (link, location) = match &file.bucket {
                    Some(bucket) => (None, Some(format!("s3://{bucket}/{}", file.key))),
                    None => (
                        Some(self.signed_link(&job.id, Some(&file.name), now).await?),
                        None,
                    ),
                };
                files.push(StatusFile {
                    file,
                    download_url: link,
                    location,
                });
            }
            if r.files.first().is_some_and(|f| f.bucket.is_none()) {
                download_url = Some(self.signed_link(&job.id, None, now).await?);
            }
            let next = files_from.saturating_add(FILES_PAGE);
            result = Some(StatusResult {
                files,
                files_total: r.files.len(),
                next_files_from: (next < r.files.len()).then_some(next),
                manifest_key: &r.manifest_key,
                manifest: &r.manifest,
                skipped_lines: &r.skipped_lines,
            });
        }
        let status = Status {
            id: &job.id,
            project: &job.project,
            state: if expired {
                JobState::Expired
            } else {
                job.state
            },
            format: job.request.format.as_str(),
            requested_by: &job.requested_by,
            request: job.request.shown(),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            attempts: job.attempts,
            progress: &job.progress,
            result,
            delivery_attempts: &job.notification.attempts,
            delivery_error: job.notification.error.as_deref(),
            download_url,
            replaced_by: job.replaced_by.as_deref(),
            cancel_requested_at: job.cancel_requested_at,
            error: job.error.as_ref(),
            notification: job.notification.state,
        };
        Ok(([(header::CACHE_CONTROL, "no-store")], Json(status)).into_response())
    }

    /// The project's latest export that succeeded.
    async fn latest_job(&self, caller: &Caller, project: &str) -> Result<Job, ApiError> {
        self.authorize(caller, project).await?;
        let latest = self
            .jobs
            .latest(project)
            .await
            .map_err(|e| ApiError::internal("reading the latest export", &e))?;
        let Some(latest) = latest else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NO_EXPORT_YET",
                format!("project {project} has no export that succeeded yet"),
            ));
        };
        match self.jobs.get(&latest.export_id).await {
            Ok(v) => Ok(v.job),
            // The pointer outlives the record it points to (records expire).
            Err(JobError::NotFound(_)) => Err(ApiError::new(
                StatusCode::GONE,
                "EXPORT_EXPIRED",
                format!(
                    "the latest export of project {project}, {}, has expired and its record is gone; request the export again",
                    latest.export_id
                ),
            )),
            Err(e) => Err(ApiError::internal("reading the latest export", &e)),
        }
    }

    async fn signed_link(
        &self,
        id: &str,
        file: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, ApiError> {
        self.links
            .download_link(id, file, now)
            .await
            .map_err(|e| ApiError::internal("signing the download link", &e))
    }

    /// Checks that `caller` may export `project` now, and returns the project.
    async fn authorize(
        &self,
        caller: &Caller,
        project: &str,
    ) -> Result<labelport_model::Project, ApiError> {
        if !is_project_id(project) {
            return Err(ApiError::parameter(
                "project",
                "must be 1 to 64 lower-case letters, digits, '-', '_' or '.'",
            ));
        }
        let manifest = load_project(self.store.as_ref(), project)
            .await
            .map_err(|e| match e {
                ProjectError::NotFound(_) => {
                    ApiError::new(StatusCode::NOT_FOUND, "PROJECT_NOT_FOUND", e.to_string())
                }
                ProjectError::Invalid { .. } => ApiError::internal("reading the project", &e),
                ProjectError::Store(ref s) => ApiError::internal("reading the project", s),
            })?;
        let role = match &caller.service {
            Some(client_id) => manifest.role_of_service(client_id),
            None => manifest.role_of(&caller.email),
        };
        match role {
            Some(Role::Manager) => Ok(manifest),
            // A project is not disclosed to anyone outside it: the same answer as for a
            // project that does not exist.
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "PROJECT_NOT_FOUND",
                ProjectError::NotFound(project.to_owned()).to_string(),
            )),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("only managers of project {project} can export it"),
            )),
        }
    }

    async fn authorized_job(&self, caller: &Caller, id: &str) -> Result<Job, ApiError> {
        if !is_export_id(id) {
            return Err(ApiError::parameter("id", "not an export id"));
        }
        let not_found = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "EXPORT_NOT_FOUND",
                format!("no export {id}"),
            )
        };
        let job = match self.jobs.get(id).await {
            Ok(v) => v.job,
            Err(JobError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(ApiError::internal("reading the export", &e)),
        };
        // Someone outside the project learns nothing of its exports, not even that
        // they exist.
        match self.authorize(caller, &job.project).await {
            Err(e) if e.code == "PROJECT_NOT_FOUND" => Err(not_found()),
            Err(e) => Err(e),
            Ok(_) => Ok(job),
        }
    }

    /// Validates, authorizes and queues an export. With an idempotency key, a repeated
    /// request returns the first export (and a different request under the same key is
    /// refused). Shared by the HTTP route and the S3 drop.
    pub async fn create(
        &self,
        caller: &Caller,
        project: &str,
        body: &[u8],
        idempotency_key: Option<&str>,
        correlation_id: Option<&str>,
    ) -> Result<Accepted, ApiError> {
        let manifest = self.authorize(caller, project).await?;
        match manifest.state {
            ProjectState::Created => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "PROJECT_NOT_STARTED",
                    format!("project {project} has not started; there is nothing to export yet"),
                ))
            }
            ProjectState::Archived => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "PROJECT_ARCHIVED",
                    format!("project {project} is archived; archived projects cannot be exported"),
                ))
            }
            ProjectState::Running | ProjectState::Paused | ProjectState::Completed => {}
        }
        let request = ExportRequest::parse(body)?;
        // An import is validated against the project its settings describe.
        let shown_project = match &request.source {
            Some(source) => {
                source.check_keys(project).map_err(RequestError::from)?;
                source
                    .open(self.store.as_ref(), &manifest)
                    .await
                    .map_err(RequestError::from)?
                    .project
            }
            None => manifest.clone(),
        };
        let mut request =
            request.validate(&shown_project, &caller.email, &self.settings.delivery)?;
        request.delivery = request
            .delivery
            .prepare(&Prepare {
                project,
                tenant: manifest.tenant(),
                policy: &self.settings.delivery,
                sealer: &self.sealer,
                buckets: self.buckets.as_ref(),
                external_ids: self.external_ids.as_deref(),
            })
            .await?;
        // Sealed secrets are left out: sealing is random, and a retry is the same request.
        let canonical = serde_json::to_vec(&request.shown())
            .map_err(|e| ApiError::internal("encoding the request", &e))?;
        let request_sha256 = hex::encode(Sha256::digest(&canonical));

        let mut id = uuid::Uuid::now_v7().to_string();
        if let Some(key) = idempotency_key {
            let record_key = format!(
                "idempotency/{project}/{}.json",
                hex::encode(Sha256::digest(format!(
                    "{}\n{key}",
                    caller.email.to_lowercase()
                )))
            );
            let record = IdempotencyRecord {
                export_id: id.clone(),
                request_sha256: request_sha256.clone(),
            };
            let body = serde_json::to_vec(&record)
                .map_err(|e| ApiError::internal("encoding the key", &e))?;
            match self
                .store
                .put(
                    &record_key,
                    Bytes::from(body),
                    "application/json",
                    Condition::IfAbsent,
                )
                .await
            {
                Ok(_) => {}
                Err(StoreError::PreconditionFailed(_)) => {
                    let existing = self
                        .store
                        .get(&record_key)
                        .await
                        .map_err(|e| ApiError::internal("reading the idempotency key", &e))?;
                    let existing: IdempotencyRecord = serde_json::from_slice(&existing.body)
                        .map_err(|e| ApiError::internal("reading the idempotency key", &e))?;
                    if existing.request_sha256 != request_sha256 {
                        return Err(ApiError {
                            status: StatusCode::UNPROCESSABLE_ENTITY,
                            code: "IDEMPOTENCY_KEY_REUSED",
                            at: Some(At::Parameter("Idempotency-Key".to_owned())),
                            message: "this key was used for a different request".into(),
                            retry_after: None,
                        });
                    }
                    id = existing.export_id;
                    match self.jobs.get(&id).await {
                        Ok(v) => {
                            if v.job.state == JobState::Queued {
                                // The first request may have died before enqueueing: enqueue
                                // again; the worker runs a job once however often it is asked.
                                self.enqueue(&id, v.job.correlation_id.as_deref()).await?;
                            }
                            return self.accepted(&v.job, false).await;
                        }
                        Err(JobError::NotFound(_)) => {} // died before the job was written: finish its work
                        Err(e) => return Err(ApiError::internal("reading the export", &e)),
                    }
                }
                Err(e) => return Err(ApiError::internal("recording the idempotency key", &e)),
            }
        }
        self.within_limits(project, manifest.tenant()).await?;
        let mut job = Job::new(
            id.clone(),
            project.to_owned(),
            caller.email.clone(),
            request,
        );
        job.tenant = Some(manifest.tenant().to_owned());
        let correlation_id = crate::messages::correlation_id([correlation_id]);
        job.correlation_id = Some(correlation_id.clone());
        match self.jobs.create(&job).await {
            Ok(_) | Err(JobError::Conflict(_)) => {}
            Err(e) => return Err(ApiError::internal("writing the export", &e)),
        }
        if let Err(e) = self.enqueue(&id, job.correlation_id.as_deref()).await {
            // Without an idempotency key nobody can resume this job (a retry is a new
            // export), so it must not sit QUEUED forever: end it, saying why.
            if idempotency_key.is_none() {
                let ended = self
                    .jobs
                    .update(&id, |j| {
                        j.fail(
                            (JobState::Queued, 0),
                            &crate::error::Failure::new(
                                crate::error::FailureCode::NotQueued,
                                "the export could not be queued; request it again (with an Idempotency-Key, a retry resumes it instead)",
                            ),
                            chrono::Utc::now(),
                        )
                    })
                    .await;
                if let Err(e) = ended {
                    tracing::error!(export_id = %id, error = %chain(&e), "an export that could not be queued stays QUEUED");
                }
            }
            return Err(e);
        }
        tracing::info!(export_id = %id, project, format = job.request.format.as_str(), correlation_id, "export queued");
        self.accepted(&job, true).await
    }

    /// Refuses a new export while the project has `max_active_per_project` unfinished,
    /// or its tenant `max_active_per_tenant` across its projects. Each marker's record is
    /// read, so a marker left behind by an ended job never counts (and is cleared);
    /// counting stops at the limit. Two requests at the same moment may both pass: the
    /// limits protect capacity, they are not quotas.
    async fn within_limits(&self, project: &str, tenant: &str) -> Result<(), ApiError> {
        let project_limit = self.settings.max_active_per_project;
        if project_limit > 0 {
            let active = self
                .jobs
                .active(Some(project))
                .await
                .map_err(|e| ApiError::internal("counting the project's exports", &e))?;
            if self.count_live(active, project_limit, None).await? >= project_limit {
                return Err(too_many(
                    "project",
                    format!("project {project} already has {project_limit} exports queued or running, the most it may have; try again when one has finished"),
                ));
            }
        }
        let tenant_limit = self.settings.max_active_per_tenant;
        if tenant_limit > 0 {
            let active = self
                .jobs
                .active_for_tenant(tenant)
                .await
                .map_err(|e| ApiError::internal("counting the tenant's exports", &e))?;
            if self.count_live(active, tenant_limit, Some(tenant)).await? >= tenant_limit {
                return Err(too_many(
                    "project",
                    format!("the projects of your organisation already have {tenant_limit} exports queued or running, the most they may have together; try again when one has finished"),
                ));
            }
        }
        Ok(())
    }

    /// How many of the marked jobs are unfinished, counting up to `limit`; the markers of
    /// ended jobs are cleared on the way (`tenant`'s markers, or the projects').
    async fn count_live(
        &self,
        marked: Vec<crate::job::ActiveJob>,
        limit: u32,
        tenant: Option<&str>,
    ) -> Result<u32, ApiError> {
        let mut unfinished = 0;
        for entry in marked {
            let live = match self.jobs.get(&entry.id).await {
                Ok(v) => !v.job.state.is_terminal(),
                // A request writing its record right now, or one that died doing so.
                Err(JobError::NotFound(_)) => entry.may_still_be_written(chrono::Utc::now()),
                Err(e) => return Err(ApiError::internal("counting the running exports", &e)),
            };
            if !live {
                let cleared = match tenant {
                    Some(tenant) => self.jobs.clear_tenant_marker(tenant, &entry).await,
                    None => self.jobs.clear_marker(&entry).await,
                };
                if let Err(e) = cleared {
                    tracing::warn!(export_id = %entry.id, error = %chain(&e), "could not clear an ended export's marker");
                }
                continue;
            }
            unfinished += 1;
            if unfinished >= limit {
                break;
            }
        }
        Ok(unfinished)
    }

    async fn enqueue(&self, id: &str, correlation_id: Option<&str>) -> Result<(), ApiError> {
        let message = serde_json::to_string(&ExportMessage {
            export_id: id.to_owned(),
            correlation_id: correlation_id.map(str::to_owned),
        })
        .map_err(|e| ApiError::internal("encoding the message", &e))?;
        self.queue
            .send(message)
            .await
            .map_err(|e| ApiError::internal("queueing the export", e.as_ref()))
    }

    async fn accepted(&self, job: &Job, created: bool) -> Result<Accepted, ApiError> {
        let base = self.settings.public_url.trim_end_matches('/');
        let download_url = match job.request.delivery.target() {
            Some(_) => None,
            None => Some(self.signed_link(&job.id, None, chrono::Utc::now()).await?),
        };
        Ok(Accepted {
            id: job.id.clone(),
            state: job.state,
            project: job.project.clone(),
            status_url: format!("{base}/v1/exports/{}", job.id),
            download_url,
            created,
        })
    }

    /// Handles a request file dropped at `requests/{project}/{name}.json` in the
    /// platform bucket: the same export as a POST, by the identity in the object's
    /// `requested-by` metadata. The outcome is written to `responses/{project}/{name}.json`
    /// and the request file is deleted (it may hold a webhook secret in clear).
    ///
    /// `writer` is the principal that put the object, as S3's event names it
    /// (`userIdentity.principalId`, `AWS:AROA...:session`): only the deployment's request
    /// writers may drop requests, whatever IAM let through.
    ///
    /// `event_id` identifies the S3 event (its `sequencer`, or the object's version id):
    /// S3 reporting one put twice is one export, while dropping the same file again,
    /// the same bytes with the same ETag, is a new put and a new export.
    ///
    /// A refusal (a 4xx) is an outcome; a server error (the store or the queue did not
    /// answer) is an error, so that Lambda retries the event.
    pub async fn accept_dropped_request(
        &self,
        key: &str,
        event_id: &str,
        writer: &str,
    ) -> Result<DropOutcome, DropError> {
        let Some((project, name)) = parse_drop_key(key) else {
            return Ok(DropOutcome::Ignored(format!(
                "{key} is not requests/{{project}}/{{name}}.json"
            )));
        };
        let outcome = if self.is_request_writer(writer) {
            let object = match self.store.get(key).await {
                Ok(o) => o,
                // A delete that raced the event, or a duplicate event after cleanup.
                Err(StoreError::NotFound(_)) => {
                    return Ok(DropOutcome::Ignored(format!("{key} is gone")))
                }
                Err(e) => return Err(e.into()),
            };
            self.create_dropped(key, project, &object, event_id).await
        } else {
            tracing::warn!(
                key,
                writer,
                "a request file written by a principal that is not a request writer"
            );
            Err(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "NOT_A_REQUEST_WRITER",
                at: Some(At::Parameter("userIdentity.principalId".to_owned())),
                message: "this principal may not drop export requests; the deployment names its request writers (RequestWriterRoleIds)".into(),
                retry_after: None,
            })
        };
        let (body, result) = match outcome {
            Ok(accepted) => (
                serde_json::json!({ "export": accepted }),
                DropOutcome::Accepted(accepted.id),
            ),
            Err(e) if e.status.is_server_error() => return Err(DropError::Unavailable(e)),
            Err(e) => (
                serde_json::json!({ "error": e.problem() }),
                DropOutcome::Refused(e),
            ),
        };
        let response_key = format!("responses/{project}/{name}.json");
        let body = serde_json::to_vec_pretty(&body).unwrap_or_default();
        self.store
            .put(
                &response_key,
                Bytes::from(body),
                "application/json",
                Condition::None,
            )
            .await?;
        // Answered: the request file has done its work. A delete that fails is left to
        // the bucket's lifecycle rule on requests/.
        if let Err(e) = self.store.delete(key).await {
            tracing::warn!(key, error = %chain(&e), "a handled request file was not deleted");
        }
        Ok(result)
    }

    /// Whether S3's `principalId` of a writer (`AWS:AROA...:session`, `AWS:AIDA...`) is
    /// one of the deployment's request writers, named by their unique ids.
    fn is_request_writer(&self, principal: &str) -> bool {
        let principal = principal.strip_prefix("AWS:").unwrap_or(principal);
        let unique_id = principal.split(':').next().unwrap_or_default();
        !unique_id.is_empty()
            && self
                .settings
                .request_writers
                .iter()
                .any(|writer| writer == unique_id)
    }

    /// The export a dropped request file asks for, as its `requested-by` manager.
    async fn create_dropped(
        &self,
        key: &str,
        project: &str,
        object: &crate::ports::Object,
        event_id: &str,
    ) -> Result<Accepted, ApiError> {
        let Some(email) = object.metadata.get("requested-by") else {
            return Err(ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "UNAUTHENTICATED",
                at: Some(At::Parameter("x-amz-meta-requested-by".to_owned())),
                message: "a dropped request names its requester in the requested-by metadata"
                    .into(),
                retry_after: None,
            });
        };
        // A request writer put the file: it vouches for the address.
        let caller = Caller::person(email.clone(), true);
        // One put is one export, however often S3 reports it.
        let key_for_object = format!("s3-drop:{key}:{event_id}");
        self.create(&caller, project, &object.body, Some(&key_for_object), None)
            .await
    }
}

/// Why a dropped request must be handled again (Lambda retries the event, then sends it
/// to the function's on-failure destination).
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    /// The platform bucket did not answer.
    #[error("the platform bucket")]
    Store(#[from] StoreError),
    /// Creating the export met a server error (the store or the queue).
    #[error("creating the export: {} {}", .0.code, .0.message)]
    Unavailable(ApiError),
}

/// What a dropped request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropOutcome {
    /// An export was queued (or already was, for this object).
    Accepted(String),
    /// The request was refused; the response file says why.
    Refused(ApiError),
    /// The key is not a request file.
    Ignored(String),
}

fn parse_drop_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("requests/")?;
    let (project, file) = rest.split_once('/')?;
    let name = file.strip_suffix(".json")?;
    let valid_name = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    (is_project_id(project) && valid_name).then_some((project, name))
}

#[cfg(test)]
mod tests {
    use super::parse_drop_key;

    #[derive(Default)]
    struct Served(std::sync::Mutex<Vec<(String, u16)>>);

    impl crate::ports::Metrics for Served {
        fn export_ended(&self, _: &crate::ports::ExportEnded<'_>) {}
        fn request_served(&self, served: &crate::ports::RequestServed<'_>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push((served.route.to_owned(), served.status));
            }
        }
    }

    #[tokio::test]
    async fn each_request_is_reported_by_route_template_and_status() {
        use axum::http::{Request, StatusCode};
        use tower::ServiceExt;
        let served = std::sync::Arc::new(Served::default());
        let router = axum::Router::new()
            .route(
                "/v1/exports/{id}",
                axum::routing::get(|| async { StatusCode::OK })
                    .post(|| async { StatusCode::CONFLICT }),
            )
            .fallback(|| async { StatusCode::NOT_FOUND });
        let router = super::metered(router, served.clone());
        for (method, uri) in [
            ("GET", "/v1/exports/01abc"),
            ("POST", "/v1/exports/01def"),
            ("GET", "/v1/elsewhere/01abc"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .body(axum::body::Body::empty())
                .expect("request");
            router.clone().oneshot(request).await.expect("response");
        }
        let seen = served.0.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            [
                ("GET /v1/exports/{id}".to_owned(), 200),
                ("POST /v1/exports/{id}".to_owned(), 409),
                ("UNMATCHED".to_owned(), 404),
            ]
        );
    }

    #[test]
    fn drop_keys_name_a_project_and_a_file() {
        assert_eq!(
            parse_drop_key("requests/demo/nightly-1.json"),
            Some(("demo", "nightly-1"))
        );
        assert_eq!(parse_drop_key("requests/demo/a/b.json"), None);
        assert_eq!(parse_drop_key("requests/../b.json"), None);
        assert_eq!(parse_drop_key("requests/demo/x.txt"), None);
        assert_eq!(parse_drop_key("other/demo/x.json"), None);
    }
}
