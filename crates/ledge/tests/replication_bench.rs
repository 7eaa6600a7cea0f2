//! Replication benchmark (ignored by default; BENCHMARKS.md has the numbers and the command):
//!
//! ```sh
//! cargo test --release -p ledge --test replication_bench -- --ignored --nocapture
//! ```
//!
//! - UpdateDistribution → every edge applied it (= `Deployed`) with 1, 3 and 10 `ledge edge`
//!   processes, measured from the moment the AWS CLI returned (the write is committed by then).
//! - 1,000 simulated edges (feed clients in this process, each long-polling and acking): time
//!   from the update to each client receiving it (p50/p99) and to all acked; then the control
//!   plane's CPU and memory while idle with them connected.

#[path = "replication/fleet.rs"]
mod fleet;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request on a kept-alive connection (reconnecting when needed), as an edge's pooled
/// client does; status, lower-cased head, body.
async fn call_on(
    conn: &mut Option<tokio::io::BufReader<tokio::net::TcpStream>>,
    api: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    use tokio::io::AsyncBufReadExt;
    if conn.is_none() {
        *conn = Some(tokio::io::BufReader::new(
            tokio::net::TcpStream::connect(api).await?,
        ));
    }
    let Some(c) = conn.as_mut() else {
        return Err(std::io::Error::other("no connection"));
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: control\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let result = async {
        c.get_mut().write_all(req.as_bytes()).await?;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if c.read_line(&mut line).await? == 0 {
                return Err(std::io::Error::other("closed"));
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut buf = vec![0; len];
        c.read_exact(&mut buf).await?;
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, head, String::from_utf8_lossy(&buf).into_owned()))
    }
    .await;
    if result.is_err() {
        *conn = None;
    }
    result
}

/// One HTTP/1.1 request (Connection: close) with the edge token; status, headers, body.
async fn call(
    api: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut s = tokio::net::TcpStream::connect(api).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: control\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}

