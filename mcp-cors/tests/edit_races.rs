//! Admin edits that can never lose data: real files in a temp folder, a real admin
//! socket, real threads (and, for the other-user cases, real processes).
//!
//! The race tests run admin edits (through the socket) against a hand editor that saves
//! the file thousands of times, in place (truncate, then write) or by rename (write a
//! temporary file, then rename it over the config), and check, whenever both sides are
//! quiet and at the end:
//! - the file is never empty, and always a valid policy;
//! - the hand editor's marker (`max_age = N`, one more per save) never goes backwards
//!   after a save completed, and the final file holds the last one;
//! - every acknowledged admin edit is there once hand editing stops, unless the edit was
//!   in flight during a hand editor's read→write window (the hand editor then wrote back
//!   what it had read before the edit, as an operator would).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mcp_cors::protocol::{ErrorCode, Request, ServerLine};
use mcp_cors::{McpCors, Policy};

const HAND: &str = "https://hand.example";

/// A blocking admin-socket client.
struct Admin {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Admin {
    fn connect(socket: &Path) -> Admin {
        let stream = UnixStream::connect(socket).expect("connect to the admin socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut admin = Admin {
            reader: BufReader::new(stream),
            writer,
        };
        let hello = admin.recv();
        assert!(matches!(hello, ServerLine::Hello { .. }), "{hello:?}");
        admin
    }

    fn recv(&mut self) -> ServerLine {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    }

    fn call(&mut self, request: &Request) -> ServerLine {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        self.writer.write_all(&line).unwrap();
        self.recv()
    }

    fn add(&mut self, origin: &str) -> ServerLine {
        self.call(&Request::AddOrigin {
            origin: origin.into(),
            force: false,
            route: None,
        })
    }

