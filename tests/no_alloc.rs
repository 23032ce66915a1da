//! No heap allocation on any call: a counting global allocator (a wrapper
//! around `System`) counts the allocations made by the current thread while
//! a flag is set, so the test harness's own threads and other tests do not
//! disturb the count. Every public function, on every backend and through
//! the free functions, at lengths {0, 1, 7, 8, 17, 1000, 100 000}, on
//! ordinary and special rows and on refused calls, must allocate nothing.
//!
//! Outside the count: building the inputs and outputs, and the first call
//! of the free functions (`Softmax::new` reads `SIMD_SOFTMAX_BACKEND` once,
//! which allocates the variable's value); we make that call beforehand.
//! `jacobian` writes `N²` floats, so it runs up to N = 1000 (10^6 outputs);
//! at 100 000 its refused call (wrong output size) is counted instead. Rows
//! of 2^21 elements (the two-pass path) are checked for the softmax family.
//! The half-precision paths (`f16`/`bf16` in or out) are counted too, for
//! every type pair (`half_paths_do_not_allocate`).

mod common;
#[macro_use]
mod half_support;

use half_support::Ty;
use simd_softmax::{
    Anchor, AttentionSoftmax, Backend, CrossEntropyOptions, Sampler, SamplerScratch, Softmax, bf16,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Whether this thread's allocations are being counted. `const`-
    /// initialized `Cell<bool>`: no lazy initialization and no destructor,
    /// so touching it inside the allocator cannot allocate or recurse.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// This thread's counted allocations (per thread, so that two tests
    /// counting at once do not see each other's).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments,
// unchanged; the only addition is a relaxed counter increment.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

const LENGTHS: [usize; 7] = [0, 1, 7, 8, 17, 1000, 100_000];
const JACOBIAN_MAX: usize = 1000;

/// `SIMD_SOFTMAX_TEST_QUICK=1` (set by `scripts/test-aarch64.sh`: QEMU
/// emulates every float operation in software): rows above 1000 elements
/// get only the ordinary input (no special rows), and the 2^21-element
/// two-pass rows are left out.
fn quick() -> bool {
    std::env::var("SIMD_SOFTMAX_TEST_QUICK").is_ok_and(|v| v == "1")
}

/// Buffers for every call at one length, made before counting.
struct Buffers {
    rows: Vec<Vec<f32>>,
    probs: Vec<f32>,
    out: Vec<f32>,
    out2: Vec<f32>,
    short: Vec<f32>,
    jac: Vec<f32>,
    row_len: usize,
    half: Vec<bf16>,
    half2: Vec<bf16>,
    scratch: SamplerScratch,
    targets: Vec<u32>,
}

impl Buffers {
    fn new(n: usize) -> Buffers {
        let ordinary: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 2003) as f32 * 0.01 - 10.0)
            .collect();
        let mut rows = vec![ordinary.clone()];
        if n > 0 && !(quick() && n > 1000) {
            let mut nan = ordinary.clone();
            nan[n / 2] = f32::NAN;
            let mut inf = ordinary.clone();
            inf[n - 1] = f32::INFINITY;
            rows.extend([nan, inf, vec![f32::NEG_INFINITY; n]]);
        }
        let s: f32 = ordinary.iter().map(|v| v.exp()).sum();
        let probs = ordinary.iter().map(|v| v.exp() / s).collect();
        let nj = n.min(JACOBIAN_MAX);
        let row_len = (1..=n.min(64))
            .rev()
            .find(|d| n.is_multiple_of(*d))
            .unwrap_or(1);
        let targets = (0..n / row_len).map(|r| (r % row_len) as u32).collect();
        Buffers {
            rows,
            probs,
            out: vec![0.0; n],
            out2: vec![0.0; n],
            short: vec![0.0; n + 1],
            jac: vec![0.0; nj * nj],
            row_len: (1..=n.min(64))
                .rev()
                .find(|d| n.is_multiple_of(*d))
                .unwrap_or(1),
            half: vec![bf16::ZERO; n],
            half2: vec![bf16::ZERO; n],
            scratch: SamplerScratch::new(n),
            targets,
        }
    }
}

