//! softmax, log_softmax, logsumexp and the `*_rows` functions, in place and
//! out of place, on every backend, against the f64 reference.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| simd_softmax_fuzz::forward(data));
