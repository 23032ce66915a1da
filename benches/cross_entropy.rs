//! Criterion benchmarks of cross-entropy against one `softmax_rows` of the
//! same shape (the issue's targets: `with_grad` ≤ 1.3× `softmax_rows` at
//! 8×128256, ≤ 1.6× at 2048×32000), f32 (and bf16 logits and gradient),
//! default backend, single thread.
//!
//! Benchmark IDs:
//! ```text
//! cross_entropy/<rows>x<cols>/softmax_rows   the baseline: softmax of every row
//! cross_entropy/<rows>x<cols>/forward        `cross_entropy` (the mean loss)
//! cross_entropy/<rows>x<cols>/backward       `cross_entropy_backward` (the gradient)
//! cross_entropy/<rows>x<cols>/with_grad      `cross_entropy_with_grad` (both)
//! cross_entropy/<rows>x<cols>/softmax_rows-bf16   softmax_rows, bf16 in and out
//! cross_entropy/<rows>x<cols>/with_grad-bf16      with_grad, bf16 logits and gradient
//! ```
//! for the shapes 8x128256 (a decoding batch of a 128k vocabulary, in
//! cache) and 2048x32000 (a training batch, 262 MB: out of cache).
//!
//! Running (pinned, as the figures in docs/PERFORMANCE.md are):
//! ```text
//! taskset -c 1 cargo bench --bench cross_entropy
//! taskset -c 1 cargo bench --bench cross_entropy -- 8x128256
//! SIMD_SOFTMAX_BENCH_QUICK=1 cargo bench --bench cross_entropy   # smoke run
//! ```
//! Inputs are uniform in [−10, 10), seeded; targets seeded; default
//! options (no ignored rows, no smoothing), `grad_scale = 1/rows`.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::{CrossEntropyOptions, Softmax, bf16};
use std::hint::black_box;
use std::time::Duration;

mod common;

fn config() -> Criterion {
    common::config(Duration::from_secs(1), Duration::from_secs(3))
}

fn bench(c: &mut Criterion) {
    let sm = Softmax::new();
    println!("cross_entropy: default backend {}", sm.backend());
    let o = CrossEntropyOptions::default();
    for (rows, cols) in [(8usize, 128256usize), (2048, 32000)] {
        let mut rng = SmallRng::seed_from_u64(7);
        let n = rows * cols;
        let x: Vec<f32> = (0..n).map(|_| rng.random_range(-10.0f32..10.0)).collect();
        let t: Vec<u32> = (0..rows)
            .map(|_| rng.random_range(0..cols as u32))
            .collect();
        let mut y = vec![0.0f32; n];
        let g = 1.0 / rows as f32;
        let mut grp = c.benchmark_group(format!("cross_entropy/{rows}x{cols}"));
        grp.throughput(Throughput::Elements(n as u64));
        if n >= 1 << 24 {
            grp.sample_size(10).sampling_mode(SamplingMode::Flat);
        }
        grp.bench_function(BenchmarkId::from_parameter("softmax_rows"), |b| {
            b.iter(|| sm.softmax_rows(black_box(&x), &mut y, cols).unwrap())
        });
        grp.bench_function(BenchmarkId::from_parameter("forward"), |b| {
            b.iter(|| sm.cross_entropy(black_box(&x), cols, &t, o).unwrap())
        });
        grp.bench_function(BenchmarkId::from_parameter("backward"), |b| {
            b.iter(|| {
                sm.cross_entropy_backward(black_box(&x), cols, &t, o, g, &mut y)
                    .unwrap()
            })
        });
        grp.bench_function(BenchmarkId::from_parameter("with_grad"), |b| {
            b.iter(|| {
                sm.cross_entropy_with_grad(black_box(&x), cols, &t, o, g, &mut y)
                    .unwrap()
            })
        });
        // bf16 logits and gradient (mixed-precision training): the rows go
        // through the stack tiles.
        let xh: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let mut yh = vec![bf16::ZERO; n];
        grp.bench_function(BenchmarkId::from_parameter("softmax_rows-bf16"), |b| {
            b.iter(|| sm.softmax_rows(black_box(&xh), &mut yh, cols).unwrap())
        });
        grp.bench_function(BenchmarkId::from_parameter("with_grad-bf16"), |b| {
            b.iter(|| {
                sm.cross_entropy_with_grad(black_box(&xh), cols, &t, o, g, &mut yh)
                    .unwrap()
            })
        });
        grp.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
