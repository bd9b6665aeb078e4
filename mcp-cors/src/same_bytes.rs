//! Equality of two short byte strings, inline: what a request's `Host` and `Origin` are
//! compared with on every request (the exact entries, what a thread admitted last).
//!
//! `a == b` on slices calls the C library's `bcmp`, whose call and length dispatch cost
//! more than the compare itself for values of 8 to 32 bytes, which is what hosts and
//! origins are. Those are compared here as two or four machine words that may overlap.

/// Whether `a` and `b` hold the same bytes.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // The word at `at` in both: `at + 8 <= n` in every call below.
    let differs = |at: usize| word(&a[at..]) ^ word(&b[at..]);
    match n {
        // Two words, overlapping when shorter than 16: the first and the last 8 bytes.
        8..=16 => (differs(0) | differs(n - 8)) == 0,
        // Four: the first 16 and the last 16 bytes.
        17..=32 => (differs(0) | differs(8) | differs(n - 16) | differs(n - 8)) == 0,
        _ => a == b,
    }
}

/// The first 8 bytes of `bytes` (which has at least 8) as one word.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    u64::from_ne_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_slice_equality_at_every_length_and_every_differing_byte() {
        for n in 0..=80usize {
            let a: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "equal, length {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "differs at {at}, length {n}");
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!same_bytes(&a, &longer), "lengths {n} and {}", n + 1);
        }
    }
}
