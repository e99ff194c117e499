// The hidden layers of a SimpleMLP stack whose hidden layers all have one width W, on the CPU,
// forward and backward, every trial in one call each (psa/engine/batched/native.py builds and
// calls this file): psa_first, hidden layer 0's product with input rows read in place from the
// data set; psa_chain, from its pre-activation to the last hidden output, dropout included.
// Eagerly each layer costs a dozen framework operations of 10-40 us for a few microseconds of
// arithmetic; here the width is known at compile time and a block of S samples goes through the
// whole chain at once.
//
// A block's activations are feature-major (W, S), S samples in vector lanes, and stay in the
// core's cache: the forward keeps no tape between calls, and the backward recomputes its block's
// forward before it goes back through it (a third more arithmetic, against a tape of
// layers x batch x W numbers per trial through main memory). Dropout masks are drawn here, bit
// for bit as psa.trial.randomness.scaled_keep_masks draws them, instead of read from a tensor of
// batch x units numbers per trial. Weight and bias gradients sum over samples in vector lanes,
// added in a fixed order at the end of a trial: one trial's result depends on nothing but its own
// inputs, whatever the thread count. Trials go to whichever thread is free (a dynamic schedule):
// where another program holds a core, the thread that still runs takes on the remaining trials
// instead of waiting at the end for the one that does not. The math is ops.forward / ops.backward's.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

template <typename T>
struct Args {
    int trials, layers, batch, threads;  // layers: the W -> W layers after hidden layer 0
    const T* z0;       // (T, B, W) hidden layer 0's pre-activation
    T* io;             // (T, B, W) forward: out, the last hidden output; backward: in dL/d last, out dL/d z0
    const T* params;   // trial t's layer l: weight (W, W) then bias (W), at t * stride + l * (W * W + W)
    T* grads;          // the same layout in the gradient buffer (backward)
    long stride;
    // Dropout of trials drop_lo .. drop_hi - 1, i = t - drop_lo: unit u of sample s is kept where
    // mix32(mix32(s * units + u) ^ keys[i]) >= thresholds[i], and then scaled by scales[i].
    const uint32_t* keys;
    const int64_t* thresholds;
    const T* scales;
    long units;
    int drop_lo, drop_hi;
};

// A vector register of 64 bytes (GCC's and Clang's vector extension: one AVX-512 register, two
// AVX2 ones, ...), and a block of R of them per unit: S = R * LANES samples.
template <typename T>
struct Vector;
template <>
struct Vector<float> {
    typedef float type __attribute__((vector_size(64)));
};
template <>
struct Vector<double> {
    typedef double type __attribute__((vector_size(64)));
};
template <typename T>
using Vec = typename Vector<T>::type;
template <typename T>
constexpr int LANES = 64 / sizeof(T);
constexpr int R = 4;

// Per thread: a block's activations through the chain, its masks, and a trial's gradient sums.
template <typename T>
struct Scratch {
    std::vector<Vec<T>> tape, masks, sums;
};

// rows (n, W) -> block (W, R vectors), zero past sample n
template <typename T, int W>
void load(Vec<T>* block, const T* rows, int n) {
    T* lanes = reinterpret_cast<T*>(block);
    constexpr int S = R * LANES<T>;
    for (int i = 0; i < W; ++i)
        for (int k = 0; k < S; ++k) lanes[i * S + k] = k < n ? rows[k * W + i] : T(0);
}

template <typename T, int W>
void store(T* rows, const Vec<T>* block, int n) {
    const T* lanes = reinterpret_cast<const T*>(block);
    constexpr int S = R * LANES<T>;
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < W; ++i) rows[k * W + i] = lanes[i * S + k];
}

uint32_t mix32(uint32_t x) {  // psa.trial.randomness.mix32
    for (int round = 0; round < 2; ++round) {
        x ^= x >> 16;
        x *= 0x45D9F3Bu;
    }
    return x ^ (x >> 16);
}

