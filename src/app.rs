//! Builds the actix application: middleware, error handling, routes (the
//! state they share is [`crate::state`]). `main` and the tests use the same
//! [`app`], so tests see what users see.

use actix_cors::Cors;
use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::Service;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::{Compress, ErrorHandlerResponse, ErrorHandlers, Next, from_fn};
use actix_web::web::Bytes;
use actix_web::web::{self, Data};
use actix_web::{App, HttpRequest, HttpResponse};
use utoipa::openapi::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::api;
use crate::config::CorsOrigins;
use crate::drain;
use crate::error::{ApiError, PROBLEM_JSON, Problem, echo, problem_for_status, problem_response};
use crate::http_cache;
use crate::observe;
use crate::route_table::RouteTable;
use crate::state::AppState;

/// Every documented route: operations at the root, the API under `/api/v1`.
pub fn routes(cfg: &mut ServiceConfig) {
    // The API first: a request is matched against each route in turn, and
    // a route with parameters costs a regex search (and an allocation) to
    // pass over.
    cfg.service(utoipa_actix_web::scope("/api/v1").configure(api::routes))
        .service(api::ops::healthz)
        .service(api::ops::readyz)
        .service(api::feeds::latest_feed)
        .service(api::feeds::category_feed)
        .service(api::feeds::ranking_feed)
        .service(api::problems::problems)
        .service(api::problems::problem);
}

/// Answers requests no route took: a permanent redirect (308) from a
/// path with a trailing slash to the one without, when that one answers
/// the method (a frontend's router adds them: Next.js `trailingSlash`);
/// for a path that exists, `OPTIONS` (not a browser's preflight, which CORS
/// answers) a 204 with `Allow`, any other method a 405 with it; else 404.
async fn fallback(
    req: HttpRequest,
    table: Data<RouteTable>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let method = req.method().as_str();
    let routed = crate::route_table::routed_path(&req);
    // Looked up as the router reads it; sent on as it was spelt.
    if let Some(trimmed) = req.path().strip_suffix('/').filter(|path| !path.is_empty())
        && routed
            .strip_suffix('/')
            .and_then(|routed| table.allowed(routed))
            .is_some_and(|allowed| allowed.contains(&method) || method == "OPTIONS")
    {
        let query = req
            .uri()
            .query()
            .map_or(String::new(), |query| format!("?{query}"));
        let location = state.feed_links.public_path(&format!("{trimmed}{query}"));
        return Ok(HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, location))
            .finish());
    }
    match table.allowed(routed) {
        Some(mut allowed) if !allowed.contains(&method) => {
            allowed.push("OPTIONS");
            if method == "OPTIONS" {
                return Ok(HttpResponse::NoContent()
                    .insert_header((header::ALLOW, allowed.join(", ")))
                    .finish());
            }
            Err(ApiError::MethodNotAllowed(
                allowed.into_iter().map(str::to_owned).collect(),
            ))
        }
        _ => Err(ApiError::NotFound(format!(
            "Nothing is at `{}`.",
            echo(req.path())
        ))),
    }
}

/// `/docs` is the Swagger UI at `/docs/`.
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        // Relative: resolved against `/docs`, it is `/docs/` under any
        // path a proxy serves this server at.
        .insert_header((header::LOCATION, "docs/"))
        .finish()
}

/// Turns any error response that is not already a problem (actix's own
/// plain-text errors) into `application/problem+json`.
fn problem_for_plain_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if is_problem(res.headers()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, res) = res.into_parts();
    let problem = problem_response(&problem_for_status(res.status()));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, problem).map_into_right_body(),
    ))
}

