//! Criterion benchmarks: every backend this CPU runs against row length
//! (`backends`), and the ten performance shapes of `shared/peers/shapes.tsv`
//! against two baselines (`shapes`): `naive`, the three-pass loop a user
//! would hand-roll with `f32::exp`, and `floor`, a streaming kernel that
//! reads and writes each element once (what memory bandwidth allows).
//! Throughput is reported in elements per second everywhere.
//!
//! Benchmark IDs:
//! ```text
//! backends/softmax/<backend>/<len>         len in 8 32 128 1000 4096 32000 128256
//! backends/log_softmax/<default>/<len>     len in 1000 32000
//! backends/logsumexp/<default>/<len>       len in 1000 32000
//! shapes/<rows>x<cols>/<backend>           default backend first, then the others
//!                                          (scalar only for the in-cache shapes)
//! shapes/<rows>x<cols>/naive
//! shapes/<rows>x<cols>/floor               1 read + 1 write per element (8 B)
//! shapes/1x16777216/floor2pass             2 reads + 1 write per element (12 B)
//! shapes/<rows>x<cols>/floor-stream        the out-of-cache shapes: `floor` with
//!                                          non-temporal stores (no read for ownership)
//! shapes/1x16777216/floor2pass-stream      `floor2pass` with non-temporal stores
//! shapes/<rows>x<cols>/rten-vecmath        a peer: rten-vecmath's softmax, row by row
//! parallel/<rows>x<cols>/{1thread,par}      feature `rayon`: 16384x4096, 1x16777216
//! half/<rows>x<cols>/f32                     the ten shapes, default backend: f32 → f32,
//! half/<rows>x<cols>/{bf16-bf16,f16-f16,bf16-f32}   the half pairs (input-output),
//! half/<rows>x<cols>/floor-half              2 B read + 2 B written per element
//!                                            (non-temporal stores out of cache)
//! half/1x16777216/floor2pass-half            2 reads + 1 write of 2 B (6 B)
//! state/1x16777216/{oneshot,chunks4096}      `softmax` vs `SoftmaxState` in chunks of 4096
//!                                            (update, then normalize), default backend
//! ```
//!
//! Running:
//! ```text
//! cargo bench --no-run                                  # compile only (CI)
//! cargo bench --bench softmax                           # everything, ~5 minutes
//! cargo bench --bench softmax -- shapes/8x32000         # a filter is a regex on the ID
//! cargo bench --bench softmax -- '^shapes/8x32/'        # anchor it: 8x32 also matches 8x32000
//! cargo bench --bench softmax -- 'shapes/.*/(avx512|naive|floor)$'
//! taskset -c 1 cargo bench --bench softmax -- shapes    # pinned, as shared/peers/run.sh is
//! SIMD_SOFTMAX_BENCH_QUICK=1 cargo bench --bench softmax   # smoke run: 0.2 s warm-up, 0.5 s, 10 samples
//! SIMD_SOFTMAX_BACKEND=avx2 cargo bench ...             # changes which backend is the default
//! cargo bench --features rayon --bench softmax -- parallel   # 2-core speedups
//! ```
//! The defaults here are a 1 s warm-up and 3 s of measurement per ID;
//! `--warm-up-time`, `--measurement-time` and `--sample-size` on the command
//! line override them. The three big shapes (2^24 to 2^26 elements, up to
//! 256 MB in and 256 MB out) always take 10 samples of equal iteration count
//! (`SamplingMode::Flat`); their buffers, like every shape's, are allocated
//! and filled once, at the shape's first benchmark that passes the filter.
//!
//! Inputs are uniform in [−10, 10), seeded, out-of-place, single thread.

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use pulp::{Simd, WithSimd};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::{Backend, Softmax, bf16, f16};
use std::hint::black_box;
use std::sync::Once;
use std::time::Duration;

mod common;

/// Row lengths of the `backends` group.
const LENS: [usize; 7] = [8, 32, 128, 1000, 4096, 32000, 128256];

/// The performance shapes (rows, cols), as in `shared/peers/shapes.tsv`.
const SHAPES: [(usize, usize); 10] = [
    (32768, 8),
    (8192, 32),
    (2048, 128),
    (262, 1000),
    (64, 4096),
    (8, 32000),
    (2, 128256),
    (16384, 4096),
    (523, 128256),
    (1, 16777216),
];

