//! Tests of the double-double oracle in `tests/oracle/mod.rs` itself: its
//! arithmetic, `exp`/`ln` against high-precision constants, identities on
//! random arguments, the row functions on hand-checked rows, and agreement
//! with the crate's f64 reference `simd_softmax::reference` where f64
//! suffices (and one row where it does not).
//!
//! Every expected value below was computed with Python's mpmath at 300 or
//! 400 bits of precision (`mp.prec = 400`) from the exact f64/f32 inputs
//! (f32 inputs rounded first with `struct.unpack('f', struct.pack('f', v))`)
//! and stored as the double-double `hi = float(v)`, `lo = float(v − hi)`,
//! which is within `2^-106` relative of the true value; the comment next to
//! each gives its leading 40 digits.

mod oracle;

use oracle::{
    Dd, combination, err_ulp, exp_dd, expm1_dd, fast_two_sum, ln_dd, ln1p_dd, log_softmax,
    log_softmax_dd, logsumexp, logsumexp_dd, softmax, softmax_and_log_softmax, softmax_dd,
    softmax_of_combination, softmax_scaled, two_prod, two_sum, ulp_f32,
};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::cmp::Ordering;
use std::f64::consts::{E, FRAC_1_SQRT_2, LN_2, LN_10, SQRT_2};

/// `2^k` as an f64.
fn p2(k: i32) -> f64 {
    2f64.powi(k)
}

/// A double-double literal (the pair mpmath printed).
const fn dd(hi: f64, lo: f64) -> Dd {
    Dd { hi, lo }
}

/// `|got − want| / |want|`, in double-double (`0` when equal, infinities
/// and zeros included).
fn rel(got: Dd, want: Dd) -> f64 {
    if got == want {
        return 0.0;
    }
    (got - want).abs().to_f64() / want.abs().to_f64()
}

/// Assert `rel(got, want) < bound`; returns the error for the reports.
#[track_caller]
fn assert_rel(what: &str, got: Dd, want: Dd, bound: f64) -> f64 {
    let e = rel(got, want);
    assert!(
        e < bound,
        "{what}: got {got:?}, want {want:?}, relative error {e:e} = 2^{:.1} ≥ 2^{:.1}",
        e.log2(),
        bound.log2()
    );
    e
}

/// Assert a whole row entry by entry.
#[track_caller]
fn assert_row(what: &str, got: &[Dd], want: &[Dd], bound: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_rel(&format!("{what}[{i}]"), g, w, bound);
    }
}

/// A random double-double with `|x| = m·2^e`, `m ∈ [1, 2)`, `e ∈ [e0, e1)`,
/// and a random low word.
fn random_dd(rng: &mut Xoshiro256PlusPlus, e0: i32, e1: i32) -> Dd {
    let hi = (1.0 + rng.random::<f64>()) * p2(rng.random_range(e0..e1));
    let lo = hi * (rng.random::<f64>() - 0.5) * p2(-53);
    Dd::from_sum(hi, lo)
}

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

// ---------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------

#[test]
fn error_free_transformations_are_exact() {
    assert_eq!(two_sum(1.0, 1e-30), (1.0, 1e-30));
    assert_eq!(two_sum(1e-30, 1.0), (1.0, 1e-30));
    assert_eq!(fast_two_sum(1.0, p2(-60)), (1.0, p2(-60)));
    // (1 + 2^-30)(1 − 2^-30) = 1 − 2^-60: rounds to 1, error −2^-60.
    assert_eq!(two_prod(1.0 + p2(-30), 1.0 - p2(-30)), (1.0, -p2(-60)));
    // 0.1 + 0.2: the classic rounding, recovered exactly.
    let (s, e) = two_sum(0.1, 0.2);
    assert_eq!(s, 0.30000000000000004);
    assert_eq!(e, -2.7755575615628914e-17);
}

