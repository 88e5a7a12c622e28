//! The CLI's own files: its config directory, and files only their owner may read
//! (credentials), written as `hoist_common::private_file` writes them.

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

/// Replaces `path` with `bytes`, mode 0600 (`hoist_common::private_file`), making its
/// directory first; the error names the file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    hoist_common::private_file::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