/// Shapes at most this many elements (1 MiB per buffer) stay in cache; the
/// rest stream from memory and get the long-benchmark settings.
const IN_CACHE_ELEMS: usize = 1 << 18;

fn config() -> Criterion {
    common::config(Duration::from_secs(1), Duration::from_secs(3))
}

/// `n` values uniform in [−10, 10), reproducible per `seed`.
fn random_input(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-10.0f32..10.0)).collect()
}

/// The engines this CPU runs, default ([`Softmax::new`]) first; prints the
/// skipped backends and their reasons once per process.
fn engines() -> Vec<Softmax> {
    static REPORT: Once = Once::new();
    let default = Softmax::new();
    REPORT.call_once(|| {
        eprintln!("simd-softmax bench: default backend {}", default.backend());
        for &b in Backend::ALL {
            if let Some(reason) = b.unavailable_reason() {
                eprintln!("simd-softmax bench: skipping {}: {reason}", b.name());
            }
        }
    });
    let others = Backend::ALL
        .iter()
        .copied()
        .filter(|&b| b != default.backend())
        .filter_map(|b| Softmax::with_backend(b).ok());
    std::iter::once(default).chain(others).collect()
}

fn bench_backends(c: &mut Criterion) {
    let engines = engines();
    let mut g = c.benchmark_group("backends");
    for len in LENS {
        let x = random_input(len, len as u64);
        let mut y = vec![0.0f32; len];
        g.throughput(Throughput::Elements(len as u64));
        for sm in &engines {
            let id = BenchmarkId::new(format!("softmax/{}", sm.backend()), len);
            g.bench_function(id, |b| {
                b.iter(|| sm.softmax(black_box(&x), black_box(&mut y)).unwrap())
            });
        }
    }
    let sm = engines[0];
    for len in [1000, 32000] {
        let x = random_input(len, len as u64);
        let mut y = vec![0.0f32; len];
        g.throughput(Throughput::Elements(len as u64));
        let id = BenchmarkId::new(format!("log_softmax/{}", sm.backend()), len);
        g.bench_function(id, |b| {
            b.iter(|| sm.log_softmax(black_box(&x), black_box(&mut y)).unwrap())
        });
        let id = BenchmarkId::new(format!("logsumexp/{}", sm.backend()), len);
        g.bench_function(id, |b| b.iter(|| sm.logsumexp(black_box(&x))));
    }
    g.finish();
}

/// Input and output of one shape, allocated and filled on first use.
type Buffers = (Vec<f32>, Vec<f32>);

fn buffers(slot: &mut Option<Buffers>, n: usize, seed: u64) -> (&[f32], &mut [f32]) {
    let (x, y) = slot.get_or_insert_with(|| (random_input(n, seed), vec![0.0f32; n]));
    (x, y)
}

