//! The recent events, in a ring of fixed capacity: memory stays bounded whatever the rate.

use std::collections::VecDeque;

use mcp_cors::protocol::Event;

/// How many events the UI keeps.
pub const CAPACITY: usize = 10_000;

/// An event with its arrival number, which identifies it across ring rotations (used to
/// freeze the view while paused).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Arrival number, from 1, never reused.
    pub seq: u64,
    /// The replica that sent it (its index in the fleet; 0 for a single server).
    pub replica: usize,
    /// The event.
    pub event: Event,
}

/// A ring buffer of the most recent events, oldest first.
#[derive(Debug, Clone)]
pub struct EventRing {
    entries: VecDeque<Entry>,
    capacity: usize,
    next_seq: u64,
}

impl Default for EventRing {
    fn default() -> Self {
        EventRing::with_capacity(CAPACITY)
    }
}

impl EventRing {
    /// An empty ring holding at most `capacity` events.
    pub fn with_capacity(capacity: usize) -> EventRing {
        EventRing {
            entries: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            next_seq: 1,
        }
    }

    /// Appends an event from `replica`, forgetting the oldest when full.
    pub fn push(&mut self, replica: usize, event: Event) {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            seq: self.next_seq,
            replica,
            event,
        });
        self.next_seq += 1;
    }

    /// Appends the events `replica` replayed after a (re)connect, skipping those already
    /// held: if the newest event held from it is among them (same server, connection
    /// re-established), only what follows it is new; otherwise (a restarted server) all
    /// are. Returns the new ones (cloned), for what counts them.
    pub fn merge_replay(&mut self, replica: usize, replay: Vec<Event>) -> Vec<Event> {
        let skip = self
            .entries
            .iter()
            .rev()
            .find(|entry| entry.replica == replica)
            .and_then(|last| replay.iter().rposition(|e| *e == last.event))
            .map_or(0, |pos| pos + 1);
        let new: Vec<Event> = replay.into_iter().skip(skip).collect();
        for event in &new {
            self.push(replica, event.clone());
        }
        new
    }

    /// Events held, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.entries.iter()
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The arrival number of the newest event (0 when none arrived yet).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_cors::PolicyDiff;

    fn ev(at_ms: u64) -> Event {
        Event::Reloaded {
            at_ms,
            diff: PolicyDiff::default(),
        }
    }

    fn times(ring: &EventRing) -> Vec<u64> {
        ring.iter()
            .map(|e| match e.event {
                Event::Reloaded { at_ms, .. } => at_ms,
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn keeps_only_the_newest_events() {
        let mut ring = EventRing::with_capacity(3);
        for t in 1..=5 {
            ring.push(0, ev(t));
        }
        assert_eq!(times(&ring), [3, 4, 5]);
        assert_eq!(ring.last_seq(), 5);
        assert_eq!(ring.iter().next().map(|e| e.seq), Some(3));
    }

    #[test]
    fn replay_after_reconnect_skips_what_was_seen() {
        let mut ring = EventRing::with_capacity(10);
        ring.merge_replay(0, vec![ev(1), ev(2)]);
        ring.merge_replay(0, vec![ev(1), ev(2), ev(3)]);
        assert_eq!(times(&ring), [1, 2, 3]);
        // A restarted server replays only its own events: all are new.
        ring.merge_replay(0, vec![ev(7)]);
        assert_eq!(times(&ring), [1, 2, 3, 7]);
    }

    #[test]
    fn each_replica_s_replay_is_matched_against_its_own_events() {
        let mut ring = EventRing::with_capacity(10);
        ring.merge_replay(0, vec![ev(1), ev(2)]);
        // Another replica's replay holds an event equal to one of replica 0's: it is
        // its own all the same, and nothing of it was held.
        ring.merge_replay(1, vec![ev(2), ev(5)]);
        assert_eq!(times(&ring), [1, 2, 2, 5]);
        // Replica 0 reconnects: only what follows its own newest is new.
        ring.merge_replay(0, vec![ev(1), ev(2), ev(6)]);
        assert_eq!(times(&ring), [1, 2, 2, 5, 6]);
        let from: Vec<usize> = ring.iter().map(|e| e.replica).collect();
        assert_eq!(from, [0, 0, 1, 1, 0]);
    }
}
