// Runs the CUDA kernels of kernels/*.cu on the CPU, one thread after another, so their index arithmetic
// and arithmetic can be checked where there is no GPU. Faithful only because the kernels use no shared
// memory, no barriers, no atomics and no warp operations: each thread's work is independent of the
// order in which threads run.
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <cmath>
#include <cstdint>

// Strip the CUDA qualifiers; kernels become plain functions.
#undef __global__
#undef __device__
#undef __forceinline__
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct EmuIndex { unsigned x, y, z; };
inline thread_local EmuIndex blockIdx, threadIdx, blockDim, gridDim;

using std::min;
using std::max;

inline void sincospif(float x, float* s, float* c) {
    *s = (float) std::sin(M_PI * (double) x);  // correctly rounded up to double's error; CUDA's is within 1 ulp
    *c = (float) std::cos(M_PI * (double) x);
}

// launch(kernel, gridX, gridY, blockX, args...): every (block, thread) in order.
template <typename Kernel, typename... Args>
void launch(Kernel kernel, unsigned gx, unsigned gy, unsigned bx, Args... args) {
    gridDim = {gx, gy, 1};
    blockDim = {bx, 1, 1};
    for (unsigned y = 0; y < gy; ++y)
        for (unsigned x = 0; x < gx; ++x)
            for (unsigned t = 0; t < bx; ++t) {
                blockIdx = {x, y, 0};
                threadIdx = {t, 0, 0};
                kernel(args...);
            }
}
