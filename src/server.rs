//! Start-up: open the store, fill it with demo content if asked, bind and serve.

use std::net::{SocketAddr, TcpListener};

use actix_web::HttpServer;
use actix_web::dev::Server;
use actix_web::web::Data;
use anyhow::Context;

use crate::app::app;
use crate::config::Config;
use crate::db::Db;
use crate::state::AppState;
use crate::{demo, drain, openapi};

/// A server bound to its address, not yet running.
pub struct Bound {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// Await it to serve until shutdown.
    pub server: Server,
    /// The store, to flush once the server has stopped.
    pub db: Db,
}

/// Read connections kept beyond two per worker for the background work
/// that holds one for long at start (the Related index, the reading
/// history, warming the article cache, the page's ranking): with none
/// spare, `/readyz` waited seconds for a connection on a million-article
/// store.
const BACKGROUND_READERS: usize = 4;

/// Opens the database (creating and migrating it) and seeds demo content
/// into an empty store when `FRONTPAGE_DEMO` is on: everything the app needs.
pub fn prepare(config: &Config) -> anyhow::Result<Data<AppState>> {
    let db = Db::open_with_view_lag(
        &config.database_path,
        (config.workers * 2 + BACKGROUND_READERS) as u32,
        config.view_totals_lag,
    )?;
    if config.demo
        && let Some(count) = demo::seed_if_empty(&db)?
    {
        tracing::info!(
            articles = count,
            "filled the empty database with demo content"
        );
    }
    Ok(Data::new(AppState::new(config, db)?))
}

/// Prepares the state and binds the listener.
pub fn bind(config: &Config) -> anyhow::Result<Bound> {
    let state = prepare(config)?;
    let db = state.db.clone();
    let drain = state.drain.clone();
    let spec = openapi::spec();
    let listener = TcpListener::bind(config.bind_addr.as_str())
        .with_context(|| format!("binding {}", config.bind_addr))?;
    let addr = listener.local_addr()?;
    actix_web::rt::spawn(crate::api::ranking::warm(Data::clone(&state)));
    let server = HttpServer::new(move || app(state.clone(), spec.clone()))
        .workers(config.workers)
        // An answer that leaves in more than one write (a body streamed,
        // or compressed as it goes by actix-web's `Compress`, in chunks)
        // would, with Nagle's algorithm on, wait for the client's delayed
        // ACK before its last: 40 ms a request on a kept-alive connection,
        // which every browser and CDN keeps.
        .tcp_nodelay(true)
        .shutdown_signal(drain::on_signal(drain))
        .shutdown_timeout(drain::CLOSE_LIMIT.as_secs())
        .listen(listener)?
        .run();
    Ok(Bound { addr, server, db })
}
