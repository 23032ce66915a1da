//! What the bench targets share: the quick mode and criterion's settings.

use criterion::Criterion;
use std::time::Duration;

/// Set to `1` for a smoke run of every ID with short times.
pub const QUICK_ENV: &str = "SIMD_SOFTMAX_BENCH_QUICK";

/// Whether [`QUICK_ENV`] asks for a smoke run.
pub fn quick() -> bool {
    std::env::var(QUICK_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Criterion with `warm_up` and `measure` per benchmark (short times and 10
/// samples in quick mode).
pub fn config(warm_up: Duration, measure: Duration) -> Criterion {
    let c = Criterion::default();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
            .sample_size(10)
    } else {
        c.warm_up_time(warm_up).measurement_time(measure)
    }
}
