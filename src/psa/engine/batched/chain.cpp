// A SimpleMLP stack whose hidden layers all have one width W, on the CPU, every trial in one call
// (psa/engine/batched/native.py builds and calls this file): psa_run takes a trial's batch a block
// of S samples at a time through hidden layer 0, whose input rows it reads in place from the data
// set, skipping its zero pixels where it is 4 or more wide, every later hidden layer, dropout
// included, and the output layer to the logits; in a training step on through the loss and back to
// hidden layer 0's gradients. psa_keep_masks draws the dropout masks of stacks that train on
// torch's operations instead, a layer at a time.
// Eagerly each layer costs a dozen framework operations of 10-40 us for a few microseconds of
// arithmetic; here the width is known at compile time and a step is one call.
//
// A block's activations are feature-major (W, S), S samples in vector lanes, and stay in the
// core's cache from the forward to the backward: no tape through main memory. Dropout masks are
// drawn here, bit for bit as psa.trial.randomness.scaled_keep_masks draws them, instead of read
// from a tensor of batch x units numbers per trial. Weight and bias gradients sum over samples in
// vector lanes, added in a fixed order at the end of a trial: one trial's result depends on
// nothing but its own inputs, whatever the thread count. Trials go to whichever thread is free
// (run): where another program holds a core, the thread that still runs takes on the remaining
// trials instead of waiting at the end for the one that does not. The math is ops.forward /
// ops.cross_entropy_grad / ops.backward's.
#include <algorithm>
#include <atomic>
#include <cmath>
#ifdef __SSE__  // x86: its vector instructions, and its floating-point settings (run)
#include <immintrin.h>
#endif
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

constexpr int OUTPUTS = 10;  // psa.trial.architecture.OUTPUTS

// Inlined into its caller, where the block's gradient buffers are local arrays that nothing else
// can alias: called, the backward through a deep chain of narrow layers measured 7% slower a step.
#define ALWAYS_INLINE inline __attribute__((always_inline))

template <typename T, typename In>
struct Args {
    int trials, layers, batch, threads;  // layers: the W -> W layers after hidden layer 0
    // Hidden layer 0's inputs: trial t's sample s is the row rows[index[(t % groups) * index_stride
    // + s]] of fan_in numbers: the inputs themselves (In = T), or MNIST's uint8 pixels p (In =
    // uint8_t), whose inputs are scale * p + shift (psa.trial.data's normalisation).
    const In* rows;
    const int64_t* index;
    int groups;
    long index_stride;
    int fan_in;
    T scale, shift;
    T* logits;  // (T, B, OUTPUTS) out, or null (a step that needs none)
    // A training step's (else null): labels (T, B), or with row_labels the label of each of the
    // rows, read through index as the rows are (no gathered copy); each trial's batch-mean loss,
    // added to loss[t] (or null); the gradients of every layer into grads.
    const int64_t* labels;
    bool row_labels;
    T* loss;
    // Trial t's at t * stride: hidden layer 0's weight (W, fan_in) and bias (W), each later layer's
    // weight (W, W) and bias (W), then the output layer's weight (OUTPUTS, W) and bias (OUTPUTS).
    const T* params;
    T* grads;  // the same layout in the gradient buffer
    long stride;
    // Dropout of trials drop_lo .. drop_hi - 1, i = t - drop_lo: unit u of sample s is kept where
    // mix32(mix32(s * units + u) ^ key) >= ceil(p[i] 2^32), key the low 32 bits of keys[i], and
    // then scaled by 1 / (1 - p[i]) (psa.trial.randomness.keep_thresholds).
    const int64_t* keys;
    const T* p;
    long units;
    int drop_lo, drop_hi;
    // Or null: bit v of vectors[r] is set where row r's pixels 16 v .. 16 v + 15 are not all 0
    // (read where pixels are read in float32: live_vectors).
    const uint64_t* vectors;
};

template <typename T, typename In>
constexpr bool PIXELS = !std::is_same_v<T, In>;

// A vector of 64 bytes, LANES numbers (GCC's and Clang's vector extension), and a block of R of
// them per unit: S = R * LANES samples. Where a register holds 64 bytes (AVX-512) it is one; where
// none does, GCC keeps a 64-byte vector in memory and moves it through general registers 8 bytes
// at a time (`psa sweep` of 16*2 on 2 AVX2 cores 2.1x slower than with this), so there it is a
// pair of 32-byte halves: the same lanes in the same order, the same operations lane by lane,
// the same results.
template <typename E, int BYTES>
struct Vector {
    typedef E type __attribute__((vector_size(BYTES)));
};
template <typename E>  // the integers of a comparison's result, or of a bit pattern, lane for lane
using Int = std::conditional_t<sizeof(E) == 4, int32_t, int64_t>;

#ifdef __AVX512F__
template <typename E>
using Wide = typename Vector<E, 64>::type;

template <typename M, typename V>
V select(M mask, V yes, V no) {
    return mask ? yes : no;
}
template <typename To, typename V>
Wide<To> convert(V v) {
    return __builtin_convertvector(v, Wide<To>);
}
template <typename To, typename V>
Wide<To> bits_as(V v) {
    return (Wide<To>)v;
}
#else
template <typename E>
struct alignas(64) Wide {
    typedef typename Vector<E, 32>::type Half;
    static constexpr int HALF = sizeof(Half) / sizeof(E);  // lanes in each
    Half lo, hi;
    E operator[](int k) const { return k < HALF ? lo[k] : hi[k - HALF]; }
};

template <typename E, typename S>
using Scalar = std::enable_if_t<std::is_arithmetic_v<S>, E>;

