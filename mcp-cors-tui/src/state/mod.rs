//! The model of the interactive UI and its update function (The Elm Architecture): every
//! key and every message from the connection goes through [`App::update`], which changes
//! the model and returns what the run loop must do. Nothing here touches a terminal or a
//! socket, so it is tested directly.

pub mod dialog;
pub mod events;
pub mod filter;
pub mod fleet;
pub mod live;
pub mod rate;

use std::collections::HashMap;
use std::path::PathBuf;

use mcp_cors::ReloadError;
use mcp_cors::protocol::{Event, HostStats, OriginStats, PolicyReply, Request, Stats, Verdict};

use crate::conn::NetMsg;
use crate::lists::List;
pub use dialog::{AddEntry, Dialog, Validation};
pub use events::{Entry, EventRing};
pub use filter::Filter;
pub use fleet::{Fleet, Replica};
pub use rate::Rate;

/// How many lines PageUp/PageDown move.
const PAGE: usize = 10;
/// Origins whose last allow and last refusal the UI remembers (to take an origin off
/// the denied panel once it is allowed); beyond, the longest unseen is forgotten.
const REMEMBERED_ORIGINS: usize = 4096;
/// What an edit key says in `--read-only` mode.
pub const READ_ONLY: &str = "read-only: edits are off (started with --read-only)";

/// The server's catch-all counter for origins beyond its tracking limit. It is not an
/// origin: it is never offered for allowing.
pub const UNTRACKED: &str = mcp_cors::protocol::UNTRACKED_ORIGIN;
/// The server's catch-all counter for refused hosts beyond its tracking limit; never
/// offered for allowing either.
pub const UNTRACKED_HOST: &str = mcp_cors::protocol::UNTRACKED_HOST;

/// What the add dialog says before `*` is added to the top level's origins, and asks to
/// confirm with `y`.
pub const STAR_WARNING: &str = "* opens this server to every web site: any page in any browser \
could call it. Allow every origin anyway?";

/// What the add dialog says before `*` is added to `list` (of `route`, or the top level).
pub fn star_warning(list: List, route: Option<&str>) -> String {
    match (list, route) {
        (List::Origins, None) => STAR_WARNING.to_owned(),
        (List::Origins, Some(route)) => format!(
            "* opens route {route} to every web site: any page in any browser could call its \
             paths. Allow every origin there anyway?"
        ),
        (List::Hosts, None) => "* turns the Host guard off: DNS-rebinding attacks are no longer \
             refused. Allow every host anyway?"
            .to_owned(),
        (List::Hosts, Some(route)) => format!(
            "* turns the Host guard off on route {route}: DNS-rebinding attacks on its paths \
             are no longer refused. Allow every host there anyway?"
        ),
    }
}

/// The panel that receives movement keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    /// The event tail.
    #[default]
    Events,
    /// The origins denied most often.
    Denied,
    /// The `Host` values refused most often (shown once there is one).
    Hosts,
    /// The allowed origins.
    Policy,
}

impl Focus {
    fn next(self) -> Focus {
        match self {
            Focus::Events => Focus::Denied,
            Focus::Denied => Focus::Hosts,
            Focus::Hosts => Focus::Policy,
            Focus::Policy => Focus::Events,
        }
    }

    fn prev(self) -> Focus {
        self.next().next().next()
    }
}

/// The connection as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnStatus {
    /// The first attempt is under way.
    Connecting,
    /// Connected to a server of this version.
    Connected {
        /// The server's mcp-cors version.
        server: String,
    },
    /// Down; the next attempt is at `retry_at_ms`.
    Disconnected {
        /// Why.
        reason: String,
        /// When the next attempt starts (Unix ms).
        retry_at_ms: u64,
    },
    /// A replica of a fleet that cannot work at all (a protocol version mismatch): not
    /// retried, while the others go on. A single server stops the UI instead.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Where keys go, which decides how they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// Panels and global keys.
    Normal,
    /// The help screen is shown.
    Help,
    /// Typing into the `/` filter.
    Filter,
    /// Typing into the add prompt.
    Prompt,
    /// A yes/no question.
    Confirm,
}

