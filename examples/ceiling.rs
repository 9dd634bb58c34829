//! The ceiling for `bench/run.sh`: the least an actix-web server can do per
//! request. It answers every GET with a fixed JSON body of a given size,
//! with the same worker count as Frontpage, so that the benchmark can print
//! each of Frontpage's figures as a share of what the framework allows on
//! this machine.
//!
//! `cargo run --release --example ceiling -- ADDR BODY_BYTES [WORKERS]`

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18200".into());
    let size: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(4096);
    let workers: usize = args
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    // A JSON document of exactly `size` bytes: {"data":"xxx…"}.
    let filler = "x".repeat(size.saturating_sub(r#"{"data":""}"#.len()));
    let body = web::Bytes::from(format!(r#"{{"data":"{filler}"}}"#));
    HttpServer::new(move || {
        let body = body.clone();
        App::new().default_service(web::to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .workers(workers)
    .tcp_nodelay(true)
    .bind(addr)?
    .run()
    .await
}
