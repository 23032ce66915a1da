// engine.cpp: the C API as an inference engine calls it, one decoding step.
//
//   1. Attention: the softmax of one new query's bf16 scores against a KV
//      cache of 1000 entries, for 8 heads, with gpt-oss style attention
//      sinks, written as f32 probabilities (the input of the P·V product);
//      then the same for a sliding-window layer.
//   2. Sampling: the next token from a 32000-entry vocabulary with
//      temperature, top-k and top-p, using a scratch buffer allocated once.
//
// Build (scripts/capi.sh test does this against target/capi):
//   c++ -std=c++17 engine.cpp $(pkg-config --cflags --libs simd_softmax)
//
// Every simd_softmax_* function returns a status; check() turns an error
// into an exception carrying the library's one-line message. A refused call
// writes nothing, so an engine can report the error and keep its buffers.

#include <simd_softmax.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Throws on any status but SIMD_SOFTMAX_OK, naming the call that failed.
void check(simd_softmax_status st, const char *what) {
    if (st != SIMD_SOFTMAX_OK)
        throw std::runtime_error(std::string(what) + ": " + simd_softmax_status_name(st) + ": " +
                                 simd_softmax_status_message(st));
}

// float -> bfloat16 bits, round to nearest even (what a model's bf16
// matmul would have produced; the library reads the bits as uint16_t).
uint16_t to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, sizeof x);
    x += 0x7fffu + ((x >> 16) & 1u);
    return static_cast<uint16_t>(x >> 16);
}

float from_bf16(uint16_t h) {
    uint32_t x = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &x, sizeof f);
    return f;
}

