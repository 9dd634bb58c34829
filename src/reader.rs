//! The example reader page (`examples/reader/`: plain HTML, CSS and
//! JavaScript, no build step), compiled into the binary and served at
//! `/reader/` when `FRONTPAGE_READER` is on. It renders the seed article page
//! from the public API, as any frontend would.

use actix_web::http::header;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpResponse, Responder};

const INDEX: &str = include_str!("../examples/reader/index.html");
const SCRIPT: &str = include_str!("../examples/reader/reader.js");
const STYLE: &str = include_str!("../examples/reader/reader.css");

/// The page may load only its own script and style, talk only to this
/// server, and show article images from anywhere over HTTPS.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' https: data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The paths [`routes`] serves, GET (and HEAD) only.
pub const PATHS: [&str; 4] = [
    "/reader",
    "/reader/",
    "/reader/reader.js",
    "/reader/reader.css",
];

/// Registers `/reader/` and its files.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route(PATHS[0], web::get().to(to_index))
        .route(PATHS[1], web::get().to(index))
        .route(PATHS[2], web::get().to(script))
        .route(PATHS[3], web::get().to(style));
}

async fn to_index() -> impl Responder {
    HttpResponse::PermanentRedirect()
        // Relative, as `/docs`'s: under any path a proxy serves it at.
        .insert_header((header::LOCATION, "reader/"))
        .finish()
}

async fn index() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .body(INDEX)
}

async fn script() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}

async fn style() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLE)
}