/// A problem response with its `type` under the path a proxy serves this
/// server at (see [`Problem::placed_under`]), when there is one: its body
/// rendered again from the problem it was made of, uncompressed (it is
/// small). The rest of the answer stays: its status, headers, extensions
/// (the cause the request log logs) and connection, and the body it had,
/// which may keep the request counted in flight until it is sent.
fn placed_under_public_path<B>(
    res: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B, Replaced<B>>> {
    let prefix = res
        .request()
        .app_data::<Data<AppState>>()
        .map(|state| state.feed_links.path_prefix())
        .filter(|prefix| !prefix.is_empty());
    let problem = prefix.and_then(|prefix| {
        let problem = res.response().extensions().get::<Problem>()?.clone();
        Some(problem.placed_under(prefix))
    });
    let Some(problem) = problem else {
        return res.map_into_left_body();
    };
    let (req, res) = res.into_parts();
    let (mut res, replaced) = res.into_parts();
    res.headers_mut().remove(header::CONTENT_ENCODING);
    res.headers_mut().remove(header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&problem).unwrap_or_default().into();
    res.extensions_mut().insert(problem);
    let body = EitherBody::right(Replaced {
        bytes: Some(bytes),
        replaced,
    });
    ServiceResponse::new(req, res.set_body(body))
}

pin_project_lite::pin_project! {
    /// A new body for an answer, which keeps the one it replaces until it
    /// is dropped itself.
    pub struct Replaced<B> {
        bytes: Option<Bytes>,
        #[pin]
        replaced: B,
    }
}

impl<B> MessageBody for Replaced<B> {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        std::task::Poll::Ready(self.project().bytes.take().map(Ok))
    }
}

fn is_problem(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

/// Errors made by the layers outside [`problem_for_plain_errors`], as
/// problems too: `Compress` finding no encoding the client accepts (406),
/// and CORS refusing a preflight or an origin. What they said in plain text
/// becomes the detail.
async fn problems_from_outer_layers<B: MessageBody + 'static>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match result {
        Ok(res) => {
            let failed = res.status().is_client_error() || res.status().is_server_error();
            if !failed || is_problem(res.headers()) {
                return Ok(res.map_into_left_body());
            }
            let (req, res) = res.into_parts();
            let problem = as_problem(res.map_into_boxed_body()).await;
            Ok(ServiceResponse::new(req, problem).map_into_right_body())
        }
        // Without the request (the inner layers took it) the error itself
        // must answer as a problem.
        Err(error) => {
            let problem = as_problem(error.error_response()).await;
            Err(InternalError::from_response(error, problem).into())
        }
    }
}

