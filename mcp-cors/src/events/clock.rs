//! The time for events and counters.

#[cfg(not(target_os = "linux"))]
use std::time::SystemTime;

#[cfg(not(target_os = "linux"))]
use crate::protocol::unix_millis;

/// The time in Unix milliseconds, from the kernel's coarse clock (a few ms of
/// resolution): reading it is a few nanoseconds, where the precise clock costs tens on
/// every request, about a tenth of what the whole middleware costs.
#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
pub(crate) fn now_ms() -> u64 {
    coarse_ms()
}

/// The time in Unix milliseconds, as [`coarse_ms`] read it at most about a millisecond ago
/// on this thread (see `FRESH_CYCLES`): the CPU's time-stamp counter (one instruction, no system call, no
/// shared cache line) tells whether the value read last is still that fresh, so a busy
/// worker asks the kernel about once a millisecond instead of on every request. No
/// background thread keeps it fresh, so an idle server does no work for it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[inline]
pub(crate) fn now_ms() -> u64 {
    use std::cell::Cell;
    /// Cycles within which the value read last is reused: 2^22, 4 ms at 1 GHz and a
    /// millisecond or two on today's counters, within the coarse clock's own tick (1 to
    /// 10 ms), so the time is as fresh as the kernel's coarse clock would give.
    const FRESH_CYCLES: u64 = 1 << 22;
    thread_local! {
        /// The counter's reading when the time was last read, and that time.
        static LAST: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    // SAFETY: RDTSC exists on every x86_64 CPU and has no preconditions.
    let tsc = unsafe { std::arch::x86_64::_rdtsc() };
    LAST.with(|last| {
        let (read_at, ms) = last.get();
        // A counter that went back (another core's, not in step) wraps to a large
        // difference and reads the clock again, as a stale value does.
        if ms != 0 && tsc.wrapping_sub(read_at) < FRESH_CYCLES {
            return ms;
        }
        let ms = coarse_ms();
        last.set((tsc, ms));
        ms
    })
}

/// The kernel's coarse clock in Unix milliseconds.
#[cfg(target_os = "linux")]
fn coarse_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME_COARSE exists on every
    // Linux this crate supports (2.6.32 and later).
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return crate::protocol::unix_millis(std::time::SystemTime::now());
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let millis = u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000;
    secs.saturating_mul(1000).saturating_add(millis)
}

/// The time in Unix milliseconds.
#[cfg(not(target_os = "linux"))]
pub(crate) fn now_ms() -> u64 {
    unix_millis(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::unix_millis;
    use std::time::SystemTime;

    #[test]
    fn the_coarse_clock_agrees_with_the_precise_one() {
        let before = unix_millis(SystemTime::now());
        let coarse = now_ms();
        let after = unix_millis(SystemTime::now());
        // The coarse clock lags by at most its resolution (a tick, a few ms).
        assert!(
            coarse <= after && coarse + 50 >= before,
            "{before} {coarse} {after}"
        );
    }

    #[test]
    fn the_time_moves_on_and_never_lags_by_more_than_a_tick() {
        // Many reads in a row (most answered without asking the kernel), then a pause:
        // each stays within the coarse clock's tolerance of the precise one, and the
        // time after the pause is later, so a reused value is never stale.
        let mut last = 0;
        for _ in 0..3 {
            for _ in 0..100_000 {
                let before = unix_millis(SystemTime::now());
                let now = now_ms();
                let after = unix_millis(SystemTime::now());
                assert!(now <= after && now + 50 >= before, "{before} {now} {after}");
                assert!(now >= last, "the time went back: {last} then {now}");
                last = now;
            }
            let before_pause = now_ms();
            std::thread::sleep(std::time::Duration::from_millis(30));
            assert!(now_ms() > before_pause, "the time did not move over 30 ms");
        }
    }
}
