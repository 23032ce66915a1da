//! `Sampler` on every dispatched backend this CPU runs, against a
//! full-sort reference written here from the documented definition (every
//! finite logit sorted by descending logit, ties by lower index; weights
//! `e^(α(x − m))` in f64; top-k, top-p on the f64 cumulative sum, min-p,
//! zero weights dropped, the survivors renormalized). The survivor sets
//! and their probabilities must be identical, bit for bit, on random
//! rows, language-model-like rows and adversarial ones (all equal, two
//! values, near-ties over a large vocabulary, masks, `+∞`), for every
//! combination of the parameters. Then the properties that hold exactly
//! (top-k = 1 is greedy, top-p = 1 keeps every finite logit of nonzero
//! weight, `sample` is the inverse CDF of the survivors), the special
//! values and the errors.
//!
//! Without top-k, top-p's normalizer is the kernel's row sum; the
//! reference takes the same kernel's (`Kernel::scaled_row_state`), so
//! the comparison stays exact.

mod common;

use common::rng;
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use simd_softmax::{Backend, Candidate, Error, Sampler, SamplerScratch, Softmax};
use simd_softmax_kernels::RowState;
use simd_softmax_kernels::backend;

/// One sampler's parameters.
#[derive(Clone, Copy, Debug)]
struct Cfg {
    t: f32,
    k: usize,
    p: f32,
    min_p: f32,
}

impl Cfg {
    fn sampler(self, sm: &Softmax) -> Sampler {
        sm.sampler()
            .temperature(self.t)
            .top_k(self.k)
            .top_p(self.p)
            .min_p(self.min_p)
    }
}

/// The scaled state the backend's kernel computes (the sampler's
/// normalizer; `alpha` finite and > 0).
fn state(b: Backend, x: &[f32], alpha: f32) -> RowState {
    match b {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => backend::avx2().unwrap().scaled_row_state(x, alpha),
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => backend::avx512().unwrap().scaled_row_state(x, alpha),
        #[cfg(target_arch = "aarch64")]
        Backend::Neon => backend::neon().unwrap().scaled_row_state(x, alpha),
        _ => backend::scalar().scaled_row_state(x, alpha),
    }
}

/// The documented definition with a full sort: the survivors (index, f64
/// weight) and their total, or `None` for a NaN or no finite logit.
fn reference(b: Backend, x: &[f32], c: Cfg) -> Option<(Vec<(u32, f64)>, f64)> {
    if x.iter().any(|v| v.is_nan()) || x.iter().all(|&v| v == f32::NEG_INFINITY) {
        return None;
    }
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut order: Vec<u32> = (0..x.len() as u32)
        .filter(|&i| x[i as usize] > f32::NEG_INFINITY)
        .collect();
    // Descending logit (−0 == +0), ties by lower index: a stable sort.
    order.sort_by(|&i, &j| x[j as usize].partial_cmp(&x[i as usize]).unwrap());
    if c.t == 0.0 || c.k == 1 {
        return Some((vec![(order[0], 1.0)], 1.0));
    }
    let alpha = (1.0 / f64::from(c.t)) as f32;
    let weight = |v: f32| -> f64 {
        if m == f32::INFINITY {
            f64::from(u8::from(v == f32::INFINITY))
        } else if alpha == 0.0 {
            f64::from(u8::from(v.is_finite()))
        } else if !alpha.is_finite() {
            f64::from(u8::from(v == m))
        } else {
            libm::exp(f64::from(alpha) * (f64::from(v) - f64::from(m)))
        }
    };
    let mut list: Vec<(u32, f64)> = order.iter().map(|&i| (i, weight(x[i as usize]))).collect();
    if c.k > 0 {
        list.truncate(c.k);
    }
    if c.p < 1.0 {
        let z = if c.k == 0 && m.is_finite() && alpha.is_finite() && alpha > 0.0 {
            state(b, x, alpha).sum.total()
        } else {
            list.iter().map(|e| e.1).sum::<f64>()
        };
        let mut acc = 0.0f64;
        let mut keep = list.len();
        for (j, e) in list.iter().enumerate() {
            acc += e.1;
            if acc / z >= f64::from(c.p) {
                keep = j + 1;
                break;
            }
        }
        list.truncate(keep);
    }
    if c.min_p > 0.0 {
        let floor = f64::from(c.min_p) * list[0].1;
        list.retain(|e| e.1 >= floor);
    }
    list.retain(|e| e.1 > 0.0);
    let total = list.iter().map(|e| e.1).sum::<f64>();
    Some((list, total))
}