#[test]
fn dd_arithmetic_identities_on_random_values() {
    let mut r = rng(1);
    let bound = p2(-102);
    for _ in 0..10_000 {
        let x = random_dd(&mut r, -60, 60);
        let y = random_dd(&mut r, -60, 60);
        let y = if r.random_bool(0.5) { -y } else { y };
        // (x + y) − y = x, relative to the larger operand (the sum may
        // cancel, the subtraction then rounds relative to |y|).
        let back = (x + y) - y;
        let scale = x.abs().to_f64().max(y.abs().to_f64());
        let err = (back - x).abs().to_f64() / scale;
        assert!(
            err < bound,
            "(x + y) − y: {x:?} {y:?} err 2^{:.1}",
            err.log2()
        );
        assert_rel("(x·y)/y", (x * y) / y, x, bound);
        assert_rel("(x/y)·y", (x / y) * y, x, bound);
        assert_rel("x·(1/y)·y", x.mul_f64(3.0).div_f64(3.0), x, bound);
    }
    // Ordering and conversions.
    let a = Dd::from_sum(1.0, p2(-70));
    assert!(a > Dd::ONE && -a < -Dd::ONE && a.compare(Dd::ONE) == Some(Ordering::Greater));
    assert_eq!(a.to_f64(), 1.0);
    assert_eq!(Dd::from(0.5f32), dd(0.5, 0.0));
    assert_eq!(Dd::ONE.ldexp(-1074).to_f64(), f64::from_bits(1));
    assert_eq!(Dd::ONE.ldexp(1023).ldexp(1), Dd::from(f64::INFINITY));
}

// ---------------------------------------------------------------------------
// exp and ln against mpmath
// ---------------------------------------------------------------------------

/// `(x, e^x)` pairs from mpmath.
const EXP_CASES: [(Dd, Dd); 11] = [
    // 2.718281828459045235360287471352662497757
    (dd(1.0, 0.0), dd(E, 1.4456468917292502e-16)),
    // 0.3678794411714423215955237701614608674458
    (
        dd(-1.0, 0.0),
        dd(0.36787944117144233, -1.2428753672788363e-17),
    ),
    // 22026.46579480671651695790064528424436635
    (
        dd(10.0, 0.0),
        dd(22026.465794806718, -1.3780134700517372e-12),
    ),
    // 3.720075976020835962959695803863118337359e-44
    (
        dd(-100.0, 0.0),
        dd(3.720075976020836e-44, -1.5705024907732008e-60),
    ),
    // 1.014232054735004509455329595231267615205e+304
    (
        dd(700.0, 0.0),
        dd(1.0142320547350045e304, 1.6666571920734673e287),
    ),
    // 2.650396553004310816338679447269582701529e-261
    (
        dd(-600.0, 0.0),
        dd(2.6503965530043108e-261, 6.377342817491395e-278),
    ),
    // e^709.7 (the f64 nearest 709.7): 1.654984027680264403080250283472354982281e+308
    (
        dd(709.7, 0.0),
        dd(1.6549840276802644e308, -4.1236453850611414e291),
    ),
    // e^0.3 (f64 0.3): 1.349858807576003088997301031688634032142
    (dd(0.3, 0.0), dd(1.3498588075760032, -9.447314673432387e-17)),
    // e^0.001 (f64): 1.001000500166708341688893262798302888729
    (
        dd(0.001, 0.0),
        dd(1.0010005001667084, -4.290842058948394e-17),
    ),
    // e^-0.34 (f64): 0.7117703227626096976950298980865617270859
    (
        dd(-0.34, 0.0),
        dd(0.7117703227626097, 4.476156673124037e-17),
    ),
    // e^(10 + 1e-20) (both f64, the argument a double-double):
    // 22026.46579480671651717816530323231151944
    (
        dd(10.0, 1e-20),
        dd(22026.465794806718, -1.3777932053937893e-12),
    ),
];

