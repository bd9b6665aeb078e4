//! The replicas the UI watches: one for `--config` or a single `--socket`, several for a
//! fleet (`--socket A --socket B`, or a pattern). Each keeps its own connection state,
//! counters and policy; the header and the denied panels show the fleet's totals, built
//! here from the replicas' own counters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mcp_cors::protocol::{HostStats, OriginStats, PolicyReply, ReplicaId, Stats};

use super::ConnStatus;

/// One server the UI is connected to (or trying to be).
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// Its admin socket.
    pub socket: PathBuf,
    /// Which process answered last, from its hello.
    pub id: ReplicaId,
    /// The connection.
    pub conn: ConnStatus,
    /// Its last counters. Kept while it is down: the refusals they count happened, and
    /// the panel marks them as of a replica that is down.
    pub stats: Option<Stats>,
    /// The policy it serves.
    pub policy: Option<PolicyReply>,
    /// Events it dropped for this UI.
    pub dropped_here: u64,
}

impl Replica {
    fn new(socket: PathBuf) -> Replica {
        Replica {
            socket,
            id: ReplicaId::default(),
            conn: ConnStatus::Connecting,
            stats: None,
            policy: None,
            dropped_here: 0,
        }
    }

    /// What labels it: `HOST:PID` from its hello; its socket's path until it says hello,
    /// or when it does not say.
    pub fn label(&self) -> String {
        self.id
            .label()
            .unwrap_or_else(|| self.socket.display().to_string())
    }

    /// Whether it is connected now.
    pub fn is_connected(&self) -> bool {
        matches!(self.conn, ConnStatus::Connected { .. })
    }
}

/// The replicas, in the order they joined (their index tags their sessions' messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    replicas: Vec<Replica>,
    /// Whether the UI shows a fleet (replica labels, the replicas panel): started on
    /// several sockets or a pattern, however many have joined.
    shown: bool,
}

impl Fleet {
    /// One server, shown as before fleets existed.
    pub fn single(socket: PathBuf) -> Fleet {
        Fleet {
            replicas: vec![Replica::new(socket)],
            shown: false,
        }
    }

    /// A fleet with no replica yet: they [`join`](Fleet::join) as they are found.
    pub fn empty() -> Fleet {
        Fleet {
            replicas: Vec::new(),
            shown: true,
        }
    }

    /// Adds the replica at `socket`; returns its index.
    pub fn join(&mut self, socket: PathBuf) -> usize {
        self.replicas.push(Replica::new(socket));
        self.replicas.len() - 1
    }

    /// Whether a replica at `socket` has joined.
    pub fn knows(&self, socket: &Path) -> bool {
        self.replicas.iter().any(|r| r.socket == socket)
    }

    /// Whether the UI shows a fleet.
    pub fn is_shown(&self) -> bool {
        self.shown
    }

    /// The replicas, in joining order.
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The replica at `index`, if it joined.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Replica> {
        self.replicas.get_mut(index)
    }

    /// The replica at `index`, if it joined.
    pub fn get(&self, index: usize) -> Option<&Replica> {
        self.replicas.get(index)
    }

    /// How many replicas are connected now.
    pub fn connected(&self) -> usize {
        self.replicas.iter().filter(|r| r.is_connected()).count()
    }

    /// The replica edits go to, and whose policy the policy panel shows: the first
    /// connected one (a fleet on one etcd key serves the edit everywhere; replicas on
    /// files of their own each need their own edit, which the panel warns of).
    pub fn editor(&self) -> Option<usize> {
        self.replicas.iter().position(Replica::is_connected)
    }

    /// Whether connected replicas serve different policies.
    pub fn policies_differ(&self) -> bool {
        let mut served = self
            .replicas
            .iter()
            .filter(|r| r.is_connected())
            .filter_map(|r| r.policy.as_ref().map(|p| &p.settings));
        match served.next() {
            Some(first) => served.any(|other| other != first),
            None => false,
        }
    }

    /// The fleet's counters: every replica's summed, origins and hosts merged by name.
    /// `None` until one replica sent its own.
    pub fn totals(&self) -> Option<Stats> {
        let mut all = self.replicas.iter().filter_map(|r| r.stats.as_ref());
        let first = all.next()?.clone();
        Some(all.fold(first, add))
    }
}

/// `sum` with `more` added: counters summed; the fleet fails closed, for the header,
/// when any replica does; the first refused reload is the one the banner shows.
fn add(mut sum: Stats, more: &Stats) -> Stats {
    sum.allowed += more.allowed;
    sum.denied += more.denied;
    sum.would_deny += more.would_deny;
    sum.dropped_events += more.dropped_events;
    sum.listeners += more.listeners;
    sum.reloads += more.reloads;
    sum.unguarded += more.unguarded;
    sum.loaded &= more.loaded;
    sum.last_reload_ms = sum.last_reload_ms.max(more.last_reload_ms);
    sum.at_ms = sum.at_ms.max(more.at_ms);
    if sum.last_error.is_none() {
        sum.last_error.clone_from(&more.last_error);
    }
    merge(&mut sum.origins, &more.origins, |o| &o.origin, add_origin);
    merge(&mut sum.hosts, &more.hosts, |h| &h.host, add_host);
    sum
}