    fn remove(&mut self, origin: &str) -> ServerLine {
        self.call(&Request::RemoveOrigin {
            origin: origin.into(),
            route: None,
        })
    }
}

/// Waits (10 s at most) until something accepts connections at `path`.
fn wait_for_socket(path: &Path) {
    let start = Instant::now();
    while UnixStream::connect(path).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no admin socket at {}",
            path.display()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// A watched `cors.toml` holding `policy` in a fresh folder, with its admin socket up.
struct Served {
    dir: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
    _cors: McpCors,
}

fn serve(policy: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    fs::write(&config, policy).unwrap();
    let cors = McpCors::try_watched(&config).expect("the policy loads");
    let socket = dir.path().join("cors.sock");
    wait_for_socket(&socket);
    Served {
        dir,
        config,
        socket,
        _cors: cors,
    }
}

/// A hand-written policy with `origins` and the marker `max_age = marker`.
fn hand_written(origins: &[String], marker: u64) -> String {
    let mut text =
        String::from("# Edited by hand, and by the admin socket.\nallowed_origins = [\n");
    for origin in origins {
        text.push_str(&format!("  {origin:?},\n"));
    }
    text.push_str(&format!(
        "]\n# the hand editor's save counter\nmax_age = {marker}\n"
    ));
    text
}

/// Nanoseconds since the test's start: one clock for both sides' timelines.
fn now(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// A small xorshift generator: jitter for the hand editor, no dependency.
struct Jitter(u64);

impl Jitter {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Save {
    InPlace,
    ByRename,
}

/// An admin edit as the client saw it: sent at, answered at, and the answer.
#[derive(Debug)]
struct Acked {
    origin: String,
    add: bool,
    sent: u64,
    acked: u64,
    changed: bool,
}

/// Who is busy, and requests to wait until nobody is: the file is looked at "at rest"
/// only when no admin edit and no hand save is in flight. Each side announces itself
/// (`busy`) and then looks for a pause request; the one who pauses requests, then looks
/// at `busy`: with sequentially consistent atomics, one of the two always sees the other.
#[derive(Default)]
struct Quiet {
    pauses: AtomicUsize,
    admin_busy: AtomicUsize,
    hand_busy: AtomicUsize,
}

impl Quiet {
    fn enter(&self, busy: &AtomicUsize) {
        loop {
            while self.pauses.load(Ordering::SeqCst) > 0 {
                thread::sleep(Duration::from_micros(50));
            }
            busy.fetch_add(1, Ordering::SeqCst);
            if self.pauses.load(Ordering::SeqCst) == 0 {
                return;
            }
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn leave(&self, busy: &AtomicUsize) {
        busy.fetch_sub(1, Ordering::SeqCst);
    }

    fn at_rest<T>(&self, look: impl FnOnce() -> T) -> T {
        self.pauses.fetch_add(1, Ordering::SeqCst);
        while self.admin_busy.load(Ordering::SeqCst) + self.hand_busy.load(Ordering::SeqCst) > 0 {
            thread::sleep(Duration::from_micros(50));
        }
        let seen = look();
        self.pauses.fetch_sub(1, Ordering::SeqCst);
        seen
    }
}

/// What both sides share during a race.
struct Race {
    start: Instant,
    config: PathBuf,
    quiet: Quiet,
    /// The hand editor's last completed save.
    completed: AtomicU64,
    /// The hand editor's read→write windows.
    windows: Mutex<Vec<(u64, u64)>>,
    acked: Mutex<Vec<Acked>>,
    refused: AtomicU64,
    /// Hand saves started on seeing an admin edit check the file.
    triggered: AtomicU64,
    stop: AtomicBool,
}

impl Race {
    fn in_a_window(&self, sent: u64, acked: u64) -> bool {
        let windows = self.windows.lock().unwrap();
        windows
            .iter()
            .any(|&(read, wrote)| sent < wrote && read < acked)
    }

    /// The acknowledged edits the final file must show: not undone by a later edit, nor
    /// made while a hand save was in progress.
    fn required<'a>(&self, acked: &'a [Acked]) -> Vec<&'a Acked> {
        acked
            .iter()
            .filter(|edit| {
                let removed_later = edit.add
                    && acked
                        .iter()
                        .any(|later| !later.add && later.origin == edit.origin);
                !removed_later && !self.in_a_window(edit.sent, edit.acked)
            })
            .collect()
    }

    /// The file at rest: present, not empty, valid, and not older than the last save.
    fn check_at_rest(&self) -> Policy {
        let bytes = fs::read(&self.config).expect("the config exists at rest");
        let text = String::from_utf8(bytes).expect("UTF-8 at rest");
        assert!(!text.trim().is_empty(), "the file is empty at rest");
        let policy = Policy::from_toml_str(&text)
            .unwrap_or_else(|e| panic!("the file is invalid at rest: {e}\n{text}"));
        let completed = self.completed.load(Ordering::SeqCst);
        assert!(
            u64::from(policy.settings().max_age) >= completed,
            "a completed hand save was lost: marker {} on disk after save {completed}\n{text}",
            policy.settings().max_age
        );
        policy
    }
}

/// The moments an admin edit is about to replace the file: it created its temporary
/// file, then opens the config once more to check it is unchanged. Seen through inotify
/// on the folder, so that hand saves land right there (where the races are) rather than
/// in the milliseconds of parsing around it.
struct AdminWatch {
    fd: libc::c_int,
    /// Admin temporary files created and not yet renamed or removed.
    pending: usize,
}

const ADMIN_TEMP: &str = ".cors.toml.mcp-cors.";

impl AdminWatch {
    fn new(folder: &Path) -> AdminWatch {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscalls on a descriptor this struct owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(fd >= 0, "inotify: {}", std::io::Error::last_os_error());
        let folder = std::ffi::CString::new(folder.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_CREATE | libc::IN_OPEN | libc::IN_MOVED_FROM | libc::IN_DELETE;
        // SAFETY: `folder` is a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd, folder.as_ptr(), mask) };
        assert!(wd >= 0, "inotify: {}", std::io::Error::last_os_error());
        AdminWatch { fd, pending: 0 }
    }

    /// Waits up to `timeout` for an admin edit to open the config while its temporary
    /// file exists (the check before the replacement). `true` when one did.
    fn wait_for_check(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut poll = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut poll, 1, left.as_millis().max(1) as libc::c_int) };
            // SAFETY: `buf` is writable for its length.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                continue;
            }
            let mut at = 0;
            let mut checked = false;
            while at + 16 <= n as usize {
                let word =
                    |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
                let (mask, len) = (word(4), word(12) as usize);
                let name = &buf[at + 16..at + 16 + len];
                let name = std::str::from_utf8(name)
                    .unwrap_or("")
                    .trim_end_matches('\0');
                if name.starts_with(ADMIN_TEMP) {
                    if mask & libc::IN_CREATE != 0 {
                        self.pending += 1;
                    } else if mask & (libc::IN_MOVED_FROM | libc::IN_DELETE) != 0 {
                        self.pending = self.pending.saturating_sub(1);
                    }
                } else if name == "cors.toml" && mask & libc::IN_OPEN != 0 && self.pending > 0 {
                    checked = true;
                }
                at += 16 + len;
            }
            if checked {
                return true;
            }
        }
    }
}

impl Drop for AdminWatch {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours.
        unsafe { libc::close(self.fd) };
    }
}

