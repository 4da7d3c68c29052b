//! What the process tests (`tests/process*.rs`) share: a scratch folder
//! and a free port for the `portcullis` binary they start.

use std::net::TcpListener;
use std::path::PathBuf;

/// A fresh folder under the system's temporary folder, deleted when
/// dropped; `.0` is its path.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `portcullis-<what>-<uuid>`, created.
    pub fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("portcullis-{what}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port free on 127.0.0.1 now (bound, then let go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