/// What the operator asked for, already decoded from a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the program.
    Quit,
    /// Show or hide the key help.
    ToggleHelp,
    /// Focus the next panel.
    FocusNext,
    /// Focus the previous panel.
    FocusPrev,
    /// Move up one line (scroll back in the tail).
    Up,
    /// Move down one line.
    Down,
    /// Move up a page.
    PageUp,
    /// Move down a page.
    PageDown,
    /// To the oldest line / first item.
    Top,
    /// To the newest line / last item; in the tail, resumes following.
    Bottom,
    /// Freeze or resume the tail.
    TogglePause,
    /// Open the `/` filter prompt.
    StartFilter,
    /// Drop the filter.
    ClearFilter,
    /// Allow the selected denied origin or host (denied panels: the add prompt, filled
    /// in, on the route that refused it) or add an origin (policy panel).
    Allow,
    /// Open the add prompt for an origin.
    AddOrigin,
    /// Open the add prompt for a host.
    AddHost,
    /// In the add prompt: the next route (or the top level).
    RouteNext,
    /// In the add prompt: the previous route (or the top level).
    RoutePrev,
    /// Remove the selected allowed origin (policy panel).
    Remove,
    /// A character typed into a prompt.
    Char(char),
    /// Delete the last character of a prompt.
    Backspace,
    /// Enter in a prompt, or yes to a question (but to one that must be answered `y`).
    Submit,
    /// `y` to a question: the explicit yes.
    Yes,
    /// Escape from a prompt, or no to a question.
    Cancel,
}

/// A message for [`App::update`].
// Messages are built once and moved into `update`; boxing the large ones would only add
// an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The operator's action.
    Action(Action),
    /// News from the connection of the replica at this index (0 for a single server).
    Replica(usize, NetMsg),
    /// Time passed; `now_ms` is the wall clock in Unix ms.
    Tick {
        /// Now.
        now_ms: u64,
    },
}

/// What the run loop must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this request to the server.
    Send(Request),
    /// Restore the terminal and exit.
    Quit,
}

/// A one-line message for the operator in the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The message.
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
}

/// The whole state of the interactive UI.
#[derive(Debug, Clone)]
pub struct App {
    /// The admin socket path (or, for a fleet, the arguments), shown in the header.
    pub socket: PathBuf,
    /// The replicas watched (one, unless a fleet), each with its connection.
    pub fleet: Fleet,
    /// Recent events.
    pub events: EventRing,
    /// Last counters received (for a fleet, the replicas' totals).
    pub stats: Option<Stats>,
    /// Last policy received (for a fleet, from the replica edits go to).
    pub policy: Option<PolicyReply>,
    /// The refused policy file, shown as a banner until a good reload.
    pub reload_error: Option<ReloadError>,
    /// The tail filter.
    pub filter: Filter,
    /// The focused panel.
    pub focus: Focus,
    /// The open dialog.
    pub dialog: Option<Dialog>,
    /// Whether the help is shown.
    pub help: bool,
    /// While paused, the newest event shown (its arrival number).
    pub paused_at: Option<u64>,
    /// Lines scrolled back from the newest shown.
    pub scroll: usize,
    /// Selected row of the denied panel.
    pub denied_selected: usize,
    /// Selected row of the denied hosts panel.
    pub hosts_selected: usize,
    /// Selected row of the policy panel.
    pub policy_selected: usize,
    /// The footer message.
    pub notice: Option<Notice>,
    /// Now, in Unix ms, for relative times.
    pub now_ms: u64,
    /// A reason to stop at once (protocol version mismatch).
    pub fatal: Option<String>,
    /// `--read-only`: for on-call viewers; every edit key is refused.
    pub read_only: bool,
    /// Decisions per second, for the sparklines.
    pub rate: Rate,
    /// The origins of recent decisions, with when each was last allowed and refused.
    last_verdicts: HashMap<String, LastVerdicts>,
}