// The block's masks at every hidden layer, (layers + 1) * W units of R vectors each.
template <typename T, int W>
void draw_masks(const Args<T>& a, int t, int s0, Vec<T>* out) {
    constexpr int S = R * LANES<T>;
    const int i = t - a.drop_lo;
    const uint32_t key = a.keys[i];
    const bool none_kept = a.thresholds[i] > int64_t(UINT32_MAX);  // p = 1
    const uint32_t threshold = none_kept ? 0 : uint32_t(a.thresholds[i]);
    const T scale = none_kept ? T(0) : a.scales[i];
    T* lanes = reinterpret_cast<T*>(out);
    const int count = (a.layers + 1) * W;
    for (int u = 0; u < count; ++u)
        for (int k = 0; k < S; ++k) {
            const uint32_t counter = uint32_t(s0 + k) * uint32_t(a.units) + uint32_t(u);
            lanes[u * S + k] = mix32(mix32(counter) ^ key) >= threshold ? scale : T(0);
        }
}

// A layer's output from its pre-activation, in place: relu(z) * mask.
template <typename T, int W, bool MASK>
inline void activate(Vec<T>* z, const Vec<T>* mask) {
    for (int j = 0; j < W * R; ++j) {
        const Vec<T> relu = z[j] > 0 ? z[j] : Vec<T>{};
        z[j] = MASK ? relu * mask[j] : relu;
    }
}

// g from dL/d a layer's output h to dL/d its pre-activation, in place. A kept unit's output is
// positive exactly where its pre-activation is; a dropped unit's gradient is zero either way.
template <typename T, int W, bool MASK>
inline void gate(Vec<T>* g, const Vec<T>* h, const Vec<T>* mask) {
    for (int j = 0; j < W * R; ++j) {
        const Vec<T> v = MASK ? g[j] * mask[j] : g[j];
        g[j] = h[j] > 0 ? v : Vec<T>{};
    }
}

// z = relu(w x + b) * mask, x and z (W, R vectors).
template <typename T, int W, bool MASK>
inline void layer_forward(const T* w, const Vec<T>* x, Vec<T>* z, const Vec<T>* mask) {
    const T* b = w + W * W;
    for (int o = 0; o < W; ++o) {
        Vec<T> sum[R];
        for (int r = 0; r < R; ++r) sum[r] = Vec<T>{} + b[o];
        for (int i = 0; i < W; ++i)
            for (int r = 0; r < R; ++r) sum[r] += w[o * W + i] * x[i * R + r];
        for (int r = 0; r < R; ++r) z[o * R + r] = sum[r];
    }
    activate<T, W, MASK>(z, mask);
}

// The block from hidden layer 0's pre-activation, in tape plane 0, through every layer: plane l
// becomes hidden layer l's output.
template <typename T, int W, bool MASK>
void block_forward(const Args<T>& a, const T* params, Vec<T>* tape, const Vec<T>* masks) {
    constexpr int plane = W * R;
    activate<T, W, MASK>(tape, masks);
    for (int l = 0; l < a.layers; ++l)
        layer_forward<T, W, MASK>(params + l * (W * W + W), tape + l * plane, tape + (l + 1) * plane,
                                  MASK ? masks + (l + 1) * plane : nullptr);
}

// g (W, R vectors) from dL/d layer l's dropped output to dL/d its input (next); the layer's
// gradients, summed over the block's R vectors, added to its sums.
template <typename T, int W, bool MASK>
inline void layer_backward(const T* w, const Vec<T>* x, const Vec<T>* h, const Vec<T>* mask, Vec<T>* g,
                           Vec<T>* next, Vec<T>* sums) {
    gate<T, W, MASK>(g, h, mask);
    for (int o = 0; o < W; ++o) {
        for (int i = 0; i < W; ++i) {
            Vec<T> sum = g[o * R] * x[i * R];
            for (int r = 1; r < R; ++r) sum += g[o * R + r] * x[i * R + r];
            sums[o * W + i] += sum;
        }
        Vec<T> sum = g[o * R];
        for (int r = 1; r < R; ++r) sum += g[o * R + r];
        sums[W * W + o] += sum;
    }
    for (int i = 0; i < W; ++i) {
        Vec<T> sum[R];
        for (int r = 0; r < R; ++r) sum[r] = w[i] * g[r];
        for (int o = 1; o < W; ++o)
            for (int r = 0; r < R; ++r) sum[r] += w[o * W + i] * g[o * R + r];
        for (int r = 0; r < R; ++r) next[i * R + r] = sum[r];
    }
}

