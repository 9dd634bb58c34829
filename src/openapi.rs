//! The OpenAPI document, generated from the handlers and types. Served at
//! `/openapi.json` and committed as `openapi/openapi.json` (a test keeps the
//! two equal; `cargo run -- openapi > openapi/openapi.json` regenerates it).

use actix_web::App;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Spec, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::app::routes;
use crate::error::{FieldError, Location, PROBLEM_JSON, Problem};

/// The parts of the document that are not collected from handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Frontpage",
        description = "A headless JSON content API for news sites: articles, categories, tags and authors, \
and the Related, Ranking and Recommendation feeds.\n\n\
Every JSON success body is `{\"data\": ..., \"meta\": {...}}`; every error is an RFC 9457 \
`application/problem+json` body. Timestamps are RFC 3339 in UTC. Admin routes need \
`Authorization: Bearer <key>`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    tags(
        (name = "articles", description = "Articles: public reads and admin writes"),
        (name = "taxonomy", description = "Categories, tags and authors"),
        (name = "engagement", description = "Readers' views and reactions: public, rate limited, durable once acknowledged"),
        (name = "feeds", description = "The Related, Ranking and Recommendation feeds"),
        (name = "syndication", description = "RSS 2.0, Atom and JSON Feed 1.1 documents of the latest articles, a category and the ranking"),
        (name = "operations", description = "Health and readiness (metrics are at /metrics, in Prometheus text format), and the pages a problem's `type` leads to"),
    ),
    servers((url = "/", description = "The server this document is served from")),
    // Public unless an operation says otherwise: admin operations name the
    // bearer scheme.
    security(()),
    components(schemas(Problem, FieldError, Location)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Spec) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin key: `FRONTPAGE_ADMIN_TOKEN`, or one made with `frontpage keys create NAME`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Error responses every operation can give, declared once and referenced.
const SHARED_RESPONSES: [(&str, &str, &str); 13] = [
    (
        "400",
        "MalformedRequest",
        "The body is not valid JSON (or not readable)",
    ),
    ("409", "Conflict", "The slug is taken"),
    (
        "422",
        "ValidationFailed",
        "A field of the body is invalid; `errors` names each one",
    ),
    (
        "401",
        "Unauthorized",
        "No admin key, or one that is not valid or has been revoked",
    ),
    (
        "403",
        "Forbidden",
        "The key lacks the scope this operation needs (`write` to change anything)",
    ),
    (
        "408",
        "RequestTimeout",
        "The body did not arrive within `FRONTPAGE_BODY_TIMEOUT_SECS` (60 s) of the request's head",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is over this route's size limit",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not in the media type this route reads",
    ),
    (
        "406",
        "NotAcceptable",
        "`Accept-Encoding` refuses every encoding the server has, `identity` included",
    ),
    ("414", "UriTooLong", "The path and query are over 8 KiB"),
    (
        "431",
        "HeadersTooLarge",
        "The headers are over 16 KiB, or more than 64",
    ),
    (
        "500",
        "InternalError",
        "A bug or an outage; the cause is logged, not sent",
    ),
    (
        "503",
        "Unavailable",
        "The server is busy; retry after the `Retry-After` seconds",
    ),
];

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}

