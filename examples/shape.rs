//! Runs `softmax_rows` on one shape repeatedly, for profilers
//! (`valgrind --tool=callgrind`, `perf`) and quick timing:
//!
//! ```text
//! cargo run --release --example shape -- 262 1000 [iters] [backend] [masked]
//! ```
//! Prints the median ns per element over the iterations. `masked`: every
//! 16th input is `−∞` (an attention mask), so that rows take the exp that
//! flushes to `+0` below its range.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::{Backend, Softmax};
use std::time::Instant;

fn main() -> Result<(), simd_softmax::Error> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let rows: usize = a.first().and_then(|v| v.parse().ok()).unwrap_or(262);
    let cols: usize = a.get(1).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let iters: usize = a.get(2).and_then(|v| v.parse().ok()).unwrap_or(100);
    let sm = match a.get(3).map(String::as_str) {
        Some(name) => {
            let b = Backend::ALL
                .into_iter()
                .find(|b| b.name() == name)
                .expect("backend: scalar | avx2 | avx512 | neon");
            Softmax::with_backend(b)?
        }
        None => Softmax::new(),
    };
    let n = rows * cols;
    let mut rng = SmallRng::seed_from_u64(1);
    let masked = a.get(4).map(String::as_str) == Some("masked");
    let x: Vec<f32> = (0..n)
        .map(|i| match masked && i % 16 == 5 {
            true => f32::NEG_INFINITY,
            false => rng.random_range(-10.0f32..10.0),
        })
        .collect();
    let mut y = vec![0.0f32; n];
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        sm.softmax_rows(&x, &mut y, cols)?;
        t.push(t0.elapsed().as_secs_f64() * 1e9 / n as f64);
    }
    t.sort_by(f64::total_cmp);
    println!(
        "{rows}x{cols} {}: {:.3} ns/element (median of {iters}), sum of row 0 (f64) = {:.9}",
        sm.backend(),
        t[iters / 2],
        y[..cols].iter().map(|&v| f64::from(v)).sum::<f64>()
    );
    Ok(())
}
