//! The interactive UI's connection to one server: two admin connections (one subscribed
//! to events, one for requests, so replies never interleave with events), polled every
//! second, and re-established with backoff whenever the server goes away. A fleet view
//! runs one session per replica, all sending to the same UI, each message tagged with its
//! replica.

use std::path::PathBuf;
use std::time::Duration;

use mcp_cors::protocol::{Event, PolicyReply, ReplicaId, Request, ServerLine, Stats};
use tokio::sync::mpsc;

use super::{Backoff, Client, ClientError};

/// How many recent events to replay on (re)connect.
pub const REPLAY: usize = 200;
/// How often counters and the policy are refreshed.
const POLL: Duration = Duration::from_secs(1);

/// What the connection tells the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum NetMsg {
    /// Connected; `server` is the server's mcp-cors version.
    Connected {
        /// The server's version, from its hello.
        server: String,
        /// Which process answers (host name and pid), from its hello.
        replica: ReplicaId,
    },
    /// The events replayed right after subscribing (possibly already seen before a
    /// reconnect).
    Replay(Vec<Event>),
    /// A live event.
    Event(Event),
    /// The server dropped events for this client.
    Dropped {
        /// Dropped since the last notice.
        count: u64,
    },
    /// Fresh counters.
    Stats(Stats),
    /// The serving policy.
    Policy(PolicyReply),
    /// The connection is down; the next attempt is in `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// The outcome of an add/remove request: a message for the operator.
    CommandDone(Result<String, String>),
    /// The connection cannot work at all (a protocol version mismatch): the UI stops.
    Fatal(String),
}

/// A [`NetMsg`] and the replica it is about: the index of its session, in the order the
/// sessions were started.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    /// The replica's index.
    pub replica: usize,
    /// What its session says.
    pub msg: NetMsg,
}

/// Where a session sends: the UI's channel, each message tagged with the session's
/// replica.
#[derive(Debug, Clone)]
pub struct Outbox {
    replica: usize,
    tx: mpsc::Sender<Tagged>,
}

/// The UI is gone: its receiver was dropped.
#[derive(Debug)]
struct UiGone;

impl Outbox {
    /// An outbox for replica `replica` onto `tx`.
    pub fn new(replica: usize, tx: mpsc::Sender<Tagged>) -> Outbox {
        Outbox { replica, tx }
    }

    async fn send(&self, msg: NetMsg) -> Result<(), UiGone> {
        let tagged = Tagged {
            replica: self.replica,
            msg,
        };
        self.tx.send(tagged).await.map_err(|_| UiGone)
    }
}

/// Why a session ended.
enum End {
    /// The UI is gone.
    UiClosed,
    /// The connection failed; retry.
    Failed(ClientError),
}

/// Keeps the UI connected to `path` until the UI drops its receiver: reports every state
/// change on `tx`, runs the requests received on `commands`.
pub async fn run_session(path: PathBuf, tx: Outbox, mut commands: mpsc::Receiver<Request>) {
    let mut backoff = Backoff::default();
    loop {
        let error = match serve(&path, &tx, &mut commands, &mut backoff).await {
            End::UiClosed => return,
            End::Failed(error) => error,
        };
        // A version mismatch never heals by itself. A socket owned by another user is
        // retried like a server that is down: nothing is sent to it, the reason stays on
        // screen, and the real server may take its path back.
        if let ClientError::Version { .. } = error {
            let _ = tx.send(NetMsg::Fatal(error.to_string())).await;
            return;
        }
        let retry_in = backoff.next_delay();
        let down = NetMsg::Disconnected {
            reason: error.to_string(),
            retry_in,
        };
        if tx.send(down).await.is_err() || !wait(retry_in, &tx, &mut commands).await {
            return;
        }
    }
}

