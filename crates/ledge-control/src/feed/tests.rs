//! The feed's HTTP behavior against a real SQLite store.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

use super::*;

async fn feed() -> (Feed, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    feed_on(&url, dir).await
}

async fn feed_on(url: &str, dir: tempfile::TempDir) -> (Feed, Store, tempfile::TempDir) {
    let url = url.to_owned();
    let store = Store::open(&url).await.expect("store");
    let blobs =
        BlobStore::open(&format!("file://{}", dir.path().join("blobs").display())).expect("blobs");
    let config = FeedConfig {
        poll_timeout: Duration::from_secs(5),
        refresh_interval: Duration::from_secs(3600),
    };
    let feed = Feed::open(store.clone(), blobs, config)
        .await
        .expect("feed");
    (feed, store, dir)
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

async fn bump(store: &Store) {
    sqlx::query("UPDATE cf_config_version SET version = version + 1 WHERE id = 1")
        .execute(store.pool())
        .await
        .expect("bump");
}

#[tokio::test]
async fn long_poll_wakes_on_a_change_and_refuses_bad_tokens() {
    let (feed, store, _dir) = feed().await;
    let (_, token) = edges::create_token(&store, Some("t1"))
        .await
        .expect("token");
    feed.refresh().await.expect("refresh");

    let resp = feed
        .routes()
        .oneshot(get("/ledge/feed?after=0&pop=P1", None))
        .await
        .expect("call");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let routes = feed.routes();
    let t = token.clone();
    let poll = tokio::spawn(async move {
        routes
            .oneshot(get("/ledge/feed?after=0&pop=P1&address=a", Some(&t)))
            .await
            .expect("call")
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!poll.is_finished(), "waits while there is nothing newer");
    bump(&store).await;
    feed.poke();
    let resp = feed_task(&feed, poll).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[VERSION_HEADER], "1");

    // Registered by its poll, at version 0 until it acks.
    let list = edges::list_edges(&store).await.expect("edges");
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].applied_version, list[0].lag), (0, 1));
    assert_eq!(store.deployed_version().await.expect("deployed"), Some(0));
}

/// Runs the feed's refresh loop until `poll` answers.
async fn feed_task(
    feed: &Feed,
    poll: tokio::task::JoinHandle<axum::response::Response>,
) -> axum::response::Response {
    let runner = tokio::spawn(feed.clone().run());
    let resp = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("answered in time")
        .expect("join");
    runner.abort();
    resp
}

#[tokio::test]
async fn revoking_a_token_ends_its_open_long_poll() {
    let (feed, store, _dir) = feed().await;
    let (_, token) = edges::create_token(&store, Some("t1"))
        .await
        .expect("token");
    feed.refresh().await.expect("refresh");
    let routes = feed.routes();
    let t = token.clone();
    let poll = tokio::spawn(async move {
        routes
            .oneshot(get("/ledge/feed?after=0&pop=P1", Some(&t)))
            .await
            .expect("call")
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        edges::revoke_token(&store, &token).await.expect("revoke"),
        "t1"
    );
    feed.refresh().await.expect("refresh");
    let resp = tokio::time::timeout(Duration::from_secs(2), poll)
        .await
        .expect("answered at once")
        .expect("join");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(edges::list_tokens(&store).await.expect("list").is_empty());
}

#[tokio::test]
async fn acks_record_version_and_error() {
    let (feed, store, _dir) = feed().await;
    let (_, token) = edges::create_token(&store, None).await.expect("token");
    feed.refresh().await.expect("refresh");
    let ack = Request::post("/ledge/ack")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"Version": 0, "Pop": "P9", "Address": "127.0.0.1:1", "Error": "package x refused"}"#,
        ))
        .expect("request");
    let resp = feed.routes().oneshot(ack).await.expect("call");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let list = edges::list_edges(&store).await.expect("edges");
    assert_eq!(list[0].pop, "P9");
    assert_eq!(list[0].last_error.as_deref(), Some("package x refused"));
    assert!(list[0].live);
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM edge_tokens")
        .fetch_all(store.pool())
        .await
        .expect("tokens");
    assert_eq!(
        stored,
        vec![edges::token_hash(&token)],
        "only the hash is kept"
    );
}

/// The batched, multi-row contact writes on PostgreSQL (at 127.0.0.1:5432, user `postgres`,
/// trust auth, as the CloudFront API tests need): many edges at once, with duplicates.
#[tokio::test]
async fn contact_batches_on_postgres() {
    use sqlx::migrate::MigrateDatabase as _;
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/ledge_feed_{}",
        uuid::Uuid::new_v4().simple()
    );
    let (feed, store, _dir) = feed_on(&url, tempfile::tempdir().expect("tempdir")).await;
    let (_, token) = edges::create_token(&store, Some("pg"))
        .await
        .expect("token");
    feed.refresh().await.expect("refresh");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..300 {
        for version in [1, 2] {
            let routes = feed.routes();
            let body = format!(r#"{{"Version": {version}, "Pop": "P{i}"}}"#);
            let req = Request::post("/ledge/ack")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request");
            calls.spawn(async move { routes.oneshot(req).await.expect("call").status() });
        }
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.expect("join"), StatusCode::NO_CONTENT);
    }
    let list = edges::list_edges(&store).await.expect("edges");
    assert_eq!(list.len(), 300);
    assert!(list.iter().all(|e| e.live && e.applied_version >= 1));
    drop(feed);
    store.pool().close().await;
    let _ = sqlx::Any::drop_database(&url).await;
}

/// A version whose last association was removed stays undeletable until every live edge
/// applied that change (its replicas may still run there); with no live edge, at once.
#[tokio::test]
async fn delete_function_waits_for_replicas_to_go() {
    use crate::store::{DeleteError, DistributionWrite, VersionConfig, VersionRow};
    let (_feed, store, _dir) = feed().await;
    let latest = VersionRow {
        function_name: "f".into(),
        version: 0,
        revision_id: "r0".into(),
        code_hex: "00".repeat(32),
        code_size: 1,
        config: VersionConfig {
            runtime: "nodejs20.x".into(),
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: "index.handler".into(),
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            environment: Default::default(),
            architectures: vec!["x86_64".into()],
            code_sha256: "x".into(),
            last_modified: "t".into(),
        },
    };
    store
        .create_function(latest, true, 0)
        .await
        .expect("function");
    let with = DistributionWrite {
        config: serde_json::json!({"CallerReference": "ref"}),
        etag: "E1".into(),
        lambda: vec![("f".into(), 1)],
        ..Default::default()
    };
    let created = store
        .create_distribution("EDIST", "ref", "d.ledge.localhost", &with, &[])
        .await
        .expect("distribution");
    store
        .ack_version("P1", created.config_version)
        .await
        .expect("ack");
    let without = DistributionWrite {
        config: serde_json::json!({"CallerReference": "ref"}),
        etag: "E2".into(),
        ..Default::default()
    };
    let updated = store
        .update_distribution("EDIST", "E1", &without)
        .await
        .expect("update");
    assert!(matches!(
        store.delete_version("f", 1).await,
        Err(DeleteError::Replicated(Some(1)))
    ));
    store
        .ack_version("P1", updated.config_version)
        .await
        .expect("ack");
    store
        .delete_version("f", 1)
        .await
        .expect("replicas gone: deletable");
}