/// `(x, ln x)` pairs from mpmath.
const LN_CASES: [(Dd, Dd); 13] = [
    // 0.6931471805599453094172321214581765680755
    (dd(2.0, 0.0), dd(LN_2, 2.3190468138462996e-17)),
    // 2.302585092994045684017991454684364207601
    (dd(10.0, 0.0), dd(LN_10, -2.1707562233822494e-16)),
    // 1.098612288668109691395245236922525704647
    (dd(3.0, 0.0), dd(1.0986122886681098, -9.07129723500153e-17)),
    // -0.6931471805599453094172321214581765680755
    (dd(0.5, 0.0), dd(-LN_2, -2.3190468138462996e-17)),
    // ln of the f64 1e300: 690.7755278982137052579021966605136811507
    (
        dd(1e300, 0.0),
        dd(690.7755278982137, 2.3747660028800243e-14),
    ),
    // ln of the f64 1e-300: -690.7755278982137051803383445701005029086
    (
        dd(1e-300, 0.0),
        dd(-690.7755278982137, -2.3670096176709832e-14),
    ),
    // ln f64::MAX: 709.782712893383996732223389910657145504
    (
        dd(f64::MAX, 0.0),
        dd(709.782712893384, 2.3636017071323592e-14),
    ),
    // ln 2^-1022: -708.3964185322641062244112281302564525732
    (
        dd(f64::MIN_POSITIVE, 0.0),
        dd(-708.3964185322641, -2.7475416721234714e-14),
    ),
    // The √2 split of the argument reduction, both sides: ln of the f64
    // SQRT_2 (above √2): 0.346573590279972723066702637348315628422
    (
        dd(SQRT_2, 0.0),
        dd(0.3465735902799727, 2.4442169414592898e-17),
    ),
    // ln of the f64 below SQRT_2 (below √2): 0.3465735902799725660574567689708080959838
    (
        dd(f64::from_bits(SQRT_2.to_bits() - 1), 0.0),
        dd(0.3465735902799726, -2.1544773991268955e-17),
    ),
    // ln of the f64 FRAC_1_SQRT_2: -0.3465735902799725863505294841098609396535
    (
        dd(FRAC_1_SQRT_2, 0.0),
        dd(-0.3465735902799726, 1.2517012761299022e-18),
    ),
    // ln(1 + 2^-60) = 2^-60 − 2^-121 + …: 8.673617379884035468298040484328213668081e-19
    (
        dd(1.0, 8.673617379884035e-19),
        dd(8.673617379884035e-19, -3.76158192263132e-37),
    ),
    // ln(1 − 2^-60) = −2^-60 − 2^-121 − …: -8.673617379884035475821204329590853719081e-19
    (
        dd(1.0, -8.673617379884035e-19),
        dd(-8.673617379884035e-19, -3.76158192263132e-37),
    ),
];

#[test]
fn exp_matches_mpmath_constants() {
    let mut worst: f64 = 0.0;
    for (x, want) in EXP_CASES {
        worst = worst.max(assert_rel(
            &format!("exp_dd({x:?})"),
            exp_dd(x),
            want,
            p2(-100),
        ));
    }
    // e^(ln 2 as a double-double) = 2·e^(−5.7e-34) = 2 − 1.14e-33.
    let two = exp_dd(Dd::LN2);
    worst = worst.max(assert_rel("exp_dd(LN2)", two, Dd::from(2.0), p2(-100)));
    eprintln!("exp_dd: worst relative error 2^{:.1}", worst.log2());
    assert_eq!(exp_dd(Dd::ZERO), Dd::ONE);
    assert_eq!(exp_dd(Dd::from(f64::NEG_INFINITY)), Dd::ZERO);
    assert_eq!(exp_dd(Dd::from(-800.0)), Dd::ZERO);
    assert_eq!(exp_dd(Dd::from(710.0)).hi, f64::INFINITY);
}

#[test]
fn ln_matches_mpmath_constants() {
    let mut worst: f64 = 0.0;
    for (x, want) in LN_CASES {
        worst = worst.max(assert_rel(
            &format!("ln_dd({x:?})"),
            ln_dd(x),
            want,
            p2(-100),
        ));
    }
    eprintln!("ln_dd: worst relative error 2^{:.1}", worst.log2());
    // ln(1 + 2^-60) carries the −2^-121 term: the low word is exactly what
    // a 1 + 2^-60 rounded to f64 (= 1) would have lost.
    let y = ln_dd(dd(1.0, p2(-60)));
    assert_eq!(y.hi, p2(-60));
    assert!(((y.lo + p2(-121)) / p2(-121)).abs() < 1e-15, "{y:?}");
    assert_eq!(ln_dd(Dd::ONE), Dd::ZERO);
    assert_eq!(ln_dd(Dd::ZERO).hi, f64::NEG_INFINITY);
    assert!(ln_dd(Dd::from(-1.0)).is_nan());
}

