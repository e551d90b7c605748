//! Milliseconds, the unit of every timing the project reports.

use std::time::Instant;

/// Milliseconds elapsed since `t`, as a float (sub-millisecond stages matter).
pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
