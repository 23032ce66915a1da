//! Backend selection: what the CPU runs ([`Backend::detect`]), the
//! `SIMD_SOFTMAX_BACKEND` override (read once, at first use), and
//! [`Softmax`], a handle bound to one backend whose methods cost one
//! predictable `match` per call before entering the kernel.

use crate::Error;
use simd_softmax_kernels::{Kernel, backend};
use std::sync::OnceLock;

/// Name of the environment variable that forces a backend for the free
/// functions and [`Softmax::new`].
pub const BACKEND_ENV: &str = "SIMD_SOFTMAX_BACKEND";

/// A kernel implementation. Non-exhaustive: a later release may add
/// instruction sets, so a `match` outside this crate needs a wildcard arm.
///
/// ```
/// use simd_softmax::Backend;
/// let best = Backend::detect();
/// assert!(best.is_available());
/// assert!(Backend::Scalar.is_available());
/// println!("running on {}", best.name());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Plain Rust, one lane; runs everywhere.
    Scalar,
    /// x86-64 AVX2 + FMA, 8 lanes.
    Avx2,
    /// x86-64 AVX-512 F/BW/CD/DQ/VL, 16 lanes.
    Avx512,
    /// aarch64 NEON, 4 lanes.
    Neon,
}

impl Backend {
    /// Every backend, fastest-preferred last (a slice: its length may grow).
    ///
    /// ```
    /// assert_eq!(simd_softmax::Backend::ALL.len(), 4);
    /// ```
    pub const ALL: &'static [Backend] = &[
        Backend::Scalar,
        Backend::Avx2,
        Backend::Avx512,
        Backend::Neon,
    ];

    /// The best backend this CPU runs (AVX-512 > AVX2 > scalar on x86-64,
    /// NEON > scalar on aarch64). Ignores `SIMD_SOFTMAX_BACKEND`.
    ///
    /// ```
    /// let b = simd_softmax::Backend::detect();
    /// assert!(b.is_available());
    /// ```
    pub fn detect() -> Backend {
        [Backend::Avx512, Backend::Avx2, Backend::Neon]
            .into_iter()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Scalar)
    }

    /// Whether this CPU and build can run the backend.
    ///
    /// ```
    /// assert!(simd_softmax::Backend::Scalar.is_available());
    /// ```
    pub fn is_available(self) -> bool {
        self.unavailable_reason().is_none()
    }

    /// Why the backend cannot run here, e.g. `"CPU lacks avx512f"`, or
    /// `None` when it can.
    ///
    /// ```
    /// use simd_softmax::Backend;
    /// for b in Backend::ALL {
    ///     match b.unavailable_reason() {
    ///         None => println!("{}: available", b.name()),
    ///         Some(why) => println!("{}: skipped, {why}", b.name()),
    ///     }
    /// }
    /// ```
    pub fn unavailable_reason(self) -> Option<&'static str> {
        match self {
            Backend::Scalar => None,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => backend::avx2()
                .is_none()
                .then_some(missing_x86_feature(&["avx2", "fma"])),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => backend::avx512().is_none().then_some(missing_x86_feature(&[
                "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "fma",
            ])),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::Avx2 | Backend::Avx512 => Some("not an x86-64 build"),
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => backend::neon().is_none().then_some("CPU lacks neon"),
            #[cfg(not(target_arch = "aarch64"))]
            Backend::Neon => Some("not an aarch64 build"),
        }
    }

    /// The lower-case name used by `SIMD_SOFTMAX_BACKEND`.
    ///
    /// ```
    /// assert_eq!(simd_softmax::Backend::Avx512.name(), "avx512");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        }
    }

    /// Parses a backend name (`scalar`, `avx2`, `avx512`, `neon`; case and
    /// surrounding whitespace ignored).
    ///
    /// ```
    /// use simd_softmax::{Backend, Error};
    /// assert_eq!(Backend::from_name("AVX2"), Ok(Backend::Avx2));
    /// assert!(matches!(Backend::from_name("sse"), Err(Error::UnknownBackend { .. })));
    /// ```
    pub fn from_name(name: &str) -> Result<Backend, Error> {
        let t = name.trim();
        Backend::ALL
            .iter()
            .copied()
            .find(|b| b.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| Error::UnknownBackend {
                name: name.to_string(),
            })
    }

    /// f32 lanes per vector of this backend.
    ///
    /// ```
    /// assert_eq!(simd_softmax::Backend::Avx512.lanes(), 16);
    /// ```
    pub fn lanes(self) -> usize {
        match self {
            Backend::Scalar => 1,
            Backend::Avx2 => 8,
            Backend::Avx512 => 16,
            Backend::Neon => 4,
        }
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn missing_x86_feature(features: &[&'static str]) -> &'static str {
    macro_rules! check {
        ($($f:tt),*) => {
            $( if features.contains(&$f) && !std::is_x86_feature_detected!($f) {
                return concat!("CPU lacks ", $f);
            } )*
        };
    }
    check!(
        "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "fma"
    );
    "CPU lacks a required feature"
}

/// The kernel a [`Softmax`] is bound to: a zero-sized SIMD token per ISA.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Imp {
    Scalar(Kernel<pulp::Scalar>),
    #[cfg(target_arch = "x86_64")]
    Avx2(Kernel<pulp::x86::V3>),
    #[cfg(target_arch = "x86_64")]
    Avx512(Kernel<pulp::x86::V4>),
    #[cfg(target_arch = "aarch64")]
    Neon(Kernel<pulp::aarch64::Neon>),
}

/// Runs `$body` with `$k` bound to the kernel of `$imp`: the one branch per
/// call that dispatch costs.
macro_rules! with_kernel {
    ($imp:expr, $k:ident => $body:expr) => {
        match $imp {
            $crate::dispatch::Imp::Scalar($k) => $body,
            #[cfg(target_arch = "x86_64")]
            $crate::dispatch::Imp::Avx2($k) => $body,
            #[cfg(target_arch = "x86_64")]
            $crate::dispatch::Imp::Avx512($k) => $body,
            #[cfg(target_arch = "aarch64")]
            $crate::dispatch::Imp::Neon($k) => $body,
        }
    };
}
pub(crate) use with_kernel;

/// A softmax engine bound to one backend. Cheap to copy; all methods are in
/// `api.rs` and mirror the crate's free functions.
///
/// ```
/// use simd_softmax::{Backend, Softmax};
/// let sm = Softmax::with_backend(Backend::Scalar)?;
/// let mut y = [0.0f32; 3];
/// sm.softmax(&[1.0, 2.0, 3.0], &mut y)?;
/// assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Softmax {
    pub(crate) imp: Imp,
}

impl Softmax {
    /// The engine the free functions use: the backend named by
    /// `SIMD_SOFTMAX_BACKEND` if set and valid, else [`Backend::detect`].
    /// Decided once per process. An invalid override is reported on stderr
    /// once and the detected backend is used; [`Softmax::from_env`] returns
    /// that error instead.
    ///
    /// ```
    /// let sm = simd_softmax::Softmax::new();
    /// println!("{}", sm.backend());
    /// ```
    pub fn new() -> Softmax {
        *GLOBAL.get_or_init(|| match Softmax::from_env() {
            Ok(sm) => sm,
            Err(e) => {
                let sm = Softmax::detected();
                eprintln!(
                    "simd-softmax: ignoring {BACKEND_ENV}: {e}; using {}",
                    sm.backend()
                );
                sm
            }
        })
    }

    /// The engine `SIMD_SOFTMAX_BACKEND` asks for (re-read on every call),
    /// or the detected one when it is unset or empty. An unknown name or a
    /// backend the CPU lacks is an error.
    ///
    /// ```
    /// let sm = simd_softmax::Softmax::from_env();
    /// assert!(sm.is_ok() || std::env::var("SIMD_SOFTMAX_BACKEND").is_ok());
    /// ```
    pub fn from_env() -> Result<Softmax, Error> {
        match std::env::var(BACKEND_ENV) {
            Ok(name) if !name.trim().is_empty() => {
                Softmax::with_backend(Backend::from_name(&name)?)
            }
            _ => Ok(Softmax::detected()),
        }
    }

    /// The engine for [`Backend::detect`].
    fn detected() -> Softmax {
        Softmax::with_backend(Backend::detect()).unwrap_or(Softmax {
            imp: Imp::Scalar(backend::scalar()),
        })
    }

    /// An engine forced to `backend`; an error if this CPU or build lacks it.
    ///
    /// ```
    /// use simd_softmax::{Backend, Error, Softmax};
    /// match Softmax::with_backend(Backend::Avx512) {
    ///     Ok(sm) => assert_eq!(sm.backend(), Backend::Avx512),
    ///     Err(Error::UnsupportedBackend { reason, .. }) => println!("avx512: {reason}"),
    ///     Err(e) => panic!("{e}"),
    /// }
    /// ```
    pub fn with_backend(backend: Backend) -> Result<Softmax, Error> {
        let unsupported = |reason| Error::UnsupportedBackend { backend, reason };
        if let Some(reason) = backend.unavailable_reason() {
            return Err(unsupported(reason));
        }
        let imp = match backend {
            Backend::Scalar => Some(Imp::Scalar(backend::scalar())),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => backend::avx2().map(Imp::Avx2),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => backend::avx512().map(Imp::Avx512),
            #[cfg(target_arch = "aarch64")]
            Backend::Neon => backend::neon().map(Imp::Neon),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        imp.map(|imp| Softmax { imp })
            .ok_or(unsupported("CPU lacks a required feature"))
    }

    /// The backend this engine runs.
    ///
    /// ```
    /// use simd_softmax::{Backend, Softmax};
    /// assert_eq!(Softmax::with_backend(Backend::Scalar).unwrap().backend(), Backend::Scalar);
    /// ```
    pub fn backend(&self) -> Backend {
        match self.imp {
            Imp::Scalar(_) => Backend::Scalar,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2(_) => Backend::Avx2,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512(_) => Backend::Avx512,
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(_) => Backend::Neon,
        }
    }
}

impl Default for Softmax {
    /// Same as [`Softmax::new`].
    fn default() -> Self {
        Softmax::new()
    }
}

static GLOBAL: OnceLock<Softmax> = OnceLock::new();
