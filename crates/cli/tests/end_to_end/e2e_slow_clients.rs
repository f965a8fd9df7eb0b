//! End to end: slow and silent clients cannot stall ingest or hold connections (issue 18.3).
//! Raw TCP against the real server, with small configured timeouts so the tests stay short.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::TestServer;

/// Body deadline of the server under test (`--body-read-timeout-ms`).
const BODY_TIMEOUT: Duration = Duration::from_millis(4000);
/// Header deadline of the server under test (`--header-read-timeout-ms`).
const HEADER_TIMEOUT: Duration = Duration::from_millis(1000);
/// Slack for a loaded machine on top of a server deadline.
const SLACK: Duration = Duration::from_secs(6);
/// `INGEST_REQUESTS_PER_PRINCIPAL_MAX` of the server.
const PER_PRINCIPAL: usize = 16;

/// Starts `POST /v1/events` with a chunked body and sends part of its first chunk, then
/// nothing more.
fn stalled_ingest(addr: SocketAddr, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    // The chunk announces 16 bytes (0x10); 14 follow.
    write!(
        s,
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n\
         10\r\n{{\"action\":\"mod"
    )
    .unwrap();
    s.flush().unwrap();
    s
}

/// Reads until the server closes the connection; panics if it is still open after `within`.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> String {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "the server did not close the connection within {within:?}; it sent {:?}",
            String::from_utf8_lossy(&out)
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // A reset is a close too.
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn event(action: &str) -> serde_json::Value {
    serde_json::json!({"action": action, "actor": {"id": "svc"}})
}

#[test]
fn slow_bodies_cannot_hold_every_ingest_slot() {
    let srv = TestServer::start_with(&[
        "--body-read-timeout-ms",
        &BODY_TIMEOUT.as_millis().to_string(),
    ]);
    let attacker = srv.token("producer", &[]);
    let other = srv.http_as(&srv.token("producer", &[]));
    let attacker_http = srv.http_as(&attacker);

    // More stalled bodies than one principal may hold.
    let extra = 4;
    let opened = Instant::now();
    let mut conns: Vec<Option<TcpStream>> = (0..PER_PRINCIPAL + extra)
        .map(|_| Some(stalled_ingest(srv.addr, &attacker)))
        .collect();

    // Past its share, the principal is answered 503 busy at once, before its body is read,
    // and those connections are closed.
    let mut busy = Vec::new();
    let mut bufs = vec![Vec::new(); conns.len()];
    while busy.len() < extra && opened.elapsed() < BODY_TIMEOUT / 2 {
        for (i, c) in conns.iter_mut().enumerate() {
            let Some(s) = c else { continue };
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 4096];
            match s.read(&mut buf) {
                Ok(0) => {
                    busy.push(String::from_utf8_lossy(&bufs[i]).into_owned());
                    *c = None;
                }
                Ok(n) => bufs[i].extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("connection {i}: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        busy.len(),
        extra,
        "exactly {extra} of {} stalled requests should be refused at once; answers: {busy:?}",
        PER_PRINCIPAL + extra
    );
    for answer in &busy {
        let lower = answer.to_ascii_lowercase();
        assert!(lower.starts_with("http/1.1 503"), "{answer}");
        assert!(lower.contains("retry-after: 1"), "{answer}");
        assert!(answer.contains("\"code\":\"busy\""), "{answer}");
    }
    let mut held: Vec<TcpStream> = conns.into_iter().flatten().collect();
    assert_eq!(held.len(), PER_PRINCIPAL);

    // While they hold their slots, another producer is served at once…
    let t = Instant::now();
    let r = srv.post_json(&other, &event("model.train"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    // … and the stalling principal is not, even with a complete body.
    let r = srv.post_json(&attacker_http, &event("model.train"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "busy");
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    assert!(
        opened.elapsed() < BODY_TIMEOUT,
        "the checks above must run while the bodies are still pending (took {:?})",
        opened.elapsed()
    );

    // At the deadline every stalled body is answered 408 body_timeout and closed.
    for s in &mut held {
        let answer = read_until_closed(s, BODY_TIMEOUT + SLACK);
        let lower = answer.to_ascii_lowercase();
        assert!(lower.starts_with("http/1.1 408"), "{answer}");
        assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
        assert!(lower.contains("connection: close"), "{answer}");
    }
    assert!(
        opened.elapsed() >= BODY_TIMEOUT - Duration::from_millis(200),
        "closed before the deadline: {:?}",
        opened.elapsed()
    );

    // The slots were released: the principal is served again.
    let r = srv.post_json(&attacker_http, &event("model.train"));
    assert_eq!(r.status, 201, "{}", r.text());
    let metrics = srv.http().get(&srv.at("/metrics")).text();
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("reason=\"body_timeout\"") && l.ends_with(" 16")),
        "{metrics}"
    );
}

#[test]
fn half_sent_headers_are_closed() {
    let srv = TestServer::start_with(&[
        "--header-read-timeout-ms",
        &HEADER_TIMEOUT.as_millis().to_string(),
    ]);
    let opened = Instant::now();
    let mut conns = Vec::new();
    // Half a request line, many times over.
    for _ in 0..100 {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"POST /v1/ev").unwrap();
        conns.push(s);
    }
    // A request line and headers, without the blank line that ends them.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow: 1\r\n",
        srv.addr
    )
    .unwrap();
    conns.push(s);
    // Nothing at all.
    conns.push(TcpStream::connect(srv.addr).unwrap());
    for s in &mut conns {
        read_until_closed(s, HEADER_TIMEOUT + SLACK);
    }
    assert!(
        opened.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(100),
        "closed before the header timeout: {:?}",
        opened.elapsed()
    );

    // An idle keep-alive connection is closed after the same time, once its answer is out.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    write!(s, "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr).unwrap();
    let idle_from = Instant::now();
    let answer = read_until_closed(&mut s, HEADER_TIMEOUT + SLACK);
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(idle_from.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(100));

    // The server still serves complete requests.
    srv.assert_healthy(&srv.http());
}

/// A `GET /healthz` on a new connection; the response, or `None` if none came within
/// `within` (the connection was not served).
fn healthz_within(addr: SocketAddr, within: Duration) -> Option<String> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(_) => None,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("reading /healthz: {e}"),
    }
}

/// Issue 19.5: there was no cap on open HTTP connections (each one a task, buffers and a
/// file descriptor). With `--connections-max 2`, two open connections make the third wait
/// in the listen backlog; it is served as soon as one of them closes.
#[test]
fn open_connections_are_capped() {
    let srv = TestServer::start_with(&["--connections-max", "2"]);
    // The server answers while under the cap.
    assert!(healthz_within(srv.addr, SLACK).unwrap().contains("200 OK"));
    let a = TcpStream::connect(srv.addr).unwrap();
    let b = TcpStream::connect(srv.addr).unwrap();
    // Accepted by the server (one request each, kept alive), so both hold a slot.
    for mut s in [&a, &b] {
        write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        assert!(s.read(&mut buf).unwrap() > 0);
    }
    assert_eq!(
        healthz_within(srv.addr, Duration::from_millis(700)),
        None,
        "a third connection is not served while two are open"
    );
    drop(a);
    let served = healthz_within(srv.addr, SLACK).expect("served once a slot is free");
    assert!(served.contains("200 OK"), "{served}");
    drop(b);
}
