//! No C function allocates: every `simd_softmax_*` function of the C ABI,
//! called as C calls it (raw pointers, option structs, caller scratch), on
//! every backend this CPU runs, accepted and refused, under a counting
//! global allocator. (The C test program checks results; this checks the
//! one property C cannot observe.) One warm-up round runs first: the
//! default backend's choice reads the environment once per process.

use core::ffi::c_void;
use simd_softmax_capi::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The buffers of one round, allocated before counting starts.
struct Bufs {
    x: Vec<f32>,
    y: Vec<f32>,
    h: Vec<u16>,
    hy: Vec<u16>,
    jac: Vec<f32>,
    probs: Vec<f32>,
    scratch: Vec<u64>,
    targets: Vec<u32>,
    losses: Vec<f32>,
    mask: Vec<f32>,
    sinks: Vec<f32>,
}

const ROW: usize = 5000; // longer than a tile: the half paths go piece by piece
const ROWS: usize = 3;

fn bufs() -> Bufs {
    let n = ROW * ROWS;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37) % 101) as f32 * 0.1 - 5.0)
        .collect();
    let probs = vec![1.0 / 16.0; 16];
    Bufs {
        h: x.iter()
            .map(|&v| half::bf16::from_f32(v).to_bits())
            .collect(),
        hy: vec![0; n],
        y: vec![0.0; n],
        jac: vec![0.0; 16 * 16],
        probs,
        scratch: vec![0; simd_softmax_sampler_scratch_bytes(ROW).div_ceil(8)],
        targets: vec![0, 7, 4999],
        losses: vec![0.0; ROWS],
        mask: vec![0.0; ROW],
        sinks: vec![0.5; ROWS],
        x,
    }
}

/// The statuses of a round, without allocating.
struct Statuses {
    all: [simd_softmax_status; 64],
    len: usize,
}

impl Default for Statuses {
    fn default() -> Self {
        Statuses {
            all: [SIMD_SOFTMAX_OK; 64],
            len: 0,
        }
    }
}

impl Statuses {
    fn push(&mut self, s: simd_softmax_status) {
        self.all[self.len] = s;
        self.len += 1;
    }
}