/// The hand editor: now and then (in bursts), reads the file, keeps the origins it holds
/// and saves the next marker. Half of the saves are got ready first and made the moment an admin
/// edit checks the file (or after a few milliseconds without one), where the races are;
/// the others are made at once.
fn hand_editor(race: &Race, how: Save, temp: &Path) -> u64 {
    let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15);
    let mut watch = AdminWatch::new(race.config.parent().unwrap());
    let mut marker = 0;
    while !race.stop.load(Ordering::SeqCst) {
        // Saves for 300 ms, then a rest of 150 ms, in which admin edits run on their own
        // (and must all be kept).
        if race.start.elapsed().as_millis() % 450 >= 300 {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        thread::sleep(Duration::from_micros(jitter.below(4_000)));
        race.quiet.enter(&race.quiet.hand_busy);
        let read_at = now(race.start);
        let text = fs::read_to_string(&race.config).unwrap_or_default();
        let read = Policy::from_toml_str(&text)
            .ok()
            .filter(|p| u64::from(p.settings().max_age) >= race.completed.load(Ordering::SeqCst));
        let Some(policy) = read else {
            // An admin edit may be exchanging files right now: look again at rest, where
            // nothing but the truth may be seen.
            race.quiet.leave(&race.quiet.hand_busy);
            race.quiet.at_rest(|| race.check_at_rest());
            continue;
        };
        marker += 1;
        let content = hand_written(&policy.settings().allowed_origins, marker);
        if how == Save::ByRename {
            fs::write(temp, &content).unwrap();
        }
        if jitter.below(2) == 0 {
            let wait = Duration::from_micros(1_000 + jitter.below(7_000));
            if watch.wait_for_check(wait) {
                race.triggered.fetch_add(1, Ordering::Relaxed);
            }
        }
        match how {
            Save::ByRename => fs::rename(temp, &race.config).unwrap(),
            Save::InPlace => {
                // Truncate, then write in two parts, as an editor writing a buffer does.
                let (first, rest) = content.as_bytes().split_at(content.len() / 2);
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&race.config)
                    .unwrap();
                file.write_all(first).unwrap();
                if jitter.below(2) == 0 {
                    thread::sleep(Duration::from_micros(jitter.below(4_000)));
                }
                file.write_all(rest).unwrap();
            }
        }
        race.completed.store(marker, Ordering::SeqCst);
        let wrote_at = now(race.start);
        race.windows.lock().unwrap().push((read_at, wrote_at));
        race.quiet.leave(&race.quiet.hand_busy);
    }
    marker
}

/// Admin client `me`: adds origins; removes nine in ten again right after.
fn admin_edits(race: &Race, socket: &Path, me: usize) {
    let mut admin = Admin::connect(socket);
    let mut jitter = Jitter(0x2545_f491_4f6c_dd1d + me as u64);
    let mut i = 0;
    while !race.stop.load(Ordering::SeqCst) {
        let origin = format!("https://admin{me}-{i}.example");
        let keep = i % 10 == 0;
        i += 1;
        for add in [true, false] {
            if !add && keep {
                break;
            }
            race.quiet.enter(&race.quiet.admin_busy);
            let sent = now(race.start);
            let reply = if add {
                admin.add(&origin)
            } else {
                admin.remove(&origin)
            };
            let acked = now(race.start);
            race.quiet.leave(&race.quiet.admin_busy);
            match reply {
                ServerLine::OriginChanged { changed, .. } => {
                    race.acked.lock().unwrap().push(Acked {
                        origin: origin.clone(),
                        add,
                        sent,
                        acked,
                        changed,
                    })
                }
                // The file kept changing: refused, so nothing to require of it; a remove
                // of an add that a hand save legitimately undid finds nothing.
                ServerLine::Error {
                    code: ErrorCode::Conflict | ErrorCode::NotFound,
                    ..
                } => {
                    race.refused.fetch_add(1, Ordering::Relaxed);
                }
                other => panic!("unexpected reply to an edit: {other:?}"),
            }
            thread::sleep(Duration::from_micros(jitter.below(3_000)));
        }
    }
}

