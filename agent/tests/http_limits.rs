//! The daemon's HTTP side under abuse: many concurrent scrapes, slow clients,
//! oversized headers. It keeps answering, closes what it must, and its memory
//! stays bounded. Run as root (the agent runs in a network namespace).

mod support;

use std::time::{Duration, Instant};

use support::{rss_kib, Agent, NetNs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn start() -> (NetNs, Agent, support::TempDir) {
    let ns = NetNs::new();
    let dir = support::TempDir::new("http");
    let mc = dir.path.join("currentconfig");
    std::fs::write(&mc, support::machineconfig(&["a.service", "b.service"])).expect("write");
    let agent = Agent::start(&ns, &mc, &["--no-units", "--no-networkmanager"]);
    (ns, agent, dir)
}

async fn get(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_thousand_concurrent_scrapes_all_answer() {
    let (ns, agent, _dir) = start();
    let port = agent.port;
    let before = rss_kib(agent.child.id());
    let ok = ns.block_on(|| async move {
        let tasks: Vec<_> = (0..1000).map(|_| tokio::spawn(get(port, "/metrics"))).collect();
        let mut ok = 0;
        for t in tasks {
            if let Ok(Some(200)) = t.await {
                ok += 1;
            }
        }
        ok
    });
    let after = rss_kib(agent.child.id());
    println!("figure: 1,000 concurrent scrapes: {ok} answered 200; agent RSS {before} KiB before, {after} KiB after");
    assert_eq!(ok, 1000);
    assert!(after < 64 * 1024, "RSS {after} KiB after the burst");
}

#[test]
fn slow_clients_are_cut_and_others_still_served() {
    let (ns, agent, _dir) = start();
    let port = agent.port;
    let (served, cut, waited) = ns.block_on(|| async move {
        let mut slow = Vec::new();
        for _ in 0..100 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            s.write_all(b"GET /metrics HTTP/1.1\r\nHo").await.expect("write");
            slow.push(s);
        }
        let trickle = tokio::spawn(async move {
            let started = Instant::now();
            let mut open = slow.len();
            let mut buf = [0u8; 64];
            while open > 0 && started.elapsed() < Duration::from_secs(30) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                open = 0;
                for s in &mut slow {
                    if s.write_all(b"x").await.is_ok() {
                        let closed = matches!(
                            tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await,
                            Ok(Ok(0)) | Ok(Err(_))
                        );
                        if !closed {
                            open += 1;
                        }
                    }
                }
            }
            (open, started.elapsed())
        });
        let mut served = 0;
        for _ in 0..50 {
            if get(port, "/metrics").await == Some(200) {
                served += 1;
            }
        }
        let (open, waited) = trickle.await.expect("trickle");
        (served, 100 - open, waited)
    });
    println!("figure: while 100 clients sent a byte a second: {served}/50 other scrapes served; {cut} slow clients cut after {:.1} s", waited.as_secs_f64());
    assert_eq!(served, 50, "other clients are served meanwhile");
    assert_eq!(cut, 100, "every slow client is disconnected");
}

#[test]
fn oversized_headers_are_refused() {
    let (ns, agent, _dir) = start();
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let status = ns.http_raw(agent.port, &huge).map(|r| r.0);
    assert!(matches!(status, None | Some(431) | Some(400)), "got {status:?}");
    assert_eq!(ns.http_get(agent.port, "/metrics").map(|r| r.0), Some(200));
}