/// When an origin was last allowed and last refused (Unix ms, 0 = not seen).
#[derive(Debug, Clone, Copy, Default)]
struct LastVerdicts {
    allowed: u64,
    refused: u64,
}

impl App {
    /// A fresh model for the socket at `socket`, at time `now_ms`.
    pub fn new(socket: PathBuf, now_ms: u64) -> App {
        App::watching(socket.clone(), Fleet::single(socket), now_ms)
    }

    /// A fresh model for a fleet, described in the header by `label` (the arguments):
    /// its replicas [`join`](App::join) as they are found.
    pub fn for_fleet(label: PathBuf, now_ms: u64) -> App {
        App::watching(label, Fleet::empty(), now_ms)
    }

    /// Adds the replica at `socket` to the fleet; returns the index its session's
    /// messages ([`Msg::Replica`]) must carry.
    pub fn join(&mut self, socket: PathBuf) -> usize {
        self.fleet.join(socket)
    }

    /// The replica the next edit goes to: the first connected one (the first one while
    /// none is, whose session refuses the edit until it is back).
    pub fn edit_target(&self) -> usize {
        self.fleet.editor().unwrap_or(0)
    }

    fn watching(socket: PathBuf, fleet: Fleet, now_ms: u64) -> App {
        App {
            socket,
            fleet,
            events: EventRing::default(),
            stats: None,
            policy: None,
            reload_error: None,
            filter: Filter::default(),
            focus: Focus::default(),
            dialog: None,
            help: false,
            paused_at: None,
            scroll: 0,
            denied_selected: 0,
            hosts_selected: 0,
            policy_selected: 0,
            notice: None,
            now_ms,
            fatal: None,
            read_only: false,
            rate: Rate::default(),
            last_verdicts: HashMap::new(),
        }
    }

    /// Where keys go now.
    pub fn input_mode(&self) -> InputMode {
        match &self.dialog {
            Some(Dialog::Confirm { .. }) => InputMode::Confirm,
            Some(Dialog::Add(_)) => InputMode::Prompt,
            None if self.help => InputMode::Help,
            None if self.filter.editing => InputMode::Filter,
            None => InputMode::Normal,
        }
    }

    /// The events the tail shows: filtered, and frozen at the pause point when paused.
    pub fn visible_events(&self) -> Vec<&Entry> {
        let until = self.paused_at.unwrap_or(u64::MAX);
        let labels: Vec<String> = match self.fleet.is_shown() && self.filter.is_active() {
            true => self.fleet.replicas().iter().map(Replica::label).collect(),
            false => Vec::new(),
        };
        let passes = |e: &Entry| {
            self.filter.matches(&e.event)
                || self.filter.names(labels.get(e.replica).map(String::as_str))
        };
        self.events
            .iter()
            .filter(|e| e.seq <= until && passes(e))
            .collect()
    }

    /// Origins with refusals, most refused first; the [`UNTRACKED`] bucket is not one,
    /// nor is an origin allowed since (see [`App::allowed_since_refused`]).
    pub fn denied_origins(&self) -> Vec<&OriginStats> {
        let Some(stats) = &self.stats else {
            return Vec::new();
        };
        let mut refused = most_refused(&stats.origins, UNTRACKED);
        refused.retain(|o| !self.allowed_since_refused(o));
        refused
    }

    /// Whether `origin` was allowed after its last refusal: a request from it passed
    /// since, or it was refused only for not being listed and the policy lists it now.
    /// Such an origin leaves the denied panel; it comes back if it is refused again.
    pub fn allowed_since_refused(&self, origin: &OriginStats) -> bool {
        if let Some(last) = self.last_verdicts.get(&origin.origin)
            && last.allowed > 0
            && last.allowed >= last.refused
        {
            return true;
        }
        origin.last_reason.as_deref() == Some("origin not allowed")
            && self.allowed_origins().contains(&origin.origin)
    }

    /// Refusals counted in the server's [`UNTRACKED`] bucket, if any.
    pub fn untracked_refusals(&self) -> Option<u64> {
        untracked(&self.stats.as_ref()?.origins, UNTRACKED)
    }

