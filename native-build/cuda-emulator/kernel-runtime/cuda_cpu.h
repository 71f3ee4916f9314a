// The device environment of kernels/*.cu when they are compiled by g++ for the CPU kernel runtime
// (runtime.cpp): included before each .cu in place of nvcc's device compilation. Each CUDA thread runs
// as a fiber on the OS thread that runs its block; barriers and warp operations switch fibers, so
// shared memory, __syncthreads and warp shuffles/votes behave as on the GPU. __CUDA_ARCH__ stays
// undefined: code guarded by it is the host-compiled variant.
#pragma once

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <vector_types.h>
#include <vector_functions.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <math.h>
#include <type_traits>

#define SPECTRALPEFT_CUDA_CPU 1

// The CUDA headers define these as annotations that g++ ignores; give them their CPU meaning.
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __constant__
#undef __managed__
#undef __grid_constant__
#ifdef SPEMU_LIST_KERNELS  // build-module.sh without nvcc: marks kernels in the preprocessed text
#define __global__ SPEMU_GLOBAL_MARKER
#else
#define __global__
#endif
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __constant__
#define __managed__
#define __grid_constant__
#define __launch_bounds__(...)
// One block runs on one OS thread, and blocks on the same OS thread run one after another: a static
// thread_local is shared by the threads (fibers) of a block and distinct between concurrent blocks.
// Dynamic shared memory (extern __shared__) goes through SPEFT_DYNAMIC_SHARED (kernels/shared_memory.cuh).
#define __shared__ static thread_local

#define SPEMU_HIDDEN __attribute__((visibility("hidden")))

// Built-in variables. uint3 (not dim3) for all four so the thread_locals need no dynamic initialisation,
// which keeps each access a plain TLS load. The runtime sets threadIdx whenever it switches fibers.
SPEMU_HIDDEN inline thread_local uint3 threadIdx;
SPEMU_HIDDEN inline thread_local uint3 blockIdx;
SPEMU_HIDDEN inline thread_local uint3 blockDim;
SPEMU_HIDDEN inline thread_local uint3 gridDim;
constexpr int warpSize = 32;

namespace spemu {

// Barrier kinds and warp operation kinds (runtime.cpp implements them).
enum BarrierKind : int { BAR_SYNC = 0, BAR_COUNT = 1, BAR_AND = 2, BAR_OR = 3 };
enum WarpKind : int {
    WARP_SHFL_IDX, WARP_SHFL_UP, WARP_SHFL_DOWN, WARP_SHFL_XOR, WARP_BALLOT, WARP_ANY, WARP_ALL, WARP_SYNC,
    WARP_MATCH_ANY, WARP_MATCH_ALL, WARP_REDUCE_ADD, WARP_REDUCE_MIN, WARP_REDUCE_MAX, WARP_REDUCE_AND,
    WARP_REDUCE_OR, WARP_REDUCE_XOR, WARP_KIND_COUNT
};

// Waits until every thread of the block that has not exited arrives; returns the kind's reduction of pred.
SPEMU_HIDDEN int block_sync(int kind, int pred);
// A 32-lane lockstep warp operation: deposits value, waits for every lane of mask to arrive at an operation
// with the same mask, then returns this lane's result. b, c: the operation's operands (PTX shfl's b and c,
// or the signedness of a reduction).
SPEMU_HIDDEN unsigned long long warp_op(int kind, unsigned mask, unsigned long long value, int b, int c);
// Lanes of the calling thread's warp that had not exited when it last synchronized (barrier or warp operation).
SPEMU_HIDDEN unsigned active_mask();
// The block's dynamic shared memory (EmuLaunch.dynamic_shared_bytes, NaN bytes at block start).
SPEMU_HIDDEN void* dynamic_shared();

template <class T>
inline unsigned long long to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "warp operations take values of at most 8 bytes");
    unsigned long long u = 0;
    std::memcpy(&u, &v, sizeof(T));
    return u;
}
template <class T>
inline T from_bits(unsigned long long u) {
    T v;
    std::memcpy(&v, &u, sizeof(T));
    return v;
}
template <class To, class From>
inline To bit_cast(From f) {
    static_assert(sizeof(To) == sizeof(From), "size");
    To t;
    std::memcpy(&t, &f, sizeof(To));
    return t;
}

}  // namespace spemu