#define PSA_LANEWISE(op)                                                    \
    template <typename E>                                                   \
    Wide<E> operator op(Wide<E> a, Wide<E> b) {                             \
        return {a.lo op b.lo, a.hi op b.hi};                                \
    }                                                                       \
    template <typename E, typename S>                                       \
    Wide<Scalar<E, S>> operator op(Wide<E> a, S b) {                        \
        return {a.lo op E(b), a.hi op E(b)};                                \
    }                                                                       \
    template <typename E, typename S>                                       \
    Wide<Scalar<E, S>> operator op(S a, Wide<E> b) {                        \
        return {E(a) op b.lo, E(a) op b.hi};                                \
    }                                                                       \
    template <typename E>                                                   \
    Wide<E>& operator op##=(Wide<E>& a, Wide<E> b) {                        \
        return a = a op b;                                                  \
    }
PSA_LANEWISE(+)
PSA_LANEWISE(-)
PSA_LANEWISE(*)
PSA_LANEWISE(/)
#undef PSA_LANEWISE

#define PSA_COMPARISON(op)                                                  \
    template <typename E>                                                   \
    Wide<Int<E>> operator op(Wide<E> a, Wide<E> b) {                        \
        return {a.lo op b.lo, a.hi op b.hi};                                \
    }                                                                       \
    template <typename E, typename S>                                       \
    Wide<Int<Scalar<E, S>>> operator op(Wide<E> a, S b) {                   \
        return {a.lo op E(b), a.hi op E(b)};                                \
    }
PSA_COMPARISON(<)
PSA_COMPARISON(>)
PSA_COMPARISON(==)
#undef PSA_COMPARISON

template <typename E>
Wide<E> operator<<(Wide<E> a, int bits) {
    return {a.lo << bits, a.hi << bits};
}
template <typename M, typename E>
Wide<E> select(Wide<M> mask, Wide<E> yes, Wide<E> no) {
    return {mask.lo ? yes.lo : no.lo, mask.hi ? yes.hi : no.hi};
}
template <typename To, typename E>
Wide<To> convert(Wide<E> v) {
    return {__builtin_convertvector(v.lo, typename Wide<To>::Half), __builtin_convertvector(v.hi, typename Wide<To>::Half)};
}
template <typename To, typename E>
Wide<To> bits_as(Wide<E> v) {
    return {(typename Wide<To>::Half)v.lo, (typename Wide<To>::Half)v.hi};
}
#endif
template <typename T>
using Vec = Wide<T>;
template <typename T>
constexpr int LANES = 64 / sizeof(T);
constexpr int R = 4;

// Per thread: a block's activations through the chain, its masks, and a trial's gradient sums;
// hidden layer 0's weights and weight gradient in rows of whole vectors (no load split across
// cache lines), and a block's pre-activation of it, then the gradient of that, as rows (S, W).
template <typename T>
struct Scratch {
    std::vector<Vec<T>> tape, masks, sums, weights, dw;
    std::vector<T> rows;
};

uint32_t mix32(uint32_t x) {  // psa.trial.randomness.mix32
    for (int round = 0; round < 2; ++round) {
        x ^= x >> 16;
        x *= 0x45D9F3Bu;
    }
    return x ^ (x >> 16);
}

// Dropout of one trial: a unit whose counter c (sample * units + unit) hashes to
// mix32(mix32(c) ^ key) >= threshold is kept and scaled, as psa.trial.randomness.keep_thresholds
// puts it: threshold = ceil(p 2^32) (exact: a power of two), p = 1 keeping none, scale 1 / (1 - p).
template <typename T>
struct Keep {
    uint32_t key, threshold;
    T scale;

    Keep(int64_t key, T p) : key(uint32_t(key)) {
        const int64_t at_least = int64_t(std::ceil(p * T(4294967296.0)));
        const bool none_kept = at_least > int64_t(UINT32_MAX);
        threshold = none_kept ? 0 : uint32_t(at_least);
        scale = none_kept ? T(0) : T(1) / (T(1) - p);
    }
    T operator()(uint32_t counter) const { return mix32(mix32(counter) ^ key) >= threshold ? scale : T(0); }
};

// The block's masks at every hidden layer, (layers + 1) * W units of R vectors each.
template <typename T, int W, typename In>
void draw_masks(const Args<T, In>& a, int t, int s0, Vec<T>* out) {
    constexpr int S = R * LANES<T>;
    const int i = t - a.drop_lo;
    const Keep<T> keep(a.keys[i], a.p[i]);
    T* lanes = reinterpret_cast<T*>(out);
    const int count = (a.layers + 1) * W;
    for (int u = 0; u < count; ++u)
        for (int k = 0; k < S; ++k) lanes[u * S + k] = keep(uint32_t(s0 + k) * uint32_t(a.units) + uint32_t(u));
}

// Units first .. first + count - 1 of the dropout masks (trials, batch, units) of a stack that
// trains on torch's operations, into out (trials, batch, count), bit for bit
// psa.trial.randomness.scaled_keep_masks': trial i's by keys[i] and p[i]. Each number depends on
// its place alone, so the rows may go to the threads in any way.
template <typename T>
void keep_masks(int trials, int batch, long units, long first, long count, const int64_t* keys, const T* p,
                int threads, T* out) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long row = 0; row < long(trials) * batch; ++row) {
        const Keep<T> keep(keys[row / batch], p[row / batch]);
        const uint32_t counter = uint32_t(row % batch) * uint32_t(units) + uint32_t(first);
        T* masks = out + row * count;
        for (long u = 0; u < count; ++u) masks[u] = keep(counter + uint32_t(u));
    }
}