    /// Refused `Host` values, most refused first; the [`UNTRACKED_HOST`] bucket is not one.
    pub fn denied_hosts(&self) -> Vec<&HostStats> {
        self.stats
            .as_ref()
            .map_or_else(Vec::new, |s| most_refused(&s.hosts, UNTRACKED_HOST))
    }

    /// Host refusals counted in the server's [`UNTRACKED_HOST`] bucket, if any.
    pub fn untracked_host_refusals(&self) -> Option<u64> {
        untracked(&self.stats.as_ref()?.hosts, UNTRACKED_HOST)
    }

    /// Whether the denied hosts panel is shown: once the server has refused a `Host`.
    pub fn shows_hosts(&self) -> bool {
        self.stats.as_ref().is_some_and(|s| !s.hosts.is_empty())
    }

    /// The allowed hosts of the serving policy.
    pub fn allowed_hosts(&self) -> &[String] {
        self.policy
            .as_ref()
            .map_or(&[], |p| p.settings.allowed_hosts.as_slice())
    }

    /// The allowed origins of the serving policy.
    pub fn allowed_origins(&self) -> &[String] {
        self.policy
            .as_ref()
            .map_or(&[], |p| p.settings.allowed_origins.as_slice())
    }

    /// Applies `msg`; returns what the run loop must do.
    pub fn update(&mut self, msg: Msg) -> Option<Effect> {
        match msg {
            Msg::Action(action) => self.act(action),
            Msg::Replica(replica, net) => self.receive(replica, net),
            Msg::Tick { now_ms } => {
                self.now_ms = now_ms;
                None
            }
        }
    }

    fn act(&mut self, action: Action) -> Option<Effect> {
        if action == Action::Quit {
            return Some(Effect::Quit);
        }
        match self.input_mode() {
            InputMode::Help => {
                if matches!(action, Action::ToggleHelp | Action::Cancel) {
                    self.help = false;
                }
                None
            }
            InputMode::Filter => {
                self.edit_filter(action);
                None
            }
            InputMode::Prompt => self.edit_prompt(action),
            InputMode::Confirm => self.answer(action),
            InputMode::Normal => self.normal(action),
        }
    }