/// How many hand saves and acknowledged admin edits a race needs to mean something.
const MIN_SAVES: usize = 300;
const MIN_EDITS: usize = 100;
/// And how many of those edits must be checkable at the end: not undone by a later
/// edit, nor made while a hand save was in progress (which may rightly replace them).
const MIN_REQUIRED: usize = 10;

/// Runs hand saves (`how`) against two admin clients for `duration`, checking the file at
/// rest all along, then the oracles at the end.
fn race(how: Save, duration: Duration) {
    let served = serve(&hand_written(&[HAND.to_owned()], 0));
    let race = Arc::new(Race {
        start: Instant::now(),
        config: served.config.clone(),
        quiet: Quiet::default(),
        completed: AtomicU64::new(0),
        windows: Mutex::new(Vec::new()),
        acked: Mutex::new(Vec::new()),
        refused: AtomicU64::new(0),
        triggered: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let admins: Vec<_> = (0..2)
        .map(|me| {
            let (race, socket) = (Arc::clone(&race), served.socket.clone());
            thread::spawn(move || admin_edits(&race, &socket, me))
        })
        .collect();
    let hand = {
        let race = Arc::clone(&race);
        let temp = served.dir.path().join(".cors.toml.swp");
        thread::spawn(move || hand_editor(&race, how, &temp))
    };
    let mut checks = 0u64;
    // On a loaded machine, runs on (up to three times as long) until there were enough
    // saves and edits to race.
    let enough = || {
        race.windows.lock().unwrap().len() >= MIN_SAVES && {
            let acked = race.acked.lock().unwrap();
            acked.len() >= MIN_EDITS && race.required(&acked).len() >= MIN_REQUIRED
        }
    };
    while race.start.elapsed() < duration || (!enough() && race.start.elapsed() < duration * 3) {
        thread::sleep(Duration::from_millis(100));
        race.quiet.at_rest(|| race.check_at_rest());
        checks += 1;
    }
    race.stop.store(true, Ordering::SeqCst);
    let last = hand.join().unwrap();
    for admin in admins {
        admin.join().unwrap();
    }
    let policy = race.check_at_rest();
    assert_eq!(
        u64::from(policy.settings().max_age),
        last,
        "the final file holds the last hand save"
    );
    let acked = race.acked.lock().unwrap();
    let origins = &policy.settings().allowed_origins;
    let required = race.required(&acked);
    for edit in &required {
        let present = origins.contains(&edit.origin);
        assert_eq!(
            present, edit.add,
            "an acknowledged admin edit was lost: {edit:?}"
        );
    }
    assert!(
        origins.contains(&HAND.to_owned()),
        "the hand editor's own origin stays"
    );
    let saves = race.windows.lock().unwrap().len();
    eprintln!(
        "{how:?}: {saves} hand saves ({} timed on an admin edit's check), {} acknowledged \
         admin edits ({} required at the end, {} changed), {} refused, {checks} \
         checks at rest",
        race.triggered.load(Ordering::Relaxed),
        acked.len(),
        required.len(),
        acked.iter().filter(|a| a.changed).count(),
        race.refused.load(Ordering::Relaxed)
    );
    assert!(saves >= MIN_SAVES, "enough hand saves to race: {saves}");
    assert!(
        acked.len() >= MIN_EDITS,
        "enough admin edits to race: {}",
        acked.len()
    );
    assert!(
        required.len() >= MIN_REQUIRED,
        "enough admin edits to check: {}",
        required.len()
    );
}

/// Fails on the code before this fix: the "written while being replaced" recovery took
/// an empty read (the editor had just truncated) as the base and renamed it into place.
#[test]
fn admin_edits_racing_in_place_saves_never_empty_the_file_nor_lose_a_save() {
    race(Save::InPlace, Duration::from_secs(12));
}

/// Fails on the code before this fix: a rename-style save landing between the last check
/// and the rename was overwritten (about 5 in 1 000).
#[test]
fn admin_edits_racing_rename_saves_never_overwrite_a_completed_save() {
    race(Save::ByRename, Duration::from_secs(12));
}

const SMALL: &str = "# owned by svc\nallowed_origins = [\"https://a.example\"]\n";

#[test]
fn an_edit_keeps_the_files_owner_group_and_mode() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "CI runs this as root");
    let served = serve(SMALL);
    let (uid, gid) = (65534, 4243);
    std::os::unix::fs::chown(&served.config, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(&served.config, fs::Permissions::from_mode(0o640)).unwrap();
    let mut admin = Admin::connect(&served.socket);
    for origin in ["https://b.example", "https://c.example"] {
        let reply = admin.add(origin);
        assert!(
            matches!(reply, ServerLine::OriginChanged { changed: true, .. }),
            "{reply:?}"
        );
    }
    let reply = admin.remove("https://b.example");
    assert!(
        matches!(reply, ServerLine::OriginChanged { .. }),
        "{reply:?}"
    );
    let meta = fs::metadata(&served.config).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (uid, gid, 0o640),
        "owner, group and mode kept"
    );
    assert!(
        fs::read_to_string(&served.config)
            .unwrap()
            .contains("https://c.example")
    );
}