// A layer's output from its pre-activation, in place: relu(z) * mask.
template <typename T, int W, bool MASK>
inline void activate(Vec<T>* z, const Vec<T>* mask) {
    for (int j = 0; j < W * R; ++j) {
        const Vec<T> relu = select(z[j] > T(0), z[j], Vec<T>{});
        z[j] = MASK ? relu * mask[j] : relu;
    }
}

// g from dL/d a layer's output h to dL/d its pre-activation, in place. A kept unit's output is
// positive exactly where its pre-activation is; a dropped unit's gradient is zero either way.
template <typename T, int W, bool MASK>
inline void gate(Vec<T>* g, const Vec<T>* h, const Vec<T>* mask) {
    for (int j = 0; j < W * R; ++j) {
        const Vec<T> v = MASK ? g[j] * mask[j] : g[j];
        g[j] = select(h[j] > T(0), v, Vec<T>{});
    }
}

// z = w x + b, x (IN, R vectors), z (OUT, R vectors), w (OUT, IN) followed by b (OUT).
template <typename T, int IN, int OUT>
inline void linear_forward(const T* w, const Vec<T>* x, Vec<T>* z) {
    const T* b = w + OUT * IN;
    for (int o = 0; o < OUT; ++o) {
        Vec<T> sum[R];
        for (int r = 0; r < R; ++r) sum[r] = Vec<T>{} + b[o];
        for (int i = 0; i < IN; ++i)
            for (int r = 0; r < R; ++r) sum[r] += w[o * IN + i] * x[i * R + r];
        for (int r = 0; r < R; ++r) z[o * R + r] = sum[r];
    }
}

// z = relu(w x + b) * mask, x and z (W, R vectors).
template <typename T, int W, bool MASK>
inline void layer_forward(const T* w, const Vec<T>* x, Vec<T>* z, const Vec<T>* mask) {
    linear_forward<T, W, W>(w, x, z);
    activate<T, W, MASK>(z, mask);
}

// The block from hidden layer 0's pre-activation, in tape plane 0, through every layer: plane l
// becomes hidden layer l's output.
template <typename T, int W, bool MASK>
ALWAYS_INLINE void block_forward(int layers, const T* params, Vec<T>* tape, const Vec<T>* masks) {
    constexpr int plane = W * R;
    activate<T, W, MASK>(tape, masks);
    for (int l = 0; l < layers; ++l)
        layer_forward<T, W, MASK>(params + l * (W * W + W), tape + l * plane, tape + (l + 1) * plane,
                                  MASK ? masks + (l + 1) * plane : nullptr);
}

// dL/d x (IN, R vectors), into next, from g = dL/d z (OUT, R vectors) of z = w x + b; the layer's
// gradients, summed over the block's R vectors, added to its sums. Each sum of products starts from
// 0, not from its first product: chain.cpp is built with -ffp-contract=fast, and s + a * b fuses
// into one rounding one way only where s is not itself a product; of a0 * b0 + a1 * b1, GCC 12
// fused either product by the vector's type and the width (the AVX-512 build and the pair of
// halves disagreed at widths 12 and 16: engine version 3).
template <typename T, int IN, int OUT>
inline void linear_backward(const T* w, const Vec<T>* x, const Vec<T>* g, Vec<T>* next, Vec<T>* sums) {
    for (int o = 0; o < OUT; ++o) {
        for (int i = 0; i < IN; ++i) {
            Vec<T> sum{};
            for (int r = 0; r < R; ++r) sum += g[o * R + r] * x[i * R + r];
            sums[o * IN + i] += sum;
        }
        Vec<T> sum = g[o * R];
        for (int r = 1; r < R; ++r) sum += g[o * R + r];
        sums[OUT * IN + o] += sum;
    }
    for (int i = 0; i < IN; ++i) {
        Vec<T> sum[R] = {};
        for (int o = 0; o < OUT; ++o)
            for (int r = 0; r < R; ++r) sum[r] += w[o * IN + i] * g[o * R + r];
        for (int r = 0; r < R; ++r) next[i * R + r] = sum[r];
    }
}

// g (W, R vectors) from dL/d layer l's dropped output h to dL/d its input x (next).
template <typename T, int W, bool MASK>
inline void layer_backward(const T* w, const Vec<T>* x, const Vec<T>* h, const Vec<T>* mask, Vec<T>* g,
                           Vec<T>* next, Vec<T>* sums) {
    gate<T, W, MASK>(g, h, mask);
    linear_backward<T, W, W>(w, x, g, next, sums);
}

// g from dL/d the last hidden output to dL/d hidden layer 0's pre-activation.
template <typename T, int W, bool MASK>
ALWAYS_INLINE void block_backward(int layers, const T* params, const Vec<T>* tape, const Vec<T>* masks, Vec<T>* g, Vec<T>* next,
                    Vec<T>* sums) {
    constexpr int plane = W * R;
    for (int l = layers - 1; l >= 0; --l) {
        layer_backward<T, W, MASK>(params + l * (W * W + W), tape + l * plane, tape + (l + 1) * plane,
                                   MASK ? masks + (l + 1) * plane : nullptr, g, next, sums + l * (W * W + W));
        std::swap(g, next);
    }
    gate<T, W, MASK>(g, tape, masks);
    if (layers % 2) std::copy(g, g + plane, next);  // the caller reads its own g
}