/// Checks `survivors` and `sample` against the reference; returns the
/// survivor count.
fn check(sm: &Softmax, x: &[f32], c: Cfg, scratch: &mut SamplerScratch, what: &str) -> usize {
    let s = c.sampler(sm);
    let want = reference(sm.backend(), x, c);
    let got = s.survivors(x, scratch).map(|v| v.to_vec());
    let ctx = || format!("{} {what} n={} {c:?}", sm.backend(), x.len());
    let Some((want, total)) = want else {
        assert!(got.is_err(), "{}: expected an error", ctx());
        return 0;
    };
    let got = got.unwrap_or_else(|e| panic!("{}: {e}", ctx()));
    let want_c: Vec<Candidate> = want
        .iter()
        .map(|&(index, w)| Candidate {
            index,
            prob: (w / total) as f32,
        })
        .collect();
    if got != want_c {
        let first = got.iter().zip(&want_c).position(|(a, b)| a != b);
        panic!(
            "{}: {} survivors, reference {}; first difference at {first:?}: {:?} vs {:?}",
            ctx(),
            got.len(),
            want_c.len(),
            first.map(|j| got[j]),
            first.map(|j| want_c[j]),
        );
    }
    // The probabilities sum to 1 within the f32 rounding of each.
    let sum: f64 = got.iter().map(|c| f64::from(c.prob)).sum();
    assert!(
        (sum - 1.0).abs() <= got.len() as f64 * 2f64.powi(-24) + 1e-12,
        "{}: survivors sum to {sum}",
        ctx()
    );
    // `sample` is the inverse CDF of the survivors' weights.
    for u in [0.0, 0.3, 0.5, 0.9, 1.0 - f64::EPSILON] {
        let target = u * total;
        let mut acc = 0.0;
        let mut pick = want.len() - 1;
        for (j, e) in want.iter().enumerate() {
            acc += e.1;
            if target < acc {
                pick = j;
                break;
            }
        }
        let drawn = s.sample(x, u, scratch).unwrap();
        assert_eq!(drawn, want_c[pick], "{}: sample({u})", ctx());
    }
    got.len()
}

