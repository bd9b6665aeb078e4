//! The policy lifecycle under odd files and a vanishing folder (SPEC §6): nothing at the
//! config path can stall the watcher or the admin socket, and a folder deleted and
//! recreated gets its watch and its admin socket back.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcp_cors::protocol::{Request, ServerLine};
use mcp_cors::{McpCors, ReloadStatus};

const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com";
/// Long enough for the poll (1 s) and the confirmation of a refusal, on a loaded machine.
const BOUND: Duration = Duration::from_secs(4);

fn policy(origins: &[&str]) -> String {
    let quoted: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
    format!("# test policy\nallowed_origins = [{}]\n", quoted.join(", "))
}

fn fixture() -> (tempfile::TempDir, PathBuf, McpCors) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    fs::write(&path, policy(&[A])).unwrap();
    let cors = McpCors::try_watched(&path).unwrap();
    (dir, path, cors)
}

/// Runs `f` on another thread; fails the test if it does not finish within `bound`.
fn within<T: Send + 'static>(
    bound: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound)
        .unwrap_or_else(|_| panic!("{what} did not answer within {bound:?}: stalled"))
}

/// One request over the admin socket, answered within a second.
fn ask(socket: &Path, request: &Request) -> ServerLine {
    let socket = socket.to_path_buf();
    let request = serde_json::to_string(request).unwrap();
    within(Duration::from_secs(2), "the admin socket", move || {
        let stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut lines = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).unwrap(); // hello
        (&stream)
            .write_all(format!("{request}\n").as_bytes())
            .unwrap();
        line.clear();
        lines.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    })
}

fn status(cors: &McpCors) -> ReloadStatus {
    let cors = cors.clone();
    within(Duration::from_secs(1), "McpCors::status", move || {
        cors.status()
    })
}

fn origins(cors: &McpCors) -> Vec<String> {
    cors.policy().settings().allowed_origins.clone()
}

/// Waits until the last refusal names `needle`; the policy keeps serving meanwhile.
fn wait_for_refusal(cors: &McpCors, needle: &str) {
    let start = Instant::now();
    loop {
        let s = status(cors);
        if let Some(e) = &s.last_error {
            if e.message.contains(needle) {
                return;
            }
        }
        assert!(
            start.elapsed() < BOUND,
            "never refused with {needle:?}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_origins(cors: &McpCors, want: &[&str], bound: Duration) -> Duration {
    let start = Instant::now();
    while origins(cors) != want {
        assert!(
            start.elapsed() < bound,
            "policy never became {want:?}: {:?}",
            origins(cors)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

/// Puts a valid file back in place of whatever is there, and checks it is served.
fn then_a_good_save_is_applied(path: &Path, cors: &McpCors) {
    let _ = fs::remove_file(path).or_else(|_| fs::remove_dir(path));
    fs::write(path, policy(&[B])).unwrap();
    wait_for_origins(cors, &[B], BOUND);
}

fn check_odd_file(make: impl FnOnce(&Path), needle: &str) {
    let (_dir, path, cors) = fixture();
    let socket = cors.admin_socket().expect("the admin socket is served");
    fs::remove_file(&path).unwrap();
    make(&path);
    wait_for_refusal(&cors, needle);
    assert_eq!(origins(&cors), [A], "the last good policy keeps serving");
    // The admin socket still answers, and says why the file was refused.
    match ask(&socket, &Request::Stats) {
        ServerLine::Stats(stats) => {
            let error = stats.last_error.expect("the refusal is reported");
            assert!(error.message.contains(needle), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
    then_a_good_save_is_applied(&path, &cors);
}

#[test]
fn a_fifo_at_the_config_path_stalls_nothing() {
    check_odd_file(
        |path| {
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        },
        "FIFO",
    );
}

#[test]
fn a_symlink_to_dev_zero_is_refused_without_being_read() {
    let read_before = bytes_read();
    check_odd_file(
        |path| std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        "character device",
    );
    let read = bytes_read() - read_before;
    assert!(read < 64 << 20, "{read} bytes read: /dev/zero was read");
}

#[test]
fn a_directory_at_the_config_path_is_refused() {
    check_odd_file(|path| fs::create_dir(path).unwrap(), "directory");
}

#[test]
fn a_50_mb_file_is_refused_by_its_size() {
    check_odd_file(
        |path| {
            let mut text = policy(&[A]);
            text.push_str(&format!("# {}\n", "x".repeat(50 << 20)));
            fs::write(path, text).unwrap();
        },
        "16 MiB",
    );
}

/// Bytes this process has read through `read(2)` and friends.
fn bytes_read() -> u64 {
    let io = fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_folder_deleted_and_recreated_gets_its_watch_and_its_admin_socket_back() {
    let (dir, path, cors) = fixture();
    let socket = cors.admin_socket().expect("the admin socket is served");
    let folder = dir.path().to_path_buf();
    fs::remove_dir_all(&folder).unwrap();
    fs::create_dir(&folder).unwrap();
    fs::write(&path, policy(&[B])).unwrap();
    // The poll finds the new folder and its file.
    wait_for_origins(&cors, &[B], BOUND);
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < BOUND, "the admin socket never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(matches!(
        ask(&socket, &Request::Stats),
        ServerLine::Stats(_)
    ));
    // Saves are seen as they happen again, not only at the next 1 s poll: every one of
    // several saves is served well within the poll interval.
    std::thread::sleep(Duration::from_millis(1200)); // let the re-arming poll pass
    for round in 0..5 {
        let want: &[&str] = if round % 2 == 0 { &[A] } else { &[B] };
        fs::write(&path, policy(want)).unwrap();
        let took = wait_for_origins(&cors, want, BOUND);
        assert!(
            took < Duration::from_millis(500),
            "save {round} took {took:?}: the folder is not watched again"
        );
    }
}
