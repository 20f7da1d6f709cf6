//! How many refused login attempts from one address are recorded one by one: a flood of bad
//! tokens must not fill the store (and the chain) without bound. Past the budget, attempts are
//! counted; the next one recorded after the window says how many were counted meanwhile.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusals recorded one by one per address and window.
pub const RECORDED_PER_WINDOW: u32 = 20;

/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Addresses tracked at most; past it, windows that ended are forgotten first.
const TRACKED: usize = 10_000;

/// What to do with one refused attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Record it; `counted_before` attempts from the address were counted, not recorded,
    /// since the last one recorded (say so in this one).
    Record {
        /// Attempts counted, not recorded, in the window before.
        counted_before: u64,
    },
    /// Count it only.
    Count,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    recorded: u32,
    counted: u64,
}

/// The per-address budget of recorded refusals.
#[derive(Debug, Default)]
pub struct RefusalBudget {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl RefusalBudget {
    /// Spends the budget of `source` for one refusal at `now`.
    pub fn spend(&self, source: IpAddr, now: Instant) -> Budget {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= TRACKED && !windows.contains_key(&source) {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let window = windows.entry(source).or_insert(Window {
            started: now,
            recorded: 0,
            counted: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            let counted_before = window.counted;
            *window = Window {
                started: now,
                recorded: 1,
                counted: 0,
            };
            return Budget::Record { counted_before };
        }
        if window.recorded < RECORDED_PER_WINDOW {
            window.recorded += 1;
            Budget::Record { counted_before: 0 }
        } else {
            window.counted += 1;
            Budget::Count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_counted_and_the_count_is_recorded_with_the_next_window() {
        let budget = RefusalBudget::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..RECORDED_PER_WINDOW {
            assert_eq!(budget.spend(a, t0), Budget::Record { counted_before: 0 });
        }
        for _ in 0..5 {
            assert_eq!(budget.spend(a, t0), Budget::Count);
        }
        // Another address has its own budget.
        assert_eq!(budget.spend(b, t0), Budget::Record { counted_before: 0 });
        assert_eq!(
            budget.spend(a, t0 + WINDOW),
            Budget::Record { counted_before: 5 }
        );
        assert_eq!(
            budget.spend(a, t0 + WINDOW),
            Budget::Record { counted_before: 0 }
        );
    }
}