/// A plain error response as a problem with the same status and headers.
async fn as_problem(res: HttpResponse) -> HttpResponse {
    let status = res.status();
    let mut problem = problem_for_status(status);
    let headers = res.headers().clone();
    let said = actix_web::body::to_bytes(res.into_body())
        .await
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&said).trim().to_string();
    if status == StatusCode::NOT_ACCEPTABLE {
        problem.detail = format!(
            "No encoding that Accept-Encoding allows is available; this server sends {said}."
        );
    } else if !said.is_empty() {
        problem.detail = format!("{}.", said.trim_end_matches('.'));
    }
    let mut response = problem_response(&problem);
    // The body is new: nothing that described the old one is kept.
    let described_body = [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
    ];
    for (name, value) in &headers {
        if !described_body.contains(name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// The whole application over `state`, serving `spec` at `/openapi.json`
/// (with the public path as its server: see [`crate::openapi::served_at`]).
pub fn app(
    state: Data<AppState>,
    spec: OpenApi,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let spec = crate::openapi::served_at(spec, &state.feed_links.public_path(""));
    let reader = state.reader;
    let pages: &[&str] = if reader { &crate::reader::PATHS } else { &[] };
    let table = RouteTable::from_spec(&spec, pages);
    let cors = cors(&state.cors_origins);
    let (app, _) = App::new()
        .into_utoipa_app()
        .app_data(state)
        .app_data(Data::new(table))
        // A path whose parameters do not read (`/feeds/latest.xml`) names
        // nothing: a 404 that says, in serde's words, what the parameter
        // must be ("unknown variant `xml`, expected one of `rss`, ...").
        .app_data(web::PathConfig::default().error_handler(|error, req| {
            let detail = match error {
                actix_web::error::PathError::Deserialize(error) => error.to_string(),
                other => other.to_string(),
            };
            ApiError::NotFound(format!(
                "Nothing is at `{}`: {}.",
                echo(req.path()),
                echo(&detail)
            ))
            .into()
        }))
        .configure(routes)
        .split_for_parts();
    let mut app = app
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                .url("/openapi.json", spec)
                // Fetched relative to the page (`/docs/`): behind a proxy
                // that serves the API under a path, it finds the document
                // under that path too.
                .config(
                    SwaggerConfig::new(["../openapi.json"])
                        // No badge from validator.swagger.io: it would send
                        // the document's address to a third party, and
                        // `/docs` works offline.
                        .validator_url("none"),
                ),
        )
        .route("/docs", web::get().to(docs_redirect))
        .route("/metrics", web::get().to(observe::metrics));
    if reader {
        app = app.configure(crate::reader::routes);
    }
    app.default_service(web::route().to(fallback))
        .wrap(from_fn(crate::api::keys::authenticate))
        .wrap(ErrorHandlers::new().default_handler(problem_for_plain_errors))
        .wrap(from_fn(http_cache::conditional))
        .wrap_fn(|mut req, srv| {
            // HEAD is GET without the body (actix drops the body of a HEAD
            // response), so every GET route answers HEAD too.
            if req.method() == Method::HEAD {
                req.head_mut().method = Method::GET;
            }
            srv.call(req)
        })
        .wrap(Compress::default())
        .wrap(from_fn(http_cache::after_compress))
        // Before the response cache (which would answer an oversized
        // request) and any route; inside CORS and the security headers, as
        // is the refusal while draining, so that a page reads both as it
        // reads any other error.
        .wrap(from_fn(limit_request))
        .wrap(from_fn(drain::admit))
        .wrap(cors)
        .wrap(from_fn(security_headers))
        .wrap(from_fn(observe::request_log))
}

/// What an HTML page may load when it does not say: its own scripts, and
/// styles and images of its own (Swagger UI sets inline styles).
const HTML_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Longest request target (path and query) served.
pub const MAX_URI: usize = 8 * 1024;
/// Most header bytes (names and values) and headers a request may carry.
/// Actix-web itself stops reading a head at 128 KiB or 96 headers, and
/// answers that without a body; these limits come first, with a problem.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;

/// Refuses request targets over [`MAX_URI`] (414) and header sets over
/// [`MAX_HEADER_BYTES`] or [`MAX_HEADERS`] (431) with a problem, before any
/// route parses them.
async fn limit_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let target = req
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let refusal = if target > MAX_URI {
        Some(ApiError::UriTooLong(MAX_URI))
    } else if header_bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS {
        Some(ApiError::HeadersTooLarge {
            bytes: MAX_HEADER_BYTES,
            count: MAX_HEADERS,
        })
    } else {
        None
    };
    if let Some(error) = refusal {
        let response = actix_web::ResponseError::error_response(&error);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// `X-Content-Type-Options: nosniff` on every response, a restrictive
/// `Content-Security-Policy` on HTML pages that do not set their own, and
/// `Cache-Control: no-store` on errors that do not say how long they hold
/// (a 404 does: see `http_cache::conditional`); the refusals of
/// compression and CORS (just inside) as problems; and every problem's
/// `type` under the public path.
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = problems_from_outer_layers(next.call(req).await).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(HTML_POLICY),
        );
    }
    if res.status().as_u16() < 400 {
        return Ok(res.map_into_left_body());
    }
    if !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    Ok(placed_under_public_path(res))
}

/// Cross-origin access for browsers: any origin (never with credentials;
/// the API authenticates with bearer keys, not cookies) or a list.
fn cors(origins: &CorsOrigins) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        // Any header a page's scripts add: tracing (`traceparent`, `baggage`,
        // `sentry-trace`) and the like differ from site to site, and a
        // preflight naming one not listed would fail as a whole, the page
        // seeing only a bare CORS error. Safe without credentials: keys are
        // Bearer tokens, never cookies.
        .allow_any_header()
        .expose_headers([
            header::ETAG,
            header::LAST_MODIFIED,
            header::LINK,
            header::LOCATION,
            header::RETRY_AFTER,
            observe::REQUEST_ID,
        ])
        .max_age(3600);
    match origins {
        // The same answer for every origin: caches need no `Vary: Origin`.
        CorsOrigins::Any => cors
            .allow_any_origin()
            .send_wildcard()
            .disable_vary_header(),
        CorsOrigins::List(list) => list
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin)),
    }
}
