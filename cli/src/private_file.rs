//! Files only their owner may read (credentials): written with mode 0600 to a temporary name in
//! the same directory, synced, then renamed over the old one, so a reader never sees half a file
//! and no other user ever sees any of it.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directory of the CLI's own files: `$HOIST_CONFIG_DIR`, else `$XDG_CONFIG_HOME/hoist`, else
/// `~/.config/hoist`.
pub fn config_dir() -> PathBuf {
    std::env::var_os("HOIST_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CONFIG_HOME").map(|x| PathBuf::from(x).join("hoist")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/hoist")))
        .unwrap_or_else(|| PathBuf::from(".hoist"))
}

/// Replaces `path` with `bytes`, mode 0600; the error names the file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(bytes))
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_and_private() {
        let dir = std::env::temp_dir().join(format!("hoist-pf-{}", std::process::id()));
        let path = dir.join("sub/creds.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
