//! The interactive UI's run loop: terminal keys, connection messages and a clock tick all
//! become [`Msg`]s for [`App::update`]; the screen is redrawn from the model after each
//! batch.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use mcp_cors::protocol::Request;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use crate::clock;
use crate::conn::{NetMsg, run_session};
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

/// Runs the UI against the admin socket at `socket` until the operator quits; with
/// `read_only`, edit keys are refused.
pub fn run(socket: PathBuf, read_only: bool) -> ExitCode {
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
    match runtime.block_on(run_async(socket, read_only)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-cors-tui: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(socket: PathBuf, read_only: bool) -> Result<(), UiError> {
    let (net_tx, mut net_rx) = mpsc::channel(CHANNEL);
    let (cmd_tx, cmd_rx) = mpsc::channel::<Request>(16);
    let mut session = tokio::spawn(run_session(socket.clone(), net_tx, cmd_rx));
    let mut app = if read_only {
        App::read_only(socket, clock::now_ms())
    } else {
        App::new(socket, clock::now_ms())
    };
    let outcome = {
        let (mut term, _restore) = terminal::enter()?;
        event_loop(&mut term, &mut app, &mut net_rx, &cmd_tx, &mut session).await
    };
    session.abort();
    outcome?;
    match app.fatal {
        Some(reason) => Err(UiError::Fatal(reason)),
        None => Ok(()),
    }
}

async fn event_loop(
    term: &mut Tui,
    app: &mut App,
    net_rx: &mut mpsc::Receiver<NetMsg>,
    cmd_tx: &mpsc::Sender<Request>,
    session: &mut JoinHandle<()>,
) -> Result<(), UiError> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut session_over = false;
    loop {
        // A panic anywhere has already restored the terminal (the panic hook): drawing
        // now would scribble over the shell. Stop; the task's end says why.
        if terminal::restored_by_panic() {
            return Err(panic_elsewhere(session, session_over).await);
        }
        term.draw(|frame| view::render(frame, app))?;
        let msgs = tokio::select! {
            // First, so that a dead connection is noticed before anything is drawn.
            biased;
            ended = &mut *session, if !session_over => {
                session_over = true;
                match session_failure(ended) {
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
        };
        for msg in msgs {
            match app.update(msg) {
                Some(Effect::Quit) => return Ok(()),
                Some(Effect::Send(request)) => send(app, cmd_tx, request),
                None => {}
            }
        }
    }
}

/// The error for a panic the hook reported: the connection task's, with its message,
/// when that task is what panicked (it finishes unwinding within moments).
async fn panic_elsewhere(session: &mut JoinHandle<()>, session_over: bool) -> UiError {
    let generic = || UiError::Session("a panic; its message is above".into());
    if session_over {
        return generic();
    }
    match tokio::time::timeout(Duration::from_secs(1), session).await {
        Ok(ended) => session_failure(ended).unwrap_or_else(generic),
        Err(_) => generic(),
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

/// Hands `request` to the connection; one change at a time is plenty for an operator,
/// so a full queue is reported rather than waited for (the UI must stay responsive).
fn send(app: &mut App, cmd_tx: &mpsc::Sender<Request>, request: Request) {
    if cmd_tx.try_send(request).is_err() {
        app.notice = Some(Notice {
            text: "busy: a change is still being applied; try again".into(),
            error: true,
        });
    }
}

/// `first` and whatever else is already waiting, up to [`BATCH`] messages.
fn drain(first: NetMsg, rx: &mut mpsc::Receiver<NetMsg>) -> Vec<Msg> {
    let mut msgs = vec![Msg::Net(first)];
    while msgs.len() < BATCH {
        match rx.try_recv() {
            Ok(msg) => msgs.push(Msg::Net(msg)),
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
