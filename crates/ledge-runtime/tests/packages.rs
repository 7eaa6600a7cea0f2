//! Packages: content addressing, read-only extraction, and every zip guard.
mod common;

use std::os::unix::fs::PermissionsExt;

use bytes::Bytes;
use common::*;
use ledge_runtime::{LoadError, PackageError, PackageRef};

/// A stored (uncompressed) zip with arbitrary names and unix modes, for archives that
/// well-behaved writers refuse to produce.
fn raw_zip(entries: &[(&str, &[u8], u32)]) -> Bytes {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, mode) in entries {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&[0; 6]); // flags, method (stored), time
        out.extend_from_slice(&0u16.to_le_bytes()); // date
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&[0; 8]); // flags, method, time, date
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attrs
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Bytes::from(out)
}

const FILE: u32 = 0o100644;
const LINK: u32 = 0o120777;

async fn load_zip(rt: &TestRuntime, zip: Bytes) -> Result<(), LoadError> {
    let mut s = spec("nodejs20.x", "index.handler", &[]);
    s.code = PackageRef::Zip(zip);
    rt.runtime.load(s).await.map(|_| ())
}

fn package_error(result: Result<(), LoadError>) -> PackageError {
    match result {
        Err(LoadError::Package(e)) => e,
        other => panic!("expected a package error, got {other:?}"),
    }
}

#[tokio::test]
async fn hostile_zips_are_refused() {
    let rt = runtime();
    let ok = b"exports.handler = async () => 1;".as_slice();
    let cases: Vec<(&str, Bytes)> = vec![
        (
            "slip",
            raw_zip(&[("index.js", ok, FILE), ("../evil.js", ok, FILE)]),
        ),
        ("deep slip", raw_zip(&[("a/../../evil.js", ok, FILE)])),
        ("absolute", raw_zip(&[("/tmp/evil.js", ok, FILE)])),
        (
            "duplicate",
            raw_zip(&[("index.js", ok, FILE), ("./index.js", ok, FILE)]),
        ),
        (
            "symlink out",
            raw_zip(&[
                ("index.js", ok, FILE),
                ("passwd", b"../../../../etc/passwd", LINK),
            ]),
        ),
        (
            "absolute symlink",
            raw_zip(&[("index.js", ok, FILE), ("passwd", b"/etc/passwd", LINK)]),
        ),
        (
            "not a zip",
            Bytes::from_static(b"PK\x03\x04 definitely not a zip"),
        ),
    ];
    for (what, zip) in cases {
        let err = package_error(load_zip(&rt, zip).await);
        let expected = match what {
            "slip" | "deep slip" | "absolute" => matches!(err, PackageError::UnsafePath(_)),
            "duplicate" => matches!(err, PackageError::DuplicateEntry(_)),
            "symlink out" | "absolute symlink" => matches!(err, PackageError::SymlinkOutside(_)),
            _ => matches!(err, PackageError::InvalidZip(_)),
        };
        assert!(expected, "{what}: {err:?}");
        assert_eq!(err.error_code(), "InvalidParameterValueException");
    }
    // Nothing half-extracted is left behind.
    let code = rt.runtime.config().data_dir.join("code");
    assert_eq!(std::fs::read_dir(code).unwrap().count(), 0);
}

#[tokio::test]
async fn zip_bombs_and_size_limits() {
    let rt = runtime_with(|c| {
        c.package_limits.max_entries = 3;
        c.package_limits.max_zip_bytes = 1024 * 1024;
        c.package_limits.max_unzipped_bytes = 8 * 1024 * 1024;
    });
    let zeros = "\0".repeat(6 * 1024 * 1024);
    let bomb = zip_files(&[
        ("index.js", "exports.handler = async () => 1;"),
        ("zeros.bin", &zeros),
    ]);
    assert!(matches!(
        package_error(load_zip(&rt, bomb).await),
        PackageError::CompressionRatio { .. }
    ));

    let many = zip_files(&[("a", ""), ("b", ""), ("c", ""), ("d", "")]);
    assert!(matches!(
        package_error(load_zip(&rt, many).await),
        PackageError::TooManyEntries { limit: 3 }
    ));

    // Stored (uncompressed) so the ratio check passes; the total still counts.
    let big = vec![b'x'; 600 * 1024];
    let total = raw_zip(&[("a", &big, FILE)]);
    let too_big = raw_zip(&[("a", &big, FILE), ("b", &big, FILE)]);
    assert!(load_zip(&rt, total).await.is_ok());
    let err = package_error(load_zip(&rt, too_big).await);
    assert!(matches!(err, PackageError::ZipTooLarge { .. }), "{err:?}");
    assert_eq!(err.error_code(), "RequestEntityTooLargeException");

    let tight = runtime_with(|c| c.package_limits.max_unzipped_bytes = 1000);
    let err = package_error(
        load_zip(
            &tight,
            raw_zip(&[("a", &[b'y'; 600], FILE), ("b", &[b'z'; 600], FILE)]),
        )
        .await,
    );
    assert!(
        matches!(err, PackageError::UnzippedTooLarge { limit: 1000 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn packages_are_content_addressed_read_only_and_may_link_inside() {
    let rt = runtime();
    let zip = raw_zip(&[
        (
            "lib/real.js",
            b"exports.handler = async () => 'via link';",
            FILE,
        ),
        ("index.js", b"lib/real.js", LINK),
    ]);
    let mut s = spec("nodejs20.x", "index.handler", &[]);
    s.code = PackageRef::Zip(zip.clone());
    let a = rt.runtime.load(s.clone()).await.unwrap();
    s.version = "2".into();
    let b = rt.runtime.load(s).await.unwrap();
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&zip));
    assert_eq!(a.package().sha256, sha);
    assert_eq!(a.package().code_size, zip.len() as u64);
    assert_eq!(b.package().sha256, sha);
    assert_eq!(call(&a, "{}").await, serde_json::json!("via link"));
    let real = a.package().dir.join("lib/real.js");
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "package files are read-only: {mode:o}");

    // A directory is packaged the same way.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("index.py"),
        "def handler(e, c):\n    return 'from dir'\n",
    )
    .unwrap();
    let mut d = spec("python3.11", "index.handler", &[]);
    d.code = PackageRef::Dir(src.path().to_path_buf());
    let f = rt.runtime.load(d).await.unwrap();
    assert_eq!(call(&f, "{}").await, serde_json::json!("from dir"));
}
