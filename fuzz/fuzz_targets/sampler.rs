//! `Sampler`: parameters and logits the input picks, on every backend;
//! errors exactly where the contract puts them, survivors that are a
//! valid, ordered, normalized set, `top_k = 1` as greedy.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| simd_softmax_fuzz::sampler(data));