// e^x lane by lane for x <= 0: x = n ln 2 + r, |r| <= ln 2 / 2, e^r by its Taylor series to
// below the type's last digit, times 2^n put in the exponent. Below the smallest normal number
// the result stays there: against a softmax's sum of at least 1, nothing the type can hold.
template <typename T>
Vec<T> exp_lanes(Vec<T> x) {
    constexpr bool SINGLE = std::is_same_v<T, float>;
    constexpr T LOWEST = SINGLE ? T(-87.0) : T(-708.0);
    constexpr T LN2_HIGH = SINGLE ? T(0.693145751953125) : T(0.6931471803691238);
    constexpr T LN2_LOW = SINGLE ? T(1.428606765330187e-06) : T(1.9082149292705877e-10);
    constexpr int TERMS = SINGLE ? 8 : 13;
    constexpr int MANTISSA = SINGLE ? 23 : 52, BIAS = SINGLE ? 127 : 1023;
    x = select(x < LOWEST, Vec<T>{} + LOWEST, x);
    const Wide<Int<T>> n = convert<Int<T>>(x * T(1.4426950408889634) - T(0.5));  // nearest, x <= 0
    const Vec<T> nf = convert<T>(n);
    const Vec<T> r = x - nf * LN2_HIGH - nf * LN2_LOW;
    Vec<T> sum = Vec<T>{} + T(1);
    for (int k = TERMS - 1; k >= 1; --k) sum = sum * r / T(k) + T(1);
    return sum * bits_as<T>((n + Int<T>(BIAS)) << MANTISSA);
}

// The block's logits, in place, to dL/d them for the batch's mean cross-entropy: (softmax -
// one_hot(label)) / batch, zero past sample n. Returns the sum of the n samples' losses.
template <typename T>
T softmax_grad(Vec<T>* z, const int64_t* labels, int n, int batch) {
    constexpr int L = LANES<T>;
    T loss = 0;
    for (int r = 0; r < R; ++r) {
        const int m = std::max(0, std::min(L, n - r * L));  // samples in these lanes
        T picked[L];
        Int<T> lanes[L];  // a lane's label, or -1 past sample n
        for (int k = 0; k < L; ++k) lanes[k] = k < m ? Int<T>(labels[r * L + k]) : Int<T>(-1);
        Wide<Int<T>> label;
        __builtin_memcpy(&label, lanes, sizeof label);
        for (int k = 0; k < m; ++k) picked[k] = z[lanes[k] * R + r][k];
        Vec<T> top = z[r];
        for (int o = 1; o < OUTPUTS; ++o) top = select(z[o * R + r] > top, z[o * R + r], top);
        Vec<T> sum{};
        for (int o = 0; o < OUTPUTS; ++o) {
            z[o * R + r] = exp_lanes<T>(z[o * R + r] - top);
            sum += z[o * R + r];
        }
        for (int k = 0; k < m; ++k) loss += std::log(sum[k]) + top[k] - picked[k];
        for (int o = 0; o < OUTPUTS; ++o) {
            const Vec<T> g = z[o * R + r] / sum;
            z[o * R + r] = select(label < 0, Vec<T>{}, select(label == o, g - T(1), g) / T(batch));
        }
    }
    return loss;
}

// rows (n, C) -> block (C, R vectors), zero past sample n, and back.
template <typename T, int C>
void load(Vec<T>* block, const T* rows, int n) {
    T* lanes = reinterpret_cast<T*>(block);
    constexpr int S = R * LANES<T>;
    for (int i = 0; i < C; ++i)
        for (int k = 0; k < S; ++k) lanes[i * S + k] = k < n ? rows[k * C + i] : T(0);
}

template <typename T, int C>
void store(T* rows, const Vec<T>* block, int n) {
    const T* lanes = reinterpret_cast<const T*>(block);
    constexpr int S = R * LANES<T>;
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < C; ++i) rows[k * C + i] = lanes[i * S + k];
}

// Hidden layer 0, fan_in -> W, reads its input rows where they are in the data set: no gathered
// copy of a batch (at 60 trials of their own sample order, a 48 MB copy per step) is made. uint8
// pixel rows are a quarter of the bytes to read from memory, which is what narrow stacks wait on:
// each vector of them is converted to T (exactly: small integers) in registers, and the
// normalisation applied to the layer's sums: w . (scale p + shift) = scale (w . p) + shift sum(w),
// and likewise in the backward.
template <typename T>
Vec<T> load_unaligned(const T* p) {
    Vec<T> v;
#ifdef __AVX512F__
    __builtin_memcpy(&v, p, sizeof v);
#else
    __builtin_memcpy(&v.lo, p, sizeof v.lo);  // half by half: the pair as a whole goes through memory
    __builtin_memcpy(&v.hi, p + LANES<T> / 2, sizeof v.hi);
#endif
    return v;
}

// Hidden layer 0's forward takes a vector a register at a time: a piece, the whole of it where a
// register holds 64 bytes, else a half. Its accumulators are then pieces too, and 16 registers of
// 32 bytes hold 12 of them beside a piece of inputs and one of weights (P and CHUNK below) where
// whole pairs held 6. A lane's sum takes the same terms in the same order either way.
#ifdef __AVX512F__
constexpr int PIECE = 64;
#else
constexpr int PIECE = 32;
#endif
template <typename T>
using Piece = typename Vector<T, PIECE>::type;
template <typename T>
constexpr int PIECE_LANES = PIECE / sizeof(T);
constexpr int PIECES = 64 / PIECE;  // in a vector

// A piece of inputs from a row of In: the row's own numbers, or pixels converted (exactly). GCC
// turns a generic conversion of bytes into a lane-by-lane one: AVX-512 and AVX2 have it in two
// instructions.
template <typename T, typename In>
Piece<T> load_piece(const In* p) {
    Piece<T> v;
    if constexpr (std::is_same_v<T, In>) {
        __builtin_memcpy(&v, p, sizeof v);
    } else {
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>)
            v = Piece<T>(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p))));
        else
            v = Piece<T>(_mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p))));