fn bench_shapes(c: &mut Criterion) {
    let engines = engines();
    for (rows, cols) in SHAPES {
        let n = rows * cols;
        let in_cache = n <= IN_CACHE_ELEMS;
        let mut g: BenchmarkGroup<'_, WallTime> =
            c.benchmark_group(format!("shapes/{rows}x{cols}"));
        g.throughput(Throughput::Elements(n as u64));
        if !in_cache {
            // A 2^26-element call takes tens of milliseconds (the naive loop
            // hundreds): 10 samples of equal iteration count fit in seconds.
            g.sample_size(10).sampling_mode(SamplingMode::Flat);
        }
        let mut slot = None;
        let seed = n as u64 ^ cols as u64;
        for (i, sm) in engines.iter().enumerate() {
            // Scalar is only worth minutes on the in-cache shapes, unless it is the default.
            if sm.backend() == Backend::Scalar && i > 0 && !in_cache {
                continue;
            }
            g.bench_function(sm.backend().name(), |b| {
                let (x, y) = buffers(&mut slot, n, seed);
                b.iter(|| {
                    sm.softmax_rows(black_box(x), black_box(&mut *y), cols)
                        .unwrap()
                });
            });
        }
        g.bench_function("rten-vecmath", |b| {
            let (x, y) = buffers(&mut slot, n, seed);
            b.iter(|| rten_softmax_rows(black_box(x), black_box(&mut *y), cols));
        });
        g.bench_function("naive", |b| {
            let (x, y) = buffers(&mut slot, n, seed);
            b.iter(|| naive_softmax_rows(black_box(x), black_box(&mut *y), cols));
        });
        g.bench_function("floor", |b| {
            let (x, y) = buffers(&mut slot, n, seed);
            b.iter(|| floor_scale(black_box(x), black_box(&mut *y), black_box(0.5)));
        });
        if !in_cache {
            g.bench_function("floor-stream", |b| {
                let (x, y) = buffers(&mut slot, n, seed);
                b.iter(|| floor_scale_stream(black_box(x), black_box(&mut *y), black_box(0.5)));
            });
        }
        if rows == 1 && !in_cache {
            g.bench_function("floor2pass", |b| {
                let (x, y) = buffers(&mut slot, n, seed);
                b.iter(|| floor_max_then_scale(black_box(x), black_box(&mut *y), false));
            });
            g.bench_function("floor2pass-stream", |b| {
                let (x, y) = buffers(&mut slot, n, seed);
                b.iter(|| floor_max_then_scale(black_box(x), black_box(&mut *y), true));
            });
        }
        g.finish();
    }
}

/// rten-vecmath's softmax (its own run-time dispatch, AVX-512 where the
/// CPU has it) on each row, as an engine using it calls it.
#[inline(never)]
fn rten_softmax_rows(x: &[f32], y: &mut [f32], cols: usize) {
    use rten_simd::SimdOp;
    use std::mem::MaybeUninit;
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        // SAFETY: `MaybeUninit<f32>` has f32's layout, and rten only
        // writes initialized f32 values through the view (every element).
        let out: &mut [MaybeUninit<f32>] =
            unsafe { &mut *(yr as *mut [f32] as *mut [MaybeUninit<f32>]) };
        rten_vecmath::Softmax::new(xr, out).dispatch();
    }
}

/// The softmax a user would hand-roll: max, then `f32::exp` and a running
/// `f32` sum, then a division per element. Three passes, no SIMD exp.
#[inline(never)]
fn naive_softmax_rows(x: &[f32], y: &mut [f32], cols: usize) {
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (o, &v) in yr.iter_mut().zip(xr) {
            let e = (v - max).exp();
            *o = e;
            sum += e;
        }
        for o in yr.iter_mut() {
            *o /= sum;
        }
    }
}

/// Memory floor: `y = x · c`, one read and one write per element, explicit
/// SIMD at the best level the CPU has (pulp's `Arch::new()`; AVX-512 where
/// present), so in-cache shapes measure load/store rate, not scalar code.
#[inline(never)]
fn floor_scale(x: &[f32], y: &mut [f32], c: f32) {
    pulp::Arch::new().dispatch(Scale { x, y, c })
}

/// Floor of a two-pass algorithm on one huge row: a read-only max pass, then
/// `y = x · c(max)`; 12 bytes of traffic per element (`stream`: the
/// second pass with non-temporal stores, [`floor_scale_stream`]).
#[inline(never)]
fn floor_max_then_scale(x: &[f32], y: &mut [f32], stream: bool) {
    let arch = pulp::Arch::new();
    let m = arch.dispatch(Max { x });
    // Makes pass 2 depend on pass 1 without changing the work it does.
    let c = if black_box(m) > f32::MAX { 0.25 } else { 0.5 };
    match stream {
        true => floor_scale_stream(x, y, c),
        false => arch.dispatch(Scale { x, y, c }),
    }
}

/// Streaming-store floor: `y = x · c` with non-temporal stores (the
/// physical limit of one pass: 4 B read and 4 B written per element, no
/// read for ownership of the output's lines), 512-bit where the CPU has
/// AVX-512, else 256-bit AVX; plain stores elsewhere.
#[inline(never)]
fn floor_scale_stream(x: &[f32], y: &mut [f32], c: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(v4) = pulp::x86::V4::try_new() {
            let tok = Tok::V4(v4);
            return Simd::vectorize(v4, StreamScale { x, y, c, tok });
        }
        if let Some(v3) = pulp::x86::V3::try_new() {
            let tok = Tok::V3(v3);
            return Simd::vectorize(v3, StreamScale { x, y, c, tok });
        }
    }
    floor_scale(x, y, c)
}

