//! Downloads: a signed link's check and the redirect to a presigned URL made at the
//! click, and the latest export's download for a signed-in manager.

use super::responses::CallerErrors;
use super::{Api, ApiError, At, Authenticated, ExportPath, Problem, ProjectPath};
use crate::job::{is_export_id, Job, JobState};
use crate::links::{LinkError, LinkQuery};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

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
        (status = 404, description = "No such project, no export yet, or it was delivered to the customer's bucket.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Its files have expired or were replaced.", body = Problem, content_type = "application/problem+json"),
        CallerErrors,
    )
)]
pub(super) async fn latest_download(
    State(api): State<Arc<Api>>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
) -> Result<Response, ApiError> {
    let job = api.exports.latest(&caller, &project).await?;
    api.redirect_to_file(&job, None).await
}

/// The download route's query: a signed link's `exp` and `sig`, and `file=NAME` for a
/// file other than the first.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DownloadQuery {
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
pub(super) async fn download(
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
    match api.exports.links().verify(&id, &link, chrono::Utc::now()).await {
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
    let job = api
        .exports
        .job(&id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    api.redirect_to_file(&job, query.file.as_deref())
        .await
        .map_err(IntoResponse::into_response)
}

impl Api {
    /// A 302 to a presigned URL of `file` (the first file when `None`) of a finished job.
    pub(super) async fn redirect_to_file(
        &self,
        job: &Job,
        file: Option<&str>,
    ) -> Result<Response, ApiError> {
        let id = &job.id;
        let retention = self.exports.settings().retention;
        if job.expired(retention, chrono::Utc::now()) {
            return Err(ApiError::new(
                StatusCode::GONE,
                "EXPORT_EXPIRED",
                format!(
                    "export {id} has expired: its files are kept {} days; request the export again",
                    retention.map_or(0, |r| r.as_secs() / 86_400)
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
}
