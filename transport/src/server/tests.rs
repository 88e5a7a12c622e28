//! The limits, against real sockets on loopback.

use super::*;
use axum::routing::get;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/hi", get(|| async { "hi" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, router, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn limits(timeout_ms: u64, max: usize) -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(timeout_ms),
        max_connections: max,
    }
}

/// Reads until the server closes the connection (or `within` passes); answers what was read
/// and whether it closed.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(within, s.read_to_end(&mut got))
        .await
        .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

const REQUEST: &[u8] = b"GET /hi HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn a_request_is_answered_and_a_half_sent_one_is_cut_at_the_timeout() {
    let (addr, _stop) = start(limits(300, 8)).await;
    let mut ok = TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /hi HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_to_close(&mut ok, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hi"),
        "{answer}"
    );
    assert!(closed);

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /hi HTTP/1.1\r\nhost:").await.unwrap();
    let started = std::time::Instant::now();
    let (_, closed) = read_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent request holds its connection");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_timeout() {
    let (addr, _stop) = start(limits(300, 8)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    let (answer, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection stays open");
}

#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let (addr, _stop) = start(limits(10_000, 2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(REQUEST).await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // The third connects (the kernel queues it) but is not served while two are open.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(REQUEST).await.unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "served past the limit");
    drop(held.pop());
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns_once_connections_end() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/hi", get(|| async { "hi" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, limits(10_000, 8), async move {
        let _ = stopped.await;
    }));
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(REQUEST).await.unwrap();
    let mut buf = [0u8; 64];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    stop.send(()).unwrap();
    // The idle connection is closed gracefully, and the server returns.
    let (_, closed) = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(closed);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

/// An HTTP/2 answer's date is marked sensitive, so that HPACK never indexes it (its value
/// changes every second), and it is the current time.
#[test]
fn the_date_of_an_answer_is_sensitive_and_current() {
    let date = super::date_header().expect("a date after 1970");
    assert!(date.is_sensitive());
    let when = httpdate::parse_http_date(date.to_str().unwrap()).unwrap();
    let off = when
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_else(|e| e.duration());
    assert!(off <= Duration::from_secs(2), "{date:?}");
}