#elif defined(__AVX2__)
        if constexpr (std::is_same_v<T, float>) {
            v = Piece<T>(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p))));
        } else {
            int32_t quad;
            __builtin_memcpy(&quad, p, sizeof quad);
            v = Piece<T>(_mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(quad))));
        }
#else
        for (int k = 0; k < PIECE_LANES<T>; ++k) v[k] = T(p[k]);
#endif
    }
    return v;
}

// The sum of a vector's lanes, folded in halves (a few shuffles, not a chain of lane-by-lane adds).
template <typename T, int BYTES = 64>
T total(const T* lanes) {
    if constexpr (BYTES == sizeof(T)) {
        return lanes[0];
    } else {
        typedef T Half __attribute__((vector_size(BYTES / 2)));
        Half low, high;
        __builtin_memcpy(&low, lanes, BYTES / 2);
        __builtin_memcpy(&high, lanes + BYTES / 2 / sizeof(T), BYTES / 2);
        const Half sum = low + high;
        return total<T, BYTES / 2>(reinterpret_cast<const T*>(&sum));
    }
}

// Samples read together: in the forward each weight vector loaded serves P of them and each
// input vector CHUNK outputs, while their accumulators still fit the vector registers (P * CHUNK
// of them, with P rows' vectors and a weight vector beside them); in the backward each gradient
// vector loaded and stored takes BACKWARD_P samples' terms. Where a vector is a pair of halves,
// 16 registers hold 8 vectors: AVX-512's blocking there kept accumulators on the stack (1*32's
// step 19.9 -> 15.5 ms with P = CHUNK = 2 on an AVX2 EPYC), and piece by piece (above), a pass of
// up to 6 outputs of one sample beat two of two samples wherever W > 2 (its forward, rows in the
// cache: 1*32 7.9 -> 6.6 ms, 1*8 1.96 -> 1.71 as 2 passes of 4), while a width of 1 takes 4
// samples (0.90 -> 0.46 ms: 8 accumulators, not 4, hide the latency of their additions). Each sum
// is added in the same order either way: the blocking changes no result.
#ifdef __AVX512F__
template <int W>
constexpr int P = W <= 4 ? 4 : 3;
template <int W>
constexpr int CHUNK = 8;  // outputs per pass over the forward's rows
constexpr int BACKWARD_P = 8;
#else
template <int W>
constexpr int P = W == 1 ? 4 : W == 2 ? 2 : 1;
template <int W>
constexpr int CHUNK = (W + (W + 5) / 6 - 1) / ((W + 5) / 6);  // W in passes of at most 6 outputs
constexpr int BACKWARD_P = 4;
#endif

// x[j], the rows of samples s0 .. s0 + n - 1, the last repeated up to `count`, read where they are.
template <typename T, typename In>
void rows_of(const Args<T, In>& a, const int64_t* index, int s0, int n, int count, const In** x) {
    for (int j = 0; j < count; ++j) x[j] = a.rows + index[s0 + std::min(j, n - 1)] * a.fan_in;
}

// Zero pixels: 42% of MNIST's vectors of 16 pixels are 0, and such a vector adds nothing to a sum
// of products with finite numbers (each product is +0 or -0, which leaves any sum as it is but a
// -0, and a sum that starts from +0 is -0 only where a negative denormal was flushed to zero).
// Where the hidden layers are SKIP_WIDTH wide or more, hidden layer 0 skips the vectors that every
// row of a register block has 0, where the other factors (`finite`) are finite: the same bits
// with fewer multiply-adds (of MNIST's vectors, 42% one row at a time, 24% in blocks of 4 rows,
// 19% in blocks of 8). At a width of 1 or 2 its loops wait on reading the rows more than on
// arithmetic: skipping there, or reading only each row's own non-zero vectors, measured 0-17%
// slower.
constexpr int SKIP_WIDTH = 4;

constexpr uint64_t EVERY = ~uint64_t(0);  // every vector of a row, however many

// The vectors of a row that samples s0 .. s0 + n - 1 need, a bit each, or EVERY.
template <typename T, typename In, int W>
uint64_t live_vectors(const Args<T, In>& a, const int64_t* index, int s0, int n, bool finite) {
    if constexpr (PIXELS<T, In> && LANES<T> == 16 && W >= SKIP_WIDTH) {
        if (finite && a.vectors) {
            uint64_t any = 0;
            for (int j = 0; j < n; ++j) any |= a.vectors[index[s0 + j]];
            return any;
        }
    }
    return EVERY;
}

// body(k, first) for the first number k of each vector of `live` (live_vectors) among the first
// `full` of a row; `first`: whether k begins a line of `line` numbers, or vectors are skipped.
template <typename T, typename F>
ALWAYS_INLINE void each_vector(uint64_t live, int full, int line, F&& body) {
    if (live == EVERY)
        for (int k = 0; k < full; k += LANES<T>) body(k, k % line == 0);
    else
        for (uint64_t bits = live; bits; bits &= bits - 1) body(__builtin_ctzll(bits) * LANES<T>, true);
}

