//! The Lambda API end to end: the real `ledge control` binary on port 0, driven by the real
//! AWS CLI and boto3 (pinned in `tests/requirements.txt`), on SQLite and on PostgreSQL.
//!
//! PostgreSQL must be reachable at 127.0.0.1:5432 (user `postgres`, trust auth): each test
//! creates its own database (ledge creates it on start), so tests run in parallel. When
//! PostgreSQL, Python, boto3 or the AWS CLI is missing these tests fail; they never skip.

use ledge_test::control::{Aws, Control};
use ledge_test::pg::PgDb;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const KEY: &str = "AKIDLEDGETEST0000001";
const SECRET: &str = "ledge/test/secret/0123456789abcdefABCDEF";

/// A running `ledge control`, stopped on drop.
struct Ledge {
    control: Control,
}

impl Ledge {
    fn start(database_url: Option<&str>) -> Self {
        Self::start_with(database_url, &[], &[])
    }

    fn start_with(database_url: Option<&str>, extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let bin = env!("CARGO_BIN_EXE_ledge");
        Self {
            control: Control::start(bin, (KEY, SECRET), database_url, extra, envs),
        }
    }

    fn endpoint(&self) -> &str {
        &self.control.endpoint
    }

    /// The AWS CLI's `lambda` commands against this ledge, signed with a key pair.
    fn cli_as<'a>(&'a self, key: &'a str, secret: &'a str) -> Aws<'a> {
        Aws::new(self.endpoint(), key, secret).service("lambda")
    }

    /// `aws lambda …` that must succeed; its JSON output.
    fn aws_ok(&self, args: &[&str]) -> Value {
        self.cli_as(KEY, SECRET).ok(args)
    }

    /// `aws lambda …` that must fail with `code`.
    fn aws_err(&self, args: &[&str], code: &str) {
        self.cli_as(KEY, SECRET).err(args, code)
    }

    /// Runs a suite of `boto3_suite.py` against this ledge.
    fn boto3(&self, suite: &str) -> String {
        run_python(&[self.endpoint(), KEY, SECRET, suite], &[])
    }
}

