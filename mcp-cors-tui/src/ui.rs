//! The interactive UI's run loop: terminal keys, connection messages and a clock tick all
//! become [`Msg`]s for [`App::update`]; the screen is redrawn from the model after each
//! batch. One connection session runs per server: one, or each replica of a fleet.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use mcp_cors::protocol::Request;
use tokio::sync::mpsc;
use tokio::task::{self, JoinError, JoinSet};

use crate::clock;
use crate::conn::sockets::{self, SocketArg};
use crate::conn::{Outbox, Tagged, run_session};
use crate::input::map_key;
use crate::state::{Action, App, Effect, Msg, Notice};
use crate::terminal::{self, Tui};
use crate::view;

/// How many connection messages are applied before a redraw: bounds the redraw rate
/// under an event storm, while the channel's capacity bounds memory.
const BATCH: usize = 512;
/// Capacity of the connection → UI channel. When full, the connection stops reading and
/// the server drops events for this client (and says how many).
const CHANNEL: usize = 4096;
/// How often a fleet's patterns are expanded again, so that a replica started later
/// joins: a glance at a folder or two, cheap, and quick enough for a rollout.
const RESCAN: Duration = Duration::from_secs(2);

/// What the UI watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// One server, at this admin socket.
    One(PathBuf),
    /// A fleet: every socket these arguments name, as they come and go.
    Fleet(Vec<SocketArg>),
}

/// Why the UI stopped abnormally.
#[derive(Debug, thiserror::Error)]
enum UiError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("{0}")]
    Fatal(String),
    /// The connection task died: the UI cannot show anything true any more.
    #[error("the connection task failed ({0}); the terminal was restored")]
    Session(String),
}

/// Runs the UI on what `watch` names until the operator quits; with `read_only`, edit
/// keys are refused.
pub fn run(watch: Watch, read_only: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-cors-tui: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(watch, read_only)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-cors-tui: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(watch: Watch, read_only: bool) -> Result<(), UiError> {
    let (net_tx, mut net_rx) = mpsc::channel(CHANNEL);
    let mut sessions = Sessions::new(net_tx);
    let mut app = match &watch {
        Watch::One(socket) => {
            sessions.start(0, socket.clone());
            App::new(socket.clone(), clock::now_ms())
        }
        Watch::Fleet(args) => App::for_fleet(fleet_label(args), clock::now_ms()),
    };
    app.read_only = read_only;
    let patterns = match watch {
        Watch::One(_) => Vec::new(),
        Watch::Fleet(args) => args,
    };
    sessions.discover(&patterns, &mut app);
    let outcome = {
        let (mut term, _restore) = terminal::enter()?;
        event_loop(&mut term, &mut app, &mut net_rx, &mut sessions, &patterns).await
    };
    sessions.tasks.abort_all();
    outcome?;
    match app.fatal {
        Some(reason) => Err(UiError::Fatal(reason)),
        None => Ok(()),
    }
}

/// The arguments of a fleet, as the header names them.
fn fleet_label(args: &[SocketArg]) -> PathBuf {
    let names: Vec<String> = args
        .iter()
        .map(|a| a.as_path().display().to_string())
        .collect();
    PathBuf::from(names.join(", "))
}

/// The connection sessions, one per replica of the model, in the model's order: a
/// session's index is the replica index its messages carry.
struct Sessions {
    tasks: JoinSet<()>,
    commands: Vec<mpsc::Sender<Request>>,
    by_task: HashMap<task::Id, PathBuf>,
    tx: mpsc::Sender<Tagged>,
}

impl Sessions {
    fn new(tx: mpsc::Sender<Tagged>) -> Sessions {
        Sessions {
            tasks: JoinSet::new(),
            commands: Vec::new(),
            by_task: HashMap::new(),
            tx,
        }
    }

    /// Starts the session of `socket`, the model's replica `index` (the next one).
    fn start(&mut self, index: usize, socket: PathBuf) {
        debug_assert_eq!(
            index,
            self.commands.len(),
            "sessions start in the model's order"
        );
        let (cmd_tx, cmd_rx) = mpsc::channel::<Request>(16);
        let outbox = Outbox::new(index, self.tx.clone());
        let handle = self
            .tasks
            .spawn(run_session(socket.clone(), outbox, cmd_rx));
        self.by_task.insert(handle.id(), socket);
        self.commands.push(cmd_tx);
    }

    /// Has the model take in each socket `patterns` name now that it does not know, and
    /// starts its session.
    fn discover(&mut self, patterns: &[SocketArg], app: &mut App) {
        for socket in sockets::expand(patterns) {
            if !app.fleet.knows(&socket) {
                let index = app.join(socket.clone());
                self.start(index, socket);
            }
        }
    }

    /// Hands `request` to the session of `replica`; one change at a time is plenty for
    /// an operator, so a full queue is reported rather than waited for (the UI must stay
    /// responsive).
    fn send(&self, app: &mut App, replica: usize, request: Request) {
        let sent = self
            .commands
            .get(replica)
            .is_some_and(|tx| tx.try_send(request).is_ok());
        if !sent {
            app.notice = Some(Notice {
                text: "busy: a change is still being applied; try again".into(),
                error: true,
            });
        }
    }

    /// Why a session ended, if it was not a normal end, naming its socket when there are
    /// several.
    fn failure(&self, ended: Result<task::Id, JoinError>) -> Option<UiError> {
        let error = ended.err()?;
        let socket = self.by_task.get(&error.id()).cloned();
        let failure = session_failure(Err(error))?;
        match (failure, socket) {
            (UiError::Session(reason), Some(socket)) if self.commands.len() > 1 => {
                Some(UiError::Session(format!("{}: {reason}", socket.display())))
            }
            (failure, _) => Some(failure),
        }
    }
}

async fn event_loop(
    term: &mut Tui,
    app: &mut App,
    net_rx: &mut mpsc::Receiver<Tagged>,
    sessions: &mut Sessions,
    patterns: &[SocketArg],
) -> Result<(), UiError> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut rescan = tokio::time::interval(RESCAN);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let rescanning = patterns.iter().any(SocketArg::is_pattern);
    loop {
        // A panic anywhere has already restored the terminal (the panic hook): drawing
        // now would scribble over the shell. Stop; the task's end says why.
        if terminal::restored_by_panic() {
            return Err(panic_elsewhere(sessions).await);
        }
        term.draw(|frame| view::render(frame, app))?;
        let msgs = tokio::select! {
            // First, so that a dead connection is noticed before anything is drawn.
            biased;
            Some(ended) = sessions.tasks.join_next_with_id(), if !sessions.tasks.is_empty() => {
                match sessions.failure(ended.map(|(id, ())| id)) {
                    Some(error) => return Err(error),
                    // It ends by itself only after a fatal message, still in the channel.
                    None => Vec::new(),
                }
            }
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) => map_key(key, app.input_mode())
                    .map(|a| vec![Msg::Action(a)])
                    .unwrap_or_default(),
                Some(Ok(_)) => Vec::new(), // a resize: the redraw handles it
                Some(Err(e)) => return Err(e.into()),
                None => vec![Msg::Action(Action::Quit)],
            },
            Some(first) = net_rx.recv() => drain(first, net_rx),
            _ = tick.tick() => vec![Msg::Tick { now_ms: clock::now_ms() }],
            _ = rescan.tick(), if rescanning => {
                sessions.discover(patterns, app);
                Vec::new()
            }
        };
        for msg in msgs {
            match app.update(msg) {
                Some(Effect::Quit) => return Ok(()),
                Some(Effect::Send(request)) => {
                    let replica = app.edit_target();
                    sessions.send(app, replica, request);
                }
                None => {}
            }
        }
    }
}

