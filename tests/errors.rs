//! Typed errors, and a refused call leaves its output untouched
//! byte for byte; empty rows are not errors. Through every dispatched
//! backend and through the free functions.

mod common;

use common::*;
use simd_softmax::{Backend, Error, Softmax};

/// A buffer of `n` copies of the poison NaN (payload 0x1234).
fn poisoned(n: usize) -> Vec<f32> {
    vec![f32::from_bits(POISON_BITS); n]
}

fn assert_untouched(buf: &[f32], before: &[u32], what: &str) {
    assert_eq!(
        bits(buf),
        before,
        "{what}: refused call wrote to its buffer"
    );
}

/// The checked calls of one engine: every `Softmax` method and the free
/// functions, as one table, so each error case runs through all of them.
type OutOfPlace = Box<dyn Fn(&[f32], &mut [f32]) -> Result<(), Error>>;
type Rows = Box<dyn Fn(&[f32], &mut [f32], usize) -> Result<(), Error>>;
type RowsInPlace = Box<dyn Fn(&mut [f32], usize) -> Result<(), Error>>;

struct Api {
    name: String,
    out_of_place: Vec<(&'static str, OutOfPlace)>,
    rows: Vec<(&'static str, Rows)>,
    rows_in_place: Vec<(&'static str, RowsInPlace)>,
}

fn apis() -> Vec<Api> {
    let mut v: Vec<Api> = Roster::dispatched()
        .ran
        .iter()
        .map(|e| {
            let sm = Softmax::with_backend(e.backend.unwrap()).unwrap();
            Api {
                name: e.name.clone(),
                out_of_place: vec![
                    (
                        "softmax",
                        Box::new(move |x: &[f32], y: &mut [f32]| sm.softmax(x, y)) as OutOfPlace,
                    ),
                    (
                        "log_softmax",
                        Box::new(move |x: &[f32], y: &mut [f32]| sm.log_softmax(x, y)),
                    ),
                ],
                rows: vec![
                    (
                        "softmax_rows",
                        Box::new(move |x: &[f32], y: &mut [f32], r| sm.softmax_rows(x, y, r))
                            as Rows,
                    ),
                    (
                        "log_softmax_rows",
                        Box::new(move |x: &[f32], y: &mut [f32], r| sm.log_softmax_rows(x, y, r)),
                    ),
                ],
                rows_in_place: vec![
                    (
                        "softmax_rows_in_place",
                        Box::new(move |x: &mut [f32], r| sm.softmax_rows_in_place(x, r))
                            as RowsInPlace,
                    ),
                    (
                        "log_softmax_rows_in_place",
                        Box::new(move |x: &mut [f32], r| sm.log_softmax_rows_in_place(x, r)),
                    ),
                ],
            }
        })
        .collect();
    v.push(Api {
        name: "free functions".into(),
        out_of_place: vec![
            ("softmax", Box::new(simd_softmax::softmax) as OutOfPlace),
            ("log_softmax", Box::new(simd_softmax::log_softmax)),
        ],
        rows: vec![
            ("softmax_rows", Box::new(simd_softmax::softmax_rows) as Rows),
            ("log_softmax_rows", Box::new(simd_softmax::log_softmax_rows)),
        ],
        rows_in_place: vec![
            (
                "softmax_rows_in_place",
                Box::new(simd_softmax::softmax_rows_in_place) as RowsInPlace,
            ),
            (
                "log_softmax_rows_in_place",
                Box::new(simd_softmax::log_softmax_rows_in_place),
            ),
        ],
    });
    let names: Vec<_> = v.iter().map(|a| a.name.as_str()).collect();
    eprintln!("[errors] APIs under test: {}", names.join(", "));
    v
}

#[test]
fn length_mismatch_is_an_error_and_writes_nothing() {
    for api in apis() {
        for (input, output) in [
            (3usize, 2usize),
            (2, 3),
            (0, 1),
            (1, 0),
            (17, 16),
            (300, 301),
        ] {
            let x = gen_row(Family::Uniform, input.max(1), 5)[..input].to_vec();
            for (name, f) in &api.out_of_place {
                let mut y = poisoned(output);
                let before = bits(&y);
                assert_eq!(
                    f(&x, &mut y),
                    Err(Error::LengthMismatch { input, output }),
                    "{} {name}",
                    api.name
                );
                assert_untouched(
                    &y,
                    &before,
                    &format!("{} {name} ({input} -> {output})", api.name),
                );
            }
            for (name, f) in &api.rows {
                // row_len 1 divides both lengths: only the mismatch is wrong.
                let mut y = poisoned(output);
                let before = bits(&y);
                assert_eq!(
                    f(&x, &mut y, 1),
                    Err(Error::LengthMismatch { input, output }),
                    "{} {name}",
                    api.name
                );
                assert_untouched(
                    &y,
                    &before,
                    &format!("{} {name} ({input} -> {output})", api.name),
                );
            }
        }
    }
}

#[test]
fn invalid_row_len_is_an_error_and_writes_nothing() {
    for api in apis() {
        // (buffer length, row_len): zero, non-divisors, longer than the buffer.
        for (len, row_len) in [
            (6usize, 0usize),
            (6, 4),
            (6, 5),
            (7, 2),
            (100, 3),
            (6, 12),
            (0, 0),
            (1, 0),
        ] {
            let x = gen_row(Family::Uniform, len.max(1), 6)[..len].to_vec();
            let want = Err(Error::InvalidRowLen { len, row_len });
            for (name, f) in &api.rows {
                let mut y = poisoned(len);
                let before = bits(&y);
                assert_eq!(
                    f(&x, &mut y, row_len),
                    want,
                    "{} {name} len={len} row_len={row_len}",
                    api.name
                );
                assert_untouched(
                    &y,
                    &before,
                    &format!("{} {name} len={len} row_len={row_len}", api.name),
                );
            }
            for (name, f) in &api.rows_in_place {
                let mut data = x.clone();
                let before = bits(&data);
                assert_eq!(
                    f(&mut data, row_len),
                    want,
                    "{} {name} len={len} row_len={row_len}",
                    api.name
                );
                assert_untouched(
                    &data,
                    &before,
                    &format!("{} {name} len={len} row_len={row_len}", api.name),
                );
            }
        }
    }
}

/// Empty input is not an error: Ok, the (empty) output is empty, and
/// `logsumexp(&[])` is −∞ (the log of an empty sum).
#[test]
fn empty_rows_are_not_errors() {
    for api in apis() {
        for (name, f) in &api.out_of_place {
            let mut y: [f32; 0] = [];
            assert_eq!(f(&[], &mut y), Ok(()), "{} {name} of []", api.name);
        }
        for (name, f) in &api.rows {
            for row_len in [1, 4, 1000] {
                assert_eq!(
                    f(&[], &mut [], row_len),
                    Ok(()),
                    "{} {name} of [] with row_len {row_len}",
                    api.name
                );
            }
        }
        for (name, f) in &api.rows_in_place {
            assert_eq!(f(&mut [], 3), Ok(()), "{} {name} of []", api.name);
        }
    }
    let roster = Roster::all();
    roster.announce("empty_rows_are_not_errors");
    for e in &roster.ran {
        assert_eq!(
            e.ops.logsumexp(&[]),
            f32::NEG_INFINITY,
            "{}: logsumexp(&[])",
            e.name
        );
        e.ops.softmax_in_place(&mut []);
        e.ops.log_softmax_in_place(&mut []);
    }
    assert_eq!(simd_softmax::logsumexp::<f32>(&[]), f32::NEG_INFINITY);
    simd_softmax::softmax_in_place::<f32>(&mut []);
    simd_softmax::log_softmax_in_place::<f32>(&mut []);
}

/// `with_backend` fails with `UnsupportedBackend` exactly for the backends
/// `unavailable_reason` names, with that reason; it never falls back.
#[test]
fn unsupported_backends_are_errors() {
    let mut unsupported = 0;
    for &b in Backend::ALL {
        match (Softmax::with_backend(b), b.unavailable_reason()) {
            (Ok(sm), None) => {
                assert_eq!(sm.backend(), b, "with_backend({b}) fell back");
                assert!(b.is_available());
                eprintln!("{b}: available");
            }
            (Err(e), Some(reason)) => {
                assert_eq!(
                    e,
                    Error::UnsupportedBackend { backend: b, reason },
                    "with_backend({b})"
                );
                assert!(!b.is_available());
                assert!(!reason.is_empty());
                let msg = e.to_string();
                assert!(
                    msg.contains(b.name()) && msg.contains(reason),
                    "message {msg:?} names neither {b} nor {reason:?}"
                );
                eprintln!("{b}: skipped, {reason}");
                unsupported += 1;
            }
            (got, reason) => {
                panic!("with_backend({b}) = {got:?} but unavailable_reason = {reason:?}")
            }
        }
    }
    // On every target at least one backend is foreign (AVX on ARM, NEON on
    // x86), so the error path is really exercised here.
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert!(
            unsupported >= 1,
            "no backend was unsupported: the error path was not exercised"
        );
    }
    #[cfg(target_arch = "x86_64")]
    assert!(matches!(
        Softmax::with_backend(Backend::Neon),
        Err(Error::UnsupportedBackend {
            backend: Backend::Neon,
            ..
        })
    ));
    #[cfg(target_arch = "aarch64")]
    for b in [Backend::Avx2, Backend::Avx512] {
        assert!(
            matches!(Softmax::with_backend(b), Err(Error::UnsupportedBackend { backend, .. }) if backend == b)
        );
    }
    assert!(
        Softmax::with_backend(Backend::Scalar).is_ok(),
        "scalar must run everywhere"
    );
    assert_eq!(Backend::detect().unavailable_reason(), None);
}

/// `Backend::from_name`: every name round-trips (any case, surrounding
/// whitespace); anything else is `UnknownBackend` carrying the name.
#[test]
fn backend_names_parse_and_unknown_names_are_errors() {
    for &b in Backend::ALL {
        assert_eq!(Backend::from_name(b.name()), Ok(b));
        assert_eq!(Backend::from_name(&b.name().to_uppercase()), Ok(b));
        assert_eq!(Backend::from_name(&format!("  {}\n", b.name())), Ok(b));
        assert_eq!(b.to_string(), b.name());
    }
    for bad in [
        "bogus",
        "",
        " ",
        "avx",
        "avx-512",
        "avx 2",
        "sse4.2",
        "scalar2",
        "neon,avx2",
    ] {
        let got = Backend::from_name(bad);
        assert_eq!(
            got,
            Err(Error::UnknownBackend {
                name: bad.to_string()
            }),
            "from_name({bad:?})"
        );
        let msg = got.unwrap_err().to_string();
        assert!(
            msg.contains(&format!("{bad:?}")),
            "message {msg:?} does not quote {bad:?}"
        );
        assert!(
            msg.contains("scalar") && msg.contains("avx2"),
            "message {msg:?} does not list the valid names"
        );
    }
}

#[test]
fn error_messages_are_informative() {
    let m = Error::LengthMismatch {
        input: 3,
        output: 2,
    }
    .to_string();
    assert!(m.contains('3') && m.contains('2'), "{m}");
    let m = Error::InvalidRowLen { len: 6, row_len: 4 }.to_string();
    assert!(m.contains('6') && m.contains('4'), "{m}");
    // `Error` is a std error (usable with `?` into `Box<dyn Error>`).
    let e: Box<dyn std::error::Error> = Box::new(Error::InvalidRowLen { len: 1, row_len: 0 });
    assert!(!e.to_string().is_empty());
}
