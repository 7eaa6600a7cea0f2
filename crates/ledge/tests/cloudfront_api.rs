//! The CloudFront API end to end: the real `ledge control` binary on port 0, driven by the
//! real AWS CLI and boto3 (pinned in `tests/requirements.txt`), on SQLite and on PostgreSQL.
//!
//! PostgreSQL must be reachable at 127.0.0.1:5432 (user `postgres`, trust auth): each test
//! creates its own database (ledge creates it on start) and drops it afterwards. When
//! PostgreSQL, Python, boto3 or the AWS CLI is missing these tests fail; they never skip.

use ledge_test::control::{Aws, Control};
use ledge_test::pg::PgDb;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

const KEY: &str = "AKIDLEDGETEST0000002";
const SECRET: &str = "ledge/test/secret/cloudfront0123456789";

/// A running `ledge control`, stopped on drop.
struct Ledge {
    control: Control,
}

impl Ledge {
    fn start(database_url: Option<&str>, extra: &[&str]) -> Self {
        let bin = env!("CARGO_BIN_EXE_ledge");
        Self {
            control: Control::start(bin, (KEY, SECRET), database_url, extra, &[]),
        }
    }

    /// The AWS CLI's `cloudfront` commands against this ledge.
    fn cli(&self) -> Aws<'_> {
        Aws::new(&self.control.endpoint, KEY, SECRET).service("cloudfront")
    }

    /// `aws cloudfront …` that must succeed; its JSON output.
    fn aws_ok(&self, args: &[&str]) -> Value {
        self.cli().ok(args)
    }

    /// `aws cloudfront …` that must fail with `code`.
    fn aws_err(&self, args: &[&str], code: &str) {
        self.cli().err(args, code)
    }

    /// Runs suites of `cloudfront_api/boto3_suite.py` against this ledge.
    fn boto3(&self, suite: &str) -> String {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cloudfront_api/boto3_suite.py");
        let out = Command::new("python3")
            .arg(&script)
            .args([&self.control.endpoint, KEY, SECRET, suite])
            .output()
            .expect("python3 with boto3 (pip install -r tests/requirements.txt)");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "boto3 suite {suite} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// The CLI walk-through of the README: create from a file, get-config → edit → update with
/// --if-match, invalidate, list, disable, wait, delete.
fn awscli_suite(ledge: &Ledge) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = json!({
        "CallerReference": "readme-1",
        "Aliases": {"Quantity": 1, "Items": ["www.shop.test"]},
        "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "app", "DomainName": "app.internal.test",
            "CustomOriginConfig": {"HTTPPort": 8081, "HTTPSPort": 443,
                                   "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
        "Comment": "created with the AWS CLI",
        "Enabled": true
    });
    let file = dir.path().join("dist.json");
    std::fs::write(&file, config.to_string()).expect("write config");
    let file_arg = format!("file://{}", file.display());

    let created = ledge.aws_ok(&["create-distribution", "--distribution-config", &file_arg]);
    let id = created["Distribution"]["Id"]
        .as_str()
        .expect("Id")
        .to_owned();
    assert_eq!(created["Distribution"]["Status"], "InProgress");
    assert!(created["Distribution"]["DomainName"]
        .as_str()
        .is_some_and(|d| d.ends_with(".cdn.test")));
    assert_eq!(
        created["Distribution"]["DistributionConfig"]["Aliases"],
        config["Aliases"]
    );
    ledge.aws_err(
        &["create-distribution", "--distribution-config", &file_arg],
        "DistributionAlreadyExists",
    );

    let got = ledge.aws_ok(&["get-distribution-config", "--id", &id]);
    let etag = got["ETag"].as_str().expect("ETag").to_owned();
    let mut edited = got["DistributionConfig"].clone();
    edited["Comment"] = json!("edited");
    let edited_file = dir.path().join("edited.json");
    std::fs::write(&edited_file, edited.to_string()).expect("write config");
    let edited_arg = format!("file://{}", edited_file.display());
    let updated = ledge.aws_ok(&[
        "update-distribution",
        "--id",
        &id,
        "--if-match",
        &etag,
        "--distribution-config",
        &edited_arg,
    ]);
    assert_eq!(
        updated["Distribution"]["DistributionConfig"]["Comment"],
        "edited"
    );
    ledge.aws_err(
        &[
            "update-distribution",
            "--id",
            &id,
            "--if-match",
            &etag,
            "--distribution-config",
            &edited_arg,
        ],
        "PreconditionFailed",
    );
    let etag = updated["ETag"].as_str().expect("ETag").to_owned();

    let inv = ledge.aws_ok(&[
        "create-invalidation",
        "--distribution-id",
        &id,
        "--paths",
        "/index.html",
        "/img/*",
    ]);
    let inv_id = inv["Invalidation"]["Id"].as_str().expect("Id").to_owned();
    assert_eq!(
        inv["Invalidation"]["InvalidationBatch"]["Paths"]["Quantity"],
        2
    );
    ledge.aws_ok(&[
        "wait",
        "invalidation-completed",
        "--distribution-id",
        &id,
        "--id",
        &inv_id,
    ]);
    let invs = ledge.aws_ok(&["list-invalidations", "--distribution-id", &id]);
    assert_eq!(invs["InvalidationList"]["Items"][0]["Id"], inv_id.as_str());

    let list = ledge.aws_ok(&["list-distributions"]);
    assert_eq!(list["DistributionList"]["Items"][0]["Id"], id.as_str());

    ledge.aws_err(
        &["delete-distribution", "--id", &id, "--if-match", &etag],
        "DistributionNotDisabled",
    );
    edited["Enabled"] = json!(false);
    std::fs::write(&edited_file, edited.to_string()).expect("write config");
    let disabled = ledge.aws_ok(&[
        "update-distribution",
        "--id",
        &id,
        "--if-match",
        &etag,
        "--distribution-config",
        &edited_arg,
    ]);
    let etag = disabled["ETag"].as_str().expect("ETag").to_owned();
    ledge.aws_ok(&["wait", "distribution-deployed", "--id", &id]);
    ledge.aws_ok(&["delete-distribution", "--id", &id, "--if-match", &etag]);
    ledge.aws_err(&["get-distribution", "--id", &id], "NoSuchDistribution");

    let managed = ledge.aws_ok(&["list-cache-policies", "--type", "managed"]);
    assert!(managed["CachePolicyList"]["Items"]
        .as_array()
        .is_some_and(|items| items
            .iter()
            .any(|i| i["CachePolicy"]["CachePolicyConfig"]["Name"] == "CachingOptimized")));
}

#[test]
fn aws_cli_on_sqlite() {
    let ledge = Ledge::start(None, &["--edge-domain", "cdn.test"]);
    awscli_suite(&ledge);
}

#[test]
fn aws_cli_on_postgres() {
    let db = PgDb::new();
    let ledge = Ledge::start(Some(&db.url()), &["--edge-domain", "cdn.test"]);
    awscli_suite(&ledge);
}

#[test]
fn boto3_distributions_and_validation_on_sqlite() {
    let ledge = Ledge::start(None, &[]);
    ledge.boto3("distributions,validation,tags");
}

#[test]
fn boto3_lambda_policies_invalidations_raw_on_sqlite() {
    let ledge = Ledge::start(None, &[]);
    ledge.boto3("lambda,policies,invalidations,raw");
}

#[test]
fn boto3_everything_on_postgres() {
    let db = PgDb::new();
    let ledge = Ledge::start(Some(&db.url()), &[]);
    let out = ledge.boto3("all");
    assert!(out.contains("checks passed"), "{out}");
}

#[test]
fn two_control_planes_share_postgres() {
    // Two control planes on one PostgreSQL: distributions made through one are served by the
    // other, and the uniqueness rules hold across them.
    let db = PgDb::new();
    let a = Ledge::start(Some(&db.url()), &[]);
    let b = Ledge::start(Some(&db.url()), &[]);
    a.boto3("tags");
    let listed = b.aws_ok(&["list-distributions"]);
    // The CLI's paginator keeps only the items.
    let items = listed["DistributionList"]["Items"].as_array().map(Vec::len);
    assert_eq!(items, Some(1), "{listed}");
}
