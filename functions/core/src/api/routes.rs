//! The routes that ask for exports and follow them: each parses its request, calls the
//! export service, and shapes its answer.

use super::responses::{CallerErrors, ExportNotFound, ProjectNotFound};
use super::{Api, ApiError, At, Authenticated, ExportPath, Problem, ProjectPath, Status};
use crate::job::JobState;
use crate::request::ExportRequest;
use crate::service::{Accepted, ListedExport};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
        ProjectNotFound,
        (status = 409, description = "The project has not started or is archived.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The `Idempotency-Key` was used for a different request.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The project has as many unfinished exports as the deployment allows.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        CallerErrors,
    )
)]
pub(super) async fn create_export(
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
        .exports
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
        ExportNotFound,
        CallerErrors,
    )
)]
pub(super) async fn export_status(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    query: Result<Query<FilesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::parameter("query", e.body_text()))?;
    let job = api.exports.authorized_job(&caller, &id).await?;
    api.status_page(&job, query.files_from.unwrap_or(0)).await
}

/// `?filesFrom=` of the status route.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct FilesQuery {
    /// The first file to list (the `nextFilesFrom` of the answer before; default 0).
    #[param(minimum = 0)]
    files_from: Option<usize>,
}

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
        ExportNotFound,
        (status = 409, description = "The export has ended; there is nothing to cancel.", body = Problem, content_type = "application/problem+json"),
        CallerErrors,
    )
)]
pub(super) async fn cancel_export(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = api.exports.cancel(&caller, &id).await?;
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
        (status = 404, description = "No such project, the caller is not a member, or no export has succeeded yet (`NO_EXPORT_YET`).", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The latest export has expired and its record is gone (`EXPORT_EXPIRED`).", body = Problem, content_type = "application/problem+json"),
        CallerErrors,
    )
)]
pub(super) async fn latest_export(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let job = api.exports.latest(&caller, &project).await?;
    api.status_response(&job).await
}

/// What a customer needs to let the project deliver into their bucket.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeliveryIdentity {
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
pub(super) struct ShownDestination {
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
        ProjectNotFound,
        CallerErrors,
    )
)]
pub(super) async fn delivery_identity(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let manifest = api.exports.authorize(&caller, &project).await?;
    let external_id = api.exports.external_id(manifest.tenant()).await?;
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

/// `?state=&limit=&cursor=` of the list route.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
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
pub(super) struct Listed<'a> {
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
pub(super) struct ExportList<'a> {
    /// The exports.
    exports: Vec<Listed<'a>>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Exports per page when the query leaves it out.
const DEFAULT_PAGE: usize = 20;

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
        ProjectNotFound,
        CallerErrors,
    )
)]
pub(super) async fn list_exports(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::parameter("query", e.body_text()))?;
    let page = api
        .exports
        .list(
            &caller,
            &project,
            query.state,
            query.limit.unwrap_or(DEFAULT_PAGE),
            query.cursor.as_deref(),
        )
        .await?;
    let exports: Vec<Listed<'_>> = page
        .exports
        .iter()
        .map(|ListedExport { state, job }| Listed {
            id: &job.id,
            state: *state,
            format: job.request.format.as_str(),
            requested_by: &job.requested_by,
            created_at: job.created_at,
            finished_at: job.finished_at,
            tasks: job.progress.tasks_exported,
            status_url: api.exports.status_url(&job.id),
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(ExportList {
            exports,
            next_cursor: page.next_cursor,
        }),
    )
        .into_response())
}