// ---- synchronization -------------------------------------------------------------------------------

inline void __syncthreads() { spemu::block_sync(spemu::BAR_SYNC, 0); }
inline int __syncthreads_count(int pred) { return spemu::block_sync(spemu::BAR_COUNT, pred); }
inline int __syncthreads_and(int pred) { return spemu::block_sync(spemu::BAR_AND, pred); }
inline int __syncthreads_or(int pred) { return spemu::block_sync(spemu::BAR_OR, pred); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { spemu::warp_op(spemu::WARP_SYNC, mask, 0, 0, 0); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __nanosleep(unsigned) {}
inline long long clock64() { return (long long) __builtin_ia32_rdtsc(); }

// ---- warp shuffles and votes (CUDA's operand encoding: c = ((32 - width) << 8) | clamp) ----------------

template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32) {
    return spemu::from_bits<T>(spemu::warp_op(spemu::WARP_SHFL_IDX, mask, spemu::to_bits(var), srcLane,
                                              ((32 - width) << 8) | 0x1f));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return spemu::from_bits<T>(spemu::warp_op(spemu::WARP_SHFL_UP, mask, spemu::to_bits(var), (int) delta,
                                              (32 - width) << 8));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return spemu::from_bits<T>(spemu::warp_op(spemu::WARP_SHFL_DOWN, mask, spemu::to_bits(var), (int) delta,
                                              ((32 - width) << 8) | 0x1f));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32) {
    return spemu::from_bits<T>(spemu::warp_op(spemu::WARP_SHFL_XOR, mask, spemu::to_bits(var), laneMask,
                                              ((32 - width) << 8) | 0x1f));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned) spemu::warp_op(spemu::WARP_BALLOT, mask, pred != 0, 0, 0);
}
inline int __any_sync(unsigned mask, int pred) { return (int) spemu::warp_op(spemu::WARP_ANY, mask, pred != 0, 0, 0); }
inline int __all_sync(unsigned mask, int pred) { return (int) spemu::warp_op(spemu::WARP_ALL, mask, pred != 0, 0, 0); }
inline unsigned __activemask() { return spemu::active_mask(); }
template <class T>
inline unsigned __match_any_sync(unsigned mask, T value) {
    return (unsigned) spemu::warp_op(spemu::WARP_MATCH_ANY, mask, spemu::to_bits(value), 0, 0);
}
template <class T>
inline unsigned __match_all_sync(unsigned mask, T value, int* pred) {
    const unsigned r = (unsigned) spemu::warp_op(spemu::WARP_MATCH_ALL, mask, spemu::to_bits(value), 0, 0);
    *pred = r != 0;
    return r;
}
inline unsigned __reduce_add_sync(unsigned mask, unsigned v) { return (unsigned) spemu::warp_op(spemu::WARP_REDUCE_ADD, mask, v, 0, 0); }
inline int __reduce_add_sync(unsigned mask, int v) { return (int) spemu::warp_op(spemu::WARP_REDUCE_ADD, mask, (unsigned) v, 0, 1); }
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) { return (unsigned) spemu::warp_op(spemu::WARP_REDUCE_MIN, mask, v, 0, 0); }
inline int __reduce_min_sync(unsigned mask, int v) { return (int) spemu::warp_op(spemu::WARP_REDUCE_MIN, mask, (unsigned) v, 0, 1); }
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) { return (unsigned) spemu::warp_op(spemu::WARP_REDUCE_MAX, mask, v, 0, 0); }
inline int __reduce_max_sync(unsigned mask, int v) { return (int) spemu::warp_op(spemu::WARP_REDUCE_MAX, mask, (unsigned) v, 0, 1); }
inline unsigned __reduce_and_sync(unsigned mask, unsigned v) { return (unsigned) spemu::warp_op(spemu::WARP_REDUCE_AND, mask, v, 0, 0); }
inline unsigned __reduce_or_sync(unsigned mask, unsigned v) { return (unsigned) spemu::warp_op(spemu::WARP_REDUCE_OR, mask, v, 0, 0); }
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v) { return (unsigned) spemu::warp_op(spemu::WARP_REDUCE_XOR, mask, v, 0, 0); }

