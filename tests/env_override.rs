//! `SIMD_SOFTMAX_BACKEND`: its own test binary, because environment
//! variables are process-global (no other test may read the variable while
//! this one writes it), and the free functions' backend is decided once
//! per process, which the child-process tests below exercise.

use simd_softmax::{BACKEND_ENV, Backend, Error, Softmax};
use std::process::Command;

/// Marks a child process started by [`run_child`].
const CHILD_MARK: &str = "SIMD_SOFTMAX_TEST_CHILD";

/// `Softmax::from_env()` re-reads the variable on every call.
#[test]
fn from_env_follows_the_variable() {
    assert_eq!(BACKEND_ENV, "SIMD_SOFTMAX_BACKEND");
    let set = |v: &str| {
        // SAFETY: the only test of this binary that touches the environment
        // besides `child_*` (which run only in child processes, where this
        // test is filtered out); no other thread reads it meanwhile.
        unsafe { std::env::set_var(BACKEND_ENV, v) }
    };

    set("scalar");
    assert_eq!(
        Softmax::from_env().map(|s| s.backend()),
        Ok(Backend::Scalar)
    );

    set("AVX2");
    match Softmax::from_env() {
        Ok(sm) => {
            assert!(Backend::Avx2.is_available());
            assert_eq!(sm.backend(), Backend::Avx2);
        }
        Err(e) => assert_eq!(
            e,
            Error::UnsupportedBackend {
                backend: Backend::Avx2,
                reason: Backend::Avx2.unavailable_reason().unwrap()
            }
        ),
    }

    for &b in Backend::ALL {
        set(&format!(" {} ", b.name().to_uppercase()));
        match (Softmax::from_env(), b.unavailable_reason()) {
            (Ok(sm), None) => assert_eq!(sm.backend(), b),
            (Err(e), Some(reason)) => {
                assert_eq!(e, Error::UnsupportedBackend { backend: b, reason })
            }
            (got, why) => panic!("{BACKEND_ENV}={b}: {got:?} but unavailable_reason = {why:?}"),
        }
    }

    set("bogus");
    assert_eq!(
        Softmax::from_env().map(|s| s.backend()),
        Err(Error::UnknownBackend {
            name: "bogus".into()
        })
    );

    set("");
    assert_eq!(
        Softmax::from_env().map(|s| s.backend()),
        Ok(Backend::detect())
    );
    set("   ");
    assert_eq!(
        Softmax::from_env().map(|s| s.backend()),
        Ok(Backend::detect())
    );

    // SAFETY: as above.
    unsafe { std::env::remove_var(BACKEND_ENV) };
    assert_eq!(
        Softmax::from_env().map(|s| s.backend()),
        Ok(Backend::detect())
    );
}

/// Runs this test binary again with only `test` (an ignored `child_*` test),
/// `SIMD_SOFTMAX_BACKEND=value` and the child mark; returns its stderr
/// after checking that exactly that one test ran and passed.
fn run_child(test: &str, value: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(BACKEND_ENV, value)
        .env(CHILD_MARK, "1")
        .output()
        .expect("could not re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {test} with {BACKEND_ENV}={value:?} failed:\n{stdout}\n{stderr}"
    );
    stderr
}

/// The free functions (and `Softmax::new`) honour the override.
#[test]
fn free_functions_use_the_forced_backend() {
    run_child("child_new_is_scalar", "scalar");
}

/// An unknown name is reported on stderr, never ignored silently, and the
/// free functions fall back to the detected backend.
#[test]
fn unknown_backend_name_is_reported() {
    let stderr = run_child("child_new_is_detected", "bogus");
    assert!(
        stderr.contains("bogus") && stderr.contains(BACKEND_ENV),
        "no report of the bad override on stderr: {stderr:?}"
    );
}

/// A backend the CPU lacks is reported too (on x86-64 that is `neon`).
#[test]
fn unsupported_backend_name_is_reported() {
    let Some(b) = Backend::ALL.iter().copied().find(|b| !b.is_available()) else {
        panic!("every backend is available: cannot test the unsupported override on this CPU");
    };
    let stderr = run_child("child_new_is_detected", b.name());
    let reason = b.unavailable_reason().unwrap();
    assert!(
        stderr.contains(b.name()) && stderr.contains(reason),
        "no report of {b} ({reason}) on stderr: {stderr:?}"
    );
}

fn in_child() -> bool {
    std::env::var_os(CHILD_MARK).is_some()
}

#[test]
#[ignore = "helper: run in a child process by free_functions_use_the_forced_backend"]
fn child_new_is_scalar() {
    if in_child() {
        assert_eq!(Softmax::new().backend(), Backend::Scalar);
        let mut y = [0.0f32; 3];
        simd_softmax::softmax(&[1.0, 2.0, 3.0], &mut y).unwrap();
        assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    } else {
        // Run directly (`--include-ignored`), beside a test that rewrites
        // the variable: only what holds for any value.
        assert!(Softmax::new().backend().is_available());
    }
}

#[test]
#[ignore = "helper: run in a child process by unknown_/unsupported_backend_name_is_reported"]
fn child_new_is_detected() {
    if in_child() {
        assert!(
            Softmax::from_env().is_err(),
            "the child was meant to get an invalid override"
        );
        assert_eq!(Softmax::new().backend(), Backend::detect());
    } else {
        assert!(Softmax::new().backend().is_available());
    }
}
