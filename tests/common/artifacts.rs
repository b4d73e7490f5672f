//! A test's output folder: removed when the test passes, kept (and its path printed) when it
//! fails, so the pcaps of a failure can be opened in Wireshark.

use std::path::Path;

pub struct Artifacts(Option<tempfile::TempDir>);

impl Artifacts {
    pub fn new(test: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tcplab-{test}-"))
            .tempdir()
            .expect("a temporary folder");
        Artifacts(Some(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("present until dropped").path()
    }
}

impl Drop for Artifacts {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            eprintln!(
                "captures of the failed test kept in {}",
                dir.keep().display()
            );
        }
    }
}