// Outputs O0 .. O0 + C - 1 (C = CHUNK but at the end) of the group's n samples, rows x, N at a
// time (live[i]: the vectors that samples N i .. N i + N - 1 need), then the next chunk's of the
// same samples, whose rows the first chunk brought into the cache: out = bias + scale * (w . x),
// w's rows `ws` apart.
template <typename T, typename In, int W, int N, int O0>
void first_outputs(int fan_in, int ws, const T* w, const T* bias, T scale, const In* const* x, const In* const* ahead,
                   const uint64_t* live, int n, T* out) {
    constexpr int L = LANES<T>, C = std::min(CHUNK<W>, W - O0), LINE = 64 / sizeof(In);
    const int full = fan_in - fan_in % L;
    for (int s0 = 0; s0 < n; s0 += N) {
        Piece<T> sum[N][C][PIECES] = {};
        each_vector<T>(live[s0 / N], full, LINE, [&](int k, bool first) {
            // A line at a time where every vector is read; where some are skipped, each one's line.
            if (O0 == 0 && first)
                for (int j = 0; j < N; ++j) __builtin_prefetch(ahead[s0 + j] + k);
            for (int p = 0; p < PIECES; ++p) {
                const int at = k + p * PIECE_LANES<T>;
                Piece<T> xk[N];
                for (int j = 0; j < N; ++j) xk[j] = load_piece<T>(x[s0 + j] + at);
                for (int o = 0; o < C; ++o) {
                    const Piece<T> wk = *reinterpret_cast<const Piece<T>*>(w + (O0 + o) * ws + at);
                    for (int j = 0; j < N; ++j) sum[j][o][p] += wk * xk[j];
                }
            }
        });
        for (int j = 0; j < std::min(N, n - s0); ++j)
            for (int o = 0; o < C; ++o) {
                T z = total<T>(reinterpret_cast<const T*>(sum[j][o]));
                for (int k = full; k < fan_in; ++k) z += w[(O0 + o) * ws + k] * T(x[s0 + j][k]);
                out[(s0 + j) * W + O0 + o] = bias[O0 + o] + scale * z;
            }
    }
    if constexpr (O0 + C < W)
        first_outputs<T, In, W, N, O0 + C>(fan_in, ws, w, bias, scale, x, ahead, live, n, out);
}

// The length of a row of hidden layer 0's weights or gradient in whole vectors, rounded up so
// that every row starts on a vector's boundary.
template <typename T>
int row_vectors(int fan_in) {
    return (fan_in + LANES<T> - 1) / LANES<T>;
}

// Trial t's hidden layer 0 weights (at w) copied into rows of whole vectors, `weights`, and its
// bias, the normalisation's shift taken in; returns the length of a row in numbers. `finite`:
// whether each row's sum is, as it is where every weight is (where pixels are read).
template <typename T, typename In, int W>
int first_weights(const Args<T, In>& a, const T* w, std::vector<Vec<T>>& weights, T* bias, bool& finite) {
    const int full = a.fan_in - a.fan_in % LANES<T>, row = row_vectors<T>(a.fan_in);
    finite = PIXELS<T, In>;
    for (int o = 0; o < W; ++o) {
        bias[o] = w[W * a.fan_in + o];
        if constexpr (PIXELS<T, In>) {
            Vec<T> lanes{};
            for (int k = 0; k < full; k += LANES<T>) lanes += load_unaligned(w + o * a.fan_in + k);
            T sum = total<T>(reinterpret_cast<const T*>(&lanes));
            for (int k = full; k < a.fan_in; ++k) sum += w[o * a.fan_in + k];
            bias[o] += a.shift * sum;
            finite = finite && std::isfinite(sum);
        }
    }
    weights.resize(long(W) * row);
    T* aligned = reinterpret_cast<T*>(weights.data());
    for (int o = 0; o < W; ++o) std::copy(w + o * a.fan_in, w + (o + 1) * a.fan_in, aligned + long(o) * row * LANES<T>);
    return row * LANES<T>;
}

// The pre-activation of n samples (rows through index, of `available` listed) into out (n, W),
// GROUP samples at a time, each chunk of outputs over all of them before the next chunk: a
// chunk's weights stay in the core's first cache, the group's rows in its second.
template <typename T, typename In, int W>
void first_forward(const Args<T, In>& a, const int64_t* index, int n, int available, const T* weights, int ws,
                   bool finite, const T* bias, T* out) {
    constexpr int N = P<W>, GROUP = 8 * N;
    const T scale = PIXELS<T, In> ? a.scale : T(1);
    for (int g0 = 0; g0 < n; g0 += GROUP) {
        const int m = std::min(GROUP, n - g0), count = (m + N - 1) / N * N;
        const In *x[GROUP], *ahead[GROUP];
        rows_of(a, index, g0, m, count, x);
        // The rows N samples on (of the `available` that index lists), which the loops over a row
        // fetch line by line: rows from all over the data set are otherwise read at a fraction of
        // the memory's bandwidth.
        for (int j = 0; j < count; ++j) ahead[j] = a.rows + index[std::min(g0 + j + N, available - 1)] * a.fan_in;
        uint64_t live[GROUP / N];
        for (int s0 = 0; s0 < m; s0 += N)
            live[s0 / N] = live_vectors<T, In, W>(a, index, g0 + s0, std::min(N, m - s0), finite);
        first_outputs<T, In, W, N, 0>(a.fan_in, ws, weights, bias, scale, x, ahead, live, m, out + long(g0) * W);
    }
}