#[test]
fn expm1_and_ln1p_keep_relative_precision_near_zero() {
    let expm1_cases = [
        // expm1 of the f64 1e-20: 9.999999999999999451582714542095716511811e-21
        (dd(1e-20, 0.0), dd(1e-20, 5e-41)),
        // expm1(-1e-10): -9.999999999500000364338639785211468477979e-11
        (
            dd(-1e-10, 0.0),
            dd(-9.999999999500001e-11, 3.38967998878844e-27),
        ),
        // expm1(0.3): 0.3498588075760030889973010316886340321418
        (dd(0.3, 0.0), dd(0.3498588075760031, 1.6549155728191776e-17)),
        // expm1(-0.5): -0.3934693402873665763962004650088195465581
        (
            dd(-0.5, 0.0),
            dd(-0.3934693402873666, -6.593178415491414e-19),
        ),
        // expm1(2): 6.38905609893065022723042746057500781318
        (dd(2.0, 0.0), dd(6.38905609893065, -1.7971139497839148e-16)),
    ];
    let ln1p_cases = [
        // ln1p of the f64 1e-300: 1.000000000000000025059091835208759685696e-300
        (dd(1e-300, 0.0), dd(1e-300, 0.0)),
        // ln1p of the f64 1e-30: 1.000000000000000083336420607585485350931e-30
        (dd(1e-30, 0.0), dd(1e-30, -5.0000000000000005e-61)),
        // ln1p(-0.25): -0.2876820724517809274392190059938274315035
        (
            dd(-0.25, 0.0),
            dd(-0.2876820724517809, -2.607160616442564e-17),
        ),
        // ln1p(0.5): 0.405465108108164381978013115464349136572
        (
            dd(0.5, 0.0),
            dd(0.4054651081081644, -2.8811380259626426e-18),
        ),
        // ln1p(−1 + 2^-40) = −40 ln 2: -27.72588722239781237668928485832706272302
        (
            dd(-1.0 + p2(-40), 0.0),
            dd(-27.725887222397812, -3.9440305838394616e-17),
        ),
    ];
    let mut worst: f64 = 0.0;
    for (x, want) in expm1_cases {
        worst = worst.max(assert_rel(
            &format!("expm1_dd({x:?})"),
            expm1_dd(x),
            want,
            p2(-100),
        ));
    }
    for (x, want) in ln1p_cases {
        worst = worst.max(assert_rel(
            &format!("ln1p_dd({x:?})"),
            ln1p_dd(x),
            want,
            p2(-100),
        ));
    }
    eprintln!(
        "expm1_dd/ln1p_dd: worst relative error 2^{:.1}",
        worst.log2()
    );
}

// ---------------------------------------------------------------------------
// Identities on random arguments
// ---------------------------------------------------------------------------

#[test]
fn exp_and_ln_round_trip_on_random_arguments() {
    let mut r = rng(2);
    let (mut worst_el, mut worst_le): (f64, f64) = (0.0, 0.0);
    for _ in 0..20_000 {
        // exp(ln x) = x: ln x has an absolute error of about 2^-104·|ln x|,
        // which exp turns into a relative one.
        let x = random_dd(&mut r, -960, 1000);
        let lnx = ln_dd(x);
        let e = rel(exp_dd(lnx), x);
        let bound = p2(-100) * (2.0 + lnx.hi.abs() / 8.0);
        assert!(e < bound, "exp(ln {x:?}): 2^{:.1}", e.log2());
        worst_el = worst_el.max(e / (2.0 + lnx.hi.abs() / 8.0));
        // ln(exp y) = y: exp's relative error is ln's absolute error.
        let y = Dd::from_sum(r.random_range(-660.0..709.0), r.random::<f64>() * p2(-60));
        let back = ln_dd(exp_dd(y));
        let e = (back - y).abs().to_f64() / y.abs().to_f64().max(1.0);
        assert!(e < p2(-100), "ln(exp {y:?}): 2^{:.1}", e.log2());
        worst_le = worst_le.max(e);
    }
    // Near 1, in the ln1p/expm1 form.
    for _ in 0..20_000 {
        let d = random_dd(&mut r, -300, -1);
        let d = if r.random_bool(0.5) { -d } else { d };
        let e = rel(expm1_dd(ln1p_dd(d)), d);
        assert!(e < p2(-100), "expm1(ln1p {d:?}): 2^{:.1}", e.log2());
        worst_le = worst_le.max(e);
    }
    eprintln!(
        "round trips: exp(ln x) 2^{:.1}·(2 + |ln x|/8), ln(exp y) and expm1(ln1p d) 2^{:.1}",
        worst_el.log2(),
        worst_le.log2()
    );
}

#[test]
fn exp_of_a_sum_is_the_product_of_exps() {
    let mut r = rng(3);
    let mut worst: f64 = 0.0;
    for _ in 0..20_000 {
        // f64 a and b: a + b is exact in double-double.
        let a = r.random_range(-330.0..330.0);
        let b = r.random_range(-330.0..330.0);
        let lhs = exp_dd(Dd::from(a) + Dd::from(b));
        let rhs = exp_dd(Dd::from(a)) * exp_dd(Dd::from(b));
        worst = worst.max(assert_rel(&format!("exp({a} + {b})"), lhs, rhs, p2(-98)));
        assert_rel(
            "exp(a)·exp(−a)",
            exp_dd(Dd::from(a)) * exp_dd(Dd::from(-a)),
            Dd::ONE,
            p2(-98),
        );
    }
    eprintln!("exp(a + b) vs exp(a)·exp(b): 2^{:.1}", worst.log2());
}

