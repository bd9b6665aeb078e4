//! The time for events and counters.

#[cfg(not(target_os = "linux"))]
use std::time::SystemTime;

#[cfg(not(target_os = "linux"))]
use crate::protocol::unix_millis;

/// The time in Unix milliseconds, from the kernel's coarse clock (a few ms of
/// resolution): reading it is a few nanoseconds, where the precise clock costs tens on
/// every request, about a tenth of what the whole middleware costs.
#[cfg(target_os = "linux")]
pub(crate) fn now_ms() -> u64 {
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
}
