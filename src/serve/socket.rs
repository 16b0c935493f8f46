//! The owner's Unix socket: created owner-only, a stale one replaced, a live
//! one refused, removed at close only while it is still this server's.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ServeError;

/// A socket this server bound, identified by its inode.
pub(crate) struct BoundSocket {
    pub(crate) path: PathBuf,
    inode: u64,
}

impl BoundSocket {
    /// Removes the socket file if it is still the one this server bound.
    pub(crate) fn remove(self) {
        if let Ok(metadata) = std::fs::symlink_metadata(&self.path) {
            if metadata.ino() == self.inode {
                if let Err(error) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), %error, "could not remove the socket");
                }
            }
        }
    }
}

fn io<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ServeError + 'a {
    move |source| ServeError::Io {
        operation,
        target: path.display().to_string(),
        source,
    }
}

/// Binds `path` with mode 0600: inside a fresh 0700 directory next to it,
/// then renamed into place (replacing a stale socket).
pub(crate) fn bind(path: &Path) -> Result<(BoundSocket, std::os::unix::net::UnixListener), ServeError> {
    refuse_live(path)?;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let private = dir.join(format!(".runjournal-sock-{}", std::process::id()));
    // A directory left by a killed process of the same pid is ours to reuse.
    if private.exists() {
        std::fs::remove_dir_all(&private).map_err(io("remove the leftover", &private))?;
    }
    std::fs::create_dir(&private).map_err(io("create", &private))?;
    let bound = (|| {
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).map_err(io("restrict", &private))?;
        let inner = private.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&inner).map_err(io("bind", &inner))?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600)).map_err(io("restrict", &inner))?;
        // Another owner may have come up meanwhile: check again right before taking the name.
        refuse_live(path)?;
        std::fs::rename(&inner, path).map_err(io("rename the socket to", path))?;
        let inode = std::fs::symlink_metadata(path).map_err(io("stat", path))?.ino();
        listener.set_nonblocking(true).map_err(io("set non-blocking", path))?;
        Ok((
            BoundSocket {
                path: path.to_path_buf(),
                inode,
            },
            listener,
        ))
    })();
    if let Err(error) = std::fs::remove_dir_all(&private) {
        tracing::warn!(path = %private.display(), %error, "could not remove the socket's private directory");
    }
    bound
}

/// Refuses a socket another owner answers on, and a path that is not a socket.
fn refuse_live(path: &Path) -> Result<(), ServeError> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !metadata.file_type().is_socket() {
        return Err(ServeError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ServeError::AlreadyServed {
            path: path.to_path_buf(),
        }),
        // Nobody answers: a killed owner's socket, replaced by the rename.
        Err(_) => Ok(()),
    }
}