    fn normal(&mut self, action: Action) -> Option<Effect> {
        let edits = matches!(
            action,
            Action::Allow | Action::AddOrigin | Action::AddHost | Action::Remove
        );
        if edits && self.read_only {
            self.tell(READ_ONLY, true);
            return None;
        }
        match action {
            Action::ToggleHelp => self.help = true,
            Action::FocusNext => self.cycle_focus(Focus::next),
            Action::FocusPrev => self.cycle_focus(Focus::prev),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(PAGE as isize)),
            Action::PageDown => self.move_by(PAGE as isize),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.jump_to_bottom(),
            Action::TogglePause => self.toggle_pause(),
            Action::StartFilter => self.filter.editing = true,
            Action::ClearFilter | Action::Cancel => self.filter.text.clear(),
            Action::Allow => self.allow(),
            Action::AddOrigin => self.open_prompt(List::Origins, "", None),
            Action::AddHost => self.open_prompt(List::Hosts, "", None),
            Action::Remove => self.ask_remove(),
            Action::Quit
            | Action::Char(_)
            | Action::Backspace
            | Action::Submit
            | Action::Yes
            | Action::RouteNext
            | Action::RoutePrev => {}
        }
        None
    }

    /// Moves the focus on, past the denied hosts panel while it is not shown.
    fn cycle_focus(&mut self, step: fn(Focus) -> Focus) {
        self.focus = step(self.focus);
        if self.focus == Focus::Hosts && !self.shows_hosts() {
            self.focus = step(self.focus);
        }
    }

    /// Moves the focused panel's cursor by `delta` (negative: up / back in time).
    fn move_by(&mut self, delta: isize) {
        match self.focus {
            Focus::Events => self.scroll_by(delta),
            Focus::Denied => {
                let len = self.denied_origins().len();
                self.denied_selected = step(self.denied_selected, delta, len);
            }
            Focus::Hosts => {
                let len = self.denied_hosts().len();
                self.hosts_selected = step(self.hosts_selected, delta, len);
            }
            Focus::Policy => {
                let len = self.allowed_origins().len();
                self.policy_selected = step(self.policy_selected, delta, len);
            }
        }
    }

    /// Scrolling back freezes the tail, so the lines being read do not run away.
    fn scroll_by(&mut self, delta: isize) {
        if delta < 0 && self.paused_at.is_none() {
            self.paused_at = Some(self.events.last_seq());
        }
        let max = self.visible_events().len().saturating_sub(1);
        let back = self.scroll as isize - delta;
        self.scroll = back.clamp(0, max as isize) as usize;
    }

    fn jump_to_bottom(&mut self) {
        match self.focus {
            Focus::Events => {
                self.scroll = 0;
                self.paused_at = None;
            }
            _ => self.move_by(isize::MAX / 2),
        }
    }

    fn toggle_pause(&mut self) {
        if self.paused_at.take().is_none() {
            self.paused_at = Some(self.events.last_seq());
        } else {
            self.scroll = 0;
        }
    }

    /// Opens the add prompt filled in with the selected denied origin or host, on the
    /// route that refused it last: Enter adds it, the route can be changed first.
    fn allow(&mut self) {
        match self.focus {
            Focus::Denied => {
                let Some(origin) = self
                    .denied_origins()
                    .get(self.denied_selected)
                    .map(|o| o.origin.clone())
                else {
                    return self.tell("no denied origin selected", true);
                };
                let route = self.refusing_route(|d| {
                    d.origin.as_deref() == Some(origin.as_str()) && !is_host_refusal(d)
                });
                self.open_prompt(List::Origins, &origin, route.as_deref());
            }
            Focus::Hosts => {
                let Some(host) = self
                    .denied_hosts()
                    .get(self.hosts_selected)
                    .map(|h| h.host.clone())
                else {
                    return self.tell("no denied host selected", true);
                };
                // The counters key a host lower-cased; the refusal's reason names it as sent.
                let reason = format!("host {host} not allowed");
                let route = self.refusing_route(|d| {
                    d.reason
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(&reason))
                });
                self.open_prompt(List::Hosts, &host, route.as_deref());
            }
            Focus::Policy => self.open_prompt(List::Origins, "", None),
            Focus::Events => self.tell(
                "to allow an origin, select it in the denied panel (Tab), or press n to type one",
                true,
            ),
        }
    }

    /// The route of the newest refusal that `refused` picks, as its event named it.
    fn refusing_route(
        &self,
        refused: impl Fn(&mcp_cors::protocol::DecisionEvent) -> bool,
    ) -> Option<String> {
        self.events
            .iter()
            .rev()
            .find_map(|entry| match &entry.event {
                Event::Decision(d) if d.verdict != Verdict::Allow && refused(d) => {
                    Some(d.route.clone())
                }
                _ => None,
            })?
    }

    fn open_prompt(&mut self, list: List, input: &str, route: Option<&str>) {
        let base = self.policy.as_ref().map(|p| &p.settings);
        self.dialog = Some(Dialog::Add(AddEntry::new(list, input, route, base)));
    }

    fn ask_remove(&mut self) {
        if self.focus != Focus::Policy {
            return self.tell(
                "to remove an origin, select it in the policy panel (Tab)",
                true,
            );
        }
        let Some(origin) = self.allowed_origins().get(self.policy_selected).cloned() else {
            return self.tell("no allowed origin selected", true);
        };
        self.dialog = Some(Dialog::Confirm {
            question: format!(
                "Remove {origin}? Requests from it are refused once the file is saved."
            ),
            request: Request::RemoveOrigin {
                origin,
                route: None,
            },
            explicit: false,
        });
    }

    fn edit_filter(&mut self, action: Action) {
        match action {
            Action::Char(c) => self.filter.text.push(c),
            Action::Backspace => {
                self.filter.text.pop();
            }
            Action::Submit => self.filter.editing = false,
            Action::Cancel => {
                self.filter.text.clear();
                self.filter.editing = false;
            }
            _ => {}
        }
        // The filter changes which lines exist; an old scroll offset would point anywhere.
        self.scroll = 0;
    }

    fn edit_prompt(&mut self, action: Action) -> Option<Effect> {
        let base = self.policy.as_ref().map(|p| &p.settings);
        let Some(Dialog::Add(prompt)) = &mut self.dialog else {
            return None;
        };
        match action {
            Action::Char(c) => prompt.input.push(c),
            Action::Backspace => {
                prompt.input.pop();
            }
            Action::RouteNext | Action::RoutePrev => {
                let step = if action == Action::RouteNext { 1 } else { -1 };
                prompt.cycle_route(step, base);
                return None;
            }
            Action::Cancel => {
                self.dialog = None;
                return None;
            }
            Action::Submit => return self.submit_prompt(),
            _ => return None,
        }
        prompt.revalidate(base);
        None
    }

    fn submit_prompt(&mut self) -> Option<Effect> {
        let Some(Dialog::Add(prompt)) = &self.dialog else {
            return None;
        };
        // Only a valid entry leaves the dialog; an invalid one keeps it open with its
        // diagnostic, so the operator can fix the typo.
        let Validation::Valid { normalised, .. } = &prompt.check else {
            return None;
        };
        if normalised == "*" {
            // Never one keystroke away: a second question, answered with `y` only.
            self.dialog = Some(Dialog::Confirm {
                question: star_warning(prompt.list, prompt.route.as_deref()),
                request: prompt.request(normalised, true),
                explicit: true,
            });
            return None;
        }
        let request = prompt.request(normalised, false);
        let told = format!("adding {normalised} to {}…", prompt.place());
        self.dialog = None;
        self.tell(&told, false);
        Some(Effect::Send(request))
    }

    fn answer(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Submit
                if matches!(self.dialog, Some(Dialog::Confirm { explicit: true, .. })) =>
            {
                self.tell("press y to confirm, or n to cancel", true);
                None
            }
            Action::Submit | Action::Yes => {
                let Some(Dialog::Confirm { request, .. }) = self.dialog.take() else {
                    return None;
                };
                self.tell("sending…", false);
                Some(Effect::Send(request))
            }
            Action::Cancel => {
                self.dialog = None;
                None
            }
            _ => None,
        }
    }

    fn tell(&mut self, text: &str, error: bool) {
        self.notice = Some(Notice {
            text: text.to_owned(),
            error,
        });
    }

    fn receive(&mut self, replica: usize, msg: NetMsg) -> Option<Effect> {
        // A replica that never joined is nothing of ours.
        self.fleet.get(replica)?;
        match msg {
            NetMsg::Connected {
                server,
                replica: id,
            } => {
                if let Some(r) = self.fleet.get_mut(replica) {
                    r.conn = ConnStatus::Connected { server };
                    r.id = id;
                }
                self.show_editor_policy();
            }
            NetMsg::Replay(events) => {
                for event in self.events.merge_replay(replica, events) {
                    if let Event::Decision(d) = &event {
                        self.count(replica, d);
                    }
                }
            }
            NetMsg::Event(event) => self.observe(replica, event),
            NetMsg::Dropped { count } => {
                if let Some(r) = self.fleet.get_mut(replica) {
                    r.dropped_here += count;
                }
            }
            NetMsg::Stats(stats) => {
                if let Some(r) = self.fleet.get_mut(replica) {
                    r.stats = Some(stats);
                }
                if let Some(totals) = self.fleet.totals() {
                    self.set_stats(totals);
                }
            }
            NetMsg::Policy(policy) => {
                let editor = self.fleet.editor();
                if let Some(r) = self.fleet.get_mut(replica) {
                    r.policy = Some(policy.clone());
                }
                if editor.is_none_or(|e| e == replica) {
                    self.set_policy(policy);
                }
            }
            NetMsg::Disconnected { reason, retry_in } => {
                let retry_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
                let down = ConnStatus::Disconnected {
                    reason,
                    retry_at_ms: self.now_ms.saturating_add(retry_ms),
                };
                self.replica_down(replica, down);
            }
            NetMsg::CommandDone(outcome) => {
                let (text, error) = match outcome {
                    Ok(text) => (text, false),
                    Err(text) => (text, true),
                };
                let text = match self.fleet.is_shown() {
                    true => format!("{}: {text}", self.replica_label(replica)),
                    false => text,
                };
                self.tell(&text, error);
            }
            NetMsg::Fatal(reason) if self.fleet.is_shown() => {
                // One replica of another version: the rest of the fleet is still shown.
                self.replica_down(replica, ConnStatus::Failed { reason });
            }
            NetMsg::Fatal(reason) => {
                self.fatal = Some(reason);
                return Some(Effect::Quit);
            }
        }
        None
    }

    /// The label of the replica at `index`, as the tail and the replicas panel show it.
    pub fn replica_label(&self, index: usize) -> String {
        self.fleet
            .get(index)
            .map_or_else(|| format!("replica {index}"), Replica::label)
    }

    /// The connection the header shows: of the server; for a fleet, of the replica edits
    /// go to (the first one while none is connected).
    pub fn conn(&self) -> &ConnStatus {
        static CONNECTING: ConnStatus = ConnStatus::Connecting;
        self.fleet
            .get(self.edit_target())
            .map_or(&CONNECTING, |r| &r.conn)
    }

    /// Events the servers dropped for this UI, over all replicas.
    pub fn dropped_here(&self) -> u64 {
        self.fleet.replicas().iter().map(|r| r.dropped_here).sum()
    }

    fn replica_down(&mut self, replica: usize, status: ConnStatus) {
        if let Some(r) = self.fleet.get_mut(replica) {
            r.conn = status;
        }
        self.show_editor_policy();
    }

    /// After a replica came or went: the policy panel follows the replica edits go to,
    /// with the policy that replica serves.
    fn show_editor_policy(&mut self) {
        let policy = self
            .fleet
            .get(self.edit_target())
            .and_then(|r| r.policy.clone());
        if let Some(policy) = policy
            && self.policy.as_ref() != Some(&policy)
        {
            self.set_policy(policy);
        }
    }

    /// Reload events update the banner at once, ahead of the next stats poll; decisions
    /// move the counters and the sparklines as they come.
    fn observe(&mut self, replica: usize, event: Event) {
        match &event {
            Event::Reloaded { .. } => self.reload_error = None,
            Event::ReloadRejected(error) => self.reload_error = Some(error.clone()),
            Event::Decision(d) => self.count(replica, d),
            Event::Audit(_) => {}
        }
        self.events.push(replica, event);
    }

    /// Counts a decision of `replica`: into its counters and the totals, if its server
    /// counted it after it last sent them (see [`live::is_new`]).
    fn count(&mut self, replica: usize, d: &mcp_cors::protocol::DecisionEvent) {
        let own = self.fleet.get_mut(replica).and_then(|r| r.stats.as_mut());
        if let Some(own) = own
            && live::is_new(own, d)
        {
            live::count(own, d);
            if let Some(totals) = &mut self.stats {
                live::count(totals, d);
            }
        }
        self.rate.add(d);
        let Some(origin) = &d.origin else { return };
        if is_host_refusal(d) {
            return; // Not the origin's fault: allowing it would not help.
        }
        if !self.last_verdicts.contains_key(origin)
            && self.last_verdicts.len() >= REMEMBERED_ORIGINS
        {
            self.forget_oldest_verdict();
        }
        let last = self.last_verdicts.entry(origin.clone()).or_default();
        let at = match d.verdict {
            Verdict::Allow => &mut last.allowed,
            Verdict::Deny | Verdict::WouldDeny => &mut last.refused,
        };
        *at = (*at).max(d.at_ms);
    }

    fn forget_oldest_verdict(&mut self) {
        let oldest = self
            .last_verdicts
            .iter()
            .min_by_key(|(_, v)| v.allowed.max(v.refused))
            .map(|(k, _)| k.clone());
        if let Some(oldest) = oldest {
            self.last_verdicts.remove(&oldest);
        }
    }

    fn set_stats(&mut self, stats: Stats) {
        self.reload_error = stats.last_error.clone();
        self.stats = Some(stats);
        let len = self.denied_origins().len();
        self.denied_selected = self.denied_selected.min(len.saturating_sub(1));
        let len = self.denied_hosts().len();
        self.hosts_selected = self.hosts_selected.min(len.saturating_sub(1));
        // A server restarted since has no host refusals: its panel is gone, so is focus.
        if self.focus == Focus::Hosts && !self.shows_hosts() {
            self.focus = Focus::Policy;
        }
    }

    fn set_policy(&mut self, policy: PolicyReply) {
        let len = policy.settings.allowed_origins.len();
        self.policy_selected = self.policy_selected.min(len.saturating_sub(1));
        if let Some(Dialog::Add(prompt)) = &mut self.dialog {
            prompt.revalidate(Some(&policy.settings));
        }
        self.policy = Some(policy);
    }
}

