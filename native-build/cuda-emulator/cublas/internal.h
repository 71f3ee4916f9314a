// Internals of libcublas.so.13 shared by its translation units: the handle and the element formats.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cublas_api.h"
#include "emu.h"

struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
    cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
    cublasAtomicsMode_t atomics_mode = CUBLAS_ATOMICS_NOT_ALLOWED;
    void* workspace = nullptr;  // user workspace (cublasSetWorkspace); nullptr: the library's own pool
    size_t workspace_bytes = 0;
};

namespace cublas_emu {

/** `handle` if it is a live handle; otherwise nullptr, after reporting a destroyed (or foreign) one. */
cublasContext* live_handle(cublasHandle_t handle, const char* call);

/** cuBLAS works through the runtime API, which binds the primary context to a thread on first use. */
inline void bind_context() {
    if (!emu::has_current_context()) emu::ensure_runtime_context();
}

inline size_t element_size(cudaDataType t) {
    switch (t) {
        case CUDA_R_8I: return 1;
        case CUDA_R_16F:
        case CUDA_R_16BF: return 2;
        case CUDA_R_32F:
        case CUDA_R_32I: return 4;
        case CUDA_R_64F: return 8;
        default: return 0;
    }
}

inline double half_to_double(uint16_t h) {
    int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    double v;
    if (exponent == 0) v = std::ldexp((double) mantissa, -24);
    else if (exponent == 31) v = mantissa ? NAN : INFINITY;
    else v = std::ldexp((double) (mantissa | 0x400), exponent - 25);
    return sign ? -v : v;
}

inline double bfloat16_to_double(uint16_t b) {
    uint32_t bits = (uint32_t) b << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

/**
 * Rounds x once, to nearest with ties to even, to a binary format with `mantissa` stored bits and
 * `exponent_bits` exponent bits (IEEE layout, subnormals, overflow to infinity): half is (10, 5),
 * bfloat16 (7, 8). Independent of the floating-point rounding mode.
 */
inline uint16_t round_to_small_float(double x, int mantissa, int exponent_bits) {
    const uint32_t sign = std::signbit(x) ? 1u << (mantissa + exponent_bits) : 0;
    const int bias = (1 << (exponent_bits - 1)) - 1;
    const uint32_t max_field = (1u << exponent_bits) - 1;
    if (std::isnan(x)) return (uint16_t) (sign | max_field << mantissa | 1u << (mantissa - 1));
    double a = std::fabs(x);
    if (std::isinf(a)) return (uint16_t) (sign | max_field << mantissa);
    if (a == 0) return (uint16_t) sign;
    int e;
    std::frexp(a, &e);                    // a = f * 2^e, f in [0.5, 1): a's exponent is e - 1
    int exponent = std::max(e - 1, 1 - bias);  // below the normal range the quantum stays 2^(emin - mantissa)
    double q = std::ldexp(a, mantissa - exponent);  // a in units of the quantum: exact, q < 2^(mantissa + 1)
    double whole = std::floor(q), fraction = q - whole;
    if (fraction > 0.5 || (fraction == 0.5 && std::fmod(whole, 2.0) != 0)) whole += 1;
    uint32_t r = (uint32_t) whole;
    if (r < (1u << mantissa)) return (uint16_t) (sign | r);  // subnormal (or rounded up to the smallest normal below)
    if (r == (1u << (mantissa + 1))) {  // carried into the next binade
        r >>= 1;
        exponent += 1;
    }
    if ((uint32_t) (exponent + bias) >= max_field) return (uint16_t) (sign | max_field << mantissa);
    return (uint16_t) (sign | (uint32_t) (exponent + bias) << mantissa | (r - (1u << mantissa)));
}

inline double load_element(const void* base, cudaDataType t, int64_t index) {
    switch (t) {
        case CUDA_R_8I: return ((const int8_t*) base)[index];
        case CUDA_R_16F: return half_to_double(((const uint16_t*) base)[index]);
        case CUDA_R_16BF: return bfloat16_to_double(((const uint16_t*) base)[index]);
        case CUDA_R_32F: return ((const float*) base)[index];
        case CUDA_R_32I: return ((const int32_t*) base)[index];
        case CUDA_R_64F: return ((const double*) base)[index];
        default: return NAN;
    }
}

inline void store_element(void* base, cudaDataType t, int64_t index, double v) {
    switch (t) {
        case CUDA_R_16F: ((uint16_t*) base)[index] = round_to_small_float(v, 10, 5); break;
        case CUDA_R_16BF: ((uint16_t*) base)[index] = round_to_small_float(v, 7, 8); break;
        case CUDA_R_32F: ((float*) base)[index] = (float) v; break;  // the host rounds to nearest even
        case CUDA_R_64F: ((double*) base)[index] = v; break;
        case CUDA_R_32I: {
            // 32-bit integer accumulation wraps on the device
            double w = std::fmod(std::nearbyint(v), 4294967296.0);
            ((int32_t*) base)[index] = (int32_t) (uint32_t) (int64_t) (w < 0 ? w + 4294967296.0 : w);
            break;
        }
        default: break;
    }
}

}  // namespace cublas_emu
