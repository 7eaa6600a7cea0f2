//! A real `ledge control` on port 0, and the real AWS CLI (pinned in `tests/requirements.txt`)
//! against an API endpoint.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::process;

/// A running `ledge control` with a data directory of its own, stopped on drop.
#[derive(Debug)]
pub struct Control {
    child: Child,
    /// `http://127.0.0.1:<port>`, as its listening line gave it.
    pub endpoint: String,
    /// Its data directory, removed on drop.
    pub data: tempfile::TempDir,
}

impl Control {
    /// Starts `bin control` with the key pair, on `database_url` (SQLite in the data directory
    /// when `None`), with extra flags and environment.
    pub fn start(
        bin: &str,
        (key, secret): (&str, &str),
        database_url: Option<&str>,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Control {
        let data = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(bin);
        cmd.arg("control")
            .arg("--data-dir")
            .arg(data.path())
            .arg("--api-listen")
            .arg("127.0.0.1:0")
            .env("LEDGE_ACCESS_KEY_ID", key)
            .env("LEDGE_SECRET_ACCESS_KEY", secret)
            .env("LEDGE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.args(extra).envs(envs.iter().copied());
        let mut child = cmd.spawn().expect("start ledge control");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let Some(endpoint) = line.trim().strip_prefix("ledge: api listening on ") else {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.kill();
            panic!("ledge control did not start (stdout {line:?}): {err}");
        };
        Control {
            endpoint: endpoint.to_owned(),
            child,
            data,
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        process::stop(&mut self.child);
    }
}

/// `aws --endpoint-url <endpoint> --output json [service] …` with a key pair of its own: no
/// profile or shared credentials file of the machine is read, and no call is retried.
#[derive(Debug, Clone)]
pub struct Aws<'a> {
    endpoint: &'a str,
    key: &'a str,
    secret: &'a str,
    service: Option<&'a str>,
}

impl<'a> Aws<'a> {
    /// The CLI against `endpoint`, signing with `key` and `secret`.
    pub fn new(endpoint: &'a str, key: &'a str, secret: &'a str) -> Aws<'a> {
        Aws {
            endpoint,
            key,
            secret,
            service: None,
        }
    }

    /// Puts `service` (`lambda`, `cloudfront`) before every command's arguments.
    pub fn service(mut self, service: &'a str) -> Aws<'a> {
        self.service = Some(service);
        self
    }

    /// Runs the command, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("aws")
            .arg("--endpoint-url")
            .arg(self.endpoint)
            .arg("--output")
            .arg("json")
            .args(self.service)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", self.key)
            .env("AWS_SECRET_ACCESS_KEY", self.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .output()
            .expect("the AWS CLI (pip install -r tests/requirements.txt)")
    }

    /// Runs a command that must succeed; its JSON output (`Null` when it printed nothing).
    pub fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "aws {} {args:?} failed: {}",
            self.service.unwrap_or(""),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("aws prints JSON")
    }

    /// Runs a command that must fail with the AWS error `code`.
    pub fn err(&self, args: &[&str], code: &str) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "aws {args:?} succeeded, expected {code}"
        );
        assert!(
            stderr.contains(&format!("An error occurred ({code})")),
            "aws {args:?}: expected {code}, got: {stderr}"
        );
    }
}