/// Adds each of `more` to the item of `into` with the same name, or appends it.
fn merge<T: Clone>(
    into: &mut Vec<T>,
    more: &[T],
    name: impl Fn(&T) -> &String,
    add: impl Fn(&mut T, &T),
) {
    let mut index: HashMap<String, usize> = into
        .iter()
        .enumerate()
        .map(|(i, item)| (name(item).clone(), i))
        .collect();
    for item in more {
        match index.get(name(item)) {
            Some(&i) => add(&mut into[i], item),
            None => {
                index.insert(name(item).clone(), into.len());
                into.push(item.clone());
            }
        }
    }
}

fn add_origin(sum: &mut OriginStats, more: &OriginStats) {
    sum.allowed += more.allowed;
    sum.denied += more.denied;
    sum.would_deny += more.would_deny;
    if more.last_seen_ms > sum.last_seen_ms && more.last_reason.is_some() {
        sum.last_reason.clone_from(&more.last_reason);
    }
    sum.last_seen_ms = sum.last_seen_ms.max(more.last_seen_ms);
}

fn add_host(sum: &mut HostStats, more: &HostStats) {
    sum.denied += more.denied;
    sum.would_deny += more.would_deny;
    sum.last_seen_ms = sum.last_seen_ms.max(more.last_seen_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_cors::PolicySettings;

    fn origin(name: &str, denied: u64, seen: u64, reason: &str) -> OriginStats {
        OriginStats {
            origin: name.into(),
            denied,
            last_seen_ms: seen,
            last_reason: Some(reason.into()),
            ..OriginStats::default()
        }
    }

    fn connected(fleet: &mut Fleet, i: usize) {
        fleet.get_mut(i).unwrap().conn = ConnStatus::Connected {
            server: "0.1.0".into(),
        };
    }

    #[test]
    fn totals_sum_the_replicas_and_merge_origins_by_name() {
        let mut fleet = Fleet::empty();
        for socket in ["a.sock", "b.sock", "c.sock"] {
            fleet.join(socket.into());
        }
        assert_eq!(
            fleet.totals(),
            None,
            "nothing until a replica sends counters"
        );
        fleet.get_mut(0).unwrap().stats = Some(Stats {
            allowed: 5,
            denied: 1,
            loaded: true,
            origins: vec![origin("https://e.example", 1, 100, "origin not allowed")],
            ..Stats::default()
        });
        fleet.get_mut(2).unwrap().stats = Some(Stats {
            allowed: 2,
            denied: 3,
            loaded: false,
            origins: vec![
                origin("https://e.example", 2, 300, "origin not allowed on route x"),
                origin("https://f.example", 1, 50, "origin not allowed"),
            ],
            hosts: vec![HostStats {
                host: "evil:80".into(),
                denied: 1,
                ..HostStats::default()
            }],
            ..Stats::default()
        });
        let totals = fleet.totals().unwrap();
        assert_eq!((totals.allowed, totals.denied), (7, 4));
        assert!(!totals.loaded, "one replica failing closed shows");
        assert_eq!(totals.origins.len(), 2);
        let e = &totals.origins[0];
        assert_eq!((e.denied, e.last_seen_ms), (3, 300));
        assert_eq!(
            e.last_reason.as_deref(),
            Some("origin not allowed on route x"),
            "the newest refusal's reason"
        );
        assert_eq!(totals.hosts.len(), 1);
    }

    #[test]
    fn edits_go_to_the_first_connected_replica() {
        let mut fleet = Fleet::empty();
        assert_eq!(fleet.editor(), None);
        fleet.join("a.sock".into());
        fleet.join("b.sock".into());
        assert!(fleet.knows(Path::new("b.sock")) && !fleet.knows(Path::new("c.sock")));
        connected(&mut fleet, 1);
        assert_eq!(fleet.editor(), Some(1));
        connected(&mut fleet, 0);
        assert_eq!(fleet.editor(), Some(0));
        assert_eq!(fleet.connected(), 2);
    }

    #[test]
    fn different_policies_on_connected_replicas_are_noticed() {
        let mut fleet = Fleet::empty();
        for (i, origins) in [["https://a.example"], ["https://b.example"]]
            .iter()
            .enumerate()
        {
            fleet.join(format!("{i}.sock").into());
            connected(&mut fleet, i);
            fleet.get_mut(i).unwrap().policy = Some(PolicyReply {
                source: None,
                loaded: true,
                settings: PolicySettings {
                    allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
                    ..PolicySettings::default()
                },
            });
        }
        assert!(fleet.policies_differ());
        fleet.get_mut(1).unwrap().conn = ConnStatus::Connecting;
        assert!(
            !fleet.policies_differ(),
            "a replica that is down is not compared"
        );
    }

    #[test]
    fn a_replica_is_labelled_by_its_hello_or_else_its_socket() {
        let mut fleet = Fleet::single("/run/cors.sock".into());
        assert_eq!(fleet.get(0).unwrap().label(), "/run/cors.sock");
        fleet.get_mut(0).unwrap().id = ReplicaId {
            hostname: Some("web-1".into()),
            pid: Some(7),
        };
        assert_eq!(fleet.get(0).unwrap().label(), "web-1:7");
        assert!(!fleet.is_shown());
    }
}