/// Every public function of `sm` (or, with `None`, the free functions).
fn every_call(sm: Option<&Softmax>, b: &mut Buffers) {
    macro_rules! call {
        ($method:ident ( $($arg:expr),* )) => {
            match sm {
                Some(sm) => sm.$method($($arg),*),
                None => simd_softmax::$method($($arg),*),
            }
        };
    }
    let n = b.out.len();
    let rl = b.row_len;
    for x in &b.rows {
        call!(softmax(x, &mut b.out)).unwrap();
        b.out2.copy_from_slice(x);
        call!(softmax_in_place(&mut b.out2));
        call!(log_softmax(x, &mut b.out)).unwrap();
        b.out2.copy_from_slice(x);
        call!(log_softmax_in_place(&mut b.out2));
        std::hint::black_box(call!(logsumexp(x)));
        call!(softmax_rows(x, &mut b.out, rl)).unwrap();
        b.out2.copy_from_slice(x);
        call!(softmax_rows_in_place(&mut b.out2, rl)).unwrap();
        call!(log_softmax_rows(x, &mut b.out, rl)).unwrap();
        b.out2.copy_from_slice(x);
        call!(log_softmax_rows_in_place(&mut b.out2, rl)).unwrap();
        for alpha in [0.5, 1.0, -2.0, 0.0, f32::INFINITY, f32::NEG_INFINITY] {
            call!(softmax_scaled(x, &mut b.out, alpha)).unwrap();
            call!(softmax_scaled_rows(x, &mut b.out, rl, alpha)).unwrap();
        }
        call!(sigmoid(x, &mut b.out)).unwrap();
        call!(softmax_backward(&b.probs, x, &mut b.out)).unwrap();
        let terms: [(f32, &[f32]); 3] = [(0.5, x), (-1.5, &b.probs), (2.0, x)];
        call!(softmax_of_combination(&terms, &mut b.out)).unwrap();
    }
    // The attention softmax (every option, f32 and bf16 outputs), the
    // sampler and cross-entropy.
    let att = match sm {
        Some(sm) => sm.attention(),
        None => AttentionSoftmax::new(),
    };
    let sampler = match sm {
        Some(sm) => sm.sampler(),
        None => Sampler::new(),
    };
    let q = n / rl;
    let sinks = [0.5f32];
    let ce = CrossEntropyOptions::default();
    for x in &b.rows {
        att.run(x, &mut b.out, 1, q, rl).unwrap();
        let full = att
            .scale(0.3)
            .softcap(5.0)
            .mask(&b.probs)
            .alibi_max_bias(8.0)
            .causal(1)
            .window(3)
            .sinks(&sinks);
        full.run(x, &mut b.out, 1, q, rl).unwrap();
        full.run(x, &mut b.half, 1, q, rl).unwrap();
        att.scale(0.3)
            .mask(&b.half)
            .run(x, &mut b.out, 1, q, rl)
            .unwrap();
        let _ = sampler.top_p(0.9).sample(x, 0.5, &mut b.scratch);
        let _ = sampler.top_k(5).min_p(0.1).sample(x, 0.25, &mut b.scratch);
        if n > 0 {
            std::hint::black_box(call!(cross_entropy_with_grad(
                x, rl, &b.targets, ce, 1.0, &mut b.out
            )))
            .unwrap();
            // Half logits and gradients: through stack tiles.
            let smooth = CrossEntropyOptions {
                label_smoothing: 0.1,
                ..ce
            };
            std::hint::black_box(call!(cross_entropy_with_grad(
                &b.half,
                rl,
                &b.targets,
                smooth,
                1.0,
                &mut b.half2
            )))
            .unwrap();
            std::hint::black_box(call!(cross_entropy_with_grad(
                x,
                rl,
                &b.targets,
                smooth,
                1.0,
                &mut b.half2
            )))
            .unwrap();
            std::hint::black_box(call!(cross_entropy_with_grad(
                &b.half, rl, &b.targets, smooth, 1.0, &mut b.out
            )))
            .unwrap();
        }
        // Refused parameters: the error holds a number, not a string.
        assert!(
            sampler
                .temperature(-1.0)
                .sample(x, 0.5, &mut b.scratch)
                .is_err()
        );
        let bad = CrossEntropyOptions {
            label_smoothing: 2.0,
            ..ce
        };
        assert!(call!(cross_entropy(x, rl, &b.targets, bad)).is_err() || n == 0);
    }
    let x = &b.rows[0];
    assert!(att.sinks(&[]).run(x, &mut b.out, 1, q, rl).is_err() || n == 0);
    let nj = n.min(JACOBIAN_MAX);
    call!(jacobian(&b.probs[..nj], &mut b.jac)).unwrap();
    call!(logits_from_probs(&b.probs, &mut b.out, Anchor::ZeroMean)).unwrap();
    if n > 0 {
        call!(logits_from_probs(
            &b.probs,
            &mut b.out,
            Anchor::Component(n - 1)
        ))
        .unwrap();
    }
    call!(softmax_of_combination(&[], &mut b.out)).unwrap();

    // Refused calls allocate nothing either (the errors hold no strings).
    assert!(call!(softmax(x, &mut b.short)).is_err());
    assert!(call!(log_softmax(x, &mut b.short)).is_err());
    assert!(call!(softmax_rows(x, &mut b.out, 0)).is_err());
    assert!(call!(softmax_rows_in_place(&mut b.out2, 0)).is_err());
    assert!(call!(log_softmax_rows(x, &mut b.out, n + 1)).is_err() || n == 0);
    assert!(call!(log_softmax_rows_in_place(&mut b.out2, 0)).is_err());
    assert!(call!(softmax_scaled(x, &mut b.out, f32::NAN)).is_err());
    assert!(call!(softmax_scaled_rows(x, &mut b.out, 0, 1.0)).is_err());
    assert!(call!(softmax_backward(&b.probs, x, &mut b.short)).is_err());
    assert!(call!(jacobian(x, &mut b.short)).is_err() || n * n == n + 1);
    assert!(call!(sigmoid(x, &mut b.short)).is_err());
    assert!(call!(logits_from_probs(x, &mut b.short, Anchor::ZeroMean)).is_err());
    let bad_p: &[f32] = if n > 0 { x } else { &[-1.0] };
    let _ = call!(logits_from_probs(
        bad_p,
        &mut b.out,
        Anchor::Component(n + 5)
    ));
    let terms: [(f32, &[f32]); 2] = [(1.0, x), (f32::NAN, x)];
    assert!(call!(softmax_of_combination(&terms, &mut b.out)).is_err() || n == 0);
    let terms: [(f32, &[f32]); 1] = [(1.0, &b.short)];
    assert!(call!(softmax_of_combination(&terms, &mut b.out)).is_err());
}