// ---- atomics (device-wide: blocks may run on several OS threads) --------------------------------------

#define SPEMU_ATOMIC_FETCH(name, builtin, T) \
    inline T name(T* p, T v) { return builtin(p, v, __ATOMIC_SEQ_CST); }
SPEMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, int)
SPEMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, unsigned)
SPEMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, unsigned long long)
SPEMU_ATOMIC_FETCH(atomicSub, __atomic_fetch_sub, int)
SPEMU_ATOMIC_FETCH(atomicSub, __atomic_fetch_sub, unsigned)
SPEMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, int)
SPEMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, unsigned)
SPEMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, unsigned long long)
SPEMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, int)
SPEMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, unsigned)
SPEMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, unsigned long long)
SPEMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, int)
SPEMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, unsigned)
SPEMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, unsigned long long)
SPEMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, int)
SPEMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, unsigned)
SPEMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, unsigned long long)
#undef SPEMU_ATOMIC_FETCH

namespace spemu {
// Read-modify-write through compare-and-swap on the value's bits: op(old) gives the new value.
template <class T, class Bits, class Op>
inline T atomic_rmw(T* p, Op op) {
    Bits* b = reinterpret_cast<Bits*>(p);
    Bits old = __atomic_load_n(b, __ATOMIC_RELAXED);
    for (;;) {
        const Bits next = bit_cast<Bits>(op(bit_cast<T>(old)));
        if (__atomic_compare_exchange_n(b, &old, next, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return bit_cast<T>(old);
    }
}
}  // namespace spemu

inline float atomicAdd(float* p, float v) { return spemu::atomic_rmw<float, uint32_t>(p, [v](float o) { return o + v; }); }
inline double atomicAdd(double* p, double v) { return spemu::atomic_rmw<double, uint64_t>(p, [v](double o) { return o + v; }); }
inline float atomicExch(float* p, float v) { return spemu::atomic_rmw<float, uint32_t>(p, [v](float) { return v; }); }
#define SPEMU_ATOMIC_MINMAX(T)                                                                                 \
    inline T atomicMax(T* p, T v) { return spemu::atomic_rmw<T, T>(p, [v](T o) { return o < v ? v : o; }); } \
    inline T atomicMin(T* p, T v) { return spemu::atomic_rmw<T, T>(p, [v](T o) { return v < o ? v : o; }); }
SPEMU_ATOMIC_MINMAX(int)
SPEMU_ATOMIC_MINMAX(unsigned)
SPEMU_ATOMIC_MINMAX(long long)
SPEMU_ATOMIC_MINMAX(unsigned long long)
#undef SPEMU_ATOMIC_MINMAX
// ((old >= limit) ? 0 : old + 1) and (((old == 0) || (old > limit)) ? limit : old - 1), as CUDA defines them.
inline unsigned atomicInc(unsigned* p, unsigned limit) {
    return spemu::atomic_rmw<unsigned, unsigned>(p, [limit](unsigned o) { return o >= limit ? 0u : o + 1; });
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
    return spemu::atomic_rmw<unsigned, unsigned>(p, [limit](unsigned o) { return o == 0 || o > limit ? limit : o - 1; });
}
#define SPEMU_ATOMIC_CAS(T)                                                                    \
    inline T atomicCAS(T* p, T compare, T v) {                                                  \
        __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
        return compare;                                                                         \
    }
SPEMU_ATOMIC_CAS(int)
SPEMU_ATOMIC_CAS(unsigned)
SPEMU_ATOMIC_CAS(unsigned long long)
SPEMU_ATOMIC_CAS(unsigned short)
#undef SPEMU_ATOMIC_CAS

// ---- loads, bits, conversions -------------------------------------------------------------------------

template <class T>
inline T __ldg(const T* p) { return *p; }
template <class T>
inline T __ldcg(const T* p) { return *p; }
template <class T>
inline T __ldcs(const T* p) { return *p; }
template <class T>
inline void __stcs(T* p, T v) { *p = v; }
template <class T>
inline void __stcg(T* p, T v) { *p = v; }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned) x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long) x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned) (((unsigned long long) a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int) (((long long) a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long) (((unsigned __int128) a * b) >> 64);
}
inline int __mul24(int a, int b) { return (int) ((long long) ((a << 8) >> 8) * ((b << 8) >> 8)); }
inline int __float_as_int(float f) { return spemu::bit_cast<int>(f); }
inline unsigned __float_as_uint(float f) { return spemu::bit_cast<unsigned>(f); }
inline float __int_as_float(int i) { return spemu::bit_cast<float>(i); }
inline float __uint_as_float(unsigned i) { return spemu::bit_cast<float>(i); }
inline long long __double_as_longlong(double d) { return spemu::bit_cast<long long>(d); }
inline double __longlong_as_double(long long i) { return spemu::bit_cast<double>(i); }
inline int __float2int_rn(float f) { return (int) nearbyintf(f); }
inline int __float2int_rz(float f) { return (int) f; }
inline int __float2int_rd(float f) { return (int) floorf(f); }
inline int __float2int_ru(float f) { return (int) ceilf(f); }
inline float __int2float_rn(int i) { return (float) i; }

// ---- math ---------------------------------------------------------------------------------------------

using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

// min/max as CUDA overloads them: integers in the usual arithmetic conversions, floating point as fmin/fmax
// (a NaN operand yields the other one).
template <class A, class B, class = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> min(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point<C>::value) return std::fmin((C) a, (C) b);
    else return (C) a < (C) b ? (C) a : (C) b;
}
template <class A, class B, class = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> max(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point<C>::value) return std::fmax((C) a, (C) b);
    else return (C) a < (C) b ? (C) b : (C) a;
}
inline unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned umax(unsigned a, unsigned b) { return a < b ? b : a; }
inline long long llmin(long long a, long long b) { return a < b ? a : b; }
inline long long llmax(long long a, long long b) { return a < b ? b : a; }