// g from dL/d the last hidden output to dL/d hidden layer 0's pre-activation.
template <typename T, int W, bool MASK>
void block_backward(const Args<T>& a, const T* params, const Vec<T>* tape, const Vec<T>* masks, Vec<T>* g,
                    Vec<T>* next, Vec<T>* sums) {
    constexpr int plane = W * R;
    for (int l = a.layers - 1; l >= 0; --l) {
        layer_backward<T, W, MASK>(params + l * (W * W + W), tape + l * plane, tape + (l + 1) * plane,
                                   MASK ? masks + (l + 1) * plane : nullptr, g, next, sums + l * (W * W + W));
        std::swap(g, next);
    }
    gate<T, W, MASK>(g, tape, masks);
    if (a.layers % 2) std::copy(g, g + plane, next);  // the caller reads its own g
}

template <typename T, int W, bool FORWARD, bool MASK>
void trial(const Args<T>& a, int t, Scratch<T>& scratch) {
    constexpr int plane = W * R, S = R * LANES<T>;
    const T* params = a.params + t * a.stride;
    const T* z0 = a.z0 + long(t) * a.batch * W;
    T* io = a.io + long(t) * a.batch * W;
    Vec<T>* tape = scratch.tape.data();
    Vec<T>* masks = MASK ? scratch.masks.data() : nullptr;
    Vec<T>* sums = scratch.sums.data();
    if (!FORWARD) std::fill(scratch.sums.begin(), scratch.sums.end(), Vec<T>{});
    Vec<T> g[2 * plane];
    for (int s0 = 0; s0 < a.batch; s0 += S) {
        const int n = std::min(S, a.batch - s0);
        load<T, W>(tape, z0 + s0 * W, n);
        if (MASK) draw_masks<T, W>(a, t, s0, masks);
        block_forward<T, W, MASK>(a, params, tape, masks);
        if (FORWARD) {
            store<T, W>(io + s0 * W, tape + a.layers * plane, n);
            continue;
        }
        load<T, W>(g, io + s0 * W, n);  // zero past n: padding samples add nothing to the sums
        block_backward<T, W, MASK>(a, params, tape, masks, g, g + plane, sums);
        store<T, W>(io + s0 * W, g, n);
    }
    if (FORWARD) return;
    T* grads = a.grads + t * a.stride;
    const long count = long(a.layers) * (W * W + W);
    for (long j = 0; j < count; ++j) {
        T total = 0;
        for (int k = 0; k < LANES<T>; ++k) total += sums[j][k];
        grads[j] = total;
    }
}

template <typename T, int W, bool FORWARD>
void run(const Args<T>& a) {
#pragma omp parallel num_threads(a.threads)
    {
        Scratch<T> scratch;
        scratch.tape.resize(long(a.layers + 1) * W * R);
        if (a.drop_hi > a.drop_lo) scratch.masks.resize(long(a.layers + 1) * W * R);
        if (!FORWARD) scratch.sums.resize(long(a.layers) * (W * W + W));
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < a.trials; ++t) {
            if (t >= a.drop_lo && t < a.drop_hi)
                trial<T, W, FORWARD, true>(a, t, scratch);
            else
                trial<T, W, FORWARD, false>(a, t, scratch);
        }
    }
}

// Hidden layer 0, input rows -> W, where the rows are the data set's own: no gathered copy of a
// batch (at 60 trials of their own sample order, a 48 MB copy per step) is made or read twice.
template <typename T>
struct FirstArgs {
    int trials, groups, batch, fan_in, threads;
    const T* rows;         // (N, fan_in) inputs
    const int64_t* index;  // (groups, B): trial t's sample s is rows[index[(t % groups) * B + s]]
    const T* params;       // trial t's weight (W, fan_in) then bias (W), at t * stride
    T* grads;              // the same layout in the gradient buffer (backward)
    long stride;
    T* io;                 // (T, B, W) forward: out, the pre-activation; backward: in, dL/d it
};