/// A system user for the tests, created when missing; its uid (and group id).
fn user(name: &str) -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    if id("-u").is_none() {
        let status = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group", name])
            .status()
            .expect("useradd runs");
        assert!(status.success() || id("-u").is_some(), "useradd {name}");
    }
    (
        id("-u").expect("the user exists"),
        id("-g").expect("the user has a group"),
    )
}

/// Runs `touch` on `paths` as `who` (the other user of a shared folder).
fn touch_as(who: (u32, u32), paths: &[PathBuf]) {
    let status = Command::new("touch")
        .args(paths)
        .uid(who.0)
        .gid(who.1)
        .status()
        .unwrap();
    assert!(status.success(), "the other user creates its files");
}

/// Fails on the code before this fix: the admin socket was bound at
/// `.cors.sock.PID.0.tmp` and edits wrote `.cors.toml.mcp-cors.PID.N.tmp`, which another
/// user of the folder could create first.
#[test]
fn temp_names_squatted_by_another_user_stop_neither_the_socket_nor_edits() {
    let server_user = user("mcp-cors-srv");
    let squatter = user("mcp-cors-squat");
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let config = shared.join("cors.toml");
    fs::write(&config, SMALL).unwrap();
    std::os::unix::fs::chown(&config, Some(server_user.0), Some(server_user.1)).unwrap();
    // This test binary, run again as the server's user, is the server; it starts once
    // told to, so that the squatter can use its PID first.
    let mut server = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "squatted_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MCP_CORS_SQUATTED_CONFIG", &config)
        .uid(server_user.0)
        .gid(server_user.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = server.id();
    let mut squatted = vec![shared.join(format!(".cors.sock.{pid}.0.tmp"))];
    squatted.extend((0..8).map(|n| shared.join(format!(".cors.toml.mcp-cors.{pid}.{n}.tmp"))));
    touch_as(squatter, &squatted);
    let mut stdin = server.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    let socket = shared.join("cors.sock");
    let start = Instant::now();
    while UnixStream::connect(&socket).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            drop(stdin);
            let out = server.wait_with_output().unwrap();
            panic!(
                "no admin socket although only temp names were squatted: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
    let mut admin = Admin::connect(&socket);
    for origin in ["https://b.example", "https://c.example"] {
        let reply = admin.add(origin);
        assert!(
            matches!(reply, ServerLine::OriginChanged { changed: true, .. }),
            "{reply:?}"
        );
    }
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.contains("https://c.example"), "{text}");
    drop(admin);
    drop(stdin); // The server stops at the end of its input.
    let _ = server.wait();
    for path in &squatted {
        assert!(path.exists(), "another user's file is left alone");
    }
}

/// Not a test on its own: the server of the test above, run as another user. Starts
/// watching once a line arrives on stdin, and stops at the end of stdin.
#[test]
fn squatted_server() {
    let Some(config) = std::env::var_os("MCP_CORS_SQUATTED_CONFIG") else {
        return;
    };
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let cors = McpCors::watched(config);
    println!("SERVER: started");
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    drop(cors);
}

