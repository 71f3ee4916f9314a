// Element types shared by the Java side (DType.code()) and the kernels.
// Everything is computed in float32; these helpers convert at the edges.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>

enum DTypeCode : int { DT_FLOAT32 = 0, DT_FLOAT16 = 1, DT_BFLOAT16 = 2 };

__device__ __forceinline__ float load_as_float(const void* base, long long i, int dtype) {
    switch (dtype) {
        case DT_FLOAT16:  return __half2float(static_cast<const __half*>(base)[i]);
        case DT_BFLOAT16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
        default:          return static_cast<const float*>(base)[i];
    }
}

// Round-to-nearest-even, as torch's .to(dtype) does.
__device__ __forceinline__ void store_from_float(void* base, long long i, int dtype, float v) {
    switch (dtype) {
        case DT_FLOAT16:  static_cast<__half*>(base)[i] = __float2half_rn(v); break;
        case DT_BFLOAT16: static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(v); break;
        default:          static_cast<float*>(base)[i] = v; break;
    }
}