template <typename T>
Vec<T> load_unaligned(const T* p) {
    Vec<T> v;
    __builtin_memcpy(&v, p, sizeof v);
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

// Samples read together: in the forward each weight vector loaded serves P of them, while their
// accumulators still fit the vector registers; in the backward each gradient vector loaded and
// stored takes BACKWARD_P samples' terms.
template <int W>
constexpr int P = W <= 4 ? 4 : 3;
constexpr int CHUNK = 8;  // outputs per pass over the forward's rows: P * CHUNK accumulators
constexpr int BACKWARD_P = 8;

// The rows of samples s0 .. s0 + n - 1, the last repeated up to N, and those of the next N
// samples, which the loops over a row fetch ahead line by line: rows from all over the data set
// are otherwise read at a fraction of the memory's bandwidth.
template <typename T, int N>
void rows_of(const FirstArgs<T>& a, const int64_t* index, int s0, int n, const T** x, const T** ahead) {
    for (int j = 0; j < N; ++j) {
        x[j] = a.rows + index[s0 + std::min(j, n - 1)] * a.fan_in;
        ahead[j] = a.rows + index[std::min(s0 + N + j, a.batch - 1)] * a.fan_in;
    }
}

// Outputs O0 .. O0 + C - 1 (C = CHUNK but at the end) of samples begin .. end - 1, N at a time,
// then the next chunk's of the same samples, whose rows the first chunk brought into the cache.
template <typename T, int W, int N, int O0>
void first_outputs(const FirstArgs<T>& a, const T* w, const int64_t* index, int begin, int end, T* out) {
    constexpr int L = LANES<T>, C = std::min(CHUNK, W - O0);
    const int full = a.fan_in - a.fan_in % L;
    const T* b = w + W * a.fan_in;
    for (int s0 = begin; s0 < end; s0 += N) {
        const int n = std::min(N, end - s0);
        const T *x[N], *ahead[N];
        rows_of<T, N>(a, index, s0, n, x, ahead);
        Vec<T> sum[N][C] = {};
        for (int k = 0; k < full; k += L) {
            Vec<T> xk[N];
            for (int j = 0; j < N; ++j) {
                xk[j] = load_unaligned(x[j] + k);
                if (O0 == 0) __builtin_prefetch(ahead[j] + k);
            }
            for (int o = 0; o < C; ++o) {
                const Vec<T> wk = load_unaligned(w + (O0 + o) * a.fan_in + k);
                for (int j = 0; j < N; ++j) sum[j][o] += wk * xk[j];
            }
        }
        for (int j = 0; j < n; ++j)
            for (int o = 0; o < C; ++o) {
                T z = total<T>(reinterpret_cast<const T*>(&sum[j][o]));
                for (int k = full; k < a.fan_in; ++k) z += w[(O0 + o) * a.fan_in + k] * x[j][k];
                out[(s0 + j) * W + O0 + o] = b[O0 + o] + z;
            }
    }
    if constexpr (O0 + C < W) first_outputs<T, W, N, O0 + C>(a, w, index, begin, end, out);
}

// Samples GROUP at a time, each chunk of outputs over all of them before the next chunk: a
// chunk's weights stay in the core's first cache, the group's rows in its second.
template <typename T, int W>
void first_forward(const FirstArgs<T>& a, int t) {
    constexpr int N = P<W>, GROUP = 8 * N;
    const T* w = a.params + t * a.stride;
    const int64_t* index = a.index + long(t % a.groups) * a.batch;
    T* out = a.io + long(t) * a.batch * W;
    for (int s0 = 0; s0 < a.batch; s0 += GROUP)
        first_outputs<T, W, N, 0>(a, w, index, s0, std::min(s0 + GROUP, a.batch), out);
}

template <typename T, int W>
void first_backward(const FirstArgs<T>& a, int t, std::vector<T>& dw) {
    constexpr int L = LANES<T>, N = BACKWARD_P;
    const int64_t* index = a.index + long(t % a.groups) * a.batch;
    const T* g = a.io + long(t) * a.batch * W;
    const int full = a.fan_in - a.fan_in % L;
    dw.assign(long(W) * a.fan_in + W, T(0));
    T* db = dw.data() + W * a.fan_in;
    for (int s0 = 0; s0 < a.batch; s0 += N) {
        const int n = std::min(N, a.batch - s0);
        const T *x[N], *ahead[N];
        rows_of<T, N>(a, index, s0, n, x, ahead);
        T gs[N][W];
        for (int j = 0; j < N; ++j)
            for (int o = 0; o < W; ++o) gs[j][o] = j < n ? g[(s0 + j) * W + o] : T(0);  // a repeated row adds 0
        for (int k = 0; k < full; k += L) {
            Vec<T> xk[N];
            for (int j = 0; j < N; ++j) {
                xk[j] = load_unaligned(x[j] + k);
                __builtin_prefetch(ahead[j] + k);
            }
            for (int o = 0; o < W; ++o) {
                T* d = dw.data() + o * a.fan_in + k;
                Vec<T> v = load_unaligned(d);
                for (int j = 0; j < N; ++j) v += gs[j][o] * xk[j];
                __builtin_memcpy(d, &v, sizeof v);
            }
        }
        for (int j = 0; j < n; ++j)
            for (int o = 0; o < W; ++o) {
                for (int k = full; k < a.fan_in; ++k) dw[o * a.fan_in + k] += gs[j][o] * x[j][k];
                db[o] += gs[j][o];
            }
    }
    std::copy(dw.begin(), dw.end(), a.grads + t * a.stride);
}

template <typename T, int W, bool FORWARD>
void run_first(const FirstArgs<T>& a) {
#pragma omp parallel num_threads(a.threads)
    {
        std::vector<T> dw;
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < a.trials; ++t) {
            if (FORWARD)
                first_forward<T, W>(a, t);
            else
                first_backward<T, W>(a, t, dw);
        }
    }
}