/// The x86-64 token [`StreamScale`] runs on.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Tok {
    V4(pulp::x86::V4),
    V3(pulp::x86::V3),
}

/// [`floor_scale_stream`] on x86-64: the elements before the first
/// vector-aligned output address plainly, then `vmovntps` (64 bytes per
/// store on AVX-512, 32 on AVX2), the tail plainly, one `sfence`.
#[cfg(target_arch = "x86_64")]
struct StreamScale<'a> {
    x: &'a [f32],
    y: &'a mut [f32],
    c: f32,
    tok: Tok,
}

#[cfg(target_arch = "x86_64")]
impl WithSimd for StreamScale<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let StreamScale { x, y, c, tok } = self;
        let n = x.len().min(y.len());
        let lanes = match tok {
            Tok::V4(_) => 16,
            Tok::V3(_) => 8,
        };
        let head = ((y.as_ptr() as usize).wrapping_neg() % (4 * lanes) / 4).min(n);
        for (o, &v) in y[..head].iter_mut().zip(&x[..head]) {
            *o = v * c;
        }
        let mut i = head;
        // SAFETY: every access is below `n`; streamed stores are aligned
        // to the vector (after the head).
        unsafe {
            match tok {
                Tok::V4(v4) => {
                    let f = v4.avx512f;
                    let cv = f._mm512_set1_ps(c);
                    while i + 16 <= n {
                        let v = f._mm512_mul_ps(f._mm512_loadu_ps(x.as_ptr().add(i)), cv);
                        f._mm512_stream_ps(y.as_mut_ptr().add(i), v);
                        i += 16;
                    }
                    v4.sse._mm_sfence();
                }
                Tok::V3(v3) => {
                    let a = v3.avx;
                    let cv = a._mm256_set1_ps(c);
                    while i + 8 <= n {
                        let v = a._mm256_mul_ps(a._mm256_loadu_ps(x.as_ptr().add(i)), cv);
                        a._mm256_stream_ps(y.as_mut_ptr().add(i), v);
                        i += 8;
                    }
                    v3.sse._mm_sfence();
                }
            }
        }
        for (o, &v) in y[i..n].iter_mut().zip(&x[i..n]) {
            *o = v * c;
        }
    }
}

struct Scale<'a> {
    x: &'a [f32],
    y: &'a mut [f32],
    c: f32,
}

impl WithSimd for Scale<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let cv = s.splat_f32s(self.c);
        let (xv, xt) = S::as_simd_f32s(self.x);
        let (yv, yt) = S::as_mut_simd_f32s(self.y);
        for (o, &v) in yv.iter_mut().zip(xv) {
            *o = s.mul_f32s(v, cv);
        }
        for (o, &v) in yt.iter_mut().zip(xt) {
            *o = v * self.c;
        }
    }
}

struct Max<'a> {
    x: &'a [f32],
}

impl WithSimd for Max<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        let (xv, xt) = S::as_simd_f32s(self.x);
        let mut acc = [s.splat_f32s(f32::NEG_INFINITY); 4];
        let mut quads = xv.chunks_exact(4);
        for q in &mut quads {
            for (a, &v) in acc.iter_mut().zip(q) {
                *a = s.max_f32s(*a, v);
            }
        }
        for &v in quads.remainder() {
            acc[0] = s.max_f32s(acc[0], v);
        }
        let m = s.max_f32s(s.max_f32s(acc[0], acc[1]), s.max_f32s(acc[2], acc[3]));
        xt.iter().copied().fold(s.reduce_max_f32s(m), f32::max)
    }
}

