// Dynamic shared memory (the launch's sharedMemBytes), declared inside a kernel or device function:
//   SPEFT_DYNAMIC_SHARED(float, tile);   // float* const tile = the block's dynamic shared area
// Under nvcc this is the usual extern __shared__ array (one name for every kernel, raw bytes aligned to 16,
// so kernels using different element types do not clash). Under the CPU kernel runtime (cuda_cpu.h) it is
// the block's dynamic area, filled with NaN bytes (0xff) before the block starts.
#pragma once

#ifdef SPECTRALPEFT_CUDA_CPU
#define SPEFT_DYNAMIC_SHARED(T, name) T* const name = static_cast<T*>(spemu::dynamic_shared())
#else
#define SPEFT_DYNAMIC_SHARED(T, name)                                        \
    extern __shared__ __align__(16) unsigned char speft_dynamic_shared_[]; \
    T* const name = reinterpret_cast<T*>(speft_dynamic_shared_)
#endif