#[test]
fn no_public_function_allocates() {
    // Outside the count: the one-time backend choice and a first call of
    // every free function (on small buffers).
    let default = Softmax::new();
    every_call(None, &mut Buffers::new(3));

    let mut engines = Vec::new();
    for &b in Backend::ALL {
        if b == Backend::Avx512 && std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some() {
            println!("no_alloc: skipping {b}: valgrind cannot execute AVX-512");
            continue;
        }
        match Softmax::with_backend(b) {
            Ok(sm) => engines.push(sm),
            Err(e) => println!("no_alloc: skipping {b}: {e}"),
        }
    }

    // The counter itself works.
    let probe = allocations_in(|| {
        std::hint::black_box(vec![1u8; 3]);
    });
    assert_eq!(probe, 1, "the counting allocator does not count");

    for n in LENGTHS {
        let mut bufs = Buffers::new(n);
        for sm in &engines {
            let count = allocations_in(|| every_call(Some(sm), &mut bufs));
            assert_eq!(
                count,
                0,
                "{} at length {n}: {count} allocations",
                sm.backend()
            );
        }
        let count = allocations_in(|| every_call(None, &mut bufs));
        assert_eq!(
            count, 0,
            "free functions ({default:?}) at length {n}: {count} allocations"
        );
        // At 100 000 the Jacobian's refused call (output not N²) is counted.
        if n > JACOBIAN_MAX {
            let x = &bufs.rows[0];
            for sm in &engines {
                let count = allocations_in(|| {
                    assert!(sm.jacobian(x, &mut bufs.out).is_err());
                });
                assert_eq!(count, 0, "{} jacobian refusal at length {n}", sm.backend());
            }
        }
    }
    // Rows of 2^21 elements take the kernels' two-pass (online max + sum)
    // path: softmax and friends there too.
    if quick() || std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some() {
        println!("no_alloc: 2^21-element rows skipped in quick (emulated) mode / under valgrind");
    } else {
        let n = 1 << 21;
        let x: Vec<f32> = (0..n).map(|i| (i % 1009) as f32 * 0.01 - 5.0).collect();
        let mut y = vec![0.0f32; n];
        for sm in &engines {
            let count = allocations_in(|| {
                sm.softmax(&x, &mut y).unwrap();
                sm.log_softmax(&x, &mut y).unwrap();
                std::hint::black_box(sm.logsumexp(&x));
                sm.softmax_scaled(&x, &mut y, 0.5).unwrap();
                y.copy_from_slice(&x);
                sm.softmax_in_place(&mut y);
            });
            assert_eq!(
                count,
                0,
                "{} at length 2^21: {count} allocations",
                sm.backend()
            );
        }
    }
    let names: Vec<_> = engines.iter().map(|e| e.backend().name()).collect();
    println!(
        "no_alloc: every public function on {names:?} and the free functions ({}), lengths {LENGTHS:?}: 0 allocations",
        default.backend()
    );
}