/// The error for a panic the hook reported: the connection task's, with its message,
/// when that task is what panicked (it finishes unwinding within moments).
async fn panic_elsewhere(sessions: &mut Sessions) -> UiError {
    let generic = || UiError::Session("a panic; its message is above".into());
    if sessions.tasks.is_empty() {
        return generic();
    }
    match tokio::time::timeout(Duration::from_secs(1), sessions.tasks.join_next_with_id()).await {
        Ok(Some(ended)) => sessions
            .failure(ended.map(|(id, ())| id))
            .unwrap_or_else(generic),
        _ => generic(),
    }
}

/// Why the connection task ended, if it was not a normal end: a panic (its message), or
/// a cancellation nobody asked for.
fn session_failure(ended: Result<(), JoinError>) -> Option<UiError> {
    let error = ended.err()?;
    let reason = match error.try_into_panic() {
        Ok(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with no message".into());
            format!("panicked: {message}")
        }
        Err(error) => error.to_string(),
    };
    Some(UiError::Session(reason))
}

/// `first` and whatever else is already waiting, up to [`BATCH`] messages.
fn drain(first: Tagged, rx: &mut mpsc::Receiver<Tagged>) -> Vec<Msg> {
    let tag = |t: Tagged| Msg::Replica(t.replica, t.msg);
    let mut msgs = vec![tag(first)];
    while msgs.len() < BATCH {
        match rx.try_recv() {
            Ok(msg) => msgs.push(tag(msg)),
            Err(_) => break,
        }
    }
    msgs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_connection_task_is_an_error_naming_the_panic() {
        let task = tokio::spawn(async { panic!("boom in the session") });
        let error = session_failure(task.await).expect("a failure");
        let text = error.to_string();
        assert!(text.contains("panicked: boom in the session"), "{text}");
        assert!(text.contains("terminal was restored"), "{text}");
    }

    #[tokio::test]
    async fn a_formatted_panic_message_is_kept() {
        let n = 7;
        let task = tokio::spawn(async move { panic!("bad line {n}") });
        let error = session_failure(task.await).expect("a failure");
        assert!(
            error.to_string().contains("panicked: bad line 7"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_normal_end_is_not_a_failure() {
        let task = tokio::spawn(async {});
        assert!(session_failure(task.await).is_none());
    }
}
