//! `AttentionSoftmax`: shape, options, strides and scores the input picks,
//! on every backend; errors where the contract puts them, every row within
//! the bound of the f64 formula, zeros outside the extents, gaps unwritten.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| simd_softmax_fuzz::attention(data));
