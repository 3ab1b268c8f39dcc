//! export-api: the HTTP API as an axum `Router`. Lambda serves it through
//! `lambda_http`; the CLI serves the same router on localhost.
//!
//! Every route authenticates through the [`Authenticator`] it is given (API Gateway's
//! JWT claims on AWS, a locally signed JWT on a laptop); what the caller may do is the
//! export service's to decide (`crate::service`). This module keeps the HTTP side:
//! routing (`routes`), request parsing, the status body (`status`), downloads
//! (`download`), the S3 request drop (`drop`), and the problem details every error
//! becomes (`problem`).

use crate::delivery::DeliveryPolicy;
use crate::links::LinkSigner;
use crate::ports::{Buckets, Metrics, ObjectStore, Presigner, Queue, RequestServed};
use crate::service::{Caller, ExportService, ServiceSettings};
use crate::tenancy::ExternalIds;
use axum::extract::FromRequestParts;
use axum::http::{request::Parts, StatusCode};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

mod download;
mod drop;
mod openapi;
mod problem;
mod responses;
mod routes;
mod status;

pub use drop::{DropError, DropOutcome};
pub use openapi::DOCUMENT_PATH;
pub use problem::{json_pointer, ApiError, At, Problem, PROBLEM_JSON};
pub use status::Status;

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

/// The API and what it needs.
pub struct Api {
    exports: ExportService,
    presigner: Arc<dyn Presigner>,
    auth: Arc<dyn Authenticator>,
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

/// The routes, each with its part of the OpenAPI document: a route cannot be added
/// without being documented.
fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<Api>> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(routes::create_export, routes::list_exports))
        .routes(routes!(routes::latest_export))
        .routes(routes!(download::latest_download))
        .routes(routes!(routes::delivery_identity))
        .routes(routes!(routes::export_status))
        .routes(routes!(download::download))
        .routes(routes!(routes::cancel_export))
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

impl Api {
    /// Assembles the API. Download links are signed by `links`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        queue: Arc<dyn Queue>,
        presigner: Arc<dyn Presigner>,
        auth: Arc<dyn Authenticator>,
        links: Arc<LinkSigner>,
        settings: ApiSettings,
    ) -> Self {
        let rules = ServiceSettings {
            public_url: settings.public_url.clone(),
            max_active_per_project: settings.max_active_per_project,
            max_active_per_tenant: settings.max_active_per_tenant,
            delivery: settings.delivery.clone(),
            retention: settings.retention,
        };
        Api {
            exports: ExportService::new(store, queue, links, rules),
            presigner,
            auth,
            settings,
            document: std::sync::OnceLock::new(),
        }
    }

    /// Checks access to customers' buckets through `buckets`
    /// (EXTERNAL_OBJECT_STORAGE).
    pub fn with_buckets(mut self, buckets: Arc<dyn Buckets>) -> Self {
        self.exports = self.exports.with_buckets(buckets);
        self
    }

    /// Assumes customers' roles with the external ids `ids` issues to their tenants;
    /// without it, a destination with a role is refused.
    pub fn with_external_ids(mut self, ids: Arc<ExternalIds>) -> Self {
        self.exports = self.exports.with_external_ids(ids);
        self
    }

    /// The export service behind the routes.
    pub fn exports(&self) -> &ExportService {
        &self.exports
    }
}

#[cfg(test)]
mod tests {
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
}