/// Multi-core (feature `rayon`) against one thread, default backend:
/// `parallel/16384x4096/{1thread,par}` (`softmax_rows` vs
/// `par_softmax_rows`) and `parallel/1x16777216/{1thread,par}` (`softmax`
/// vs `par_softmax`). Without the feature the group is empty.
fn bench_parallel(c: &mut Criterion) {
    #[cfg(feature = "rayon")]
    {
        let sm = Softmax::new();
        eprintln!(
            "simd-softmax bench: parallel group on {} rayon threads",
            rayon::current_num_threads()
        );
        for (rows, cols) in [(16384usize, 4096usize), (1, 1 << 24)] {
            let n = rows * cols;
            let mut g = c.benchmark_group(format!("parallel/{rows}x{cols}"));
            g.throughput(Throughput::Elements(n as u64));
            g.sample_size(10).sampling_mode(SamplingMode::Flat);
            let mut slot = None;
            let seed = n as u64 ^ cols as u64;
            g.bench_function("1thread", |b| {
                let (x, y) = buffers(&mut slot, n, seed);
                b.iter(|| {
                    sm.softmax_rows(black_box(x), black_box(&mut *y), cols)
                        .unwrap()
                });
            });
            g.bench_function("par", |b| {
                let (x, y) = buffers(&mut slot, n, seed);
                b.iter(|| {
                    if rows == 1 {
                        sm.par_softmax(black_box(x), black_box(&mut *y)).unwrap()
                    } else {
                        sm.par_softmax_rows(black_box(x), black_box(&mut *y), cols)
                            .unwrap()
                    }
                });
            });
            g.finish();
        }
    }
    let _ = c;
}

/// The online state (`SoftmaxState`, default backend) over one row of 2^24
/// against the one-shot softmax of the same row (the two-pass regime):
/// `state/1x16777216/oneshot` (`softmax`) and
/// `state/1x16777216/chunks4096` (`update` over chunks of 4096, then
/// `normalize` of each chunk from the row's state). Both read the row
/// twice and write it once; the chunked form pays a call per chunk and
/// log-softmax's split sum (the state serves `ln Σ` too).
fn bench_state(c: &mut Criterion) {
    const N: usize = 1 << 24;
    const CHUNK: usize = 4096;
    let sm = Softmax::new();
    let mut g = c.benchmark_group(format!("state/1x{N}"));
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut slot = None;
    let seed = 0; // the row of shapes/1x16777216 (seed rows ^ cols)
    g.bench_function("oneshot", |b| {
        let (x, y) = buffers(&mut slot, N, seed);
        b.iter(|| sm.softmax(black_box(x), black_box(&mut *y)).unwrap());
    });
    g.bench_function(format!("chunks{CHUNK}"), |b| {
        let (x, y) = buffers(&mut slot, N, seed);
        b.iter(|| {
            let mut st = sm.state();
            for c in black_box(&*x).chunks(CHUNK) {
                st.update(c);
            }
            for (c, o) in x.chunks(CHUNK).zip(black_box(&mut *y).chunks_mut(CHUNK)) {
                st.normalize(c, o).unwrap();
            }
        });
    });
    g.finish();
}

/// The half-precision buffers of one shape: the f32 input rounded to
/// bf16 and f16, and an output of each type.
struct HalfBuffers {
    x32: Vec<f32>,
    xb: Vec<bf16>,
    xh: Vec<f16>,
    y32: Vec<f32>,
    yb: Vec<bf16>,
    yh: Vec<f16>,
}

fn half_buffers(slot: &mut Option<HalfBuffers>, n: usize, seed: u64) -> &mut HalfBuffers {
    slot.get_or_insert_with(|| {
        let x32 = random_input(n, seed);
        HalfBuffers {
            xb: x32.iter().map(|&v| bf16::from_f32(v)).collect(),
            xh: x32.iter().map(|&v| f16::from_f32(v)).collect(),
            x32,
            y32: vec![0.0; n],
            yb: vec![bf16::ZERO; n],
            yh: vec![f16::ZERO; n],
        }
    })
}