// ---------------------------------------------------------------------------
// Rows against mpmath
// ---------------------------------------------------------------------------

/// Per-entry relative bound for the hand-checked rows (documented bound:
/// about `(|x_i − m| + log2 n + 10)·2^-104`, under `2^-97` for all of them).
const ROW_BOUND: f64 = 2.524354896707238e-29; // 2^-95

#[test]
fn softmax_of_a_small_row() {
    assert_row(
        "softmax([1, 2, 3])",
        &softmax(&[1.0, 2.0, 3.0]),
        &[
            dd(0.09003057317038046, -4.368657706443957e-18), // 0.0900305731703804579980221014844917978679
            dd(0.24472847105479764, 1.0846793435836087e-17), // 0.2447284710547976524729596183407627971993
            dd(0.6652409557748219, -6.47813572939213e-18), // 0.6652409557748218895290182801747454049328
        ],
        ROW_BOUND,
    );
}

/// The shared-terms form gives the same double-doubles as the two
/// functions it stands for, on ordinary and special rows.
#[test]
fn softmax_and_log_softmax_together_equal_each_alone() {
    let mut g = rng(11);
    let mut rows: Vec<Vec<f32>> = vec![
        vec![],
        vec![f32::NEG_INFINITY; 3],
        vec![1.0, f32::NAN],
        vec![f32::INFINITY, 0.0, f32::INFINITY],
        vec![3.0, 3.0, f32::NEG_INFINITY, -2.0],
    ];
    rows.push((0..1000).map(|_| g.random_range(-40.0f32..40.0)).collect());
    for x in &rows {
        let (s, l) = softmax_and_log_softmax(x);
        let same = |a: &[Dd], b: &[Dd]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(p, q)| {
                    (p.hi.to_bits(), p.lo.to_bits()) == (q.hi.to_bits(), q.lo.to_bits())
                })
        };
        assert!(
            same(&s, &softmax(x)),
            "softmax of {:?}",
            &x[..x.len().min(5)]
        );
        assert!(
            same(&l, &log_softmax(x)),
            "log-softmax of {:?}",
            &x[..x.len().min(5)]
        );
    }
}

#[test]
fn softmax_of_combinations_with_cancelling_products() {
    // Classifier-free guidance −2·u + 3·c: the logits 10000.0029296875 and
    // 10000 (exact in f64 here, but only because the products are).
    assert_row(
        "cfg",
        &softmax_of_combination(&[
            (-2.0, &[10000.0, 10000.0]),
            // 10000.0009765625, the f32 after 10000.
            (3.0, &[10000.0 + 1.0 / 1024.0, 10000.0]),
        ]),
        &[
            dd(0.5007324213511315, 5.550724599681301e-18), // 0.5007324213511315014187277847048547096621
            dd(0.4992675786488685, -5.550724599681301e-18), // 0.4992675786488684985812722152951452903379
        ],
        ROW_BOUND,
    );
    // 2·[MAX, 1] + 2·[−MAX, 0] = [0, 2]: products of 6.8e38 cancel exactly.
    assert_row(
        "2·[MAX, 1] + 2·[−MAX, 0]",
        &softmax_of_combination(&[(2.0, &[f32::MAX, 1.0]), (2.0, &[-f32::MAX, 0.0])]),
        &[
            dd(0.11920292202211756, -4.667319433268004e-18), // 0.1192029220221175559402708586976032047936
            dd(0.8807970779778824, 1.8545107241082462e-17), // 0.8807970779778824440597291413023967952064
        ],
        ROW_BOUND,
    );
    // 1e30·[1e10, 0] − 1e30·[1e10, 0] = [0, 0].
    let r = softmax_of_combination(&[(1e30, &[1e10, 0.0]), (-1e30, &[1e10, 0.0])]);
    assert_eq!(r, vec![dd(0.5, 0.0), dd(0.5, 0.0)]);
}

