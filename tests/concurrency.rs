//! Thread safety: every public function, through the free functions and
//! through forced-backend `Softmax` handles shared by reference, hammered
//! from several threads at once (`std::thread::scope`); every result must
//! be bit-for-bit the single-threaded one. The kernels keep no state
//! between calls, so any difference would be a data race or hidden shared
//! scratch space. The first calls of the free functions are themselves
//! made from all threads at once, racing the one-time backend choice.

use simd_softmax::{Anchor, Backend, Softmax};
use std::sync::Barrier;
use std::thread;

const THREADS: usize = 6;

/// `SIMD_SOFTMAX_TEST_QUICK=1` (QEMU): inputs up to 257 elements only.
fn quick() -> bool {
    std::env::var("SIMD_SOFTMAX_TEST_QUICK").is_ok_and(|v| v == "1")
}

/// Rounds per thread: fewer under valgrind (`scripts/memcheck.sh`), which
/// runs threads one at a time, 20-50 times slower, and under QEMU
/// (`scripts/test-aarch64.sh` sets `SIMD_SOFTMAX_TEST_QUICK=1`).
fn rounds() -> usize {
    if quick() || std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some() {
        2
    } else {
        12
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// The rows every thread works on: several lengths and the special rows.
fn inputs() -> Vec<Vec<f32>> {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut v: Vec<Vec<f32>> = [1usize, 7, 16, 33, 257, 1000, 4096, 32_000]
        .iter()
        .filter(|&&n| !quick() || n <= 257)
        .map(|&n| (0..n).map(|_| rng.range(-20.0, 20.0)).collect())
        .collect();
    v.push(vec![1.0, f32::NAN, 3.0]);
    v.push(vec![f32::INFINITY, 0.0, f32::INFINITY, -1.0]);
    v.push(vec![f32::NEG_INFINITY; 9]);
    v.push(vec![f32::MAX, -f32::MAX, 0.0, 1e-40]);
    v
}

/// Every public function on `x`, through `sm` or (None) the free
/// functions; the results as bit patterns.
fn all_outputs(sm: Option<&Softmax>, x: &[f32]) -> Vec<Vec<u32>> {
    let n = x.len();
    let row_len = (1..=n.min(16))
        .rev()
        .find(|d| n.is_multiple_of(*d))
        .unwrap_or(1);
    let nj = n.min(40);
    let mut out: Vec<Vec<f32>> = Vec::new();
    let mut y = vec![0.0f32; n];
    let mut p = vec![0.0f32; n];
    macro_rules! call {
        ($method:ident ( $($arg:expr),* )) => {
            match sm {
                Some(sm) => sm.$method($($arg),*),
                None => simd_softmax::$method($($arg),*),
            }
        };
    }
    call!(softmax(x, &mut p)).unwrap();
    out.push(p.clone());
    let mut ip = x.to_vec();
    call!(softmax_in_place(&mut ip));
    out.push(ip);
    call!(log_softmax(x, &mut y)).unwrap();
    out.push(y.clone());
    let mut ip = x.to_vec();
    call!(log_softmax_in_place(&mut ip));
    out.push(ip);
    out.push(vec![call!(logsumexp(x))]);
    call!(softmax_rows(x, &mut y, row_len)).unwrap();
    out.push(y.clone());
    let mut ip = x.to_vec();
    call!(softmax_rows_in_place(&mut ip, row_len)).unwrap();
    out.push(ip);
    call!(log_softmax_rows(x, &mut y, row_len)).unwrap();
    out.push(y.clone());
    let mut ip = x.to_vec();
    call!(log_softmax_rows_in_place(&mut ip, row_len)).unwrap();
    out.push(ip);
    for alpha in [0.25, -3.0, 0.0, f32::INFINITY] {
        call!(softmax_scaled(x, &mut y, alpha)).unwrap();
        out.push(y.clone());
        call!(softmax_scaled_rows(x, &mut y, row_len, alpha)).unwrap();
        out.push(y.clone());
    }
    call!(softmax_backward(&p, x, &mut y)).unwrap();
    out.push(y.clone());
    let mut jac = vec![0.0f32; nj * nj];
    call!(jacobian(&p[..nj], &mut jac)).unwrap();
    out.push(jac);
    let probs: Vec<f32> = p
        .iter()
        .map(|v| if v.is_nan() { 0.5 } else { *v })
        .collect();
    let r = call!(logits_from_probs(&probs, &mut y, Anchor::Component(0)));
    out.push(if r.is_ok() { y.clone() } else { vec![] });
    let r = call!(logits_from_probs(&probs, &mut y, Anchor::ZeroMean));
    out.push(if r.is_ok() { y.clone() } else { vec![] });
    let terms: [(f32, &[f32]); 2] = [(0.5, x), (2.0, &probs)];
    call!(softmax_of_combination(&terms, &mut y)).unwrap();
    out.push(y.clone());
    call!(sigmoid(x, &mut y)).unwrap();
    out.push(y);
    out.into_iter()
        .map(|v| v.iter().map(|f| f.to_bits()).collect())
        .collect()
}

#[test]
fn every_function_is_bit_identical_under_concurrency() {
    let xs = inputs();

    // 1. The free functions' first calls, from all threads at once: the
    //    one-time backend choice must come out the same for everyone.
    let start = Barrier::new(THREADS);
    let first: Vec<Vec<Vec<Vec<u32>>>> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    xs.iter().map(|x| all_outputs(None, x)).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let default = Softmax::new();
    let baseline_default: Vec<_> = xs.iter().map(|x| all_outputs(Some(&default), x)).collect();
    for (t, got) in first.iter().enumerate() {
        assert!(
            *got == baseline_default,
            "thread {t}: the free functions' first results differ from Softmax::new() ({})",
            default.backend()
        );
    }
    println!(
        "concurrency: racing first calls agree ({})",
        default.backend()
    );

    // 2. Every backend, single-threaded: the baseline.
    let mut engines = Vec::new();
    for &b in Backend::ALL {
        if b == Backend::Avx512 && std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some() {
            println!("concurrency: skipping {b}: valgrind cannot execute AVX-512");
            continue;
        }
        match Softmax::with_backend(b) {
            Ok(sm) => engines.push(sm),
            Err(e) => println!("concurrency: skipping {b}: {e}"),
        }
    }
    let baseline: Vec<Vec<Vec<Vec<u32>>>> = engines
        .iter()
        .map(|sm| xs.iter().map(|x| all_outputs(Some(sm), x)).collect())
        .collect();

    // 3. All threads at once, each through every engine (shared by
    //    reference) and the free functions, in a thread-specific order.
    let go = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (engines, baseline, xs, go) = (&engines, &baseline, &xs, &go);
            let baseline_default = &baseline_default;
            s.spawn(move || {
                go.wait();
                for round in 0..rounds() {
                    for k in 0..xs.len() {
                        let i = (k + t + round) % xs.len();
                        let e = (t + round + k) % (engines.len() + 1);
                        if e == engines.len() {
                            let got = all_outputs(None, &xs[i]);
                            assert!(
                                got == baseline_default[i],
                                "thread {t}, round {round}: free functions, input {i} differ"
                            );
                        } else {
                            let got = all_outputs(Some(&engines[e]), &xs[i]);
                            assert!(
                                got == baseline[e][i],
                                "thread {t}, round {round}: {} input {i} differs",
                                engines[e].backend()
                            );
                        }
                    }
                }
            });
        }
    });
    let names: Vec<_> = engines.iter().map(|e| e.backend().name()).collect();
    println!(
        "concurrency: {THREADS} threads x {} rounds x {} inputs on {names:?} and the free functions: bit-identical",
        rounds(),
        xs.len()
    );
}
