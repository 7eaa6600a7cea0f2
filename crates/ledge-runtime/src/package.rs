//! Function packages: content-addressed by SHA-256, unpacked once with guards, read-only.
//!
//! # Design
//! A zip is stored as `packages/<sha256>.zip` and unpacked into `code/<sha256>[-<uid>]`, a
//! directory that is renamed into place only when complete, so concurrent loads of the same
//! version never see half a package. Regular files are written before symlinks, so no write
//! ever goes through a symlink, and every symlink must resolve inside the package. When
//! workers run as an unprivileged uid the tree belongs to `root:<gid>` with modes 0750/0640:
//! only that version's workers can read it.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::config::PackageLimits;
use crate::error::PackageError;

/// Where a function's code comes from.
#[derive(Debug, Clone)]
pub enum PackageRef {
    /// A zip archive in memory (what the Lambda API receives as `ZipFile`).
    Zip(Bytes),
    /// A zip archive on disk.
    ZipFile(PathBuf),
    /// A directory on disk, packaged as if it were zipped (for `ledge invoke --dir`).
    Dir(PathBuf),
}

/// A package unpacked and ready to run.
#[derive(Debug, Clone)]
pub struct PreparedPackage {
    /// Hex SHA-256 of the zip (Lambda's `CodeSha256` is its base64 form).
    pub sha256: String,
    /// The unpacked, read-only task root.
    pub dir: PathBuf,
    /// Compressed size in bytes (Lambda's `CodeSize`).
    pub code_size: u64,
}

/// Stores and unpacks packages under a data directory.
#[derive(Debug)]
pub(crate) struct PackageStore {
    blobs: PathBuf,
    code: PathBuf,
    limits: PackageLimits,
}

impl PackageStore {
    pub(crate) fn new(data_dir: &Path, limits: PackageLimits) -> io::Result<Self> {
        let blobs = data_dir.join("packages");
        let code = data_dir.join("code");
        fs::create_dir_all(&blobs)?;
        fs::set_permissions(&blobs, fs::Permissions::from_mode(0o700))?;
        fs::create_dir_all(&code)?;
        fs::set_permissions(&code, fs::Permissions::from_mode(0o711))?;
        Ok(PackageStore {
            blobs,
            code,
            limits,
        })
    }

