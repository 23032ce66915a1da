//! `SoftmaxState`: a row fed in chunks the input picks (empty ones
//! included), normalized chunk by chunk, merged, and run through
//! `exp_update`, on every backend, against the f64 reference.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| simd_softmax_fuzz::state(data));