/// The ten shapes in f32 and in the half pairs, default backend, beside
/// the half-width memory floor, in one run (ratios from one sitting).
fn bench_half(c: &mut Criterion) {
    let sm = Softmax::new();
    for (rows, cols) in SHAPES {
        let n = rows * cols;
        let in_cache = n <= IN_CACHE_ELEMS;
        let mut g: BenchmarkGroup<'_, WallTime> = c.benchmark_group(format!("half/{rows}x{cols}"));
        g.throughput(Throughput::Elements(n as u64));
        if !in_cache {
            g.sample_size(10).sampling_mode(SamplingMode::Flat);
        }
        let mut slot = None;
        let seed = n as u64 ^ cols as u64;
        g.bench_function("f32", |b| {
            let h = half_buffers(&mut slot, n, seed);
            b.iter(|| {
                sm.softmax_rows(black_box(&h.x32), black_box(&mut h.y32), cols)
                    .unwrap()
            });
        });
        g.bench_function("bf16-bf16", |b| {
            let h = half_buffers(&mut slot, n, seed);
            b.iter(|| {
                sm.softmax_rows(black_box(&h.xb), black_box(&mut h.yb), cols)
                    .unwrap()
            });
        });
        g.bench_function("f16-f16", |b| {
            let h = half_buffers(&mut slot, n, seed);
            b.iter(|| {
                sm.softmax_rows(black_box(&h.xh), black_box(&mut h.yh), cols)
                    .unwrap()
            });
        });
        g.bench_function("bf16-f32", |b| {
            let h = half_buffers(&mut slot, n, seed);
            b.iter(|| {
                sm.softmax_rows(black_box(&h.xb), black_box(&mut h.y32), cols)
                    .unwrap()
            });
        });
        g.bench_function("floor-half", |b| {
            let h = half_buffers(&mut slot, n, seed);
            b.iter(|| floor_half(black_box(&h.xb), black_box(&mut h.yb), !in_cache, false));
        });
        if rows == 1 && !in_cache {
            g.bench_function("floor2pass-half", |b| {
                let h = half_buffers(&mut slot, n, seed);
                b.iter(|| floor_half(black_box(&h.xb), black_box(&mut h.yb), true, true));
            });
        }
        g.finish();
    }
}

/// Half-width memory floor: each 2-byte element read once and written once
/// (`two_pass`: read twice, a max pass first), 512 bits at a time where
/// the CPU has AVX-512 (else 256), with non-temporal stores when `stream`.
#[inline(never)]
fn floor_half(x: &[bf16], y: &mut [bf16], stream: bool, two_pass: bool) {
    use half::slice::HalfFloatSliceExt;
    let (x, y) = (x.reinterpret_cast(), y.reinterpret_cast_mut());
    if two_pass {
        // A read-only pass the write pass depends on.
        let m = x.iter().copied().fold(0u16, |a, b| a.max(b & 0x7fff));
        black_box(m);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = pulp::x86::V4::try_new() {
        return Simd::vectorize(v4, FloorHalf { v4, x, y, stream });
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v ^ 0x8000;
    }
}

/// [`floor_half`]'s copy on AVX-512: 64 bytes per load and store.
#[cfg(target_arch = "x86_64")]
struct FloorHalf<'a> {
    v4: pulp::x86::V4,
    x: &'a [u16],
    y: &'a mut [u16],
    stream: bool,
}

#[cfg(target_arch = "x86_64")]
impl WithSimd for FloorHalf<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let FloorHalf { v4, x, y, stream } = self;
        let f = v4.avx512f;
        let n = x.len().min(y.len());
        let head = ((y.as_ptr() as usize).wrapping_neg() % 64 / 2).min(n);
        for (o, &v) in y[..head].iter_mut().zip(&x[..head]) {
            *o = v ^ 0x8000;
        }
        let mut i = head;
        // SAFETY: every access is below `n`; streamed stores are 64-byte
        // aligned (after the head).
        unsafe {
            while i + 32 <= n {
                let v = f._mm512_loadu_ps(x.as_ptr().add(i) as *const f32);
                let p = y.as_mut_ptr().add(i) as *mut f32;
                if stream {
                    f._mm512_stream_ps(p, v);
                } else {
                    f._mm512_storeu_ps(p, v);
                }
                i += 32;
            }
        }
        v4.sse._mm_sfence();
        for (o, &v) in y[i..n].iter_mut().zip(&x[i..n]) {
            *o = v ^ 0x8000;
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_backends, bench_shapes, bench_parallel, bench_half, bench_state
}
criterion_main!(benches);