    /// Stores and unpacks `code`, readable by `owner_gid` only when given. Blocking.
    pub(crate) fn prepare(
        &self,
        code: &PackageRef,
        owner_gid: Option<u32>,
    ) -> Result<PreparedPackage, PackageError> {
        let zip = match code {
            PackageRef::Zip(bytes) => bytes.clone(),
            PackageRef::ZipFile(path) => Bytes::from(fs::read(path)?),
            PackageRef::Dir(path) => Bytes::from(zip_dir(path)?),
        };
        if zip.len() as u64 > self.limits.max_zip_bytes {
            return Err(PackageError::ZipTooLarge {
                limit: self.limits.max_zip_bytes,
            });
        }
        let sha256 = hex::encode(Sha256::digest(&zip));
        let blob = self.blobs.join(format!("{sha256}.zip"));
        if !blob.exists() {
            write_atomically(&blob, &zip)?;
        }
        let name = match owner_gid {
            Some(gid) => format!("{sha256}-{gid}"),
            None => sha256.clone(),
        };
        let dir = self.code.join(name);
        if !dir.exists() {
            let staging = self
                .code
                .join(format!(".staging-{}", uuid::Uuid::new_v4().simple()));
            let result = extract(&zip, &staging, &self.limits)
                .and_then(|()| seal(&staging, owner_gid).map_err(PackageError::from));
            if let Err(e) = result {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
            if let Err(e) = fs::rename(&staging, &dir) {
                let _ = fs::remove_dir_all(&staging);
                // Another load of the same package won the race: theirs is as good as ours.
                if !dir.exists() {
                    return Err(e.into());
                }
            }
        }
        Ok(PreparedPackage {
            sha256,
            dir,
            code_size: zip.len() as u64,
        })
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// Unpacks `zip` into `dest` (which must not exist), enforcing `limits`.
pub(crate) fn extract(zip: &[u8], dest: &Path, limits: &PackageLimits) -> Result<(), PackageError> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(zip))
        .map_err(|e| PackageError::InvalidZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(PackageError::TooManyEntries {
            limit: limits.max_entries,
        });
    }
    fs::create_dir_all(dest)?;
    let mut seen = HashSet::new();
    let mut symlinks = Vec::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| PackageError::InvalidZip(e.to_string()))?;
        let raw_name = entry.name().to_string();
        let rel =
            safe_relative(&raw_name).ok_or_else(|| PackageError::UnsafePath(raw_name.clone()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        if !seen.insert(rel.clone()) {
            return Err(PackageError::DuplicateEntry(raw_name));
        }
        let target = dest.join(&rel);
        if entry.is_dir() {
            fs::create_dir_all(&target)?;
            continue;
        }
        let declared = entry.size();
        if declared > 1024 * 1024
            && declared / entry.compressed_size().max(1) > limits.max_compression_ratio
        {
            return Err(PackageError::CompressionRatio {
                name: raw_name,
                limit: limits.max_compression_ratio,
            });
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        // Sizes in the zip headers can lie: count what actually comes out.
        let budget = limits.max_unzipped_bytes.saturating_sub(total);
        if entry.is_symlink() {
            let mut link = String::new();
            (&mut entry)
                .take(4096)
                .read_to_string(&mut link)
                .map_err(|e| PackageError::InvalidZip(e.to_string()))?;
            symlinks.push((rel, link));
            continue;
        }
        let executable = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)?;
        let copied = io::copy(&mut (&mut entry).take(budget + 1), &mut file)
            .map_err(|e| PackageError::InvalidZip(e.to_string()))?;
        total += copied;
        if total > limits.max_unzipped_bytes {
            return Err(PackageError::UnzippedTooLarge {
                limit: limits.max_unzipped_bytes,
            });
        }
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
    }
    for (rel, link) in symlinks {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if Path::new(&link).is_absolute()
            || safe_relative(&parent.join(&link).to_string_lossy()).is_none()
        {
            return Err(PackageError::SymlinkOutside(
                rel.to_string_lossy().into_owned(),
            ));
        }
        std::os::unix::fs::symlink(&link, dest.join(&rel))?;
    }
    Ok(())
}

/// The lexically normalised relative path of a zip entry, or `None` if it escapes the root.
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.contains('\0') || name.starts_with('/') || name.starts_with('\\') {
        return None;
    }
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Makes the unpacked tree read-only, owned by `root:<gid>` when `gid` is given.
fn seal(dir: &Path, gid: Option<u32>) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let (dir_mode, file_mode, exec_mode) = if gid.is_some() {
        (0o550, 0o440, 0o550)
    } else {
        (0o555, 0o444, 0o555)
    };
    if let Some(gid) = gid {
        std::os::unix::fs::lchown(dir, Some(0), Some(gid))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(dir)? {
            seal(&entry?.path(), gid)?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(dir_mode))?;
    } else {
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            exec_mode
        } else {
            file_mode
        };
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Zips a directory in memory, so `--dir` takes the same path (and guards) as a zip.
fn zip_dir(root: &Path) -> Result<Vec<u8>, PackageError> {
    let mut files = Vec::new();
    collect(root, Path::new(""), &mut files)?;
    files.sort();
    let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for rel in files {
        let path = root.join(&rel);
        let name = rel.to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&path)?;
        let zip_err = |e: zip::result::ZipError| PackageError::InvalidZip(e.to_string());
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)?;
            writer
                .add_symlink(name, target.to_string_lossy(), options)
                .map_err(zip_err)?;
        } else {
            writer
                .start_file(name, options.unix_permissions(meta.permissions().mode()))
                .map_err(zip_err)?;
            writer.write_all(&fs::read(&path)?)?;
        }
    }
    let cursor = writer
        .finish()
        .map_err(|e| PackageError::InvalidZip(e.to_string()))?;
    Ok(cursor.into_inner())
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let child = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            collect(root, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalised_or_rejected() {
        assert_eq!(safe_relative("a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(safe_relative("../x"), None);
        assert_eq!(safe_relative("a/../../x"), None);
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative("./"), Some(PathBuf::new()));
    }
}
