//! The root key pair: from the environment, or generated once into `<data-dir>/credentials`.
//!
//! The file is in the AWS shared-credentials format with one profile, `ledge`, so the AWS CLI
//! and the SDKs read it with `AWS_SHARED_CREDENTIALS_FILE=<file> AWS_PROFILE=ledge`.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine as _;

use crate::sigv4::Credentials;

/// The profile name written to the credentials file.
pub const PROFILE: &str = "ledge";

/// Where the credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `LEDGE_ACCESS_KEY_ID` / `LEDGE_SECRET_ACCESS_KEY`.
    Environment,
    /// An existing credentials file.
    File(PathBuf),
    /// Generated now and written to this file.
    Generated(PathBuf),
}

/// Loaded credentials and their origin.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The key pair.
    pub credentials: Credentials,
    /// Where it came from.
    pub source: Source,
}

/// Why credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Reading or writing the file failed.
    #[error("credentials file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The file has no `[ledge]` profile with both keys.
    #[error("credentials file {0} has no [ledge] profile with aws_access_key_id and aws_secret_access_key")]
    Malformed(PathBuf),
}

/// The credentials file of a data directory.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials")
}

/// Uses `from_env` when given; else reads `<data_dir>/credentials`; else generates a pair and
/// writes that file (mode 0600).
pub fn load_or_create(
    data_dir: &Path,
    from_env: Option<Credentials>,
) -> Result<Loaded, CredentialsError> {
    if let Some(credentials) = from_env {
        return Ok(Loaded {
            credentials,
            source: Source::Environment,
        });
    }
    let file = path(data_dir);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let credentials =
                parse(&text).ok_or_else(|| CredentialsError::Malformed(file.clone()))?;
            return Ok(Loaded {
                credentials,
                source: Source::File(file),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CredentialsError::Io(file, e)),
    }
    let credentials = generate();
    write(&file, &credentials).map_err(|e| CredentialsError::Io(file.clone(), e))?;
    Ok(Loaded {
        credentials,
        source: Source::Generated(file),
    })
}

/// A fresh random key pair in AWS's shapes (20-character id, 40-character secret).
pub fn generate() -> Credentials {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let c = uuid::Uuid::new_v4();
    let id: String = a
        .simple()
        .to_string()
        .to_uppercase()
        .chars()
        .take(16)
        .collect();
    let mut secret_bytes = Vec::with_capacity(48);
    secret_bytes.extend_from_slice(b.as_bytes());
    secret_bytes.extend_from_slice(c.as_bytes());
    let secret: String = B64.encode(&secret_bytes).chars().take(40).collect();
    Credentials {
        access_key_id: format!("AKIA{id}"),
        secret_access_key: secret,
    }
}

fn parse(text: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = line == format!("[{PROFILE}]");
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    Some(Credentials {
        access_key_id: id?,
        secret_access_key: secret?,
    })
}

fn write(file: &Path, creds: &Credentials) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(file)?;
    write!(
        f,
        "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        creds.access_key_id, creds.secret_access_key
    )?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), None).unwrap();
        assert!(matches!(first.source, Source::Generated(_)));
        assert_eq!(first.credentials.access_key_id.len(), 20);
        assert_eq!(first.credentials.secret_access_key.len(), 40);
        let second = load_or_create(dir.path(), None).unwrap();
        assert!(matches!(second.source, Source::File(_)));
        assert_eq!(
            first.credentials.secret_access_key,
            second.credentials.secret_access_key
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