fn normal(g: &mut Xoshiro256PlusPlus) -> f32 {
    let (u, v): (f64, f64) = (g.random_range(1e-300..1.0), g.random());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// Logits as `lm_logits` in the peers' sampling script makes them:
/// normal with σ = 2, twenty entries raised by 8 to 14.
fn lm_logits(n: usize, seed: u64) -> Vec<f32> {
    let mut g = rng(seed);
    let mut x: Vec<f32> = (0..n).map(|_| 2.0 * normal(&mut g)).collect();
    for _ in 0..20.min(n) {
        let i = g.random_range(0..n);
        x[i] += g.random_range(8.0f32..14.0);
    }
    x
}

/// Rows of every kind the selection must get exactly right.
fn rows(n: usize, salt: u64) -> Vec<(&'static str, Vec<f32>)> {
    let mut g = rng(0x5A4D ^ salt ^ (n as u64) << 20);
    let mut v = vec![
        ("lm", lm_logits(n, salt)),
        (
            "uniform",
            (0..n).map(|_| g.random_range(-10.0f32..10.0)).collect(),
        ),
        ("all equal", vec![1.5; n]),
        (
            "two values",
            (0..n)
                .map(|_| if g.random_bool(0.3) { 2.0 } else { -1.0 })
                .collect(),
        ),
        (
            // Near-ties: a handful of distinct values one ulp apart.
            "near ties",
            (0..n)
                .map(|_| f32::from_bits(3.0f32.to_bits() + g.random_range(0..4u32)))
                .collect(),
        ),
        (
            "small integers",
            (0..n).map(|_| g.random_range(-3i32..=3) as f32).collect(),
        ),
    ];
    // Masked: a third of the lm row at −∞, and ±0 ties.
    let mut masked = lm_logits(n, salt ^ 7);
    for (i, e) in masked.iter_mut().enumerate() {
        if i % 3 == 1 {
            *e = f32::NEG_INFINITY;
        } else if i % 7 == 0 {
            *e = if i % 2 == 0 { 0.0 } else { -0.0 };
        }
    }
    v.push(("masked", masked));
    v
}

const CFGS_T: [f32; 4] = [0.5, 0.8, 1.0, 2.0];
const CFGS_K: [usize; 5] = [0, 1, 5, 40, 1000];
const CFGS_P: [f32; 4] = [0.3, 0.9, 0.95, 1.0];
const CFGS_MIN_P: [f32; 3] = [0.0, 0.05, 0.5];

#[test]
fn survivors_equal_the_full_sort_reference() {
    let test = "survivors_equal_the_full_sort_reference";
    let sizes: &[usize] = if common::quick() {
        &[1, 3, 100, 2000]
    } else {
        &[1, 3, 100, 2000, 32_000]
    };
    for sm in common::dispatched(test) {
        let mut scratch = SamplerScratch::new(32_000);
        let (mut runs, mut most) = (0usize, 0usize);
        for &n in sizes {
            // The full grid up to 2000; at 32000 (the full sort per call is
            // the reference's cost) the benchmarks' kind of parameters.
            let big = n > 2000;
            for (what, x) in rows(n, 1) {
                for t in CFGS_T.into_iter().filter(|&t| !big || t == 0.8 || t == 1.0) {
                    for k in CFGS_K.into_iter().filter(|&k| !big || k == 0 || k == 40) {
                        for p in CFGS_P {
                            for min_p in CFGS_MIN_P.into_iter().filter(|&q| !big || q < 0.5) {
                                let c = Cfg { t, k, p, min_p };
                                most = most.max(check(&sm, &x, c, &mut scratch, what));
                                runs += 1;
                            }
                        }
                    }
                }
            }
        }
        eprintln!(
            "[{test}] {}: {runs} (row, parameters) pairs identical to the reference; up to {most} survivors",
            sm.backend()
        );
    }
}

/// The adversarial rows at a large vocabulary: every entry equal
/// (top-p's cut falls exactly on `p·n`), two values, and near-ties.
#[test]
fn large_vocabularies_of_ties_match_the_reference() {
    let test = "large_vocabularies_of_ties_match_the_reference";
    let n = if common::quick() { 20_000 } else { 256_000 };
    for sm in common::dispatched(test) {
        let mut scratch = SamplerScratch::new(n);
        for (what, x) in rows(n, 2).into_iter().skip(2).take(3) {
            for c in [
                Cfg {
                    t: 1.0,
                    k: 0,
                    p: 0.5,
                    min_p: 0.0,
                },
                Cfg {
                    t: 0.7,
                    k: 40,
                    p: 0.9,
                    min_p: 0.0,
                },
                Cfg {
                    t: 1.0,
                    k: 0,
                    p: 0.95,
                    min_p: 0.0,
                },
                Cfg {
                    t: 1.3,
                    k: 0,
                    p: 1.0,
                    min_p: 0.9,
                },
            ] {
                let kept = check(&sm, &x, c, &mut scratch, what);
                if what == "all equal" && c.k == 0 && c.min_p == 0.0 {
                    // Equal weights: exactly the first ⌈p·n⌉ indices.
                    let want = (f64::from(c.p) * n as f64).ceil() as usize;
                    assert_eq!(kept, want, "{} {what} {c:?}", sm.backend());
                }
            }
        }
        eprintln!("[{test}] {}: n = {n}, identical", sm.backend());
    }
}

#[test]
fn top_k_1_is_greedy_and_top_p_1_keeps_every_finite_logit() {
    let test = "top_k_1_is_greedy_and_top_p_1_keeps_every_finite_logit";
    for sm in common::dispatched(test) {
        let mut scratch = SamplerScratch::new(4000);
        for (what, x) in rows(4000, 3) {
            let greedy = sm.sampler().temperature(0.0);
            let g = greedy.survivors(&x, &mut scratch).unwrap().to_vec();
            let first_max = {
                let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                x.iter().position(|&v| v == m).unwrap() as u32
            };
            assert_eq!(
                g,
                [Candidate {
                    index: first_max,
                    prob: 1.0
                }],
                "{what}"
            );
            for t in [0.5, 1.0, 3.0] {
                let k1 = sm.sampler().temperature(t).top_k(1);
                assert_eq!(k1.survivors(&x, &mut scratch).unwrap(), &g[..], "{what}");
                for u in [0.0, 0.7] {
                    assert_eq!(k1.sample(&x, u, &mut scratch).unwrap(), g[0]);
                }
                // No filter: every finite logit whose weight is nonzero
                // (all of them here: no gap of 745·T).
                let all = sm.sampler().temperature(t).top_p(1.0);
                let kept = all.survivors(&x, &mut scratch).unwrap();
                let finite = x.iter().filter(|v| v.is_finite()).count();
                assert_eq!(kept.len(), finite, "{what} T={t}");
                let mut idx: Vec<u32> = kept.iter().map(|c| c.index).collect();
                idx.sort_unstable();
                idx.dedup();
                assert_eq!(idx.len(), finite, "{what}: duplicates");
            }
        }
        eprintln!("[{test}] {}: ok", sm.backend());
    }
}

#[test]
fn special_values() {
    let test = "special_values";
    let inf = f32::INFINITY;
    let ninf = f32::NEG_INFINITY;
    for sm in common::dispatched(test) {
        let mut s = SamplerScratch::new(64);
        let base = sm.sampler().temperature(0.9);
        // +∞ entries share the mass, whatever the temperature.
        let x = [1.0, inf, 3.0, ninf, inf, 2.0];
        for t in [0.0, 0.5, 1.0, f32::INFINITY] {
            let kept = sm.sampler().temperature(t).survivors(&x, &mut s).unwrap();
            let want: &[Candidate] = if t == 0.0 {
                &[Candidate {
                    index: 1,
                    prob: 1.0,
                }]
            } else {
                &[
                    Candidate {
                        index: 1,
                        prob: 0.5,
                    },
                    Candidate {
                        index: 4,
                        prob: 0.5,
                    },
                ]
            };
            assert_eq!(kept, want, "{} T={t}", sm.backend());
        }
        // −∞ is never chosen; T = +∞ is uniform over the finite logits.
        let x = [ninf, 5.0, ninf, -5.0, 0.0];
        let flat = sm.sampler().temperature(f32::INFINITY);
        let kept = flat.survivors(&x, &mut s).unwrap();
        let idx: Vec<u32> = kept.iter().map(|c| c.index).collect();
        assert_eq!(idx, [1, 4, 3]);
        assert!(kept.iter().all(|c| c.prob == (1.0f64 / 3.0) as f32));
        for u in [0.0, 0.5, 0.99] {
            assert!(x[base.sample(&x, u, &mut s).unwrap().index as usize].is_finite());
        }
        // A temperature so small that 1/T overflows: the maxima share.
        let x = [2.0, 7.0, 7.0, 6.999];
        let cold = sm.sampler().temperature(f32::from_bits(1));
        let kept = cold.survivors(&x, &mut s).unwrap();
        assert_eq!(
            kept,
            &[
                Candidate {
                    index: 1,
                    prob: 0.5
                },
                Candidate {
                    index: 2,
                    prob: 0.5
                }
            ]
        );
        // A logit more than 745·T below the max has weight 0: never kept.
        let x = [0.0, -800.0];
        assert_eq!(base.top_p(1.0).survivors(&x, &mut s).unwrap().len(), 1);
        eprintln!("[{test}] {}: ok", sm.backend());
    }
}

#[test]
fn errors() {
    let test = "errors";
    for sm in common::dispatched(test) {
        let mut s = SamplerScratch::new(4);
        let ok = sm.sampler();
        let x = [1.0f32, 2.0, 3.0];
        let bad_param = |r: Result<&[Candidate], Error>, name: &str| match r {
            Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        };
        for t in [-1.0, f32::NAN, f32::from_bits(0x8000_0001)] {
            bad_param(ok.temperature(t).survivors(&x, &mut s), "temperature");
        }
        for p in [0.0, -0.1, f32::from_bits(1.0f32.to_bits() + 1), f32::NAN] {
            bad_param(ok.top_p(p).survivors(&x, &mut s), "top_p");
        }
        for p in [-0.1, 1.5, f32::NAN] {
            bad_param(ok.min_p(p).survivors(&x, &mut s), "min_p");
        }
        for u in [-f64::from_bits(1), 1.0, 2.0, f64::NAN] {
            match ok.sample(&x, u, &mut s) {
                Err(Error::InvalidParameter { name: "u", .. }) => {}
                other => panic!("u = {u}: {other:?}"),
            }
        }
        assert_eq!(
            ok.survivors(&[1.0, f32::NAN, 2.0, f32::NAN], &mut s),
            Err(Error::NanLogit { index: 1 })
        );
        assert_eq!(
            ok.temperature(0.0).survivors(&[f32::NAN], &mut s),
            Err(Error::NanLogit { index: 0 })
        );
        assert_eq!(ok.survivors(&[], &mut s), Err(Error::NoFiniteLogit));
        assert_eq!(
            ok.sample(&[f32::NEG_INFINITY; 3], 0.5, &mut s),
            Err(Error::NoFiniteLogit)
        );
        assert_eq!(
            ok.survivors(&[0.0; 5], &mut s),
            Err(Error::ScratchTooShort {
                vocab: 5,
                scratch: 4
            })
        );
        // Bounds are inclusive where the contract says so.
        assert!(ok.top_p(1.0).min_p(1.0).survivors(&x, &mut s).is_ok());
        assert!(ok.min_p(0.0).temperature(0.0).survivors(&x, &mut s).is_ok());
        // The message names the parameter and its range.
        let e = ok.top_p(2.0).survivors(&x, &mut s).unwrap_err().to_string();
        assert!(e.contains("top_p") && e.contains("(0, 1]"), "{e}");
        eprintln!("[{test}] {}: ok", sm.backend());
    }
}

/// A scratch serves any shorter row, and one sampler many rows: nothing
/// of a previous call leaks into the next.
#[test]
fn scratch_is_reused_without_leaks() {
    let sm = Softmax::new();
    let mut big = SamplerScratch::new(5000);
    let s = sm.sampler().temperature(0.8).top_k(50).top_p(0.9);
    for n in [5000, 7, 1, 4096, 300] {
        let x = lm_logits(n, n as u64);
        let a = s.survivors(&x, &mut big).unwrap().to_vec();
        let mut fresh = SamplerScratch::new(n);
        assert_eq!(a, s.survivors(&x, &mut fresh).unwrap());
    }
}
