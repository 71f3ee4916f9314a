// Small kernels exercising each feature of the CPU kernel runtime; valid CUDA (run.sh compiles them with
// nvcc -ptx too). run_selftest.cpp launches them and checks the results exactly.
#include "../../../../kernels/shared_memory.cuh"

extern "C" {

// Sum of each block's 256 inputs, in static shared memory, tree reduction with __syncthreads.
__global__ void st_block_reduce_static(const int* __restrict__ in, int* __restrict__ out, int n) {
    __shared__ int partial[256];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    partial[threadIdx.x] = i < n ? in[i] : 0;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

// The same in dynamic shared memory (blockDim.x floats); also counts slots that did not hold the NaN byte
// pattern when the block started.
__global__ void st_block_reduce_dynamic(const float* __restrict__ in, float* __restrict__ out, int* __restrict__ notNaN) {
    SPEFT_DYNAMIC_SHARED(float, partial);
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (__float_as_uint(partial[threadIdx.x]) != 0xffffffffu) atomicAdd(notNaN, 1);
    partial[threadIdx.x] = in[i];
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

// Per warp: sum by __shfl_down_sync (lane 0 writes sums[warp]); every lane's sum by __shfl_xor_sync
// (xorSums[i]); inclusive scan inside segments of 8 lanes by __shfl_up_sync (scan[i]); broadcast of lane 5
// by __shfl_sync (bcast[i]); rotation within segments of 16 lanes by __shfl_sync with width (rot[i]);
// a 64-bit shuffle.
__global__ void st_warp_shuffles(const int* __restrict__ in, int* __restrict__ sums, int* __restrict__ xorSums,
                                 int* __restrict__ scan, int* __restrict__ bcast, int* __restrict__ rot,
                                 long long* __restrict__ wide) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int lane = threadIdx.x & 31;
    const int v = in[i];
    int s = v;
    for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(0xffffffffu, s, d);
    if (lane == 0) sums[i / 32] = s;
    int x = v;
    for (int d = 1; d < 32; d <<= 1) x += __shfl_xor_sync(0xffffffffu, x, d);
    xorSums[i] = x;
    int c = v;
    for (int d = 1; d < 8; d <<= 1) {
        const int t = __shfl_up_sync(0xffffffffu, c, d, 8);
        if ((lane & 7) >= d) c += t;
    }
    scan[i] = c;
    bcast[i] = __shfl_sync(0xffffffffu, v, 5);
    rot[i] = __shfl_sync(0xffffffffu, v, lane + 1, 16);
    wide[i] = __shfl_xor_sync(0xffffffffu, (long long) v << 33, 1);
}

// Votes: ballot of (in[i] > 0), any, all; and __syncwarp / __activemask in a converged warp.
__global__ void st_votes(const int* __restrict__ in, unsigned* __restrict__ ballots, int* __restrict__ anyOut,
                         int* __restrict__ allOut, unsigned* __restrict__ active) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int p = in[i] > 0;
    const unsigned b = __ballot_sync(0xffffffffu, p);
    const int a = __any_sync(0xffffffffu, p);
    const int l = __all_sync(0xffffffffu, p);
    __syncwarp();
    if ((threadIdx.x & 31) == 0) {
        ballots[i / 32] = b;
        anyOut[i / 32] = a;
        allOut[i / 32] = l;
        active[i / 32] = __activemask();
    }
}

// Ballot by half a warp, with a mask naming only those lanes (divergent, as sm_70 allows).
__global__ void st_partial_ballot(unsigned* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    if (lane < 16) {
        const unsigned b = __ballot_sync(0x0000ffffu, lane & 1);
        if (lane == 0) out[0] = b;
    } else {
        const unsigned b = __ballot_sync(0xffff0000u, lane >= 24);
        if (lane == 16) out[1] = b;
    }
}

// Atomics from many blocks: a histogram, a float sum of ones, a 64-bit count, max/min, CAS and exchange.
__global__ void st_atomics(const int* __restrict__ in, int n, unsigned* __restrict__ bins, float* __restrict__ fsum,
                           unsigned long long* __restrict__ count, int* __restrict__ maxMin, unsigned* __restrict__ casCount) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int v = in[i];
    atomicAdd(&bins[v & 15], 1u);
    atomicAdd(fsum, 1.0f);
    atomicAdd(count, 1ull);
    atomicMax(&maxMin[0], v);
    atomicMin(&maxMin[1], v);
    atomicSub(&maxMin[2], 1);
    unsigned old = casCount[0], seen;
    do {
        seen = old;
        old = atomicCAS(&casCount[0], seen, seen + 2);
    } while (old != seen);
    atomicExch(&casCount[1], 7u);
}