/// A PID no process has: one of a child that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Fails on the code before this fix: nothing cleaned up after a crashed run.
#[test]
fn a_crashed_runs_temp_files_are_cleaned_at_start_and_a_live_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    fs::write(&config, SMALL).unwrap();
    let dead = dead_pid();
    let mut live = Command::new("sleep").arg("60").spawn().unwrap();
    let at = |name: String| dir.path().join(name);
    let crashed = [
        at(format!(".cors.toml.mcp-cors.{dead}.3.tmp")),
        at(format!(".cors.toml.mcp-cors.{dead}.5f0c9a1b2d3e4f60.tmp")),
        at(format!(".cors.sock.mcp-cors.{dead}.0a1b2c3d4e5f6071.tmp")),
    ];
    let kept = [
        // A live process's edit in progress.
        at(format!(
            ".cors.toml.mcp-cors.{}.5f0c9a1b2d3e4f60.tmp",
            live.id()
        )),
        // Not our name pattern.
        at(format!(".cors.toml.{dead}.tmp")),
        at(".cors.toml.swp".into()),
        // Another user's file, whatever its name says.
        at(format!(".cors.toml.mcp-cors.{dead}.77.tmp")),
    ];
    for path in crashed.iter().chain(&kept) {
        fs::write(path, "leftover").unwrap();
    }
    std::os::unix::fs::chown(&kept[3], Some(65534), Some(65534)).unwrap();
    let cors = McpCors::try_watched(&config).expect("the policy loads");
    wait_for_socket(&dir.path().join("cors.sock"));
    for path in &crashed {
        assert!(
            !path.exists(),
            "a crashed run's {} is removed",
            path.display()
        );
    }
    for path in &kept {
        assert!(path.exists(), "{} is kept", path.display());
    }
    drop(cors);
    let _ = live.kill();
    let _ = live.wait();
}

/// A policy with `n` exact origins, one per line.
fn many_origins(n: usize) -> String {
    let origins: Vec<String> = (0..n)
        .map(|i| format!("https://o{i}.example.com"))
        .collect();
    hand_written(&origins, 600)
}

/// The admin threads of this process: thread id → CPU time used so far.
fn admin_threads() -> std::collections::HashMap<String, Duration> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut threads = std::collections::HashMap::new();
    for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "mcp-cors-admin" {
            continue;
        }
        let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<u64> = rest
            .split(' ')
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse().ok())
            .collect();
        let used = fields.iter().sum::<u64>() * 1_000 / ticks;
        threads.insert(
            task.file_name().to_string_lossy().into_owned(),
            Duration::from_millis(used),
        );
    }
    threads
}

/// Fails on the code before this fix: the diff of a reload compared lists with
/// `Vec::contains`, 23–26 s of CPU for one edit of 100 000 origins (no reply within 60 s).
///
/// The bound is on the CPU time of the admin thread that makes the edit: it runs at a
/// lower priority (nice 10), so on a busy machine its wall-clock time measures the other
/// processes more than the edit. Both are printed.
#[test]
fn an_edit_of_a_100_000_origin_policy_takes_under_a_second() {
    let before = admin_threads();
    let served = serve(&many_origins(100_000));
    // Its hello comes from the admin thread: running, and named, by then.
    let mut admin = Admin::connect(&served.socket);
    let ours = admin_threads()
        .into_keys()
        .find(|tid| !before.contains_key(tid))
        .unwrap_or_else(|| {
            let names: Vec<String> = fs::read_dir("/proc/self/task")
                .unwrap()
                .flatten()
                .map(|t| fs::read_to_string(t.path().join("comm")).unwrap_or_default())
                .collect();
            panic!("no new admin thread among {names:?}")
        });
    let cpu = || admin_threads().get(&ours).copied().unwrap_or_default();
    let edits = [
        Request::AddOrigin {
            origin: "https://new.example".into(),
            force: false,
            route: None,
        },
        Request::RemoveOrigin {
            origin: "https://o50000.example.com".into(),
            route: None,
        },
    ];
    for request in &edits {
        let (start, used) = (Instant::now(), cpu());
        let reply = admin.call(request);
        let (took, used) = (start.elapsed(), cpu() - used);
        eprintln!("100 000 origins, {request:?}: {used:?} of CPU, {took:?} of wall-clock time");
        assert!(
            matches!(reply, ServerLine::OriginChanged { changed: true, .. }),
            "{reply:?}"
        );
        assert!(
            used < Duration::from_secs(1),
            "the edit took {used:?} of CPU"
        );
    }
    let text = fs::read_to_string(&served.config).unwrap();
    assert!(text.contains("\"https://new.example\""));
    assert!(!text.contains("\"https://o50000.example.com\""));
    assert!(text.contains("\"https://o99999.example.com\""));
}
