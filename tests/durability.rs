//! Acknowledged means durable: views that got a 200 survive the server being
//! killed with SIGKILL mid-stream, and the counters still equal the events.
//! Runs the real binary on loopback.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use frontpage::db::schema::{article_counts, views};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(db: &Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_frontpage"))
        .arg("serve")
        .env("DATABASE_URL", db)
        .env("FRONTPAGE_BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("FRONTPAGE_RATE_LIMIT_PER_MIN", "0")
        .env("FRONTPAGE_DEMO", "true")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(request(port, "GET", "/readyz", ""), Ok((200, _))) {
        assert!(Instant::now() < deadline, "the server did not become ready");
        thread::sleep(Duration::from_millis(50));
    }
    child
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
fn request(port: u16, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other("no status line"))?;
    Ok((
        status,
        response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string(),
    ))
}

fn views_of(port: u16, article: u32) -> i64 {
    let (status, body) = request(port, "GET", &format!("/api/v1/articles/{article}"), "").unwrap();
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["data"]["stats"]["views"].as_i64().unwrap()
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[test]
fn acknowledged_views_survive_sigkill() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("crash.db");
    let port = free_port();
    let article = 3;
    for (round, kill_after) in [250u64, 600, 1_100].into_iter().enumerate() {
        let mut server = start(&db, port);
        let before = views_of(port, article);
        let acknowledged = Arc::new(AtomicU64::new(0));
        let attempted = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..8)
            .map(|client| {
                let (acknowledged, attempted, stop) =
                    (acknowledged.clone(), attempted.clone(), stop.clone());
                thread::spawn(move || {
                    let body = format!("{{\"reader\":\"crash-{round}-{client}\"}}");
                    while !stop.load(Ordering::Relaxed) {
                        attempted.fetch_add(1, Ordering::SeqCst);
                        match request(
                            port,
                            "POST",
                            &format!("/api/v1/articles/{article}/views"),
                            &body,
                        ) {
                            Ok((200, _)) => {
                                acknowledged.fetch_add(1, Ordering::SeqCst);
                            }
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(kill_after));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        let (acknowledged, attempted) = (
            acknowledged.load(Ordering::SeqCst) as i64,
            attempted.load(Ordering::SeqCst) as i64,
        );
        assert!(
            acknowledged > 0,
            "round {round}: no view was acknowledged before the kill"
        );

        let mut server = start(&db, port);
        let after = views_of(port, article);
        assert!(
            after >= before + acknowledged,
            "round {round}: lost views: {before} + {acknowledged} acknowledged, {after} stored"
        );
        assert!(
            after <= before + attempted,
            "round {round}: more views than requests"
        );
        server.kill().unwrap();
        server.wait().unwrap();

        let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        let check: Check = diesel::sql_query("PRAGMA integrity_check")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(check.integrity_check, "ok");
        let events: i64 = views::table
            .filter(views::article_id.eq(article as i32))
            .count()
            .get_result(&mut conn)
            .unwrap();
        let counter: i64 = article_counts::table
            .find((article as i32, "view"))
            .select(article_counts::count)
            .first(&mut conn)
            .unwrap();
        assert_eq!(
            events, counter,
            "round {round}: the counter drifted from the events"
        );
        let buckets: Count = diesel::sql_query(format!(
            "SELECT COALESCE(SUM(views), 0) AS n FROM engagement_days WHERE article_id = {article}"
        ))
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(
            buckets.n, events,
            "round {round}: the buckets drifted from the events"
        );
    }
}

/// Posts views from 8 clients until told to stop or refused; counts the
/// acknowledged ones.
fn post_views(port: u16, article: u32, stop: &Arc<AtomicBool>) -> Vec<thread::JoinHandle<u64>> {
    (0..8)
        .map(|client| {
            let stop = stop.clone();
            thread::spawn(move || {
                let body = format!("{{\"reader\":\"term-{client}\"}}");
                let path = format!("/api/v1/articles/{article}/views");
                let mut acknowledged = 0;
                while !stop.load(Ordering::Relaxed) {
                    match request(port, "POST", &path, &body) {
                        Ok((200, _)) => acknowledged += 1,
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect()
}

#[test]
fn sigterm_finishes_requests_in_flight_and_commits_every_queued_write() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("term.db");
    let port = free_port();
    let article = 5;
    let mut server = start(&db, port);
    let before = views_of(port, article);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = post_views(port, article, &stop);
    thread::sleep(Duration::from_millis(500));
    // SAFETY: a plain signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(status.success(), "the server exited with {status}");
    assert!(acknowledged > 0, "no view was acknowledged before SIGTERM");

    let mut server = start(&db, port);
    let after = views_of(port, article);
    server.kill().unwrap();
    server.wait().unwrap();
    // Nothing answered was lost, and nothing was stored without an answer.
    assert_eq!(after, before + acknowledged as i64);
}
