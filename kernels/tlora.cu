// TLoRA's kernels (DESIGN.md, TLoRA): a tensor-ring operator M with cores A_d of shape (J_d, I_d, R, R),
// M[ō, ī] = tr(A_1[o1, i1]⋯A_D[oD, iD]), applied to rows without ever forming M (the transform T, its
// transpose, the TTM residual), and the gradients of ⟨w, M·v⟩ with respect to every core. Everything
// else (W0's product, the LoRA and TR residuals) is cuBLAS. Loaded by
// org.spectralpeft.tlora.cuda.TLoRAKernels.
//
// A ring is described by a plan of ints: D, R, the D output factors J_d, the D input factors I_d, and the D
// offsets of the cores in one float array (each core (J_d, I_d, R, R), row-major, the authors' layout).
// Multi-indices are row-major (the first factor varies slowest).
//
// One block works on one row at a time, in shared memory: the row, the cores, and the ring state. The
// state is carried for one starting bond a at a time (the trace is a sum over a): after contracting the
// modes in some order, it holds one index per mode (o_d where contracted, i_d where not) and the bond,
// bond-major ([b][m_1]…[m_D]) so that neighbouring threads read neighbouring words.
#include "dtype.cuh"
#include "shared_memory.cuh"

#define TLORA_BLOCK 256
// The largest ring rank the kernels hold: one register per bond of an output.
#define TLORA_MAX_RING 16
// The largest number of factors.
#define TLORA_MAX_ORDER 8

namespace {

struct Ring {
    int order;
    int rank;
    int out[TLORA_MAX_ORDER];  // the operator's output factors (swapped with in[] when transposed)
    int in[TLORA_MAX_ORDER];
    int core[TLORA_MAX_ORDER];  // offset of core d in the staged (shared) cores
};

// Reads the plan into g (shared: the ring's shape is indexed by mode at run time, which registers cannot
// be) and stages the cores in shared memory as the operator's [o][i][b][c] (for the transposed operator,
// the cores' two factor indices swapped: Mᵀ[ī, ō] = tr(∏ A_d[o_d, i_d])).
__device__ void tlora_stage(const int* __restrict__ plan, const float* __restrict__ cores, int transposed,
                            Ring& g, float* staged) {
    const int order = plan[0];
    const int bonds = plan[1] * plan[1];
    if (threadIdx.x == 0) {
        g.order = order;
        g.rank = plan[1];
    }
    int offset = 0;
    for (int d = 0; d < order; d++) {
        const int J = plan[2 + d];
        const int I = plan[2 + order + d];
        const int opIn = transposed ? J : I;
        if (threadIdx.x == 0) {
            g.out[d] = transposed ? I : J;
            g.in[d] = opIn;
            g.core[d] = offset;
        }
        const float* src = cores + plan[2 + 2 * order + d];
        const int n = J * I * bonds;
        for (int e = threadIdx.x; e < n; e += blockDim.x) {
            // e indexes the staged [o][i][bonds]; the source is [J][I][bonds]
            const int bond = e % bonds;
            const int o = (e / bonds) / opIn;
            const int i = (e / bonds) % opIn;
            staged[offset + e] = src[transposed ? (i * I + o) * bonds + bond : e];
        }
        offset += n;
    }
    __syncthreads();
}

// One mode product of the state: mode m's input index i is contracted with core m, giving its output index
// o. in holds nbIn bonds (1: the single bond is bondIn); out gets all rank bonds, or, when close ≥ 0, only
// bond close, added into out: the ring closed. pre and post are the sizes of the modes before and after m,
// as they stand.
__device__ void tlora_step(const float* in, int nbIn, int bondIn, float* out, int close,
                           const float* core, int rank, int I, int J, int pre, int post) {
    const int inSize = pre * I * post;
    const int outSize = pre * J * post;
    for (int e = threadIdx.x; e < outSize; e += blockDim.x) {
        const int q = e % post;
        const int o = (e / post) % J;
        const int p = e / post / J;
        float acc[TLORA_MAX_RING];
#pragma unroll
        for (int c = 0; c < TLORA_MAX_RING; c++) acc[c] = 0.f;
        for (int b = 0; b < nbIn; b++) {
            const int bond = nbIn == 1 ? bondIn : b;
            const float* src = in + b * inSize + p * I * post + q;
            for (int i = 0; i < I; i++) {
                const float v = src[i * post];
                const float* k = core + ((o * I + i) * rank + bond) * rank;
                if (close >= 0) {
                    acc[0] = fmaf(v, k[close], acc[0]);
                } else {
#pragma unroll
                    for (int c = 0; c < TLORA_MAX_RING; c++) {
                        if (c < rank) acc[c] = fmaf(v, k[c], acc[c]);
                    }
                }
            }
        }
        if (close >= 0) {
            out[e] += acc[0];
        } else {
#pragma unroll
            for (int c = 0; c < TLORA_MAX_RING; c++) {
                if (c < rank) out[c * outSize + e] = acc[c];
            }
        }
    }
    __syncthreads();
}

// The product of the current sizes of modes [from, to): out[d] where contracted, in[d] where not.
__device__ __forceinline__ int tlora_sizes(const Ring& g, unsigned contracted, int from, int to) {
    int n = 1;
    for (int d = from; d < to; d++) n *= (contracted >> d) & 1u ? g.out[d] : g.in[d];
    return n;
}

}  // namespace

