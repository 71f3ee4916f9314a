// Kernels every adapter family uses around cuFFT's float32 transforms: the epilogues that store or
// accumulate a float32 result into any dtype (straight or transposed), widening inputs to float32,
// transforms over an axis of length 1, and a kernel that holds a stream for profiling. Loaded by
// org.spectralpeft.cuda.internal.CommonKernels.
#include "dtype.cuh"
#include "partial_sums.cuh"

extern "C" {

// dst[i] = the sum of `count` partial results, parts[p·stride + i] for p = 0, 1, …, added in that order (a product
// split over its inner dimension), for i < n.
__global__ void spectralpeft_sum_parts(
        const float* __restrict__ parts, long long stride, int count, long long n, float* __restrict__ dst) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        dst[i] = sum_of_parts(parts, i, count, stride);
    }
}

// Epilogue over a rows × cols matrix: dst = src (mode 0), dst += src (1) or dst -= src (2), with
// dst in any DType. src rows are srcPitch floats apart (the padded layout of an in-place C2R);
// dst is dense.
__global__ void spectralpeft_epilogue(
        const float* __restrict__ src, long long srcPitch, void* __restrict__ dst, int dtype,
        long long rows, int cols, int mode) {
    const int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= cols) return;
    for (long long p = blockIdx.y; p < rows; p += gridDim.y) {
        const float v = src[p * srcPitch + q];
        const long long i = p * cols + q;
        if (mode == 0) {
            store_from_float(dst, i, dtype, v);
        } else {
            const float w = load_as_float(dst, i, dtype);
            store_from_float(dst, i, dtype, mode == 1 ? w + v : w - v);
        }
    }
}

// The epilogue of a result computed transposed (a materialize whose row transforms ran along d_out):
// src holds `rows` rows of the transposed matrices, flattened over layers from row `firstRow` (row R
// is column R mod dIn of layer R / dIn), each `cols` = d_out floats long, srcPitch floats apart. dst
// (any DType, dense layers × d_out × d_in) gets them as columns, per mode as in spectralpeft_epilogue. A 32×32 tile goes through shared memory so that both the reads (along a src
// row) and the writes (along a dst row) are coalesced; 256 threads are 8 rows of 32 lanes.
#define TRANSPOSE_TILE 32
__global__ void __launch_bounds__(256) spectralpeft_epilogue_transposed(
        const float* __restrict__ src, long long srcPitch, void* __restrict__ dst, int dtype,
        long long firstRow, long long rows, int cols, int dIn, int mode) {
    __shared__ float tile[TRANSPOSE_TILE][TRANSPOSE_TILE + 1];
    const int lane = threadIdx.x % TRANSPOSE_TILE;
    const int sub = threadIdx.x / TRANSPOSE_TILE;
    const int step = blockDim.x / TRANSPOSE_TILE;
    const int p0 = blockIdx.x * TRANSPOSE_TILE;
    const long long rowTiles = (rows + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
    for (long long rt = blockIdx.y; rt < rowTiles; rt += gridDim.y) {
        const long long r0 = rt * TRANSPOSE_TILE;
        for (int i = sub; i < TRANSPOSE_TILE; i += step) {
            const long long r = r0 + i;
            const int p = p0 + lane;
            if (r < rows && p < cols) tile[i][lane] = src[r * srcPitch + p];
        }
        __syncthreads();
        // this lane writes one column of dst (src row r0 + lane) throughout: place it once, not per element
        const long long r = r0 + lane;
        const long long R = firstRow + r;
        const long long layer = R / dIn;
        const long long column = (layer * cols + p0) * dIn + (R - layer * dIn);
        for (int i = sub; i < TRANSPOSE_TILE; i += step) {
            const int p = p0 + i;
            if (r < rows && p < cols) {
                const long long at = column + (long long) i * dIn;
                const float v = tile[lane][i];
                if (mode == 0) {
                    store_from_float(dst, at, dtype, v);
                } else {
                    const float w = load_as_float(dst, at, dtype);
                    store_from_float(dst, at, dtype, mode == 1 ? w + v : w - v);
                }
            }
        }
        __syncthreads();
    }
}

// Widen any-dtype input to float32 (cuFFT's real transforms take float32): dst[i] = src[i] for
// i < count, and zero for count <= i < total (padding rows of a batch rounded up to a plan's size).
__global__ void spectralpeft_to_float32(const void* __restrict__ src, int dtype,
                                     float* __restrict__ dst, long long count, long long total) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < total;
         i += (long long) gridDim.x * blockDim.x) {
        dst[i] = i < count ? load_as_float(src, i, dtype) : 0.0f;
    }
}

// Transforms of length 1 (an axis of size 1), which are copies: direction 0 is C2R (keep the real
// part), direction 1 is R2C (value, 0). Item i is read at src + i·srcDist and written at dst + i·dstDist
// (distances in floats).
__global__ void spectralpeft_length_one_transform(const float* __restrict__ src, long long srcDist,
                                               float* __restrict__ dst, long long dstDist,
                                               long long count, int direction) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < count;
         i += (long long) gridDim.x * blockDim.x) {
        const float v = src[i * srcDist];
        dst[i * dstDist] = v;
        if (direction == 1) dst[i * dstDist + 1] = 0.0f;
    }
}

// Profiling only (stage profiles): keeps the stream busy for about `nanoseconds` of device time, so that
// the host can queue a whole call behind it and the call then runs without waiting for the host. Each
// stage's CUDA-event time is then the device's alone. An empty kernel where device code is not compiled
// (the CPU emulation of these kernels).
__global__ void spectralpeft_hold_stream(long long nanoseconds) {
#ifdef __CUDA_ARCH__
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        __nanosleep(10000);
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < (unsigned long long) nanoseconds);
#endif
}

}  // extern "C"