/// The `Host` a refusal by the Host guard names (`host … not allowed`), as sent. Such a
/// refusal names no origin to allow even when the request carried one.
fn host_refused_by(d: &mcp_cors::protocol::DecisionEvent) -> Option<&str> {
    if d.verdict == Verdict::Allow {
        return None;
    }
    d.reason
        .as_deref()?
        .strip_prefix("host ")?
        .strip_suffix(" not allowed")
}

/// Whether a decision is a refusal by the Host guard.
fn is_host_refusal(d: &mcp_cors::protocol::DecisionEvent) -> bool {
    host_refused_by(d).is_some()
}

/// `index` moved by `delta` within `0..len`.
fn step(index: usize, delta: isize, len: usize) -> usize {
    let last = len.saturating_sub(1) as isize;
    (index as isize).saturating_add(delta).clamp(0, last.max(0)) as usize
}

/// A counter of refusals, for an origin or a `Host`: what the denied panels list.
pub trait Refused {
    /// The origin or host, as the server counted it.
    fn key(&self) -> &str;
    /// Refusals, enforced and reported only.
    fn refusals(&self) -> (u64, u64);
    fn last_seen_ms(&self) -> u64;
}

impl Refused for OriginStats {
    fn key(&self) -> &str {
        &self.origin
    }
    fn refusals(&self) -> (u64, u64) {
        (self.denied, self.would_deny)
    }
    fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms
    }
}