extern "C" {

// dst row t = (dst row t if accumulate) + scale·M·(src row t), for t < rows; M, or Mᵀ when transposed. src is
// rows × Σ-in float32, or null for the rows of the identity (row t = e_t; then rows is M's input length).
// Dynamic shared memory: the staged cores (coreFloats), the row, two states of maxState·R floats and the
// result row, with maxState ≥ every intermediate state's size (the host passes ∏ max(J_d, I_d)).
__global__ void __launch_bounds__(TLORA_BLOCK) tlora_ring_apply(
        const float* __restrict__ cores, const int* __restrict__ plan, int transposed, int coreFloats,
        int maxState, const float* __restrict__ src, long long rows, float scale, float* __restrict__ dst,
        int accumulate) {
    SPEFT_DYNAMIC_SHARED(float, shared);
    __shared__ Ring g;
    float* staged = shared;
    tlora_stage(plan, cores, transposed, g, staged);
    const int inLength = tlora_sizes(g, 0u, 0, g.order);
    const int outLength = tlora_sizes(g, ~0u, 0, g.order);
    float* row = staged + coreFloats;
    float* const even = row + maxState;  // the states after even and odd steps
    float* const odd = even + maxState * g.rank;
    float* const result = odd + maxState * g.rank;
    for (long long t = blockIdx.x; t < rows; t += gridDim.x) {
        __syncthreads();  // the previous row's result is written out
        for (int j = threadIdx.x; j < inLength; j += blockDim.x) {
            row[j] = src != nullptr ? src[t * inLength + j] : (j == t ? 1.f : 0.f);
        }
        for (int j = threadIdx.x; j < outLength; j += blockDim.x) result[j] = 0.f;
        __syncthreads();
        for (int a = 0; a < g.rank; a++) {
            const float* in = row;
            int nbIn = 1;
            for (int m = 0; m < g.order; m++) {
                const bool last = m == g.order - 1;
                const unsigned before = (1u << m) - 1u;  // modes < m are contracted
                float* out = last ? result : (m & 1) ? odd : even;
                tlora_step(in, nbIn, a, out, last ? a : -1, staged + g.core[m], g.rank, g.in[m], g.out[m],
                           tlora_sizes(g, before, 0, m), tlora_sizes(g, before, m + 1, g.order));
                in = out;
                nbIn = g.rank;
            }
        }
        for (int j = threadIdx.x; j < outLength; j += blockDim.x) {
            const float v = scale * result[j];
            dst[t * outLength + j] = accumulate ? dst[t * outLength + j] + v : v;
        }
    }
}

// partials[chunk][offset_k + e] = scale·Σ_{t in chunk} ∂⟨w_t, M·v_t⟩/∂(core k)[e], for core k = blockIdx.y and
// the chunk of rowsPerChunk rows blockIdx.x: by the trace's cyclic symmetry, ∂/∂A_k[o,i,b,c] is
// Σ w[ō]·v[ī]·(A_{k+1}⋯A_D·A_1⋯A_{k−1})[c, b], so for each starting bond c the other cores are contracted with
// v in that order and the state, which keeps mode k's input index and the end bond b, meets w. v is rows ×
// Σ-in, w rows × Σ-out, float32. A fixed order throughout: the same inputs give the same bits.
// Dynamic shared memory: staged cores, v's row, w's row, two states of maxState·R, and core k's sum
// (maxCore floats).
__global__ void __launch_bounds__(TLORA_BLOCK) tlora_ring_gradient(
        const float* __restrict__ cores, const int* __restrict__ plan, int coreFloats, int maxState, int maxCore,
        const float* __restrict__ v, const float* __restrict__ w, long long rows, int rowsPerChunk, float scale,
        float* __restrict__ partials) {
    SPEFT_DYNAMIC_SHARED(float, shared);
    __shared__ Ring g;
    float* staged = shared;
    tlora_stage(plan, cores, 0, g, staged);
    const int k = blockIdx.y;
    const int R = g.rank;
    const int inLength = tlora_sizes(g, 0u, 0, g.order);
    const int outLength = tlora_sizes(g, ~0u, 0, g.order);
    float* vRow = staged + coreFloats;
    float* wRow = vRow + maxState;
    float* const even = wRow + maxState;  // the states after even and odd steps
    float* const odd = even + maxState * R;
    float* const sum = odd + maxState * R;
    const int I = g.in[k];
    const int J = g.out[k];
    const int coreLength = J * I * R * R;
    for (int e = threadIdx.x; e < coreLength; e += blockDim.x) sum[e] = 0.f;
    const unsigned others = ((1u << g.order) - 1u) & ~(1u << k);
    const int pre = tlora_sizes(g, others, 0, k);  // every mode but k contracted: output sizes
    const int post = tlora_sizes(g, others, k + 1, g.order);
    const long long first = (long long) blockIdx.x * rowsPerChunk;
    const long long end = min(rows, first + rowsPerChunk);
    for (long long t = first; t < end; t++) {
        __syncthreads();
        for (int j = threadIdx.x; j < inLength; j += blockDim.x) vRow[j] = v[t * inLength + j];
        for (int j = threadIdx.x; j < outLength; j += blockDim.x) wRow[j] = w[t * outLength + j];
        __syncthreads();
        for (int c = 0; c < R; c++) {
            // contract the other modes in ring order k+1, …, D, 1, …, k−1, starting from bond c
            const float* in = vRow;
            int nbIn = 1;
            unsigned contracted = 0u;
            for (int step = 1; step < g.order; step++) {
                const int m = (k + step) % g.order;
                float* out = (step & 1) ? odd : even;
                tlora_step(in, nbIn, c, out, -1, staged + g.core[m], R, g.in[m], g.out[m],
                           tlora_sizes(g, contracted, 0, m), tlora_sizes(g, contracted, m + 1, g.order));
                contracted |= 1u << m;
                in = out;
                nbIn = R;
            }
            // sum[o][i][b][c] += Σ_{p, q} w[p][o][q]·state[b][p][i][q] (one order: the bond is c when no other mode)
            const int size = pre * I * post;
            for (int e = threadIdx.x; e < J * I * nbIn; e += blockDim.x) {
                const int b = e % nbIn;
                const int i = (e / nbIn) % I;
                const int o = e / nbIn / I;
                float acc = 0.f;
                for (int p = 0; p < pre; p++) {
                    const float* ws = wRow + (p * J + o) * post;
                    const float* ss = in + b * size + (p * I + i) * post;
                    for (int q = 0; q < post; q++) acc = fmaf(ws[q], ss[q], acc);
                }
                const int bond = nbIn == 1 ? c : b;
                sum[((o * I + i) * R + bond) * R + c] += acc;
            }
            __syncthreads();
        }
    }
    __syncthreads();
    float* dst = partials + (long long) blockIdx.x * coreFloats + g.core[k];
    for (int e = threadIdx.x; e < coreLength; e += blockDim.x) dst[e] = scale * sum[e];
}

// out[e] = Σ_chunk partials[chunk][e] in chunk order, in double, rounded once (e < length).
__global__ void tlora_sum_chunks(const float* __restrict__ partials, int chunks, long long length,
                                 float* __restrict__ out) {
    const long long e = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= length) return;
    double s = 0.0;
    for (int c = 0; c < chunks; c++) s += partials[c * length + e];
    out[e] = (float) s;
}

}  // extern "C"
