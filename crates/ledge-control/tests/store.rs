//! The store and the blob sweep, on SQLite and on PostgreSQL (127.0.0.1:5432, user postgres,
//! trust auth; each test gets its own database, and fails when PostgreSQL is unreachable),
//! plus the router through `oneshot` (no socket).

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use ledge_control::blobs::BlobStore;
use ledge_control::store::{PublishError, Store, UpdateError, VersionConfig, VersionRow};
use ledge_control::{ControlConfig, ControlPlane, Credentials};
use tower::ServiceExt;

fn postgres_url(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "postgres://postgres@127.0.0.1:5432/ledge_store_{test}_{}_{nanos}",
        std::process::id()
    )
}

fn row(name: &str, code: &str) -> VersionRow {
    VersionRow {
        function_name: name.into(),
        version: 0,
        revision_id: String::new(),
        code_hex: code.into(),
        code_size: 10,
        config: VersionConfig {
            runtime: "nodejs20.x".into(),
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: "index.handler".into(),
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            environment: Default::default(),
            architectures: vec!["x86_64".into()],
            code_sha256: format!("sha-{code}"),
            last_modified: "2024-01-15T12:00:00.000+0000".into(),
        },
    }
}

async fn versions_and_revisions(store: Store) {
    let latest = store
        .create_function(row("f", "c1"), false, 0)
        .await
        .unwrap();
    assert!(matches!(
        store.create_function(row("f", "c1"), false, 0).await,
        Err(ledge_control::store::CreateFunctionError::AlreadyExists)
    ));
    let v1 = store.publish("f", None, None, None, "now").await.unwrap();
    assert_eq!(v1.version, 1);
    // Nothing changed: the same version comes back.
    let again = store.publish("f", None, None, None, "now").await.unwrap();
    assert_eq!(again.version, 1);
    assert!(matches!(
        store.publish("f", Some("other"), None, None, "now").await,
        Err(PublishError::CodeShaMismatch { .. })
    ));
    // A stale RevisionId is refused; the current one is accepted.
    assert!(matches!(
        store
            .update_latest("f", Some("stale"), false, |r| r.clone())
            .await,
        Err(UpdateError::RevisionMismatch)
    ));
    let updated = store
        .update_latest("f", Some(&latest.revision_id), true, |r| {
            let mut n = r.clone();
            n.code_hex = "c2".into();
            n
        })
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    // Deleting the newest version does not free its number.
    store.delete_version("f", 2).await.unwrap();
    store
        .update_latest("f", None, false, |r| r.clone())
        .await
        .unwrap();
    let v3 = store.publish("f", None, None, None, "now").await.unwrap();
    assert_eq!(v3.version, 3);
    let all = store
        .list_versions(Some("f"), false, None, 10)
        .await
        .unwrap();
    let numbers: Vec<i64> = all.iter().map(|r| r.version).collect();
    assert_eq!(numbers, [0, 1, 3]);
    assert_eq!(
        store.referenced_code().await.unwrap(),
        ["c1", "c2"].iter().map(|s| s.to_string()).collect()
    );
    store.delete_function("f").await.unwrap();
    assert!(store.get_version("f", 0).await.unwrap().is_none());
    assert!(store.referenced_code().await.unwrap().is_empty());
}

#[tokio::test]
async fn store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    versions_and_revisions(Store::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn store_on_postgres() {
    let url = postgres_url("versions");
    let store = Store::open(&url)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    versions_and_revisions(store.clone()).await;
    // Opening again (a second control plane) finds the schema in place.
    let again = Store::open(&url).await.unwrap();
    store.pool().close().await;
    again.pool().close().await;
    use sqlx::migrate::MigrateDatabase;
    sqlx::Any::drop_database(&url).await.unwrap();
}

#[tokio::test]
async fn sweep_removes_only_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let config = ControlConfig {
        data_dir: dir.path().to_path_buf(),
        orphan_grace: Duration::ZERO,
        run_functions: false,
        ..ControlConfig::default()
    };
    let control = ControlPlane::open(config, ledge_control::credentials::generate())
        .await
        .unwrap();
    let state = control.state();
    let blobs: &BlobStore = state.blobs();
    blobs.put("aa", "kept".into()).await.unwrap();
    blobs.put("bb", "orphan".into()).await.unwrap();
    state
        .store()
        .create_function(row("f", "aa"), false, 0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(control.sweep_orphans().await.unwrap(), 1);
    assert!(blobs.get("aa").await.is_ok());
    assert!(blobs.get("bb").await.is_err());
}

#[tokio::test]
async fn router_requires_a_signature() {
    let dir = tempfile::tempdir().unwrap();
    let config = ControlConfig {
        data_dir: dir.path().to_path_buf(),
        run_functions: false,
        ..ControlConfig::default()
    };
    let creds = Credentials {
        access_key_id: "AKIDTEST".into(),
        secret_access_key: "secret".into(),
    };
    let control = ControlPlane::open(config, creds).await.unwrap();
    let app = ledge_control::router(control.state());
    let resp = app
        .oneshot(
            Request::get("/2015-03-31/functions/")
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-ErrorType"],
        "MissingAuthenticationTokenException"
    );
    assert!(resp.headers().contains_key("x-amzn-RequestId"));
}