#[test]
fn softmax_scaled_by_a_tiny_alpha() {
    // α = f32(1e-38) = 9.99999935045640392e-39, x = f32(3e38) =
    // 300000000549775575777803994281145270272: logits ≈ [3, −3, 0, 1e-38].
    assert_row(
        "softmax_scaled([3e38, −3e38, 0, 1], 1e-38)",
        &softmax_scaled(&[3e38, -3e38, 0.0, 1.0], 1e-38),
        &[
            dd(0.9073974507931807, 3.8785173075082186e-17), // 0.9073974507931807208900056879042522685918
            dd(0.002249214258101311, 1.5232159425979436e-19), // 0.002249214258101311123354654230885807052806
            dd(0.045176667474358986, -2.3383530094000207e-18), // 0.04517666747435898399331982893243096217749
            dd(0.045176667474358986, -2.3383530094000207e-18), // 0.04517666747435898399331982893243096217794
        ],
        ROW_BOUND,
    );
    // α < 0 is α > 0 on the negated row (the shift is then the min).
    let x = [3e38, -3e38, 0.0, 1.0, f32::NEG_INFINITY];
    let neg: Vec<f32> = x.iter().map(|v| -v).collect();
    assert_eq!(
        softmax_scaled(&neg[..4], -1e-38),
        softmax_scaled(&x[..4], 1e-38)
    );
    // α = 0 is uniform; α = 1 is plain softmax.
    assert_eq!(softmax_scaled(&x, 0.0), vec![Dd::ONE.div_f64(5.0); 5]);
    assert_eq!(softmax_scaled(&x, 1.0), softmax(&x));
}

#[test]
fn logsumexp_with_a_tiny_shifted_sum() {
    // ln(1 + 4096·e^-95): 2.261435300670887006914003790511911761234e-38.
    let mut x = vec![-95.0f32; 4097];
    x[0] = 0.0;
    assert_rel(
        "logsumexp([0] + [−95]·4096)",
        logsumexp(&x),
        dd(2.261435300670887e-38, 1.1529484743167478e-54),
        ROW_BOUND,
    );
}

#[test]
fn log_softmax_at_the_max_entry() {
    // f32 inputs (exact values in the comments of the mpmath script:
    // -1.02654397487640380859375, -1.30940723419189453125,
    // -0.743203639984130859375, 30.80141448974609375,
    // 0.801415264606475830078125, 0.308988988399505615234375).
    let x = [
        f32::from_bits(0xbf83_65cb),
        f32::from_bits(0xbfa7_9aa8),
        f32::from_bits(0xbf3e_4298),
        f32::from_bits(0x41f6_694c),
        f32::from_bits(0x3f4d_298d),
        f32::from_bits(0x3e9e_33ce),
    ];
    assert_eq!(x[3], 30.801414);
    assert_row(
        "log_softmax(six)",
        &log_softmax(&x),
        &[
            dd(-31.827958464622693, -1.7112303752606045e-15), // -31.82795846462269466907645928815564555859
            dd(-32.11082172393819, 1.8414833035398965e-15), // -32.11082172393818539173270928815564555859
            dd(-31.54461812973042, -1.7112303752606045e-15), // -31.54461812973042171985770928815564555859
            dd(-1.9711048270928815e-13, -9.130633341800212e-30), // -1.971104827092881556455585906105580551975e-13
            dd(-29.999999225139813, -1.7112303752606045e-15), // -29.99999922513981503040458428815564555859
            dd(-30.492425501346784, -1.7112303752606045e-15), // -30.49242550134678524524833428815564555859
        ],
        ROW_BOUND,
    );
    // [0] + [−30]·999: −ln(1 + 999·e^-30) and −30 − that.
    let mut x = vec![-30.0f32; 1000];
    x[0] = 0.0;
    let r = log_softmax(&x);
    // -9.348265345434384105454053408636688768595e-11
    assert_rel(
        "log_softmax(1000)[0]",
        r[0],
        dd(-9.348265345434384e-11, -3.7607378162486856e-27),
        ROW_BOUND,
    );
    // -30.00000000009348265345434384105454053409
    assert_rel(
        "log_softmax(1000)[1]",
        r[1],
        dd(-30.000000000093483, -9.84240662601004e-17),
        ROW_BOUND,
    );
}