async fn edge_list(api: SocketAddr, token: &str) -> Vec<Value> {
    match call(api, token, "GET", "/ledge/edges", "").await {
        Ok((200, _, body)) => serde_json::from_str(&body).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Waits until every live edge whose pop starts with `prefix` applied a version above
/// `before`; returns that version.
async fn all_applied(
    api: SocketAddr,
    token: &str,
    prefix: &str,
    before: i64,
    every: Duration,
) -> i64 {
    loop {
        let list = edge_list(api, token).await;
        let live: Vec<&Value> = list
            .iter()
            .filter(|e| e["live"] == true)
            .filter(|e| e["pop"].as_str().is_some_and(|p| p.starts_with(prefix)))
            .collect();
        if !live.is_empty()
            && live
                .iter()
                .all(|e| e["lag"] == 0 && e["applied_version"].as_i64().unwrap_or(0) > before)
        {
            return live[0]["applied_version"].as_i64().unwrap_or(0);
        }
        tokio::time::sleep(every).await;
    }
}

/// Changes the comment; returns when the update CLI started and how long it took.
fn update_comment(api: &str, id: &str, dir: &std::path::Path, n: usize) -> (Instant, Duration) {
    let got = aws_ok(api, &["cloudfront", "get-distribution-config", "--id", id]);
    let etag = got["ETag"].as_str().expect("etag").to_owned();
    let mut config = got["DistributionConfig"].clone();
    config["Comment"] = json!(format!("bench {n}"));
    let file = dir.join("update.json");
    std::fs::write(&file, config.to_string()).expect("write");
    let start = Instant::now();
    aws_ok(
        api,
        &[
            "cloudfront",
            "update-distribution",
            "--id",
            id,
            "--if-match",
            &etag,
            "--distribution-config",
            &format!("file://{}", file.display()),
        ],
    );
    (start, start.elapsed())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Idle CPU (% of one core) and RSS of `pid` over `window`.
async fn idle(pid: u32, window: Duration) -> (f64, u64) {
    let t0 = cpu_ticks(pid);
    tokio::time::sleep(window).await;
    let ticks = cpu_ticks(pid) - t0;
    // Linux USER_HZ is 100.
    let pct = ticks as f64 / window.as_secs_f64();
    (pct, rss_kib(pid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn replication_benchmark() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("control");
    let data_s = data.display().to_string();
    let port = free_port();
    let control = start_control(&data, port, 60);
    let api = format!("http://127.0.0.1:{port}");
    let api_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let token = ledge(&[
        "edge-token",
        "create",
        "--name",
        "bench",
        "--data-dir",
        &data_s,
    ])
    .trim()
    .to_owned();
    let config = json!({
        "CallerReference": "bench",
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "127.0.0.1",
            "CustomOriginConfig": {"HTTPPort": 9999, "HTTPSPort": 443,
                "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"},
        "Comment": "bench",
        "Enabled": true
    });
    let file = tmp.path().join("dist.json");
    std::fs::write(&file, config.to_string()).expect("write");
    let created = aws_ok(
        &api,
        &[
            "cloudfront",
            "create-distribution",
            "--distribution-config",
            &format!("file://{}", file.display()),
        ],
    );
    let id = created["Distribution"]["Id"]
        .as_str()
        .expect("id")
        .to_owned();

    let (base_cpu, base_rss) = idle(control.child.id(), Duration::from_secs(5)).await;
    println!("control plane idle, no edges: {base_cpu:.2}% CPU, {base_rss} KiB RSS");

    // 1, 3, 10 edge processes.
    let mut edges = Vec::new();
    let mut n = 0;
    for target in [1usize, 3, 10] {
        while edges.len() < target {
            let i = edges.len();
            edges.push(EdgeProc::start(
                &api,
                &token,
                &format!("BENCH{i}"),
                &tmp.path().join(format!("edge{i}")),
                "127.0.0.1:0",
            ));
        }
        let mut v = all_applied(api_addr, &token, "BENCH", 0, Duration::from_millis(20)).await;
        let mut times = Vec::new();
        let mut cli = Vec::new();
        for _ in 0..5 {
            n += 1;
            let (t, took) = update_comment(&api, &id, tmp.path(), n);
            cli.push(took);
            v = all_applied(api_addr, &token, "BENCH", v, Duration::from_millis(2)).await;
            times.push(t.elapsed());
        }
        cli.sort();
        let status = aws_ok(&api, &["cloudfront", "get-distribution", "--id", &id]);
        assert_eq!(status["Distribution"]["Status"], "Deployed");
        times.sort();
        println!(
            "{target:>2} edge processes: AWS CLI update-distribution started → Deployed p50 {:?}, \
             max {:?} (the CLI alone takes p50 {:?}: every edge had acked when it returned)",
            pct(&times, 0.5),
            pct(&times, 1.0),
            pct(&cli, 0.5),
        );
    }
    drop(edges);

    // 1,000 simulated edges in this process.
    let sims = 1000;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, u64, Instant)>(sims * 4);
    let token = Arc::new(token);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..sims {
        let (tx, token) = (tx.clone(), token.clone());
        tasks.spawn(async move {
            let mut after = 0u64;
            let mut conn = None;
            loop {
                let path = format!("/ledge/feed?after={after}&pop=SIM{i}&address=sim");
                match call_on(&mut conn, api_addr, &token, "GET", &path, "").await {
                    Ok((200, head, _)) => {
                        let v = head
                            .lines()
                            .find_map(|l| l.strip_prefix("x-ledge-version:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(after + 1);
                        let got = Instant::now();
                        let ack = format!(r#"{{"Version":{v},"Pop":"SIM{i}","Address":"sim"}}"#);
                        let _ =
                            call_on(&mut conn, api_addr, &token, "POST", "/ledge/ack", &ack).await;
                        after = v;
                        let _ = tx.send((i, v, got)).await;
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
    }
    // Everyone has the current version.
    let mut current = 0u64;
    let mut have = 0;
    while have < sims {
        if let Some((_, v, _)) = rx.recv().await {
            current = current.max(v);
            have += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    while rx.try_recv().is_ok() {}
    let (cpu, rss) = idle(control.child.id(), Duration::from_secs(10)).await;
    println!(
        "control plane idle with {sims} simulated edges connected: {cpu:.2}% CPU, {rss} KiB RSS"
    );
    let mut rounds = Vec::new();
    for _ in 0..3 {
        n += 1;
        let (t, cli) = update_comment(&api, &id, tmp.path(), n);
        let mut got = Vec::with_capacity(sims);
        while got.len() < sims {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((_, v, at))) if v > current => got.push(at),
                Ok(Some(_)) => {}
                _ => panic!("simulated edges did not all receive the update"),
            }
        }
        current += 1;
        let before = i64::try_from(current).unwrap_or(0) - 1;
        let all = all_applied(api_addr, &token, "SIM", before, Duration::from_millis(20)).await;
        current = u64::try_from(all).unwrap_or(current);
        let deployed = t.elapsed();
        got.sort();
        let first = got[0];
        let spread: Vec<Duration> = got.iter().map(|a| a.duration_since(first)).collect();
        rounds.push((
            cli,
            pct(&spread, 0.5),
            pct(&spread, 0.99),
            pct(&spread, 1.0),
            Instant::now().duration_since(first),
            deployed,
        ));
    }
    for (cli, p50, p99, max, acked, deployed) in rounds {
        println!(
            "{sims} simulated edges: after the first received it, the others p50 +{p50:?}, \
             p99 +{p99:?}, max +{max:?}; all acked (Deployed) +{acked:?}; from the AWS CLI's \
             start {deployed:?} (the CLI itself: {cli:?})"
        );
    }
    tasks.abort_all();
}