#ifndef PSA_WIDTH
#error "build with -DPSA_WIDTH=W, as psa/engine/batched/native.py does: a library per width"
#endif

// f(std::integral_constant<int, W>) for the width this library is built for; else 1.
template <typename F>
int dispatch(int width, F&& f) {
    if (width != PSA_WIDTH) return 1;
    f(std::integral_constant<int, PSA_WIDTH>{});
    return 0;
}

template <typename T>
int call(int forward, int width, int trials, int layers, int batch, int threads, const void* z0, void* io,
         const void* params, void* grads, long stride, const void* keys, const void* thresholds,
         const void* scales, long units, int drop_lo, int drop_hi) {
    const Args<T> a{trials,
                    layers,
                    batch,
                    threads,
                    static_cast<const T*>(z0),
                    static_cast<T*>(io),
                    static_cast<const T*>(params),
                    static_cast<T*>(grads),
                    stride,
                    static_cast<const uint32_t*>(keys),
                    static_cast<const int64_t*>(thresholds),
                    static_cast<const T*>(scales),
                    units,
                    drop_lo,
                    drop_hi};
    return dispatch(width, [&](auto w) {
        if (forward)
            run<T, decltype(w)::value, true>(a);
        else
            run<T, decltype(w)::value, false>(a);
    });
}

template <typename T>
int call_first(int forward, int width, int trials, int groups, int batch, int fan_in, int threads, const void* rows,
               const void* index, const void* params, void* grads, long stride, void* io) {
    const FirstArgs<T> a{trials,
                         groups,
                         batch,
                         fan_in,
                         threads,
                         static_cast<const T*>(rows),
                         static_cast<const int64_t*>(index),
                         static_cast<const T*>(params),
                         static_cast<T*>(grads),
                         stride,
                         static_cast<T*>(io)};
    return dispatch(width, [&](auto w) {
        if (forward)
            run_first<T, decltype(w)::value, true>(a);
        else
            run_first<T, decltype(w)::value, false>(a);
    });
}

}  // namespace

// itemsize 4 (float32) or 8 (float64); drop_lo == drop_hi: no dropout. Returns 0, or 1 for a
// width this file was not built for.
extern "C" int psa_chain(int itemsize, int forward, int width, int trials, int layers, int batch, int threads,
                         const void* z0, void* io, const void* params, void* grads, long stride, const void* keys,
                         const void* thresholds, const void* scales, long units, int drop_lo, int drop_hi) {
    return itemsize == 4 ? call<float>(forward, width, trials, layers, batch, threads, z0, io, params, grads,
                                       stride, keys, thresholds, scales, units, drop_lo, drop_hi)
                         : call<double>(forward, width, trials, layers, batch, threads, z0, io, params, grads,
                                        stride, keys, thresholds, scales, units, drop_lo, drop_hi);
}

// Hidden layer 0 of width `width`: forward, its pre-activation; backward, its weight and bias
// gradients. Returns 0, or 1 for a width this file was not built for.
extern "C" int psa_first(int itemsize, int forward, int width, int trials, int groups, int batch, int fan_in,
                         int threads, const void* rows, const void* index, const void* params, void* grads,
                         long stride, void* io) {
    return itemsize == 4 ? call_first<float>(forward, width, trials, groups, batch, fan_in, threads, rows, index,
                                             params, grads, stride, io)
                         : call_first<double>(forward, width, trials, groups, batch, fan_in, threads, rows, index,
                                              params, grads, stride, io);
}