// The weight gradient of n samples from g (n, W), dL/d their pre-activation, added to dw (rows of
// `row` vectors, unscaled: sum of g p) and db, N samples at a time. Their rows are still in the
// core's cache from the forward. Meanwhile the rows of the next block's samples (the first
// `coming` of `upcoming`), which its forward would otherwise wait on, are fetched line by line
// into the core's second cache: rows come from all over the data set, and the memory idled while
// a block went through the chain and back (16*2's step 7-13% faster, 1*32's 2%).
template <typename T, typename In, int W>
void first_backward(const Args<T, In>& a, const int64_t* index, int n, const int64_t* upcoming, int coming,
                    const T* g, Vec<T>* dw, int row, T* db) {
    constexpr int L = LANES<T>, N = BACKWARD_P, LINE = 64 / sizeof(In);
    const int full = a.fan_in - a.fan_in % L;
    for (int g0 = 0; g0 < n; g0 += N) {
        const int m = std::min(N, n - g0);
        const In *x[N], *next[N];
        rows_of(a, index, g0, m, N, x);
        const int fetch = std::max(0, std::min(N, coming - g0));
        rows_of(a, upcoming, g0, fetch, fetch, next);
        T gs[N][W];
        bool finite = true;
        for (int j = 0; j < N; ++j)
            for (int o = 0; o < W; ++o) {
                gs[j][o] = j < m ? g[(g0 + j) * W + o] : T(0);  // a repeated row adds 0
                finite = finite && std::isfinite(gs[j][o]);
            }
        each_vector<T>(live_vectors<T, In, W>(a, index, g0, m, finite), full, LINE, [&](int k, bool first) {
            if (first)
                for (int j = 0; j < fetch; ++j) __builtin_prefetch(next[j] + k, 0, 2);
            Vec<T> xk[N];
            for (int j = 0; j < N; ++j)
                for (int p = 0; p < PIECES; ++p)
                    reinterpret_cast<Piece<T>*>(&xk[j])[p] = load_piece<T>(x[j] + k + p * PIECE_LANES<T>);
            for (int o = 0; o < W; ++o) {
                Vec<T> v = dw[o * row + k / L];
                for (int j = 0; j < N; ++j) v += gs[j][o] * xk[j];
                dw[o * row + k / L] = v;
            }
        });
        for (int j = 0; j < m; ++j)
            for (int o = 0; o < W; ++o) {
                T* d = reinterpret_cast<T*>(dw + o * row);
                for (int k = full; k < a.fan_in; ++k) d[k] += gs[j][o] * T(x[j][k]);
                db[o] += gs[j][o];
            }
    }
}

// Trial t's sample order.
template <typename T, typename In>
const int64_t* order_of(const Args<T, In>& a, int t) {
    return a.index + (t % a.groups) * a.index_stride;
}

// Trial t, a block of S samples at a time: hidden layer 0's pre-activation of the block from its
// rows, then every later layer to the logits; in a STEP on to the loss and back through every
// layer to hidden layer 0's gradients, the block's rows (S of them, 50 kB of pixels) still in the
// core's cache. Each gradient sums over the samples in their order, block after block, as it did
// when hidden layer 0 took the whole batch before the chain and after it (on an AVX2 EPYC, with
// the blocking above, a step 0-12% faster than that: 1*32 15.2 -> 13.4 ms, 2048*1 10.5 -> 10.0,
// 16*2 1.8 either way). `next`: the trial this thread takes after it (or -1), whose first rows
// the last block's backward fetches.
template <typename T, typename In, int W, bool STEP, bool MASK>
void trial_pass(const Args<T, In>& a, int t, int next, Scratch<T>& scratch) {
    constexpr int plane = W * R, S = R * LANES<T>;
    const long first = long(W) * a.fan_in + W;  // hidden layer 0's parameters
    const T* params = a.params + t * a.stride;
    const T* chain = params + first;
    const T* output = chain + a.layers * (W * W + W);
    Vec<T>* tape = scratch.tape.data();
    Vec<T>* masks = MASK ? scratch.masks.data() : nullptr;
    Vec<T>* sums = scratch.sums.data();
    T* z = scratch.rows.data();
    const int64_t* order = order_of(a, t);
    T bias[W], db[W] = {};
    bool finite;
    const int ws = first_weights<T, In, W>(a, params, scratch.weights, bias, finite);
    const T* weights = reinterpret_cast<const T*>(scratch.weights.data());
    const int row = row_vectors<T>(a.fan_in);
    if (STEP) {
        std::fill(scratch.sums.begin(), scratch.sums.end(), Vec<T>{});
        scratch.dw.assign(long(W) * row, Vec<T>{});
    }
    Vec<T> logits[OUTPUTS * R], g[2 * plane];
    T loss = 0;
    for (int s0 = 0; s0 < a.batch; s0 += S) {
        const int n = std::min(S, a.batch - s0);
        first_forward<T, In, W>(a, order + s0, n, a.batch - s0, weights, ws, finite, bias, z);
        load<T, W>(tape, z, n);
        if (MASK) draw_masks<T, W>(a, t, s0, masks);
        block_forward<T, W, MASK>(a.layers, chain, tape, masks);
        linear_forward<T, W, OUTPUTS>(output, tape + a.layers * plane, logits);
        if (a.logits) store<T, OUTPUTS>(a.logits + (long(t) * a.batch + s0) * OUTPUTS, logits, n);
        if (!STEP) continue;
        int64_t labels[S];
        for (int k = 0; k < n; ++k)
            labels[k] = a.row_labels ? a.labels[order[s0 + k]] : a.labels[t * long(a.batch) + s0 + k];
        loss += softmax_grad<T>(logits, labels, n, a.batch);
        linear_backward<T, W, OUTPUTS>(output, tape + a.layers * plane, logits, g, sums + a.layers * (W * W + W));
        block_backward<T, W, MASK>(a.layers, chain, tape, masks, g, g + plane, sums);
        store<T, W>(z, g, n);
        // The next block's samples: this trial's, or after its last those of the next it takes.
        const bool last = s0 + S >= a.batch;
        const int64_t* upcoming = last ? (next < 0 ? nullptr : order_of(a, next)) : order + s0 + S;
        const int coming = std::min(S, last ? (next < 0 ? 0 : a.batch) : a.batch - s0 - S);
        first_backward<T, In, W>(a, order + s0, n, upcoming, coming, z, scratch.dw.data(), row, db);
    }
    if (!STEP) return;
    if (a.loss) a.loss[t] += loss / T(a.batch);
    T* grads = a.grads + t * a.stride;
    for (int o = 0; o < W; ++o) {  // a sum of two products: std::fma says which is fused (linear_backward)
        const T* d = reinterpret_cast<const T*>(scratch.dw.data() + o * row);
        for (int k = 0; k < a.fan_in; ++k)
            grads[o * a.fan_in + k] = PIXELS<T, In> ? std::fma(a.scale, d[k], a.shift * db[o]) : d[k];
        grads[W * a.fan_in + o] = db[o];
    }
    const long count = long(a.layers) * (W * W + W) + OUTPUTS * W + OUTPUTS;
    for (long j = 0; j < count; ++j) {
        T sum = 0;
        for (int k = 0; k < LANES<T>; ++k) sum += sums[j][k];
        grads[first + j] = sum;
    }
}

