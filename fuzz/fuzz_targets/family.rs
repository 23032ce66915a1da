//! softmax_scaled(_rows), softmax_backward, jacobian, logits_from_probs,
//! softmax_of_combination and sigmoid, on every backend, against f64.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| simd_softmax_fuzz::family(data));