#[test]
fn rows_with_infinities_and_empty_rows() {
    let inf = f32::INFINITY;
    let r = softmax(&[-inf, 0.0, -inf, 0.0]);
    assert_eq!(r, vec![Dd::ZERO, dd(0.5, 0.0), Dd::ZERO, dd(0.5, 0.0)]);
    assert_eq!(softmax(&[-inf, -inf]), vec![Dd::ZERO; 2]);
    assert!(softmax(&[]).is_empty());
    let l = log_softmax(&[-inf, 1.0, 1.0]);
    assert_eq!(l[0].hi, f64::NEG_INFINITY);
    assert_rel("log_softmax([−∞, 1, 1])[1]", l[1], -Dd::LN2, p2(-104));
    assert!(
        log_softmax(&[-inf; 3])
            .iter()
            .all(|v| v.hi == f64::NEG_INFINITY)
    );
    assert_eq!(logsumexp(&[]).hi, f64::NEG_INFINITY);
    assert_eq!(logsumexp(&[-inf]).hi, f64::NEG_INFINITY);
    assert_rel(
        "logsumexp([1, 1, −∞])",
        logsumexp(&[1.0, 1.0, -inf]),
        Dd::ONE + Dd::LN2,
        p2(-104),
    );
    // An entry 1000 below the max underflows to exactly 0 (e^-1000).
    assert_eq!(softmax(&[0.0, -1000.0])[1], Dd::ZERO);
}

#[test]
fn log_softmax_softmax_and_logsumexp_agree_with_each_other() {
    // Two computation paths: e^d / Σ vs d − ln k − ln1p(δ/k).
    let mut r = rng(4);
    for _ in 0..500 {
        let n = r.random_range(1..64);
        let s: f32 = [1.0, 10.0, 80.0][r.random_range(0..3)];
        let x: Vec<f32> = (0..n).map(|_| r.random_range(-s..s)).collect();
        let sm = softmax(&x);
        let ls = log_softmax(&x);
        let lse = logsumexp(&x);
        let sum = sm.iter().fold(Dd::ZERO, |a, &b| a + b);
        assert_rel("Σ softmax", sum, Dd::ONE, p2(-98));
        for i in 0..n {
            let d = (ln_dd(sm[i]) - ls[i]).abs().to_f64();
            assert!(
                d < p2(-97) * (1.0 + ls[i].hi.abs()),
                "ln softmax vs log_softmax: {x:?}[{i}]"
            );
            let d = (Dd::from(x[i]) - ls[i] - lse).abs().to_f64();
            assert!(
                d < p2(-97) * (1.0 + lse.hi.abs() + ls[i].hi.abs()),
                "x − log_softmax vs logsumexp: {x:?}[{i}]"
            );
        }
    }
}

#[test]
fn double_double_logit_rows_match_the_f32_rows() {
    // softmax_dd & co. on logits that are f32 values (a one-term
    // combination with α = 1) give the f32 functions' results.
    let mut r = rng(6);
    for _ in 0..200 {
        let n = r.random_range(2..40);
        let mut x: Vec<f32> = (0..n).map(|_| r.random_range(-50.0..50.0)).collect();
        x[r.random_range(0..n)] = f32::NEG_INFINITY;
        let z = combination(&[(1.0, &x)]);
        assert!(
            z.iter()
                .zip(&x)
                .all(|(a, &b)| a.hi == f64::from(b) && a.lo == 0.0)
        );
        let (s, sd) = (softmax(&x), softmax_dd(&z));
        let (l, ld) = (log_softmax(&x), log_softmax_dd(&z));
        for i in 0..n {
            if s[i].is_zero() {
                assert!(sd[i].is_zero());
                assert_eq!(ld[i].hi, f64::NEG_INFINITY);
            } else {
                assert_rel("softmax_dd", sd[i], s[i], p2(-104));
                assert_rel("log_softmax_dd", ld[i], l[i], p2(-104));
            }
        }
        assert_rel("logsumexp_dd", logsumexp_dd(&z), logsumexp(&x), p2(-104));
    }
}

// ---------------------------------------------------------------------------
// The ULP metric
// ---------------------------------------------------------------------------