template <typename T, typename In, int W, bool STEP>
void trial_pass(const Args<T, In>& a, int t, int next, Scratch<T>& scratch) {
    if (t >= a.drop_lo && t < a.drop_hi)
        trial_pass<T, In, W, STEP, true>(a, t, next, scratch);
    else
        trial_pass<T, In, W, STEP, false>(a, t, next, scratch);
}

// Trials go to whichever thread is free (a dynamic schedule): where another program holds a core,
// the thread that still runs takes on the remaining trials instead of waiting at the end for the
// one that does not. A thread claims its next trial as it starts one (so that it can fetch that
// trial's first rows): of the trials it holds, at most one waits for it that another could take.
template <typename T, typename In, int W, bool STEP>
void run(const Args<T, In>& a) {
#ifdef __SSE__
    // Denormals flushed to zero or not (torch.set_flush_denormal: train_stacks flushes them) as in
    // the calling thread, in every thread: OpenMP's threads keep the setting of the thread that
    // started them, and a trial's bits must not depend on which thread takes it.
    const unsigned caller = _mm_getcsr();
#endif
    std::atomic<int> claimed{0};
#pragma omp parallel num_threads(a.threads)
    {
#ifdef __SSE__
        const unsigned own = _mm_getcsr();
        _mm_setcsr(caller);
#endif
        Scratch<T> scratch;
        scratch.tape.resize(long(a.layers + 1) * W * R);
        if (a.drop_hi > a.drop_lo) scratch.masks.resize(long(a.layers + 1) * W * R);
        if (STEP) scratch.sums.resize(long(a.layers) * (W * W + W) + OUTPUTS * W + OUTPUTS);
        scratch.rows.resize(long(R) * LANES<T> * W);
        for (int t = claimed++; t < a.trials;) {
            const int next = claimed++;
            trial_pass<T, In, W, STEP>(a, t, next < a.trials ? next : -1, scratch);
            t = next;
        }
#ifdef __SSE__
        _mm_setcsr(own);
#endif
    }
}

#ifndef PSA_WIDTH
#error "build with -DPSA_WIDTH=W, as psa/engine/batched/native.py does: a library per width"
#endif

template <typename T, typename In>
int call(int width, const Args<T, In>& a) {
    if (width != PSA_WIDTH) return 1;
    if (a.labels)
        run<T, In, PSA_WIDTH, true>(a);
    else
        run<T, In, PSA_WIDTH, false>(a);
    return 0;
}

}  // namespace

// Every trial of a stack with hidden layers `width` wide (Args): the logits, where `logits` is not
// null; with labels, a training step (row_labels: the labels of the rows, else (trials, batch)).
// itemsize 4 (float32) or 8 (float64); pixels: the rows are uint8 pixels, else numbers of the
// parameters' type; drop_lo == drop_hi: no dropout. Returns 0, or 1 for a width this file was not
// built for.
extern "C" int psa_run(int itemsize, int pixels, int width, int trials, int layers, int batch, int threads,
                       const void* rows, const void* index, int groups, long index_stride, int fan_in, double scale,
                       double shift, void* logits, const void* labels, int row_labels, void* loss, const void* params,
                       void* grads, long stride, const void* keys, const void* p, long units, int drop_lo,
                       int drop_hi, const void* vectors) {
    auto with = [&](auto type, auto in) {
        typedef decltype(type) T;
        typedef decltype(in) In;
        const Args<T, In> a{trials,
                            layers,
                            batch,
                            threads,
                            static_cast<const In*>(rows),
                            static_cast<const int64_t*>(index),
                            groups,
                            index_stride,
                            fan_in,
                            T(scale),
                            T(shift),
                            static_cast<T*>(logits),
                            static_cast<const int64_t*>(labels),
                            row_labels != 0,
                            static_cast<T*>(loss),
                            static_cast<const T*>(params),
                            static_cast<T*>(grads),
                            stride,
                            static_cast<const int64_t*>(keys),
                            static_cast<const T*>(p),
                            units,
                            drop_lo,
                            drop_hi,
                            static_cast<const uint64_t*>(vectors)};
        return call<T, In>(width, a);
    };
    if (itemsize == 4) return pixels ? with(float(), uint8_t()) : with(float(), float());
    return pixels ? with(double(), uint8_t()) : with(double(), double());
}

// keep_masks for psa.engine.batched.native.keep_masks: itemsize 4 (float32) or 8 (float64).
extern "C" void psa_keep_masks(int itemsize, int trials, int batch, long units, long first, long count,
                               const void* keys, const void* p, int threads, void* out) {
    const auto* key = static_cast<const int64_t*>(keys);
    if (itemsize == 4)
        keep_masks(trials, batch, units, first, count, key, static_cast<const float*>(p), threads,
                   static_cast<float*>(out));
    else
        keep_masks(trials, batch, units, first, count, key, static_cast<const double*>(p), threads,
                   static_cast<double*>(out));
}