/// Sleeps `delay`, refusing the commands that arrive meanwhile; `false` if the UI is gone.
async fn wait(delay: Duration, tx: &Outbox, commands: &mut mpsc::Receiver<Request>) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            command = commands.recv() => {
                if command.is_none() {
                    return false;
                }
                let refused = NetMsg::CommandDone(Err("not connected; try again once reconnected".into()));
                if tx.send(refused).await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// One connected session, until it fails or the UI goes away.
async fn serve(
    path: &std::path::Path,
    tx: &Outbox,
    commands: &mut mpsc::Receiver<Request>,
    backoff: &mut Backoff,
) -> End {
    let connected = async {
        let mut events = Client::connect(path).await?;
        let replay = events.subscribe(REPLAY).await?;
        let requests = Client::connect(path).await?;
        Ok::<_, ClientError>((events, replay, requests))
    };
    let (mut events, replay, mut requests) = match connected.await {
        Ok(c) => c,
        Err(e) => return End::Failed(e),
    };
    backoff.reset();
    let server = events.server_version().to_owned();
    let replica = events.replica().clone();
    if send_all(
        tx,
        [
            NetMsg::Connected { server, replica },
            NetMsg::Replay(replay),
        ],
    )
    .await
    .is_err()
    {
        return End::UiClosed;
    }
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let step = tokio::select! {
            line = events.recv() => forward(line, tx).await,
            _ = poll.tick() => refresh(&mut requests, tx).await,
            command = commands.recv() => match command {
                None => Err(End::UiClosed),
                Some(request) => execute(&mut requests, &request, tx).await,
            },
        };
        if let Err(end) = step {
            return end;
        }
    }
}

async fn send_all<const N: usize>(tx: &Outbox, msgs: [NetMsg; N]) -> Result<(), End> {
    for msg in msgs {
        tx.send(msg).await.map_err(|_| End::UiClosed)?;
    }
    Ok(())
}

/// Passes an event line on to the UI.
async fn forward(line: Result<ServerLine, ClientError>, tx: &Outbox) -> Result<(), End> {
    let msg = match line.map_err(End::Failed)? {
        ServerLine::Event(event) => NetMsg::Event(event),
        ServerLine::Dropped { count, .. } => NetMsg::Dropped { count },
        ServerLine::Error { code, message } => {
            return Err(End::Failed(ClientError::Refused { code, message }));
        }
        // Nothing else is sent unasked on a subscribed connection.
        _ => return Ok(()),
    };
    send_all(tx, [msg]).await
}

/// Reads counters and policy for the header, the denied panel and the policy view.
async fn refresh(requests: &mut Client, tx: &Outbox) -> Result<(), End> {
    let stats = requests.stats().await.map_err(End::Failed)?;
    let policy = requests.policy().await.map_err(End::Failed)?;
    send_all(tx, [NetMsg::Stats(stats), NetMsg::Policy(policy)]).await
}

/// Runs an add/remove request, reports its outcome, and refreshes the views at once so
/// the change shows without waiting for the next poll.
async fn execute(requests: &mut Client, request: &Request, tx: &Outbox) -> Result<(), End> {
    let outcome = match requests.change_entry(request).await {
        Ok((origin, changed)) => Ok(describe(request, &origin, changed)),
        Err(ClientError::Refused { message, .. }) => Err(message),
        Err(other) => return Err(End::Failed(other)),
    };
    send_all(tx, [NetMsg::CommandDone(outcome)]).await?;
    refresh(requests, tx).await
}

/// A sentence for the outcome of an add/remove request; `entry` is the origin or host
/// as stored. An edit of a route's list says which route.
pub fn describe(request: &Request, entry: &str, changed: bool) -> String {
    let what = outcome(request, entry, changed);
    match request.route() {
        Some(route) => format!("{what} (route {})", crate::escape::escaped(route)),
        None => what,
    }
}

fn outcome(request: &Request, entry: &str, changed: bool) -> String {
    match (request, changed) {
        (Request::AddOrigin { .. }, true) => format!("allowed {entry}"),
        (Request::AddOrigin { .. }, false) => format!("{entry} was already allowed"),
        (Request::RemoveOrigin { .. }, true) => format!("removed {entry}"),
        (Request::AddHost { .. }, true) => format!("allowed host {entry}"),
        (Request::AddHost { .. }, false) => format!("host {entry} was already allowed"),
        (Request::RemoveHost { .. }, true) => format!("removed host {entry}"),
        (_, _) => format!("{entry}: nothing to change"),
    }
}
