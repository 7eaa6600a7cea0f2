//! Lambda@Edge functions for tests: packages built from source text, their snapshot entries,
//! and associations on a distribution's behavior.
//!
//! ```no_run
//! # fn demo(mut d: serde_json::Value) {
//! use ledge_test::lambda::{self, Function};
//! let f = Function::node("redirect", "exports.handler = async () => ({status: '302'});");
//! lambda::associate(&mut d, "viewer-request", &f, false);
//! let snapshot = lambda::snapshot(1, vec![d], &[&f]);
//! # }
//! ```

use std::io::Write;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A function version: its package and how the snapshot names it.
#[derive(Debug, Clone)]
pub struct Function {
    /// Qualified ARN (`…:function:<name>:1`).
    pub arn: String,
    /// Function name.
    pub name: String,
    /// Hex SHA-256 of the package.
    pub sha256: String,
    /// The zip package.
    pub zip: Vec<u8>,
    /// Runtime identifier.
    pub runtime: String,
    /// Handler string.
    pub handler: String,
    /// Timeout in seconds.
    pub timeout: u32,
}

impl Function {
    /// A Node.js 20 function whose `index.js` is `code` (handler `index.handler`).
    pub fn node(name: &str, code: &str) -> Self {
        Self::new(name, "nodejs20.x", "index.handler", &[("index.js", code)])
    }

    /// A Python 3.12 function whose `lambda_function.py` is `code`
    /// (handler `lambda_function.handler`).
    pub fn python(name: &str, code: &str) -> Self {
        Self::new(
            name,
            "python3.12",
            "lambda_function.handler",
            &[("lambda_function.py", code)],
        )
    }

    /// A function from files, version 1.
    ///
    /// # Panics
    /// When the zip cannot be built (a test failure).
    pub fn new(name: &str, runtime: &str, handler: &str, files: &[(&str, &str)]) -> Self {
        let zip = zip_files(files);
        Self {
            arn: format!("arn:aws:lambda:us-east-1:111122223333:function:{name}:1"),
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(&zip)),
            zip,
            runtime: runtime.to_string(),
            handler: handler.to_string(),
            timeout: 5,
        }
    }

    /// The same code published as another version number.
    pub fn version(mut self, v: u32) -> Self {
        let base = self.arn.rsplit_once(':').map_or("", |(b, _)| b).to_string();
        self.arn = format!("{base}:{v}");
        self
    }

    /// Sets the timeout (seconds).
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = secs;
        self
    }

    /// Where the edge looks the package up, relative to its data directory.
    pub fn package_path(&self) -> String {
        format!("packages/{}.zip", self.sha256)
    }

    /// The snapshot's `Functions` entry.
    pub fn entry(&self) -> Value {
        json!({"Arn": self.arn, "CodeSha256": self.sha256, "Runtime": self.runtime,
               "Handler": self.handler, "MemorySize": 128, "Timeout": self.timeout})
    }

    /// The log file of the function's log group under the edge's data directory.
    pub fn log_file(&self, data_dir: &std::path::Path) -> std::path::PathBuf {
        data_dir
            .join("logs")
            .join(format!("aws_lambda_us-east-1.{}.log", self.name))
    }
}

fn zip_files(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    for (name, text) in files {
        w.start_file(*name, opts).expect("zip entry");
        w.write_all(text.as_bytes()).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

/// Associates `f` with the default behavior of `distribution` at `event_type`.
pub fn associate(distribution: &mut Value, event_type: &str, f: &Function, include_body: bool) {
    let b = &mut distribution["Config"]["DefaultCacheBehavior"];
    let mut list = b["LambdaFunctionAssociations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.retain(|a| a["EventType"] != event_type);
    list.push(json!({"LambdaFunctionARN": f.arn, "EventType": event_type,
                     "IncludeBody": include_body}));
    b["LambdaFunctionAssociations"] = Value::Array(list);
}

/// A snapshot of these distributions and function versions.
pub fn snapshot(version: u64, distributions: Vec<Value>, functions: &[&Function]) -> Value {
    json!({"Version": version, "Distributions": distributions,
           "Functions": functions.iter().map(|f| f.entry()).collect::<Vec<_>>()})
}
