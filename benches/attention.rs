//! Criterion benchmarks of the attention softmax (`AttentionSoftmax`) at the
//! cases engines run, each beside `softmax_rows` of the same size and
//! element type and beside the **unfused composition** an engine without
//! a fused kernel runs with our own calls: one pass over the scores per
//! option (scale; softcap with `f32::tanh`; mask add; ALiBi's slope times
//! the mask; `−∞` past the causal limit or outside the window; the sink
//! as an extra column of a copy), then `softmax_rows` (and the sink's
//! column dropped). Default backend, one thread.
//!
//! Benchmark IDs (`attention/<case>/<form>`, throughput in scores):
//! ```text
//! attention/decode-32x1x4096/{fused,softmax_rows,unfused}      scale, f16 mask (2 % padding)
//! attention/decode-32x1x32768/...                               scale, f16 mask
//! attention/prefill-32x512x512/...                              scale, causal
//! attention/cache-8x256x4096-bf16/...                           scale, causal offset 3840, bf16 in and out
//! attention/gemma2-16x128x4096/...                              scale, softcap 50, f32 mask
//! attention/gpt-oss-64x1x8192/{fused,fused-mask,softmax_rows,unfused}
//!                                                               scale, sinks, 128-key window (fused:
//!                                                               `window(128)`; fused-mask: the window as a mask)
//! attention/alibi-32x1x2048/...                                 scale, max_bias 8, mask −|i − j|
//! ```
//! Inputs as `engines.py` of the peers makes them: scores normal with σ =
//! 4, scale `1/√128`, sinks normal, seeded.
//!
//! Running (pinned, as the figures in docs/PERFORMANCE.md are):
//! ```text
//! taskset -c 1 cargo bench --bench attention
//! taskset -c 1 cargo bench --bench attention -- gemma2
//! SIMD_SOFTMAX_BENCH_QUICK=1 cargo bench --bench attention   # smoke run
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::{AttentionSoftmax, Softmax, bf16, f16};
use simd_softmax_kernels::attention::alibi_slope;
use std::hint::black_box;
use std::time::Duration;

mod common;