// Every thread writes its indices: out[global linear id] = packed threadIdx, blockIdx, blockDim, gridDim;
// ballots[warp] = ballot of (threadIdx.y & 1), so warps are formed from linear ids x + y·bx + z·bx·by.
__global__ void st_index_3d(unsigned* __restrict__ out, unsigned* __restrict__ ballots) {
    const unsigned tid = threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
    const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    const unsigned block = blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y;
    const unsigned g = block * threads + tid;
    out[4 * g + 0] = threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16;
    out[4 * g + 1] = blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16;
    out[4 * g + 2] = blockDim.x | blockDim.y << 8 | blockDim.z << 16;
    out[4 * g + 3] = gridDim.x | gridDim.y << 8 | gridDim.z << 16;
    const unsigned b = __ballot_sync(0xffffffffu, threadIdx.y & 1);
    if ((tid & 31) == 0) ballots[g / 32] = b;
}

// __syncthreads_count/_and/_or, and a barrier that completes once the remaining threads exit (sm_70+).
__global__ void st_sync_reductions(const int* __restrict__ in, int* __restrict__ out) {
    const int p = in[threadIdx.x];
    const int c = __syncthreads_count(p);
    const int a = __syncthreads_and(p);
    const int o = __syncthreads_or(p);
    if (threadIdx.x == 0) {
        out[0] = c;
        out[1] = a;
        out[2] = o;
    }
    if (threadIdx.x >= 100) return;
    __syncthreads();
    if (threadIdx.x == 0) out[3] = 1;
}

// Warp reductions and matching of sm_80.
__global__ void st_warp_reduce_match(const int* __restrict__ in, int* __restrict__ out, unsigned* __restrict__ match) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    out[3 * (i / 32) + 0] = __reduce_add_sync(0xffffffffu, in[i]);
    out[3 * (i / 32) + 1] = __reduce_min_sync(0xffffffffu, in[i]);
    out[3 * (i / 32) + 2] = __reduce_max_sync(0xffffffffu, in[i]);
    match[i] = __match_any_sync(0xffffffffu, in[i] & 3);
}

// Deadlock: threads 0-15 wait at __syncthreads while lanes 16-31 of warp 0 wait for them at a shuffle.
__global__ void st_deadlock_divergent_sync(int* __restrict__ out) {
    if (threadIdx.x < 16) __syncthreads();
    out[threadIdx.x] = __shfl_sync(0xffffffffu, (int) threadIdx.x, 0);
}

// Deadlock: a shuffle whose mask names a lane that has exited.
__global__ void st_deadlock_exited_lane(int* __restrict__ out) {
    if (threadIdx.x == 31) return;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (int) threadIdx.x, 1);
}

// Lanes of one mask at different warp operations.
__global__ void st_disagree(unsigned* __restrict__ out) {
    if (threadIdx.x & 1) out[threadIdx.x] = __ballot_sync(0xffffffffu, 1);
    else out[threadIdx.x] = (unsigned) __shfl_sync(0xffffffffu, 1, 0);
}

// A float2 load at the address given (misaligned when it is not a multiple of 8: the GPU stops the kernel).
__global__ void st_misaligned_float2(const float* __restrict__ in, float* __restrict__ out) {
    const float2 v = *reinterpret_cast<const float2*>(in);
    out[threadIdx.x] = v.x + v.y;
}

// No synchronization: the cost of a thread.
__global__ void st_nosync(int* __restrict__ out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = 2 * i + 1;
}

// One barrier per thread and a warp reduction: the cost of switching.
__global__ void st_sync_cost(int* __restrict__ out, int n) {
    __shared__ int s[256];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = i;
    __syncthreads();
    int v = s[blockDim.x - 1 - threadIdx.x];
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    if (i < n) out[i] = v;
}

}  // extern "C"