impl Refused for HostStats {
    fn key(&self) -> &str {
        &self.host
    }
    fn refusals(&self) -> (u64, u64) {
        (self.denied, self.would_deny)
    }
    fn last_seen_ms(&self) -> u64 {
        self.last_seen_ms
    }
}

fn total<T: Refused>(item: &T) -> u64 {
    let (denied, would_deny) = item.refusals();
    denied + would_deny
}

/// The entries with refusals, most refused first (then the most recent); the server's
/// bucket for what it does not track (`untracked_key`) is not one.
fn most_refused<'a, T: Refused>(items: &'a [T], untracked_key: &str) -> Vec<&'a T> {
    let mut refused: Vec<&T> = items
        .iter()
        .filter(|i| total(*i) > 0 && i.key() != untracked_key)
        .collect();
    refused.sort_by(|a, b| {
        total(*b)
            .cmp(&total(*a))
            .then(b.last_seen_ms().cmp(&a.last_seen_ms()))
    });
    refused
}

/// Refusals counted in the bucket `untracked_key`, if any.
fn untracked<T: Refused>(items: &[T], untracked_key: &str) -> Option<u64> {
    let other = items.iter().find(|i| i.key() == untracked_key)?;
    Some(total(other)).filter(|&n| n > 0)
}

#[cfg(test)]
mod tests;