fn run_python(args: &[&str], envs: &[(&str, &str)]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lambda_api/boto3_suite.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("python3 with boto3 (pip install -r tests/requirements.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "boto3 suite {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A small zip written to a temp file, for `--zip-file fileb://…`.
fn zip_file(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('index.js', sys.argv[2])",
        )
        .arg(&path)
        .arg(source)
        .status()
        .expect("python3");
    assert!(status.success());
    path
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn awscli_suite(ledge: &Ledge) {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = zip_file(dir.path(), "one.zip", "exports.handler = async () => 1;");
    let two = zip_file(dir.path(), "two.zip", "exports.handler = async () => 2;");
    let fileb = |p: &Path| format!("fileb://{}", p.display());
    let role = "arn:aws:iam::000000000000:role/edge-role";
    let create = |name: &str| {
        vec![
            "create-function".to_owned(),
            "--function-name".into(),
            name.into(),
            "--runtime".into(),
            "nodejs20.x".into(),
            "--role".into(),
            role.into(),
            "--handler".into(),
            "index.handler".into(),
            "--zip-file".into(),
            fileb(&one),
        ]
    };

    for (key, secret, code) in [
        (KEY, "wrong-secret", "InvalidSignatureException"),
        ("AKIDUNKNOWN", SECRET, "UnrecognizedClientException"),
    ] {
        let out = ledge.cli_as(key, secret).run(&["list-functions"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(&format!("({code})")),
            "expected {code}: {stderr}"
        );
    }
    let created = ledge.aws_ok(&args(&create("cli")));
    assert_eq!(created["Version"], "$LATEST");
    assert_eq!(created["State"], "Active");
    ledge.aws_err(&args(&create("cli")), "ResourceConflictException");
    let mut bad = create("cli-bad");
    bad.extend(["--timeout".into(), "1000".into()]);
    ledge.aws_err(&args(&bad), "ValidationException");
    ledge.aws_ok(&["wait", "function-active-v2", "--function-name", "cli"]);

    let conf = ledge.aws_ok(&["get-function-configuration", "--function-name", "cli"]);
    assert_eq!(conf["Timeout"], 3);
    let v1 = ledge.aws_ok(&["publish-version", "--function-name", "cli"]);
    assert_eq!(v1["Version"], "1");
    let updated = ledge.aws_ok(&[
        "update-function-code",
        "--function-name",
        "cli",
        "--zip-file",
        &fileb(&two),
        "--publish",
    ]);
    assert_eq!(updated["Version"], "2");
    let cfg = ledge.aws_ok(&[
        "update-function-configuration",
        "--function-name",
        "cli",
        "--memory-size",
        "512",
        "--environment",
        "Variables={GREETING=hi}",
    ]);
    assert_eq!(cfg["MemorySize"], 512);
    ledge.aws_ok(&["wait", "function-updated-v2", "--function-name", "cli"]);
    ledge.aws_err(
        &[
            "update-function-configuration",
            "--function-name",
            "cli",
            "--revision-id",
            "stale",
            "--timeout",
            "9",
        ],
        "PreconditionFailedException",
    );
    let got = ledge.aws_ok(&["get-function", "--function-name", "cli", "--qualifier", "1"]);
    assert_eq!(got["Configuration"]["Version"], "1");
    assert!(got["Code"]["Location"]
        .as_str()
        .is_some_and(|l| l.starts_with("http://")));
    let versions = ledge.aws_ok(&["list-versions-by-function", "--function-name", "cli"]);
    let names: Vec<&str> = versions["Versions"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["Version"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["$LATEST", "1", "2"]);
    let listed = ledge.aws_ok(&["list-functions", "--function-version", "ALL"]);
    assert_eq!(listed["Functions"].as_array().map(Vec::len), Some(3));

    let alias = ledge.aws_ok(&[
        "create-alias",
        "--function-name",
        "cli",
        "--name",
        "live",
        "--function-version",
        "1",
    ]);
    assert_eq!(
        alias["AliasArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:cli:live"
    );
    ledge.aws_ok(&[
        "update-alias",
        "--function-name",
        "cli",
        "--name",
        "live",
        "--function-version",
        "2",
    ]);
    let aliases = ledge.aws_ok(&["list-aliases", "--function-name", "cli"]);
    assert_eq!(aliases["Aliases"][0]["FunctionVersion"], "2");
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:cli";
    ledge.aws_ok(&["tag-resource", "--resource", arn, "--tags", "team=edge"]);
    assert_eq!(
        ledge.aws_ok(&["list-tags", "--resource", arn])["Tags"]["team"],
        "edge"
    );
    ledge.aws_ok(&["untag-resource", "--resource", arn, "--tag-keys", "team"]);
    let result = dir.path().join("result.json");
    let invoked = ledge.aws_ok(&[
        "invoke",
        "--function-name",
        "cli",
        "--payload",
        "{}",
        &result.display().to_string(),
    ]);
    assert_eq!(invoked["StatusCode"], 200);
    assert_eq!(std::fs::read_to_string(&result).ok().as_deref(), Some("2"));
    let settings = ledge.aws_ok(&["get-account-settings"]);
    assert_eq!(settings["AccountUsage"]["FunctionCount"], 1);
    ledge.aws_ok(&["delete-alias", "--function-name", "cli", "--name", "live"]);
    ledge.aws_ok(&[
        "delete-function",
        "--function-name",
        "cli",
        "--qualifier",
        "1",
    ]);
    ledge.aws_ok(&["delete-function", "--function-name", arn]);
    ledge.aws_err(
        &["get-function", "--function-name", "cli"],
        "ResourceNotFoundException",
    );
}

#[test]
fn boto3_on_sqlite() {
    let ledge = Ledge::start(None);
    ledge.boto3("api");
}

#[test]
fn boto3_on_postgres() {
    let db = PgDb::new();
    let ledge = Ledge::start(Some(&db.url()));
    ledge.boto3("api");
}

#[test]
fn invoke_with_boto3() {
    Ledge::start(None).boto3("invoke");
}

#[test]
fn awscli_on_sqlite() {
    awscli_suite(&Ledge::start(None));
}

#[test]
fn awscli_on_postgres() {
    let db = PgDb::new();
    awscli_suite(&Ledge::start(Some(&db.url())));
}

#[test]
fn concurrent_publish_on_sqlite() {
    Ledge::start(None).boto3("concurrency");
}

#[test]
fn concurrent_publish_on_postgres() {
    let db = PgDb::new();
    Ledge::start(Some(&db.url())).boto3("concurrency");
}

#[test]
fn two_control_planes_share_one_postgres() {
    let db = PgDb::new();
    let url = db.url();
    let a = Ledge::start(Some(&url));
    let b = Ledge::start(Some(&url));
    a.boto3("create-busy");
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.boto3("publish-many"));
        let tb = s.spawn(|| b.boto3("publish-many"));
        (ta.join(), tb.join())
    });
    let mut versions: Vec<u32> = [ra.expect("a"), rb.expect("b")]
        .iter()
        .flat_map(|out| {
            let line = out.lines().find(|l| l.starts_with('[')).unwrap_or("[]");
            serde_json::from_str::<Vec<u32>>(line).expect("versions as JSON")
        })
        .collect();
    versions.sort_unstable();
    let expected: Vec<u32> = (1..=versions.len() as u32).collect();
    assert_eq!(versions.len(), 24);
    assert_eq!(
        versions, expected,
        "distinct consecutive versions across processes"
    );
}

/// moto's S3-compatible server on a free loopback port, killed on drop.
struct Moto(Child, String);

impl Moto {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m moto.server (pip install -r tests/requirements.txt)");
        let moto = Self(child, format!("http://127.0.0.1:{port}"));
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto_server did not start on port {port}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn packages_in_s3() {
    let moto = Moto::start();
    let s3_env = [
        ("AWS_ENDPOINT_URL", moto.1.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    run_python(&["-", "-", "-", "make-bucket"], &s3_env);
    let ledge = Ledge::start_with(None, &["--blob-url", "s3://ledge-test/pkgs"], &s3_env);
    run_python(&[ledge.endpoint(), KEY, SECRET, "s3"], &s3_env);
}

#[test]
fn generated_credentials_work_with_the_aws_cli() {
    let data = tempfile::tempdir().expect("temp dir");
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledge"))
            .args(["control", "--api-listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env_remove("LEDGE_ACCESS_KEY_ID")
            .env_remove("LEDGE_SECRET_ACCESS_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ledge control");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("stdout");
        let endpoint = line
            .trim()
            .strip_prefix("ledge: api listening on ")
            .map(str::to_owned);
        (child, endpoint)
    };
    let (mut child, endpoint) = start();
    let endpoint = endpoint.expect("listening line");
    let file = data.path().join("credentials");
    let text = std::fs::read_to_string(&file).expect("credentials file");
    assert!(text.starts_with("[ledge]\naws_access_key_id = "), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let list = |endpoint: &str| {
        Command::new("aws")
            .args(["--endpoint-url", endpoint, "lambda", "list-functions"])
            .env("AWS_SHARED_CREDENTIALS_FILE", &file)
            .env("AWS_PROFILE", "ledge")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .output()
            .expect("aws")
    };
    let out = list(&endpoint);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut hint = String::new();
    let _ = child.kill();
    let _ = child.wait();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut hint);
    }
    assert!(hint.contains("AWS_SHARED_CREDENTIALS_FILE="), "{hint}");
    // A restart keeps the same key pair.
    let (mut child, endpoint) = start();
    let out = list(&endpoint.expect("listening line"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&file).ok(), Some(text));
}

#[test]
fn config_file_sets_region_and_account() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ledge.toml");
    std::fs::write(
        &config,
        "# ledge control settings\nregion = \"eu-west-1\"\naccount-id = \"123456789012\"\n",
    )
    .expect("write config");
    let config = config.display().to_string();
    let ledge = Ledge::start_with(None, &["--config", &config], &[]);
    let zip = zip_file(dir.path(), "f.zip", "exports.handler = async () => 1;");
    let created = ledge.aws_ok(&[
        "create-function",
        "--function-name",
        "cfg",
        "--runtime",
        "nodejs20.x",
        "--role",
        "arn:aws:iam::123456789012:role/r",
        "--handler",
        "index.handler",
        "--zip-file",
        &format!("fileb://{}", zip.display()),
    ]);
    assert_eq!(
        created["FunctionArn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:cfg"
    );
}

#[test]
fn invoke_runs_functions_with_the_function_flags() {
    // A 1 MiB /tmp holds one 600 KiB file but not two (as root a tmpfs of that size; otherwise
    // each file is capped at it, and both fit).
    const TWO_FILES: &str = r#"
const fs = require('fs'), os = require('os'), path = require('path');
const write = (name) => {
  try { fs.writeFileSync(path.join(os.tmpdir(), name), Buffer.alloc(600 * 1024, 1)); return 'ok'; }
  catch (e) { return e.code; }
};
exports.handler = async () => {
  const result = write('a') + ' ' + write('b');
  fs.unlinkSync(path.join(os.tmpdir(), 'a'));
  return result;
};
"#;
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let ledge = Ledge::start_with(None, &["--function-tmp-size", "1048576"], &[]);
    let zip = zip_file(dir.path(), "f.zip", TWO_FILES);
    ledge.aws_ok(&[
        "create-function",
        "--function-name",
        "two-files",
        "--runtime",
        "nodejs20.x",
        "--role",
        "arn:aws:iam::000000000000:role/r",
        "--handler",
        "index.handler",
        "--zip-file",
        &format!("fileb://{}", zip.display()),
    ]);
    let result = dir.path().join("out.json");
    let invoked = ledge.aws_ok(&[
        "invoke",
        "--function-name",
        "two-files",
        &result.display().to_string(),
    ]);
    assert_eq!(invoked["StatusCode"], 200, "{invoked}");
    let expected = if root { "\"ok ENOSPC\"" } else { "\"ok ok\"" };
    assert_eq!(
        std::fs::read_to_string(&result).ok().as_deref(),
        Some(expected)
    );
}
