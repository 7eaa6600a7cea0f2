//! Lambda's validation rules for function configuration and packages (`apis.md` §2.3, §2.8).

use std::collections::BTreeMap;
use std::io::Cursor;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use ledge_runtime::RESERVED_ENV;

use crate::error::{ApiError, Violations};

/// Runtimes ledge can run: those the function runtime has interpreters for.
pub use ledge_runtime::SUPPORTED_RUNTIMES as RUNTIMES;

/// Largest unzipped package.
pub const MAX_UNZIPPED: u64 = 262_144_000;
/// Largest total size of environment variable names and values.
const MAX_ENV_BYTES: usize = 4096;

/// A decoded, checked package.
#[derive(Debug, Clone)]
pub struct Package {
    /// The zip bytes.
    pub bytes: Bytes,
    /// Hex SHA-256 (the blob key).
    pub hex: String,
    /// Base64 SHA-256 (Lambda's `CodeSha256`).
    pub sha256: String,
}

/// The configuration members shared by Create and UpdateFunctionConfiguration; `None` means
/// "not given".
#[derive(Debug, Default)]
pub struct ConfigInput<'a> {
    /// `Role`.
    pub role: Option<&'a str>,
    /// `Handler`.
    pub handler: Option<&'a str>,
    /// `Description`.
    pub description: Option<&'a str>,
    /// `Timeout`.
    pub timeout: Option<i64>,
    /// `MemorySize`.
    pub memory_size: Option<i64>,
    /// `Runtime`.
    pub runtime: Option<&'a str>,
    /// `Environment.Variables`.
    pub environment: Option<&'a BTreeMap<String, String>>,
    /// `Architectures`.
    pub architectures: Option<&'a [String]>,
}

fn is_role_arn(role: &str) -> bool {
    // arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+
    let Some(rest) = role.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    let partition_ok = partition.is_empty()
        || (partition.starts_with("aws")
            && partition[3..]
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'-'));
    let Some(rest) = rest.strip_prefix("iam::") else {
        return false;
    };
    let Some((account, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(path) = rest.strip_prefix("role") else {
        return false;
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    partition_ok
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
}

/// Checks the model constraints (ValidationException) and then the semantic rules
/// (InvalidParameterValueException) of the members that are present.
pub fn check_config(input: &ConfigInput<'_>) -> Result<(), ApiError> {
    let mut v = Violations::default();
    if let Some(role) = input.role {
        if !is_role_arn(role) {
            v.add(
                role,
                "role",
                r"Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
            );
        }
    }
    if let Some(handler) = input.handler {
        if handler.len() > 128 {
            v.add(
                handler,
                "handler",
                "Member must have length less than or equal to 128",
            );
        } else if handler.is_empty() || handler.chars().any(char::is_whitespace) {
            v.add(
                handler,
                "handler",
                r"Member must satisfy regular expression pattern: [^\s]+",
            );
        }
    }
    if let Some(d) = input.description {
        if d.chars().count() > 256 {
            v.add(
                d,
                "description",
                "Member must have length less than or equal to 256",
            );
        }
    }
    if let Some(t) = input.timeout {
        if t < 1 {
            v.add(
                &t.to_string(),
                "timeout",
                "Member must have value greater than or equal to 1",
            );
        } else if t > 900 {
            v.add(
                &t.to_string(),
                "timeout",
                "Member must have value less than or equal to 900",
            );
        }
    }
    if let Some(m) = input.memory_size {
        if m < 128 {
            v.add(
                &m.to_string(),
                "memorySize",
                "Member must have value greater than or equal to 128",
            );
        } else if m > 10240 {
            v.add(
                &m.to_string(),
                "memorySize",
                "Member must have value less than or equal to 10240",
            );
        }
    }
    if let Some(archs) = input.architectures {
        let shown = format!("[{}]", archs.join(", "));
        if archs.len() != 1 {
            v.add(
                &shown,
                "architectures",
                "Member must have length less than or equal to 1",
            );
        } else if !matches!(archs[0].as_str(), "x86_64" | "arm64") {
            v.add(
                &shown,
                "architectures",
                "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
            );
        }
    }
    v.finish()?;
    if let Some(runtime) = input.runtime {
        if !RUNTIMES.contains(&runtime) {
            return Err(ApiError::InvalidParameter(format!(
                "The runtime parameter of {runtime} is not supported for creating or updating AWS Lambda functions. Supported runtimes: {}.",
                RUNTIMES.join(", ")
            )));
        }
    }
    if let Some(env) = input.environment {
        check_environment(env)?;
    }
    Ok(())
}

fn check_environment(env: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let mut size = 0;
    for (k, val) in env {
        let mut chars = k.chars();
        let well_formed = k.len() >= 2
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] (key '{k}')"
            )));
        }
        if RESERVED_ENV.contains(&k.as_str()) {
            return Err(ApiError::InvalidParameter(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {k}"
            )));
        }
        size += k.len() + val.len();
    }
    if size > MAX_ENV_BYTES {
        return Err(ApiError::InvalidParameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {size} bytes"
        )));
    }
    Ok(())
}

/// Decodes `ZipFile` and checks it is a readable zip within the unzipped-size quota.
pub fn decode_package(zip_b64: &str) -> Result<Package, ApiError> {
    let unzip_error = || {
        ApiError::InvalidParameter(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
                .into(),
        )
    };
    let bytes = B64.decode(zip_b64.trim()).map_err(|_| unzip_error())?;
    let mut archive = zip::ZipArchive::new(Cursor::new(&bytes)).map_err(|_| unzip_error())?;
    let mut unzipped: u64 = 0;
    for i in 0..archive.len() {
        // Sizes from the central directory: enough for the quota check without inflating.
        let entry = archive.by_index_raw(i).map_err(|_| unzip_error())?;
        unzipped = unzipped.saturating_add(entry.size());
    }
    if unzipped > MAX_UNZIPPED {
        return Err(ApiError::InvalidParameter(format!(
            "Unzipped size must be smaller than {MAX_UNZIPPED} bytes"
        )));
    }
    let digest = Sha256::digest(&bytes);
    Ok(Package {
        hex: hex::encode(digest),
        sha256: B64.encode(digest),
        bytes: Bytes::from(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert!(is_role_arn("arn:aws:iam::111122223333:role/edge-role"));
        assert!(is_role_arn("arn:aws-cn:iam::111122223333:role/a/b"));
        assert!(!is_role_arn("arn:aws:iam::1111:role/x"));
        assert!(!is_role_arn("role"));
    }

    #[test]
    fn ranges() {
        let bad = ConfigInput {
            timeout: Some(0),
            memory_size: Some(64),
            ..Default::default()
        };
        let Err(ApiError::Validation(m)) = check_config(&bad) else {
            panic!("expected a validation error")
        };
        assert!(
            m.starts_with("2 validation errors detected: Value '0' at 'timeout'"),
            "{m}"
        );
        let rt = ConfigInput {
            runtime: Some("cobol"),
            ..Default::default()
        };
        assert!(matches!(
            check_config(&rt),
            Err(ApiError::InvalidParameter(_))
        ));
    }

    #[test]
    fn packages() {
        assert!(matches!(
            decode_package("bm90IGEgemlw"),
            Err(ApiError::InvalidParameter(_))
        ));
    }
}
