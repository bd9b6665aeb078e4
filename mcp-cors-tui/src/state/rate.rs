//! Decisions per second, allowed against refused, over the last minutes: what the header's
//! sparklines draw. Counted from the events (a folded run counts as its `count`), by the
//! second each was stamped in; memory is a fixed number of seconds.

use std::collections::VecDeque;

use mcp_cors::protocol::{DecisionEvent, Verdict};

/// Seconds kept: five minutes, more than the widest terminal shows.
pub const SECONDS: usize = 300;

/// One second's decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Second {
    /// Allowed.
    pub allowed: u64,
    /// Denied or would-be denied.
    pub refused: u64,
}

/// Per-second decision counts, the newest second last.
#[derive(Debug, Clone, Default)]
pub struct Rate {
    /// The Unix second of the last slot; `None` before the first decision.
    newest: Option<u64>,
    /// Up to [`SECONDS`] slots, oldest first, ending at `newest`.
    slots: VecDeque<Second>,
}

impl Rate {
    /// Counts `d` in the second it was stamped in. A decision older than what is kept is
    /// dropped; one from the future (a clock ahead) opens seconds up to it.
    pub fn add(&mut self, d: &DecisionEvent) {
        let second = d.at_ms / 1000;
        let newest = *self.newest.get_or_insert(second);
        if second > newest {
            self.advance(second);
        }
        let newest = self.newest.unwrap_or(second);
        let back = usize::try_from(newest - second.min(newest)).unwrap_or(usize::MAX);
        if back >= SECONDS {
            return;
        }
        while self.slots.len() <= back {
            self.slots.push_front(Second::default());
        }
        let index = self.slots.len() - 1 - back;
        let slot = &mut self.slots[index];
        match d.verdict {
            Verdict::Allow => slot.allowed += d.count,
            Verdict::Deny | Verdict::WouldDeny => slot.refused += d.count,
        }
    }

    fn advance(&mut self, second: u64) {
        let newest = self.newest.unwrap_or(second);
        let gap = usize::try_from(second - newest)
            .unwrap_or(usize::MAX)
            .min(SECONDS);
        for _ in 0..gap {
            self.slots.push_back(Second::default());
        }
        while self.slots.len() > SECONDS {
            self.slots.pop_front();
        }
        self.newest = Some(second);
    }

    /// The last `width` seconds up to `now_ms`'s second, oldest first; quiet seconds are
    /// zeros, so the line scrolls with time even when nothing happens.
    pub fn window(&self, now_ms: u64, width: usize) -> Vec<Second> {
        let now = now_ms / 1000;
        (0..width as u64)
            .rev()
            .map(|back| self.at(now.saturating_sub(back)))
            .collect()
    }

    /// `columns` columns ending at `now_ms`'s second that cover at least `span` seconds
    /// (one second per column when there are enough columns): each column is the
    /// busiest second it covers, so a burst shows whatever the width. Oldest first.
    pub fn columns(&self, now_ms: u64, columns: usize, span: usize) -> Vec<Second> {
        if columns == 0 {
            return Vec::new();
        }
        let per = span.div_ceil(columns).max(1);
        let seconds = self.window(now_ms, columns * per);
        seconds
            .chunks(per)
            .map(|chunk| Second {
                allowed: chunk.iter().map(|s| s.allowed).max().unwrap_or(0),
                refused: chunk.iter().map(|s| s.refused).max().unwrap_or(0),
            })
            .collect()
    }

    fn at(&self, second: u64) -> Second {
        let Some(newest) = self.newest else {
            return Second::default();
        };
        if second > newest {
            return Second::default();
        }
        let back = usize::try_from(newest - second).unwrap_or(usize::MAX);
        if back >= self.slots.len() {
            return Second::default();
        }
        self.slots[self.slots.len() - 1 - back]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, verdict: Verdict, count: u64) -> DecisionEvent {
        DecisionEvent {
            at_ms: ms,
            verdict,
            origin: None,
            method: "GET".into(),
            path: "/".into(),
            preflight: false,
            reason: None,
            count,
            route: None,
            client: None,
        }
    }

    fn pair(s: Second) -> (u64, u64) {
        (s.allowed, s.refused)
    }

    #[test]
    fn decisions_land_in_their_second_and_runs_count_whole() {
        let mut rate = Rate::default();
        rate.add(&at(10_100, Verdict::Allow, 1));
        rate.add(&at(10_900, Verdict::Deny, 1));
        rate.add(&at(12_000, Verdict::Allow, 40));
        rate.add(&at(11_500, Verdict::WouldDeny, 2)); // late, in an earlier second
        let window: Vec<_> = rate.window(13_000, 4).into_iter().map(pair).collect();
        assert_eq!(window, [(1, 1), (0, 2), (40, 0), (0, 0)]);
    }

    #[test]
    fn a_narrow_line_covers_the_span_with_the_busiest_second_of_each_column() {
        let mut rate = Rate::default();
        rate.add(&at(100_000, Verdict::Allow, 3));
        rate.add(&at(101_000, Verdict::Allow, 7));
        rate.add(&at(119_000, Verdict::Deny, 1));
        // 120 s over 60 columns: two seconds a column, the newest ending at 119.
        let columns = rate.columns(119_000, 60, 120);
        assert_eq!(columns.len(), 60);
        let allowed: u64 = columns.iter().map(|s| s.allowed).sum();
        assert_eq!(
            allowed, 7,
            "100 and 101 share a column; its busiest second is 7"
        );
        assert_eq!(pair(columns[59]), (0, 1));
        // Wide enough: one second a column.
        assert_eq!(
            rate.columns(119_000, 200, 120)
                .iter()
                .map(|s| s.allowed)
                .sum::<u64>(),
            10
        );
    }

    #[test]
    fn memory_is_bounded_and_old_seconds_fall_out() {
        let mut rate = Rate::default();
        rate.add(&at(0, Verdict::Allow, 1));
        rate.add(&at(10_000_000, Verdict::Allow, 1));
        assert!(rate.slots.len() <= SECONDS);
        let window = rate.window(10_000_000, SECONDS + 10);
        assert_eq!(window.iter().map(|s| s.allowed).sum::<u64>(), 1);
        rate.add(&at(0, Verdict::Allow, 1)); // too old to keep
        assert_eq!(
            rate.window(10_000_000, SECONDS)
                .iter()
                .map(|s| s.allowed)
                .sum::<u64>(),
            1
        );
    }
}