#[test]
fn ulp_metric() {
    assert_eq!(ulp_f32(1.0), p2(-23));
    assert_eq!(ulp_f32(1.0 - 1e-10), p2(-23)); // nearest f32 is 1
    assert_eq!(ulp_f32(0.75), p2(-24));
    assert_eq!(ulp_f32(-3.0), p2(-22));
    assert_eq!(ulp_f32(0.0), p2(-149));
    assert_eq!(ulp_f32(1e-40), p2(-149));
    assert_eq!(ulp_f32(f64::from(f32::MIN_POSITIVE)), p2(-149));
    assert_eq!(ulp_f32(1e39), p2(104));
    // The difference is taken in double-double: 2^-30 off 1 is 2^-7 ulp.
    assert_eq!(err_ulp(1.0, Dd::from_sum(1.0, p2(-30))), p2(-7));
    assert_eq!(err_ulp(1.0, dd(1.0, p2(-80))), p2(-57));
    assert_eq!(err_ulp(1.0 + f32::EPSILON, Dd::ONE), 1.0);
    assert_eq!(err_ulp(f32::from_bits(1), Dd::ZERO), 1.0);
    assert_eq!(err_ulp(f32::NEG_INFINITY, Dd::from(f64::NEG_INFINITY)), 0.0);
    assert_eq!(err_ulp(f32::MAX, Dd::from(f64::INFINITY)), f64::INFINITY);
    assert_eq!(err_ulp(f32::NAN, Dd::ONE), f64::INFINITY);
    // Every f32 rounding of a row's oracle values is within half an ulp.
    let o = softmax(&[1.0, 2.0, 3.0]);
    for v in o {
        let e = err_ulp(v.to_f64() as f32, v);
        assert!(e <= 0.5, "{e}");
        let next = f32::from_bits((v.to_f64() as f32).to_bits() + 1);
        assert!(err_ulp(next, v) > 0.5);
    }
}

// ---------------------------------------------------------------------------
// Against the crate's f64 reference
// ---------------------------------------------------------------------------

#[test]
fn agrees_with_the_f64_reference_on_ordinary_rows() {
    use simd_softmax::reference;
    let mut r = rng(5);
    let mut worst: f64 = 0.0;
    for _ in 0..2000 {
        let n = r.random_range(1..=32);
        let s: f32 = [1.0, 10.0, 80.0][r.random_range(0..3)];
        let x: Vec<f32> = (0..n).map(|_| r.random_range(-s..s)).collect();
        // f64 error bound: exp and ln within an ulp, n − 1 additions, a
        // division or subtraction: (n + 4)·2^-52 relative.
        let tol = (n as f64 + 4.0) * f64::EPSILON;
        let (sm, rsm) = (softmax(&x), reference::softmax(&x));
        let (ls, rls) = (log_softmax(&x), reference::log_softmax(&x));
        for i in 0..n {
            let e = rel(Dd::from(rsm[i]), sm[i]);
            assert!(e <= tol, "softmax {x:?}[{i}]: {e:e}");
            worst = worst.max(e);
            if ls[i].is_zero() {
                assert_eq!(rls[i], 0.0);
            } else {
                let e = rel(Dd::from(rls[i]), ls[i]);
                assert!(e <= tol, "log_softmax {x:?}[{i}]: {e:e}");
                worst = worst.max(e);
            }
        }
        let (lse, rlse) = (logsumexp(&x), reference::logsumexp(&x));
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let scale = f64::from(m).abs() + (lse - Dd::from(m)).to_f64().abs();
        let e = (Dd::from(rlse) - lse).abs().to_f64();
        assert!(e <= tol * scale, "logsumexp {x:?}: {e:e}");
    }
    eprintln!("f64 reference vs oracle: worst relative error {worst:e}");
    assert!(worst < 1e-14);
}

#[test]
fn f64_reference_is_off_by_over_an_f32_ulp_when_logsumexp_cancels() {
    // 2331 entries a = f32(−ln 2331) = −7.754052639007568359375: the row's
    // logsumexp is a + ln 2331 = 2.8188772888938888319678302832143432395e-11
    // (mpmath), a cancellation of two numbers near 7.75. The f64 reference
    // rounds ln 2331 to f64 first (2^-51 absolute), which is about 130 f32
    // ulps of the 2.8e-11 result (the f32 ulp there is 2^-58).
    let a = f32::from_bits(0xc0f8_2133);
    let x = vec![a; 2331];
    let want = dd(2.8188772888938887e-11, 1.4792263798170438e-27);
    let got = logsumexp(&x);
    // The oracle's absolute error is about 2^-104·ln 2331 (ln_dd) here.
    assert_rel("logsumexp(2331 × a)", got, want, p2(-70));
    assert!(err_ulp(want.to_f64() as f32, got) <= 0.5);
    let reference = simd_softmax::reference::logsumexp(&x);
    let off = err_ulp(reference as f32, got);
    assert!(off > 1.0, "the f64 reference is within {off} f32 ulp");
    eprintln!("f64 reference logsumexp(2331 × a) is off by {off:.1} f32 ulp");
}
