//! Lambda API benchmark: CreateFunction + PublishVersion round trips (1 KiB and 5 MiB
//! packages) and GetFunctionConfiguration requests/s, on SQLite and PostgreSQL, against a bare
//! axum handler returning the same JSON in the same run (the framework floor).
//!
//! `cargo bench -p ledge-control --bench lambda_api` (PostgreSQL at 127.0.0.1:5432, trust auth;
//! the PostgreSQL rows are skipped with a note when it is unreachable).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use axum::routing::get;
use base64::Engine as _;
use ledge_control::sigv4::{self, Credentials};
use ledge_control::{ControlConfig, ControlPlane};
use sha2::{Digest, Sha256};

const CONCURRENCY: usize = 16;
const READ_FOR: Duration = Duration::from_secs(3);

fn creds() -> Credentials {
    Credentials {
        access_key_id: "AKIDBENCH".into(),
        secret_access_key: "bench-secret".into(),
    }
}

/// A signed request, as the SDKs sign it.
fn signed(
    client: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let host = base.trim_start_matches("http://");
    let now = SystemTime::now();
    let ts = sigv4::format_amz_date(now);
    let payload = hex::encode(Sha256::digest(&body));
    let canonical = format!(
        "{}\n{}\n\nhost:{host}\nx-amz-date:{ts}\n\nhost;x-amz-date\n{payload}",
        method.as_str(),
        sigv4::canonical_uri(path)
    );
    let scope = format!("{}/us-east-1/lambda/aws4_request", &ts[..8]);
    let sts = sigv4::string_to_sign(&ts, &scope, &canonical);
    let c = creds();
    let sig = sigv4::sign(&c.secret_access_key, now, "us-east-1", "lambda", &sts);
    client
        .request(method, format!("{base}{path}"))
        .header("x-amz-date", ts)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-date, Signature={sig}",
                c.access_key_id
            ),
        )
        .body(body)
}

/// A zip holding one incompressible file of `size` bytes.
fn package(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("index.js", opts).expect("zip");
    zip.write_all(&data).expect("zip");
    zip.finish().expect("zip");
    out.into_inner()
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn create_publish(client: &reqwest::Client, base: &str, size: usize, n: usize) -> f64 {
    let mut times = Vec::new();
    for i in 0..n {
        let name = format!("bench-{size}-{i}");
        let body = serde_json::json!({
            "FunctionName": name,
            "Runtime": "nodejs20.x",
            "Role": "arn:aws:iam::000000000000:role/bench",
            "Handler": "index.handler",
            "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(package(size, i as u64 + 1))},
        });
        let body = serde_json::to_vec(&body).expect("json");
        let start = Instant::now();
        let r = signed(
            client,
            reqwest::Method::POST,
            base,
            "/2015-03-31/functions",
            body,
        )
        .send()
        .await
        .expect("create");
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let r = signed(
            client,
            reqwest::Method::POST,
            base,
            &format!("/2015-03-31/functions/{name}/versions"),
            b"{}".to_vec(),
        )
        .send()
        .await
        .expect("publish");
        assert_eq!(r.status(), 201);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

async fn requests_per_second(client: &reqwest::Client, base: &str, path: &str, sign: bool) -> f64 {
    let deadline = Instant::now() + READ_FOR;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        let base = base.to_owned();
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let req = if sign {
                    signed(&client, reqwest::Method::GET, &base, &path, Vec::new())
                } else {
                    client.get(format!("{base}{path}"))
                };
                let r = req.send().await.expect("get");
                assert_eq!(r.status(), 200);
                r.bytes().await.expect("body");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / READ_FOR.as_secs_f64()
}

async fn bench(label: &str, database_url: Option<String>, floor_rps: f64) {
    let dir = tempfile::tempdir().expect("tmp");
    let drop_url = database_url.clone();
    let config = ControlConfig {
        data_dir: dir.path().to_path_buf(),
        database_url,
        run_functions: false,
        ..ControlConfig::default()
    };
    let control = match ControlPlane::open(config, creds()).await {
        Ok(c) => c,
        Err(e) => {
            println!("| {label} | unavailable: {e} | | | |");
            return;
        }
    };
    let base = serve(ledge_control::router(control.state())).await;
    let client = reqwest::Client::new();
    let small = create_publish(&client, &base, 1024, 40).await;
    let large = create_publish(&client, &base, 5 * 1024 * 1024, 8).await;
    let rps = requests_per_second(
        &client,
        &base,
        "/2015-03-31/functions/bench-1024-0/configuration",
        true,
    )
    .await;
    println!(
        "| {label} | {small:.1} ms | {large:.1} ms | {rps:.0} | {:.2} |",
        rps / floor_rps
    );
    if let Some(url) = drop_url {
        control.state().store().pool().close().await;
        use sqlx::migrate::MigrateDatabase;
        let _ = sqlx::Any::drop_database(&url).await;
    }
}

#[tokio::main]
async fn main() {
    // The floor: the same JSON from a bare axum handler, no auth, no database.
    let doc = serde_json::json!({
        "FunctionName": "bench-1024-0",
        "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:bench-1024-0",
        "Runtime": "nodejs20.x", "Role": "arn:aws:iam::000000000000:role/bench",
        "Handler": "index.handler", "CodeSize": 1136, "Description": "", "Timeout": 3,
        "MemorySize": 128, "LastModified": "2024-01-15T12:00:00.000+0000",
        "CodeSha256": "x".repeat(44), "Version": "$LATEST",
        "TracingConfig": {"Mode": "PassThrough"}, "RevisionId": "r", "State": "Active",
        "LastUpdateStatus": "Successful", "PackageType": "Zip", "Architectures": ["x86_64"],
    });
    let floor = axum::Router::new().route(
        "/2015-03-31/functions/bench-1024-0/configuration",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    );
    let floor_base = serve(floor).await;
    let client = reqwest::Client::new();
    let floor_rps = requests_per_second(
        &client,
        &floor_base,
        "/2015-03-31/functions/bench-1024-0/configuration",
        false,
    )
    .await;
    println!(
        "GetFunctionConfiguration floor (bare axum, same JSON, {CONCURRENCY} connections): {floor_rps:.0} req/s\n"
    );
    println!("| store | Create+Publish 1 KiB (median) | Create+Publish 5 MiB (median) | GetFunctionConfiguration req/s | vs floor |");
    println!("|---|---|---|---|---|");
    bench("SQLite", None, floor_rps).await;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    bench(
        "PostgreSQL",
        Some(format!(
            "postgres://postgres@127.0.0.1:5432/ledge_bench_{}_{nanos}",
            std::process::id()
        )),
        floor_rps,
    )
    .await;
}
