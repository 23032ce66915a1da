//! Criterion benchmarks of [`Sampler::sample`] on language-model logits
//! (normal with σ = 2, twenty entries raised by 8 to 14, as the peers'
//! `sampling.py` makes them), at the vocabularies engines use, each beside
//! one `softmax` of the same row and a full-sort sampler written here (the
//! baseline: every probability, the whole vocabulary sorted, the filters
//! on the sorted list). Default backend, one thread.
//!
//! Benchmark IDs:
//! ```text
//! sampler/<vocab>/softmax                    one softmax of the row (the yardstick)
//! sampler/<vocab>/<setting>                  Sampler::sample
//! sampler/<vocab>/<setting>/fullsort         the full-sort baseline
//! ```
//! `vocab` in 32000 128256 256000; `setting` in `t0.8_k40` (T = 0.8,
//! top-k 40), `t1_p0.9` (top-p 0.9), `k0_p0.95` (top-p 0.95, no top-k),
//! `minp0.05` (min-p 0.05): the settings `peers/run.sh --sampling` times
//! llama.cpp's chain at.
//!
//! Running: `taskset -c 1 cargo bench --bench sampler` (about 2 minutes);
//! `SIMD_SOFTMAX_BENCH_QUICK=1` for a smoke run.

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::{Sampler, SamplerScratch, Softmax};
use std::hint::black_box;
use std::time::Duration;

mod common;

const VOCABS: [usize; 3] = [32000, 128256, 256000];

/// (name, T, top-k, top-p, min-p)
const SETTINGS: [(&str, f32, usize, f32, f32); 4] = [
    ("t0.8_k40", 0.8, 40, 1.0, 0.0),
    ("t1_p0.9", 1.0, 0, 0.9, 0.0),
    ("k0_p0.95", 1.0, 0, 0.95, 0.0),
    ("minp0.05", 1.0, 0, 1.0, 0.05),
];

fn config() -> Criterion {
    common::config(Duration::from_millis(500), Duration::from_secs(2))
}

/// `lm_logits` of the peers' sampling script.
fn lm_logits(n: usize, seed: u64) -> Vec<f32> {
    let mut g = SmallRng::seed_from_u64(seed);
    let mut normal = || {
        let (u, v): (f64, f64) = (g.random_range(1e-300..1.0), g.random());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    };
    let mut x: Vec<f32> = (0..n).map(|_| 2.0 * normal()).collect();
    let mut g = SmallRng::seed_from_u64(seed ^ 1);
    for _ in 0..20 {
        let i = g.random_range(0..n);
        x[i] += g.random_range(8.0f32..14.0);
    }
    x
}

/// The baseline a user would write: every probability, a full sort by
/// descending probability, the filters on the sorted list, an inverse-CDF
/// draw. Buffers are reused (no allocation per call).
struct FullSort {
    probs: Vec<(f32, u32)>,
}

impl FullSort {
    fn sample(&mut self, x: &[f32], t: f32, k: usize, p: f32, min_p: f32, u: f64) -> u32 {
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.probs.clear();
        let mut z = 0.0f64;
        for (i, &v) in x.iter().enumerate() {
            let e = ((v - m) / t).exp();
            z += f64::from(e);
            self.probs.push((e, i as u32));
        }
        self.probs
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut keep = if k > 0 { k.min(x.len()) } else { x.len() };
        if k > 0 {
            z = self.probs[..keep].iter().map(|e| f64::from(e.0)).sum();
        }
        if p < 1.0 {
            let mut acc = 0.0;
            for (j, e) in self.probs[..keep].iter().enumerate() {
                acc += f64::from(e.0);
                if acc / z >= f64::from(p) {
                    keep = j + 1;
                    break;
                }
            }
        }
        if min_p > 0.0 {
            let floor = min_p * self.probs[0].0;
            keep = self.probs[..keep]
                .iter()
                .take_while(|e| e.0 >= floor)
                .count();
        }
        let total: f64 = self.probs[..keep].iter().map(|e| f64::from(e.0)).sum();
        let mut acc = 0.0;
        for e in &self.probs[..keep] {
            acc += f64::from(e.0);
            if u * total < acc {
                return e.1;
            }
        }
        self.probs[keep - 1].1
    }
}

fn bench_sampler(c: &mut Criterion) {
    let sm = Softmax::new();
    eprintln!("simd-softmax sampler bench: backend {}", sm.backend());
    for n in VOCABS {
        let x = lm_logits(n, n as u64);
        let mut g = c.benchmark_group(format!("sampler/{n}"));
        let mut y = vec![0.0f32; n];
        g.bench_function("softmax", |b| {
            b.iter(|| sm.softmax(black_box(&x), black_box(&mut y)).unwrap())
        });
        let mut scratch = SamplerScratch::new(n);
        let mut full = FullSort {
            probs: Vec::with_capacity(n),
        };
        for (name, t, k, p, min_p) in SETTINGS {
            let s: Sampler = sm.sampler().temperature(t).top_k(k).top_p(p).min_p(min_p);
            let mut u = 0.0f64;
            g.bench_function(name, |b| {
                b.iter(|| {
                    u = (u + 0.618_033_988_749_895) % 1.0;
                    s.sample(black_box(&x), u, &mut scratch).unwrap().index
                })
            });
            g.bench_function(format!("{name}/fullsort"), |b| {
                b.iter(|| {
                    u = (u + 0.618_033_988_749_895) % 1.0;
                    full.sample(black_box(&x), t, k, p, min_p, u)
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_sampler
}
criterion_main!(benches);