namespace spemu {
// sin(πx) and cos(πx): x reduced exactly to r in [-1, 1], then to a quadrant q and f in [-1/4, 1/4] (exact in
// double), so integers and half-integers give exact zeros and ones as CUDA's do; otherwise within an ulp.
inline void sincospi(double x, double* s, double* c) {
    const double r = std::remainder(x, 2.0);
    const double q = std::nearbyint(2.0 * r);
    const double f = r - 0.5 * q;
    const double sf = std::sin(M_PI * f), cf = std::cos(M_PI * f);
    switch (((int) q + 4) & 3) {
        case 0: *s = sf; *c = cf; break;
        case 1: *s = cf; *c = -sf; break;
        case 2: *s = -sf; *c = -cf; break;
        default: *s = -cf; *c = sf; break;
    }
}
}  // namespace spemu

inline void sincospif(float x, float* s, float* c) {
    double sd, cd;
    spemu::sincospi(x, &sd, &cd);
    *s = (float) sd;
    *c = (float) cd;
}
inline void sincospi(double x, double* s, double* c) { spemu::sincospi(x, s, c); }
inline float sinpif(float x) { float s, c; sincospif(x, &s, &c); return s; }
inline float cospif(float x) { float s, c; sincospif(x, &s, &c); return c; }
inline double sinpi(double x) { double s, c; spemu::sincospi(x, &s, &c); return s; }
inline double cospi(double x) { double s, c; spemu::sincospi(x, &s, &c); return c; }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float rsqrtf(float x) { return (float) (1.0 / std::sqrt((double) x)); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }  // NaN -> 0
inline float saturate(float x) { return __saturatef(x); }
