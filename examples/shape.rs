//! Runs `softmax_rows` on one shape repeatedly, for profilers
//! (`valgrind --tool=callgrind`, `perf`) and quick timing:
//!
//! ```text
//! cargo run --release --example shape -- 262 1000 [iters] [backend] [masked|plain] [IN-OUT]
//! ```
//! Prints the median ns per element over the iterations. `masked`: every
//! 16th input is `−∞` (an attention mask), so that rows take the exp that
//! flushes to `+0` below its range. `IN-OUT`: the element types, e.g.
//! `bf16-bf16`, `f16-f32` (default `f32-f32`).

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::{Backend, Element, Softmax, bf16, f16};
use std::time::Instant;

fn main() -> Result<(), simd_softmax::Error> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let rows: usize = a.first().and_then(|v| v.parse().ok()).unwrap_or(262);
    let cols: usize = a.get(1).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let iters: usize = a.get(2).and_then(|v| v.parse().ok()).unwrap_or(100);
    let sm = match a.get(3).map(String::as_str) {
        Some(name) => {
            let b = Backend::ALL
                .iter()
                .copied()
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
    let types = a.get(5).map(String::as_str).unwrap_or("f32-f32");
    let (ti, to) = types.split_once('-').expect("IN-OUT, e.g. bf16-f32");
    match ti {
        "f32" => run_in(sm, &x, to, cols, iters),
        "f16" => run_in(
            sm,
            &x.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>(),
            to,
            cols,
            iters,
        ),
        "bf16" => run_in(
            sm,
            &x.iter().map(|&v| bf16::from_f32(v)).collect::<Vec<_>>(),
            to,
            cols,
            iters,
        ),
        other => panic!("unknown element type {other}: f32 | f16 | bf16"),
    }
}

fn run_in<I: Element>(
    sm: Softmax,
    x: &[I],
    to: &str,
    cols: usize,
    iters: usize,
) -> Result<(), simd_softmax::Error> {
    match to {
        "f32" => run(sm, x, &mut vec![0.0f32; x.len()], cols, iters, |v| {
            f64::from(v)
        }),
        "f16" => run(sm, x, &mut vec![f16::ZERO; x.len()], cols, iters, |v| {
            v.to_f64()
        }),
        "bf16" => run(sm, x, &mut vec![bf16::ZERO; x.len()], cols, iters, |v| {
            v.to_f64()
        }),
        other => panic!("unknown element type {other}: f32 | f16 | bf16"),
    }
}

fn run<I: Element, O: Element>(
    sm: Softmax,
    x: &[I],
    y: &mut [O],
    cols: usize,
    iters: usize,
    wide: impl Fn(O) -> f64,
) -> Result<(), simd_softmax::Error> {
    let n = x.len();
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        sm.softmax_rows(x, y, cols)?;
        t.push(t0.elapsed().as_secs_f64() * 1e9 / n as f64);
    }
    t.sort_by(f64::total_cmp);
    println!(
        "{}x{cols} {} {}-{}: {:.3} ns/element (median of {iters}), sum of row 0 (f64) = {:.9}",
        n / cols,
        sm.backend(),
        I::NAME,
        O::NAME,
        t[iters / 2],
        y[..cols].iter().map(|&v| wide(v)).sum::<f64>()
    );
    Ok(())
}