fn config() -> Criterion {
    common::config(Duration::from_secs(1), Duration::from_secs(2))
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut SmallRng) -> f32 {
    let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// One case's inputs and options.
struct Case {
    name: &'static str,
    heads: usize,
    q: usize,
    kv: usize,
    /// The mask, `[q, kv]`, f32 (converted where the case's type differs).
    mask: Option<Vec<f32>>,
    mask_f16: bool,
    causal: Option<usize>,
    cap: Option<f32>,
    max_bias: Option<f32>,
    sinks: Option<Vec<f32>>,
    window: Option<usize>,
    bf16: bool,
}

fn case(name: &'static str, heads: usize, q: usize, kv: usize) -> Case {
    Case {
        name,
        heads,
        q,
        kv,
        mask: None,
        mask_f16: false,
        causal: None,
        cap: None,
        max_bias: None,
        sinks: None,
        window: None,
        bf16: false,
    }
}

fn padding(q: usize, kv: usize, rng: &mut SmallRng) -> Vec<f32> {
    let cols: Vec<bool> = (0..kv).map(|_| rng.random::<f64>() < 0.02).collect();
    (0..q * kv)
        .map(|i| if cols[i % kv] { f32::NEG_INFINITY } else { 0.0 })
        .collect()
}

fn cases(rng: &mut SmallRng) -> Vec<Case> {
    let mut v = Vec::new();
    for kv in [4096, 32768] {
        v.push(Case {
            mask: Some(padding(1, kv, rng)),
            mask_f16: true,
            ..case(
                if kv == 4096 {
                    "decode-32x1x4096"
                } else {
                    "decode-32x1x32768"
                },
                32,
                1,
                kv,
            )
        });
    }
    v.push(Case {
        causal: Some(0),
        ..case("prefill-32x512x512", 32, 512, 512)
    });
    v.push(Case {
        causal: Some(3840),
        bf16: true,
        ..case("cache-8x256x4096-bf16", 8, 256, 4096)
    });
    v.push(Case {
        cap: Some(50.0),
        mask: Some(padding(128, 4096, rng)),
        ..case("gemma2-16x128x4096", 16, 128, 4096)
    });
    v.push(Case {
        sinks: Some((0..64).map(|_| normal(rng)).collect()),
        causal: Some(8191),
        window: Some(128),
        ..case("gpt-oss-64x1x8192", 64, 1, 8192)
    });
    v.push(Case {
        max_bias: Some(8.0),
        mask: Some((0..2048).map(|j| -((2047 - j) as f32)).collect()),
        ..case("alibi-32x1x2048", 32, 1, 2048)
    });
    v
}

/// The unfused composition: one pass per option into `z` (and `zs`, the
/// copy with the sink column), then `softmax_rows`.
#[allow(clippy::too_many_arguments)]
fn unfused(
    sm: &Softmax,
    c: &Case,
    s: &[f32],
    mask16: &[f16],
    scale: f32,
    z: &mut [f32],
    zs: &mut [f32],
    y: &mut [f32],
) {
    let (rows, kv) = (c.heads * c.q, c.kv);
    for (d, &v) in z.iter_mut().zip(s) {
        *d = v * scale;
    }
    if let Some(cap) = c.cap {
        for d in z.iter_mut() {
            *d = cap * (*d / cap).tanh();
        }
    }
    if let Some(m) = &c.mask {
        let mq = c.q * kv;
        for h in 0..c.heads {
            let slope = c.max_bias.map_or(1.0, |b| alibi_slope(c.heads, b, h));
            let zh = &mut z[h * mq..][..mq];
            if c.mask_f16 {
                for (d, &v) in zh.iter_mut().zip(mask16) {
                    *d += v.to_f32();
                }
            } else if c.max_bias.is_some() {
                for (d, &v) in zh.iter_mut().zip(m) {
                    *d += slope * v;
                }
            } else {
                for (d, &v) in zh.iter_mut().zip(m) {
                    *d += v;
                }
            }
        }
    }
    if let Some(off) = c.causal {
        for r in 0..rows {
            let limit = r % c.q + off + 1;
            let row = &mut z[r * kv..][..kv];
            if limit < kv {
                row[limit..].fill(f32::NEG_INFINITY);
            }
            if let Some(w) = c.window {
                row[..limit.saturating_sub(w)].fill(f32::NEG_INFINITY);
            }
        }
    }
    match &c.sinks {
        None => sm.softmax_rows(z, y, kv).unwrap(),
        Some(sinks) => {
            for r in 0..rows {
                zs[r * (kv + 1)..][..kv].copy_from_slice(&z[r * kv..][..kv]);
                zs[r * (kv + 1) + kv] = sinks[r / c.q];
            }
            sm.softmax_rows_in_place(zs, kv + 1).unwrap();
            for r in 0..rows {
                y[r * kv..][..kv].copy_from_slice(&zs[r * (kv + 1)..][..kv]);
            }
        }
    }
}

fn bench(cr: &mut Criterion) {
    let sm = Softmax::new();
    println!("attention: default backend {}", sm.backend());
    let mut rng = SmallRng::seed_from_u64(11);
    let scale = 1.0 / 128f32.sqrt();
    for c in cases(&mut rng) {
        let n = c.heads * c.q * c.kv;
        let s: Vec<f32> = (0..n).map(|_| 4.0 * normal(&mut rng)).collect();
        let sb: Vec<bf16> = s.iter().map(|&v| bf16::from_f32(v)).collect();
        let mask16: Vec<f16> = c.mask.iter().flatten().map(|&v| f16::from_f32(v)).collect();
        let mut a: AttentionSoftmax<'_> = sm.attention().scale(scale);
        if let Some(m) = &c.mask {
            a = if c.mask_f16 {
                a.mask(&mask16)
            } else {
                a.mask(m)
            };
        }
        if let Some(cap) = c.cap {
            a = a.softcap(cap);
        }
        if let Some(b) = c.max_bias {
            a = a.alibi_max_bias(b);
        }
        if let Some(off) = c.causal {
            a = a.causal(off);
        }
        if let Some(w) = c.window {
            a = a.window(w);
        }
        if let Some(v) = &c.sinks {
            a = a.sinks(v);
        }
        let (h, q, kv) = (c.heads, c.q, c.kv);
        let mut y = vec![0.0f32; n];
        let mut yb = vec![bf16::ZERO; n];
        let mut z = vec![0.0f32; n];
        let mut zs = vec![
            0.0f32;
            if c.sinks.is_some() {
                h * q * (kv + 1)
            } else {
                0
            }
        ];
        let mut g = cr.benchmark_group(format!("attention/{}", c.name));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter("fused"), |b| {
            if c.bf16 {
                b.iter(|| a.run(black_box(&sb), &mut yb, h, q, kv).unwrap())
            } else {
                b.iter(|| a.run(black_box(&s), &mut y, h, q, kv).unwrap())
            }
        });
        if c.window.is_some() {
            // The window as a mask over the whole cache, as the peers run it.
            let wmask: Vec<f32> = (0..kv)
                .map(|j| {
                    if kv - 1 - j >= 128 {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
                .collect();
            let sinks = c.sinks.as_deref().unwrap_or(&[]);
            let am = sm.attention().scale(scale).sinks(sinks).mask(&wmask);
            g.bench_function(BenchmarkId::from_parameter("fused-mask"), |b| {
                b.iter(|| am.run(black_box(&s), &mut y, h, q, kv).unwrap())
            });
        }
        g.bench_function(BenchmarkId::from_parameter("softmax_rows"), |b| {
            if c.bf16 {
                b.iter(|| sm.softmax_rows(black_box(&sb), &mut yb, kv).unwrap())
            } else {
                b.iter(|| sm.softmax_rows(black_box(&s), &mut y, kv).unwrap())
            }
        });
        g.bench_function(BenchmarkId::from_parameter("unfused"), |b| {
            if c.bf16 {
                // bf16 scores widened by the scale pass, bf16 results.
                let mut w = vec![0.0f32; n];
                b.iter(|| {
                    for (d, &v) in w.iter_mut().zip(black_box(&sb)) {
                        *d = v.to_f32();
                    }
                    unfused(&sm, &c, &w, &mask16, scale, &mut z, &mut zs, &mut y);
                    for (d, &v) in yb.iter_mut().zip(&y) {
                        *d = bf16::from_f32(v);
                    }
                })
            } else {
                b.iter(|| {
                    unfused(
                        &sm,
                        &c,
                        black_box(&s),
                        &mask16,
                        scale,
                        &mut z,
                        &mut zs,
                        &mut y,
                    )
                })
            }
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