// A uniform double in [0, 1) from a std::mt19937 (53 random bits, as
// genrand_res53 does): never 1.0, which the sampler would refuse.
double uniform01(std::mt19937 &rng) {
    uint32_t a = rng() >> 5, b = rng() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

// One attention layer's softmax for a decoding step: scores [heads, 1, kv]
// -> probabilities, and the checks an engine's tests would make.
bool attention_step(std::mt19937 &rng, size_t window) {
    const size_t heads = 8, q_len = 1, kv_len = 1000, head_dim = 64;
    const size_t pos = kv_len - 1; // the new token's position: 999 cached before it

    // The Q·K^T scores, as a bf16 matmul would leave them.
    std::normal_distribution<float> score(0.0f, 8.0f);
    std::vector<uint16_t> scores(heads * q_len * kv_len);
    for (auto &s : scores)
        s = to_bf16(score(rng));
    // One learned sink logit per head: it takes a share of each row's mass
    // and has no output (the "attend to nothing" option).
    std::vector<float> sinks(heads);
    for (size_t h = 0; h < heads; h++)
        sinks[h] = 0.5f * static_cast<float>(h);
    std::vector<float> probs(scores.size());

    // Options start from init (every field off); set what the layer uses.
    simd_softmax_attention_options opt;
    simd_softmax_attention_options_init(&opt);
    opt.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    opt.causal = 1;
    opt.q_offset = pos; // query 0 is at position 999: it sees keys 0..=999
    opt.window = window; // 0: full attention; else only the last `window` keys
    opt.sinks = sinks.data();
    opt.sinks_len = sinks.size();

    check(simd_softmax_attention(SIMD_SOFTMAX_BACKEND_DEFAULT, &opt, SIMD_SOFTMAX_BF16,
                                 scores.data(), scores.size(), SIMD_SOFTMAX_F32, probs.data(),
                                 probs.size(), heads, q_len, kv_len),
          "simd_softmax_attention");

    // Each row sums to 1 minus the sink's share; keys outside the window are 0.
    bool ok = true;
    for (size_t h = 0; h < heads; h++) {
        const float *row = &probs[h * kv_len];
        size_t lo = window && pos + 1 > window ? pos + 1 - window : 0;
        double m = sinks[h], z = 0, sum = 0;
        for (size_t j = lo; j <= pos; j++)
            m = std::fmax(m, opt.scale * from_bf16(scores[h * kv_len + j]));
        for (size_t j = lo; j <= pos; j++)
            z += std::exp(opt.scale * from_bf16(scores[h * kv_len + j]) - m);
        double sink = std::exp(sinks[h] - m);
        double want = 1.0 - sink / (sink + z);
        size_t nonzero_masked = 0;
        for (size_t j = 0; j < kv_len; j++) {
            sum += row[j];
            if (j < lo && row[j] != 0.0f)
                nonzero_masked++;
        }
        if (std::fabs(sum - want) > 1e-5 || nonzero_masked) {
            std::printf("  head %zu: sum %.7f, want %.7f; %zu masked entries nonzero\n", h, sum,
                        want, nonzero_masked);
            ok = false;
        }
        if (h == 0)
            std::printf("  head 0: probabilities sum to %.6f (sink's share %.6f), %zu keys "
                        "visible\n",
                        sum, 1.0 - want, pos + 1 - lo);
    }
    return ok;
}

// The sampling step: logits -> next token.
bool sampling_step(std::mt19937 &rng) {
    const size_t vocab = 32000;
    std::normal_distribution<float> logit(0.0f, 2.0f);
    std::vector<float> logits(vocab);
    for (auto &l : logits)
        l = logit(rng);
    for (uint32_t t : {42u, 1234u, 31999u}) // a few plausible continuations
        logits[t] = 9.0f + static_cast<float>(t % 3);

    // The scratch: allocated once per sampling thread for the longest
    // vocabulary, 8-byte aligned (a vector of uint64_t is). Its contents on
    // entry do not matter, so it is reused for every step.
    const size_t bytes = simd_softmax_sampler_scratch_bytes(vocab);
    std::vector<uint64_t> scratch((bytes + 7) / 8);

    simd_softmax_sampler_options opt;
    simd_softmax_sampler_options_init(&opt);
    opt.temperature = 0.8f;
    opt.top_k = 40;
    opt.top_p = 0.95f;

    // The survivors of the filters, most probable first. They live in the
    // scratch: copy them before its next use (the next sample overwrites).
    const simd_softmax_candidate *kept = nullptr;
    size_t count = 0;
    check(simd_softmax_sampler_survivors(SIMD_SOFTMAX_BACKEND_DEFAULT, &opt, logits.data(),
                                         vocab, scratch.data(), bytes, &kept, &count),
          "simd_softmax_sampler_survivors");
    std::vector<simd_softmax_candidate> survivors(kept, kept + count);
    std::printf("  %zu survivors (T=%.1f, top_k=%zu, top_p=%.2f):", count, opt.temperature,
                opt.top_k, opt.top_p);
    for (const auto &c : survivors)
        std::printf(" %u:%.4f", c.index, c.prob);
    std::printf("\n");

    bool ok = count > 0 && count <= opt.top_k;
    // Draw a few tokens: each must be one of the survivors.
    for (int draw = 0; draw < 5; draw++) {
        double u = uniform01(rng);
        simd_softmax_candidate token;
        check(simd_softmax_sample(SIMD_SOFTMAX_BACKEND_DEFAULT, &opt, logits.data(), vocab, u,
                                  scratch.data(), bytes, &token),
              "simd_softmax_sample");
        bool found = false;
        for (const auto &c : survivors)
            found |= c.index == token.index;
        std::printf("  u=%.4f -> token %u (p=%.4f)%s\n", u, token.index, token.prob,
                    found ? "" : "  NOT A SURVIVOR");
        ok &= found;
    }
    return ok;
}

} // namespace

int main() {
    // The default backend: the best this CPU runs, or SIMD_SOFTMAX_BACKEND's.
    std::printf("simd-softmax %s, backend %s\n", simd_softmax_version(),
                simd_softmax_backend_name(SIMD_SOFTMAX_BACKEND_DEFAULT));
    std::mt19937 rng(2024);
    bool ok = true;
    try {
        std::printf("attention, full (8 heads, 1 query, 1000 keys, sinks):\n");
        ok &= attention_step(rng, 0);
        std::printf("attention, sliding window of 128:\n");
        ok &= attention_step(rng, 128);
        std::printf("sampling:\n");
        ok &= sampling_step(rng);

        // What an error looks like: a refused call throws with the message.
        float in[3] = {1, 2, 3}, out[2];
        try {
            check(simd_softmax_softmax(SIMD_SOFTMAX_BACKEND_DEFAULT, SIMD_SOFTMAX_F32, in, 3,
                                       SIMD_SOFTMAX_F32, out, 2),
                  "simd_softmax_softmax");
            ok = false;
        } catch (const std::runtime_error &e) {
            std::printf("an error, as check() reports it: %s\n", e.what());
        }
    } catch (const std::exception &e) {
        std::printf("error: %s\n", e.what());
        ok = false;
    }
    std::printf("%s\n", ok ? "engine example: ok" : "engine example: FAILED");
    return ok ? 0 : 1;
}
