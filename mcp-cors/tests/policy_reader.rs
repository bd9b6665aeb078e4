//! The one reader of policy files: what `Policy::from_file`, the watcher, the admin edits
//! and `mcp-cors-tui check` all go through, so they all agree. Odd files at the path are
//! refused quickly, by type and size, never read into memory or waited on.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use mcp_cors::{Policy, PolicyError};

/// `Policy::from_file(path)`, failing the test if it takes longer than a second (a FIFO
/// blocks `open()`, `/dev/zero` never ends).
fn from_file_quickly(path: &Path) -> Result<Policy, PolicyError> {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Policy::from_file(&path));
    });
    rx.recv_timeout(Duration::from_secs(1))
        .expect("reading the policy file must never block or read without end")
}

fn refused(path: &Path) -> String {
    match from_file_quickly(path) {
        Ok(_) => panic!("{} should be refused", path.display()),
        Err(e) => e.to_string(),
    }
}

fn folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    (dir, path)
}

#[test]
fn an_empty_or_comment_only_file_is_refused_as_the_server_refuses_it() {
    let (_dir, path) = folder();
    for text in ["", "\n\n", "# only a comment\n  # and another\n"] {
        fs::write(&path, text).unwrap();
        let message = refused(&path);
        assert!(message.contains("empty"), "{text:?}: {message}");
        assert!(message.contains("cors.toml"), "{message}");
        assert!(message.contains("allowed_origins = []"), "{message}");
    }
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let (_dir, path) = folder();
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let message = refused(&path);
    assert!(message.contains("not a regular file"), "{message}");
    assert!(message.contains("FIFO"), "{message}");
}

#[test]
fn a_symlink_to_dev_zero_is_refused_without_reading_it() {
    let (_dir, path) = folder();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let message = refused(&path);
    assert!(message.contains("not a regular file"), "{message}");
    assert!(message.contains("device"), "{message}");
}

#[test]
fn a_directory_is_refused() {
    let (_dir, path) = folder();
    fs::create_dir(&path).unwrap();
    let message = refused(&path);
    assert!(message.contains("not a regular file"), "{message}");
    assert!(message.contains("directory"), "{message}");
}

#[test]
fn a_file_over_16_mib_is_refused_by_its_size() {
    let (_dir, path) = folder();
    let mut text = String::from("allowed_origins = [\n");
    while text.len() < 50 << 20 {
        text.push_str("  \"https://a-rather-long-origin-name.example.com\",\n");
    }
    text.push_str("]\n");
    fs::write(&path, &text).unwrap();
    let message = refused(&path);
    assert!(message.contains("16 MiB"), "{message}");
    assert!(message.contains("larger"), "{message}");
    match from_file_quickly(&path) {
        Err(PolicyError::TooLarge { size, limit, .. }) => {
            assert_eq!(size, text.len() as u64);
            assert_eq!(limit, 16 << 20);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_symlinked_file_is_read_through_its_link() {
    // Kubernetes ConfigMaps: cors.toml -> ..data/cors.toml -> ..2026_12_01/cors.toml.
    let (dir, path) = folder();
    let data = dir.path().join("..2026_12_01");
    fs::create_dir(&data).unwrap();
    fs::write(
        data.join("cors.toml"),
        "allowed_origins = [\"https://a.example\"]\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("..2026_12_01", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/cors.toml", &path).unwrap();
    let policy = from_file_quickly(&path).unwrap();
    assert_eq!(policy.settings().allowed_origins, ["https://a.example"]);
}

#[test]
fn every_unknown_key_is_reported_not_only_the_first() {
    let (_dir, path) = folder();
    fs::write(
        &path,
        "alowed_origins = []\nmax_age = 5\nmax_agee = 6\n[admin]\nsokcet = \"x\"\n",
    )
    .unwrap();
    let err = from_file_quickly(&path).unwrap_err();
    let keys: Vec<_> = err
        .diagnostics()
        .iter()
        .map(|d| (d.key.clone(), d.line))
        .collect();
    assert_eq!(
        keys,
        [
            (Some("alowed_origins".to_owned()), Some(1)),
            (Some("max_agee".to_owned()), Some(3)),
            (Some("admin.sokcet".to_owned()), Some(5)),
        ],
        "{err}"
    );
    assert!(err.to_string().contains("unknown"), "{err}");
}

#[test]
fn unknown_keys_and_bad_values_are_reported_together() {
    let (_dir, path) = folder();
    fs::write(
        &path,
        "allowed_origins = [\"https://a.example/path\", \"ftp://b.example\"]\ntypo = 1\n",
    )
    .unwrap();
    let err = from_file_quickly(&path).unwrap_err();
    let lines: Vec<_> = err.diagnostics().iter().map(|d| d.line).collect();
    assert_eq!(lines, [Some(1), Some(1), Some(2)], "{err}");
}
