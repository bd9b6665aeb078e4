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
}

/// Runs the UI against the admin socket at `socket` until the operator quits.
pub fn run(socket: PathBuf) -> ExitCode {
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
    match runtime.block_on(run_async(socket)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-cors-tui: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(socket: PathBuf) -> Result<(), UiError> {
    let (net_tx, mut net_rx) = mpsc::channel(CHANNEL);
    let (cmd_tx, cmd_rx) = mpsc::channel::<Request>(16);
    let session = tokio::spawn(run_session(socket.clone(), net_tx, cmd_rx));
    let mut app = App::new(socket, clock::now_ms());
    let outcome = {
        let (mut term, _restore) = terminal::enter()?;
        event_loop(&mut term, &mut app, &mut net_rx, &cmd_tx).await
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
) -> Result<(), UiError> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        term.draw(|frame| view::render(frame, app))?;
        let msgs = tokio::select! {
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