/// Adds the shared error responses to each operation they apply to.
fn add_shared_responses(spec: &mut Spec) {
    let components = spec.components.get_or_insert_with(Default::default);
    for (status, name, description) in SHARED_RESPONSES {
        let mut response = problem_response(description);
        if status == "503" {
            response
                .headers
                .insert("Retry-After".to_string(), retry_after());
        }
        components
            .responses
            .insert(name.to_string(), RefOr::T(response));
    }

    components.responses.insert(
        "BadKey".to_string(),
        RefOr::T(problem_response(
            "A Bearer key that is not valid or has been revoked (this \
             operation needs none; every API route checks one that is sent)",
        )),
    );
    // Bodies that carry a slug can name one another's (409).
    let with_slug: Vec<String> = components
        .schemas
        .iter()
        .filter(|(_, schema)| {
            matches!(schema, RefOr::T(Schema::Object(object)) if object.properties.contains_key("slug"))
        })
        .map(|(name, _)| format!("#/components/schemas/{name}"))
        .collect();
    for (path, item) in &mut spec.paths.paths {
        let api = path.starts_with("/api/");
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            if api && !secured {
                operation
                    .responses
                    .responses
                    .entry("401".to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("BadKey")));
            }
            // An operation that also takes no key (`security((), ...)`) is
            // refused for a scope only where it says so itself.
            let key_required = operation
                .security
                .as_ref()
                .is_some_and(|s| !s.is_empty() && !s.contains(&SecurityRequirement::default()));
            let has_body = operation.request_body.is_some();
            // JSON bodies carry slugs and fields; the NDJSON import reports per line instead.
            let has_json_body = operation
                .request_body
                .as_ref()
                .is_some_and(|body| match body {
                    RefOr::T(body) => body
                        .content
                        .keys()
                        .any(|media| media == "application/json" || media.ends_with("+json")),
                    RefOr::Ref(_) => false,
                });
            let has_slug = operation
                .request_body
                .as_ref()
                .is_some_and(|body| names_one_of(body, &with_slug));
            for (status, name, _) in SHARED_RESPONSES {
                let applies = match status {
                    "401" => secured,
                    "403" => key_required,
                    "400" | "408" | "413" | "415" => has_body,
                    "409" => has_json_body && has_slug,
                    "422" => has_json_body,
                    _ => true,
                };
                if applies {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

/// True when `body` is, in some media type, a reference to one of
/// `schemas`.
fn names_one_of(body: &RefOr<RequestBody>, schemas: &[String]) -> bool {
    let RefOr::T(body) = body else {
        return false;
    };
    body.content.values().any(|content| match content {
        RefOr::T(Content {
            schema: Some(RefOr::Ref(schema)),
            ..
        }) => schemas.contains(&schema.ref_location),
        _ => false,
    })
}

/// Documents conditional GETs on every read (the health probes and the
/// problem pages too): each answers with a strong `ETag`, and with
/// `304 Not Modified` when `If-None-Match` names it.
fn add_conditional_gets(spec: &mut Spec) {
    let etag = || {
        Header::builder()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some("The strong validator of this representation"))
            .build()
    };
    let not_modified = ResponseBuilder::new()
        .description("Unchanged since the `ETag` given in `If-None-Match`; no body")
        .header("ETag", etag())
        .build();
    let components = spec.components.get_or_insert_with(Default::default);
    components
        .responses
        .insert("NotModified".to_string(), RefOr::T(not_modified));
    let if_none_match = ParameterBuilder::new()
        .name("If-None-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "`ETag`s of representations the client holds; a match answers 304",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build();
    for item in spec.paths.paths.values_mut() {
        let Some(operation) = item.get.as_mut() else {
            continue;
        };
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(if_none_match.clone()));
        if let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") {
            ok.headers.insert("ETag".to_string(), RefOr::T(etag()));
        }
        operation.responses.responses.insert(
            "304".to_string(),
            RefOr::Ref(Ref::from_response_name("NotModified")),
        );
    }
}

/// The `Retry-After` header of a 429 or 503: seconds to wait.
fn retry_after() -> RefOr<Header> {
    RefOr::T(
        Header::builder()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
            .description(Some("Seconds to wait before trying again"))
            .build(),
    )
}

/// The complete document, built from the same route registration the server uses.
pub fn spec() -> Spec {
    let (_, mut spec) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    add_shared_responses(&mut spec);
    add_conditional_gets(&mut spec);
    spec
}

/// The document as a server reached under `path_prefix` serves it (the
/// path of `FRONTPAGE_PUBLIC_BASE_URL`, such as `/news-api`): that path as
/// its server, so that generated clients and the explorer's "Try it out"
/// call the API there.
pub fn served_at(mut spec: Spec, path_prefix: &str) -> Spec {
    if !path_prefix.is_empty() {
        spec.servers = Some(vec![
            utoipa::openapi::ServerBuilder::new()
                .url(path_prefix)
                .description(Some("This server, behind the proxy's path"))
                .build(),
        ]);
    }
    spec
}

/// The document as committed: pretty JSON with a trailing newline.
pub fn spec_json() -> String {
    // The spec is plain data; serialising it cannot fail.
    let mut json = spec().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
