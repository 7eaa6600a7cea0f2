//! Shared helpers: packages zipped from in-test sources, runtimes in temp dirs.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ledge_runtime::{FunctionHandle, FunctionSpec, PackageRef, Runtime, RuntimeConfig};

/// Zips `(path, contents)` pairs in memory.
pub fn zip_files(files: &[(&str, &str)]) -> Bytes {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, contents) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(contents.as_bytes()).unwrap();
    }
    Bytes::from(writer.finish().unwrap().into_inner())
}

/// A runtime in a fresh temp dir.
pub struct TestRuntime {
    pub runtime: Runtime,
    pub dir: tempfile::TempDir,
}

pub fn runtime() -> TestRuntime {
    runtime_with(|_| {})
}

pub fn runtime_with(tweak: impl FnOnce(&mut RuntimeConfig)) -> TestRuntime {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuntimeConfig::new(dir.path().join("data"));
    tweak(&mut config);
    let runtime = Runtime::new(config).unwrap();
    TestRuntime { runtime, dir }
}

pub fn spec(runtime: &str, handler: &str, files: &[(&str, &str)]) -> FunctionSpec {
    let mut spec = FunctionSpec::new("fn", runtime, handler, PackageRef::Zip(zip_files(files)));
    spec.version = "1".to_string();
    spec
}

impl TestRuntime {
    pub async fn load(
        &self,
        runtime: &str,
        handler: &str,
        files: &[(&str, &str)],
    ) -> Arc<FunctionHandle> {
        self.runtime
            .load(spec(runtime, handler, files))
            .await
            .unwrap()
    }

    pub async fn load_with(
        &self,
        runtime: &str,
        handler: &str,
        files: &[(&str, &str)],
        tweak: impl FnOnce(&mut FunctionSpec),
    ) -> Arc<FunctionHandle> {
        let mut spec = spec(runtime, handler, files);
        tweak(&mut spec);
        self.runtime.load(spec).await.unwrap()
    }
}

/// Invokes and parses the result as JSON, panicking on errors.
pub async fn call(f: &FunctionHandle, event: &str) -> serde_json::Value {
    match f.invoke(event.as_bytes()).await {
        Ok(out) => serde_json::from_slice(&out.payload).unwrap(),
        Err(e) => panic!(
            "invoke failed: {e} ({})",
            String::from_utf8_lossy(&e.to_lambda_json())
        ),
    }
}

pub const SECOND: Duration = Duration::from_secs(1);

/// True when the tests run as root (mounts, other uids and namespaces are then available).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Mount points listed in this process's mountinfo.
pub fn mount_points() -> Vec<std::path::PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(std::path::PathBuf::from)
        .collect()
}
