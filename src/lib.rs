//! # simd-softmax
//!
//! SIMD softmax kernels for inference: softmax, log-softmax and logsumexp
//! over `f32` slices and row-major batches, with runtime dispatch to an
//! AVX-512, AVX2+FMA, NEON or scalar kernel, each tested against an f64
//! reference and a double-double oracle (softmax within `4 + |x − max|`
//! ULP; every bound in `docs/ACCURACY.md`).
//!
//! ```
//! let logits = [1.0f32, 2.0, 3.0, 4.0];
//! let mut probs = [0.0f32; 4];
//! simd_softmax::softmax(&logits, &mut probs)?;
//! assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! println!("backend: {}", simd_softmax::Softmax::new().backend());
//! # Ok::<(), simd_softmax::Error>(())
//! ```
//!
//! Special values are the same on every backend: a NaN makes its row NaN,
//! `+∞` entries share the mass, a fully masked (`−∞`) row gives zeros.
//! Bad arguments return [`Error`] and leave the output untouched.
//!
//! Layout: `api.rs` (checks + the public functions), `attention.rs`
//! ([`AttentionSoftmax`]: scale, softcap, masks, ALiBi, causal, window,
//! sinks), `dispatch.rs`
//! ([`Backend`], [`Softmax`], the `SIMD_SOFTMAX_BACKEND` override),
//! `error.rs`, `reference.rs` (f64 oracle), `state.rs` ([`SoftmaxState`],
//! the online state of a row seen in chunks), `sampler.rs` ([`Sampler`]:
//! temperature, top-k, top-p, min-p), `cross_entropy.rs` (the loss and its
//! gradient, [`cross_entropy_with_grad`]); the kernels are the
//! `simd-softmax-kernels` crate in `kernels/`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
mod attention;
mod cross_entropy;
mod dispatch;
mod element;
mod error;
#[cfg(feature = "rayon")]
mod parallel;
pub mod reference;
mod sampler;
mod state;

pub use api::*;
pub use attention::AttentionSoftmax;
pub use cross_entropy::{
    CrossEntropyOptions, cross_entropy, cross_entropy_backward, cross_entropy_rows,
    cross_entropy_with_grad,
};
#[cfg(feature = "rayon")]
pub use cross_entropy::{par_cross_entropy, par_cross_entropy_with_grad};
pub use dispatch::{BACKEND_ENV, Backend, Softmax};
pub use element::Element;
pub use error::Error;
pub use half::{bf16, f16};
#[cfg(feature = "rayon")]
pub use parallel::{PAR_MIN, par_log_softmax_rows, par_softmax, par_softmax_rows};
pub use sampler::{AsSamplerScratch, Candidate, Sampler, SamplerScratch, SamplerScratchMut};
pub use simd_softmax_kernels::Anchor;
pub use state::{SoftmaxState, StateParts};

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