/// Every function once or more on `backend`; returns how many calls were
/// refused (they must allocate nothing either).
fn round(backend: simd_softmax_backend, b: &mut Bufs) -> usize {
    let n = ROW * ROWS;
    let (f, bf) = (SIMD_SOFTMAX_F32, SIMD_SOFTMAX_BF16);
    let x = b.x.as_ptr().cast::<c_void>();
    let y = b.y.as_mut_ptr().cast::<c_void>();
    let h = b.h.as_ptr().cast::<c_void>();
    let hy = b.hy.as_mut_ptr().cast::<c_void>();
    let mut st = Statuses::default();
    // SAFETY (whole body): every pointer points to a live buffer of at
    // least the length passed with it, and no output overlaps an input.
    unsafe {
        st.push(simd_softmax_backend_check(backend));
        st.push(simd_softmax_softmax(backend, f, x, ROW, f, y, ROW));
        st.push(simd_softmax_softmax(backend, bf, h, ROW, bf, hy, ROW));
        st.push(simd_softmax_softmax_in_place(backend, f, y, ROW));
        st.push(simd_softmax_log_softmax(backend, bf, h, ROW, f, y, ROW));
        st.push(simd_softmax_log_softmax_in_place(backend, bf, hy, ROW));
        let mut lse = 0.0f32;
        st.push(simd_softmax_logsumexp(backend, bf, h, ROW, &mut lse));
        st.push(simd_softmax_softmax_rows(backend, f, x, n, bf, hy, n, ROW));
        st.push(simd_softmax_softmax_rows_in_place(backend, f, y, n, ROW));
        st.push(simd_softmax_log_softmax_rows(
            backend, bf, h, n, f, y, n, ROW,
        ));
        st.push(simd_softmax_log_softmax_rows_in_place(
            backend, bf, hy, n, ROW,
        ));
        st.push(simd_softmax_softmax_rows_strided(
            backend, f, x, n, f, y, n, 2, 100, ROW, ROW,
        ));
        st.push(simd_softmax_log_softmax_rows_strided(
            backend, bf, h, n, bf, hy, n, 2, 100, ROW, ROW,
        ));
        let (xf, yf) = (b.x.as_ptr(), b.y.as_mut_ptr());
        st.push(simd_softmax_softmax_scaled(backend, xf, ROW, yf, ROW, 0.5));
        st.push(simd_softmax_softmax_scaled_rows(
            backend, xf, n, yf, n, ROW, 2.0,
        ));
        st.push(simd_softmax_softmax_backward(
            backend,
            b.probs.as_ptr(),
            16,
            xf,
            16,
            yf,
            16,
        ));
        st.push(simd_softmax_jacobian(
            backend,
            b.probs.as_ptr(),
            16,
            b.jac.as_mut_ptr(),
            256,
        ));
        st.push(simd_softmax_logits_from_probs(
            backend,
            b.probs.as_ptr(),
            16,
            yf,
            16,
            SIMD_SOFTMAX_ANCHOR_COMPONENT,
            3,
        ));
        let terms = [
            simd_softmax_term {
                weight: 0.5,
                data: xf,
                len: ROW,
            },
            simd_softmax_term {
                weight: 1.5,
                data: xf.add(ROW),
                len: ROW,
            },
        ];
        st.push(simd_softmax_softmax_of_combination(
            backend,
            terms.as_ptr(),
            2,
            yf,
            ROW,
        ));
        st.push(simd_softmax_sigmoid(backend, xf, ROW, yf, ROW));

        let mut ao = simd_softmax_attention_options::default();
        simd_softmax_attention_options_init(&mut ao);
        ao.scale = 0.125;
        ao.softcap = 30.0;
        ao.mask = b.mask.as_ptr().cast();
        ao.mask_len = ROW;
        ao.use_alibi_max_bias = 1;
        ao.alibi_max_bias = 8.0;
        ao.causal = 1;
        ao.q_offset = ROW - 1;
        ao.window = 4000;
        ao.sinks = b.sinks.as_ptr();
        ao.sinks_len = ROWS;
        st.push(simd_softmax_attention(
            backend, &ao, bf, h, n, bf, hy, n, ROWS, 1, ROW,
        ));
        st.push(simd_softmax_attention(
            backend,
            core::ptr::null(),
            f,
            x,
            n,
            f,
            y,
            n,
            ROWS,
            1,
            ROW,
        ));

        let mut s = core::mem::zeroed::<simd_softmax_state>();
        st.push(simd_softmax_state_init(backend, &mut s));
        st.push(simd_softmax_state_update(&mut s, xf, ROW));
        let mut s2 = s;
        st.push(simd_softmax_state_update(&mut s2, xf.add(ROW), ROW));
        let mut m = s;
        st.push(simd_softmax_state_merge(&s, &s2, &mut m));
        let (mut fa, mut fb, mut sum) = (0.0f32, 0.0f32, 0.0f64);
        st.push(simd_softmax_state_merge_factors(&s, &s2, &mut fa, &mut fb));
        st.push(simd_softmax_state_sum(&m, &mut sum));
        st.push(simd_softmax_state_logsumexp(&m, &mut lse));
        st.push(simd_softmax_state_normalize(&m, xf, ROW, yf, ROW));
        st.push(simd_softmax_state_log_normalize(&m, xf, ROW, yf, ROW));
        st.push(simd_softmax_state_exp_update(
            &mut s, xf, ROW, yf, ROW, &mut fa,
        ));

        let mut so = simd_softmax_sampler_options::default();
        simd_softmax_sampler_options_init(&mut so);
        so.temperature = 0.8;
        so.top_p = 0.9;
        let sc = b.scratch.as_mut_ptr().cast::<c_void>();
        let bytes = b.scratch.len() * 8;
        let mut tok = simd_softmax_candidate::default();
        st.push(simd_softmax_sample(
            backend, &so, xf, ROW, 0.5, sc, bytes, &mut tok,
        ));
        so.top_k = 40;
        let (mut surv, mut count) = (core::ptr::null(), 0usize);
        st.push(simd_softmax_sampler_survivors(
            backend, &so, xf, ROW, sc, bytes, &mut surv, &mut count,
        ));

        let mut co = simd_softmax_cross_entropy_options::default();
        simd_softmax_cross_entropy_options_init(&mut co);
        co.label_smoothing = 0.1;
        let t = b.targets.as_ptr();
        let mut loss = 0.0f32;
        st.push(simd_softmax_cross_entropy(
            backend, &co, bf, h, n, ROW, t, ROWS, &mut loss,
        ));
        st.push(simd_softmax_cross_entropy_rows(
            backend,
            &co,
            bf,
            h,
            n,
            ROW,
            t,
            ROWS,
            b.losses.as_mut_ptr(),
            ROWS,
        ));
        st.push(simd_softmax_cross_entropy_backward(
            backend, &co, bf, h, n, ROW, t, ROWS, 1.0, bf, hy, n,
        ));
        st.push(simd_softmax_cross_entropy_with_grad(
            backend, &co, f, x, n, ROW, t, ROWS, 1.0, bf, hy, n, &mut loss,
        ));
        st.push(simd_softmax_cross_entropy_with_grad(
            backend, &co, bf, h, n, ROW, t, ROWS, 1.0, f, y, n, &mut loss,
        ));
        let accepted = st.len;
        assert!(
            st.all[..st.len].iter().all(|&s| s == SIMD_SOFTMAX_OK),
            "backend {backend}: statuses {:?}",
            &st.all[..st.len]
        );

        // Refused calls.
        let refused = [
            simd_softmax_softmax(backend, f, x, ROW, f, y, ROW - 1),
            simd_softmax_softmax(backend, f, x, ROW, f, x.cast_mut(), ROW),
            simd_softmax_softmax(backend, 9, x, ROW, f, y, ROW),
            simd_softmax_softmax(backend, f, core::ptr::null(), ROW, f, y, ROW),
            simd_softmax_softmax_rows(backend, f, x, n, f, y, n, 7),
            simd_softmax_sample(backend, &so, xf, ROW, 1.0, sc, bytes, &mut tok),
            simd_softmax_sample(backend, &so, xf, ROW, 0.5, sc, 8, &mut tok),
            {
                co.label_smoothing = 2.0;
                simd_softmax_cross_entropy(backend, &co, bf, h, n, ROW, t, ROWS, &mut loss)
            },
            {
                ao.softcap = -1.0;
                simd_softmax_attention(backend, &ao, bf, h, n, bf, hy, n, ROWS, 1, ROW)
            },
            simd_softmax_softmax(99, f, x, ROW, f, y, ROW),
        ];
        assert!(
            refused.iter().all(|&s| s != SIMD_SOFTMAX_OK),
            "backend {backend}: refused statuses {refused:?}"
        );
        assert_eq!(accepted, 39, "every accepted call above is counted");
        refused.len()
    }
}

#[test]
fn no_c_function_allocates() {
    let mut b = bufs();
    let backends: Vec<simd_softmax_backend> = (0..=SIMD_SOFTMAX_BACKEND_NEON)
        .filter(|&k| {
            let ok = simd_softmax_backend_check(k) == SIMD_SOFTMAX_OK;
            if !ok {
                println!("backend {k}: skipped, this CPU or build lacks it");
            }
            ok
        })
        .collect();
    for &k in &backends {
        round(k, &mut b); // warm-up: first-use initialization may allocate
    }
    for &k in &backends {
        let before = ALLOCS.load(Ordering::SeqCst);
        let refused = round(k, &mut b);
        let after = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(after - before, 0, "backend {k}: the C calls allocated");
        println!("backend {k}: every C function, and {refused} refused calls, allocated nothing");
    }
    assert!(
        backends.len() >= 2,
        "the default and scalar backends always run"
    );
}