// ---------------------------------------------------------------------------
// The half-precision paths: every softmax-shaped function, every (input,
// output) pair of {f32, f16, bf16} but f32 → f32, on every backend and the
// free functions, at lengths that reach every regime (short rows, the tiles'
// edges, long rows tile by tile, and outside quick mode the two-pass rows of
// 2^21 + 5): the edge converts through stack tiles, never a `Vec`.
// ---------------------------------------------------------------------------

/// The input rows at length `n`: ordinary, and (short rows, or always
/// outside quick mode) a NaN row, a `+∞` row and a full mask.
fn rows<I: Ty>(n: usize) -> Vec<Vec<I>> {
    let v = |x: f32| I::from_f32(x);
    let ordinary: Vec<I> = (0..n)
        .map(|i| v(((i * 7919) % 2003) as f32 * 0.01 - 10.0))
        .collect();
    let mut out = vec![ordinary.clone()];
    if n > 0 && !(common::quick() && n > 1000) {
        let mut nan = ordinary.clone();
        nan[n / 2] = v(f32::NAN);
        let mut inf = ordinary.clone();
        inf[n - 1] = v(f32::INFINITY);
        out.extend([nan, inf, vec![v(f32::NEG_INFINITY); n]]);
    }
    out
}

/// Every half-path call of `sm` (or, with `None`, the free functions) on
/// the rows of length `n`; the allocations they made.
fn count_pair<I: Ty, O: Ty>(sm: Option<&Softmax>, n: usize, total: &mut usize) {
    macro_rules! call {
        ($method:ident ( $($arg:expr),* )) => {
            match sm {
                Some(sm) => sm.$method($($arg),*),
                None => simd_softmax::$method($($arg),*),
            }
        };
    }
    let rl = (1..=n.min(64))
        .rev()
        .find(|d| n.is_multiple_of(*d))
        .unwrap_or(1);
    for x in rows::<I>(n) {
        let mut y = vec![O::default(); n];
        let mut d = x.clone();
        let a = allocations_in(|| {
            call!(softmax(&x, &mut y)).unwrap();
            call!(log_softmax(&x, &mut y)).unwrap();
            call!(softmax_rows(&x, &mut y, rl)).unwrap();
            call!(log_softmax_rows(&x, &mut y, rl)).unwrap();
            std::hint::black_box(call!(logsumexp(&x)));
            call!(softmax_in_place(&mut d));
            call!(log_softmax_in_place(&mut d));
            call!(softmax_rows_in_place(&mut d, rl)).unwrap();
            call!(log_softmax_rows_in_place(&mut d, rl)).unwrap();
            // Refused calls allocate nothing either.
            assert!(call!(softmax(&x, &mut y[..n.saturating_sub(1)])).is_err() || n == 0);
            assert!(call!(softmax_rows(&x, &mut y, 0)).is_err());
        });
        let who = sm.map_or("free functions".to_string(), |s| s.backend().to_string());
        assert_eq!(
            a,
            0,
            "{who} {}: {a} allocations at n = {n}",
            half_support::pair_name::<I, O>()
        );
        *total += 1;
    }
}

#[test]
fn half_paths_do_not_allocate() {
    // Outside the count: the one-time backend choice of the free functions.
    let _ = simd_softmax::softmax(&[0.0f32], &mut [0.0f32]);
    let valgrind = std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some();
    let mut lens = vec![0usize, 1, 7, 8, 17, 1000, 4097];
    if valgrind {
        eprintln!("under valgrind: rows of 100 000 and 2^21 + 5 skipped (emulated, slow)");
    } else {
        lens.push(100_000);
    }
    if common::quick() {
        eprintln!("quick mode: rows of 2^21 + 5 skipped, special rows up to 1000 only");
    } else if !valgrind {
        lens.push((1 << 21) + 5);
    }
    let mut sms = vec![];
    for &b in Backend::ALL {
        if b == Backend::Avx512 && valgrind {
            eprintln!("{}: skipped, valgrind cannot execute AVX-512", b.name());
            continue;
        }
        match Softmax::with_backend(b) {
            Ok(sm) => sms.push(sm),
            Err(e) => eprintln!("{}: skipped ({e})", b.name()),
        }
    }
    let names: Vec<String> = sms.iter().map(|s| s.backend().to_string()).collect();
    eprintln!("backends: {names:?} and the free functions");
    let mut total = 0;
    for &n in &lens {
        for sm in sms.iter().map(Some).chain([None]) {
            each_pair!(count_pair(sm, n, &mut total));
        }
    }
    eprintln!("{total} rows, each through 11 calls, without an allocation");
}
