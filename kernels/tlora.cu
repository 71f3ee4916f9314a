// TLoRA's kernels (DESIGN.md, TLoRA): a tensor-ring operator M with cores A_d of shape (J_d, I_d, R, R),
// M[ō, ī] = tr(A_1[o1, i1]⋯A_D[oD, iD]), applied to rows without ever forming M (the transform T, its
// transpose, the TTM residual), and the two small steps of the cores' gradients that are not GEMMs: a
// permutation of the digits of C = Σ w·vᵀ and the products of the other cores. Everything else (W0's product,
// the LoRA and TR residuals, C and the gradients' contractions) is cuBLAS. Loaded by
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
// as they stand. Element (p, i, q) of a bond of in is at p·inRow + i·post + q (inRow = I·post, or more where the
// previous step padded its rows), output (p, o, q) at (p·J + o)·outPitch + q (outPitch = post, or more to pad).
__device__ void tlora_step(const float* in, int nbIn, int bondIn, float* out, int close,
                           const float* core, int rank, int I, int J, int pre, int post, int inRow, int outPitch) {
    const int inSize = pre * inRow;
    const int outSize = pre * J * outPitch;
    const int outputs = pre * J * post;
    for (int e = threadIdx.x; e < outputs; e += blockDim.x) {
        const int q = e % post;
        const int o = (e / post) % J;
        const int p = e / post / J;
        const int at = (p * J + o) * outPitch + q;
        float acc[TLORA_MAX_RING];
#pragma unroll
        for (int c = 0; c < TLORA_MAX_RING; c++) acc[c] = 0.f;
        for (int b = 0; b < nbIn; b++) {
            const int bond = nbIn == 1 ? bondIn : b;
            const float* src = in + b * inSize + p * inRow + q;
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
            out[at] += acc[0];
        } else {
#pragma unroll
            for (int c = 0; c < TLORA_MAX_RING; c++) {
                if (c < rank) out[c * outSize + at] = acc[c];
            }
        }
    }
    __syncthreads();
}

// R core values k[0..R−1] (one (o, i, bond) row of a staged core) into registers, as 16-byte loads where R is a
// multiple of 4 (the row then starts 16-byte aligned: the cores are staged at multiples of R² floats), 8-byte
// ones at R = 2.
template <int R>
__device__ __forceinline__ void tlora_core_row(const float* k, float (&kr)[R]) {
    if constexpr (R % 4 == 0) {
#pragma unroll
        for (int c = 0; c < R; c += 4) {
            const float4 v = *reinterpret_cast<const float4*>(k + c);
            kr[c] = v.x;
            kr[c + 1] = v.y;
            kr[c + 2] = v.z;
            kr[c + 3] = v.w;
        }
    } else if constexpr (R == 2) {
        const float2 v = *reinterpret_cast<const float2*>(k);
        kr[0] = v.x;
        kr[1] = v.y;
    } else {
#pragma unroll
        for (int c = 0; c < R; c++) kr[c] = k[c];
    }
}

// tlora_step for a ring rank R known at compile time, each thread on QB outputs of the same output digit o: one
// core row loaded serves QB·R multiply-adds instead of R (the step is bound by shared-memory loads). The
// thread's outputs are u, u + tasks, … among the (p, q) of that o, so that neighbouring threads read
// neighbouring state words. Each output's sum runs in tlora_step's order: the same bits.
// n / d for 0 ≤ n < 2^16 and 1 ≤ d < 2^16 by one multiply (n·m >> 32 with m = ⌊(2^32 − 1)/d⌋ + 1, exact while n·d
// < 2^32), where the hardware has no integer divide: the step's index arithmetic divided about five times per task
// of a few dozen multiply-adds. The steps' counts stay below 2^16: a state lives in a block's shared memory (at
// most 227 KB, under 2^16 floats).
struct TloraDivisor {
    unsigned d;
    unsigned m;
    __device__ __forceinline__ explicit TloraDivisor(int divisor)
        : d((unsigned) divisor), m(divisor > 1 ? 0xffffffffu / (unsigned) divisor + 1u : 0u) {}
    __device__ __forceinline__ int quotient(int n) const {
        return d == 1u ? n : (int) __umulhi((unsigned) n, m);
    }
};

template <int R, int QB>
__device__ void tlora_step_blocked(const float* in, int nbIn, int bondIn, float* out, int close,
                                   const float* core, int I, int J, int pre, int post, int inRow, int outPitch) {
    const int inSize = pre * inRow;
    const int outSize = pre * J * outPitch;
    const int n = pre * post;  // outputs per output digit
    const int tasks = (n + QB - 1) / QB;
    const TloraDivisor byTasks(tasks);
    const TloraDivisor byPost(post);
    for (int t = threadIdx.x; t < J * tasks; t += blockDim.x) {
        const int o = byTasks.quotient(t);
        const int u = t - o * tasks;
        int base[QB];  // the output's input offset in one bond's state, then its own offset
        int at[QB];
#pragma unroll
        for (int j = 0; j < QB; j++) {
            const int pq = u + j * tasks;
            const int p = byPost.quotient(pq);
            const int q = pq - p * post;
            base[j] = pq < n ? p * inRow + q : 0;  // past the end: read a valid word, write nothing
            at[j] = pq < n ? (p * J + o) * outPitch + q : -1;
        }
        float acc[QB][R];
#pragma unroll
        for (int j = 0; j < QB; j++) {
#pragma unroll
            for (int c = 0; c < R; c++) acc[j][c] = 0.f;
        }
        for (int b = 0; b < nbIn; b++) {
            const int bond = nbIn == 1 ? bondIn : b;
            const float* src = in + b * inSize;
            const float* k = core + (o * I * R + bond) * R;
            for (int i = 0; i < I; i++, k += R * R) {
                float v[QB];
#pragma unroll
                for (int j = 0; j < QB; j++) v[j] = src[base[j] + i * post];
                if (close >= 0) {
                    const float kc = k[close];
#pragma unroll
                    for (int j = 0; j < QB; j++) acc[j][0] = fmaf(v[j], kc, acc[j][0]);
                } else {
                    float kr[R];
                    tlora_core_row<R>(k, kr);
#pragma unroll
                    for (int j = 0; j < QB; j++) {
#pragma unroll
                        for (int c = 0; c < R; c++) acc[j][c] = fmaf(v[j], kr[c], acc[j][c]);
                    }
                }
            }
        }
#pragma unroll
        for (int j = 0; j < QB; j++) {
            if (at[j] < 0) continue;
            if (close >= 0) {
                out[at[j]] += acc[j][0];
            } else {
#pragma unroll
                for (int c = 0; c < R; c++) out[c * outSize + at[j]] = acc[j][c];
            }
        }
    }
    __syncthreads();
}

// One mode product (see tlora_step), register-blocked for the common ring ranks.
__device__ void tlora_step_any(const float* in, int nbIn, int bondIn, float* out, int close,
                               const float* core, int rank, int I, int J, int pre, int post, int inRow, int outPitch) {
    switch (rank) {
        case 1: tlora_step_blocked<1, 4>(in, nbIn, bondIn, out, close, core, I, J, pre, post, inRow, outPitch); break;
        case 2: tlora_step_blocked<2, 4>(in, nbIn, bondIn, out, close, core, I, J, pre, post, inRow, outPitch); break;
        case 4: tlora_step_blocked<4, 4>(in, nbIn, bondIn, out, close, core, I, J, pre, post, inRow, outPitch); break;
        case 8: tlora_step_blocked<8, 2>(in, nbIn, bondIn, out, close, core, I, J, pre, post, inRow, outPitch); break;
        default: tlora_step(in, nbIn, bondIn, out, close, core, rank, I, J, pre, post, inRow, outPitch); break;
    }
}

// The row pitch a step gives its output rows (p·J + o), which the next step reads as rows p' of (I', post') elements:
// (I' | 1)·post'. A warp of the next step reads post' consecutive words in each of 32 / post' consecutive rows; with
// the pitch an odd multiple of post' (a power of two in the authors' factorisations) those fall in distinct banks,
// where at I'·post' with I' even they met up to 16-way conflicts (the last step, post' = 1, I' = 16: most of a row's
// shared-memory wavefronts).
__device__ __forceinline__ int tlora_row_pitch(int nextIn, int nextPost) {
    return (nextIn | 1) * nextPost;
}

// The product of the current sizes of modes [from, to): out[d] where contracted, in[d] where not.
__device__ __forceinline__ int tlora_sizes(const Ring& g, unsigned contracted, int from, int to) {
    int n = 1;
    for (int d = from; d < to; d++) n *= (contracted >> d) & 1u ? g.out[d] : g.in[d];
    return n;
}

// R = 1 gradients (tlora_kron_gradient): core k's J_k·I_k entries, each summed by S_k = ⌊TLORA_BLOCK / (J_k·I_k)⌋
// threads (at least 1) over interleaved slices of the other digits, so that a small core still gives every thread a sum.
// A block's items are every core's entries × slices, core after core, slice-major within a core.
__device__ __forceinline__ int tlora_kron_splits(int entries) {
    return entries < TLORA_BLOCK ? TLORA_BLOCK / entries : 1;
}

__device__ __forceinline__ int tlora_kron_items_before(const int* plan, int k) {
    const int D = plan[0];
    int items = 0;
    for (int m = 0; m < k; m++) {
        const int entries = plan[2 + m] * plan[2 + D + m];
        items += entries * tlora_kron_splits(entries);
    }
    return items;
}

}  // namespace

extern "C" {

// dst row t = (dst row t if accumulate) + scale·M·(src row t), for t < rows; M, or Mᵀ when transposed. src is
// rows × Σ-in float32, or null for the rows of the identity (row t = e_t; then rows is M's input length).
// Dynamic shared memory: the staged cores (coreFloats), the row, two states of maxState·R floats and the
// result row, with maxState ≥ every intermediate state's size, padding included (tlora_row_pitch pads one mode at a
// time: the host passes the largest ∏_d max(J_d, I_d) with one factor after the first one more).
// At least 4 blocks per SM: the row pitches' arithmetic would otherwise take it to 80 registers (3 blocks).
__global__ void __launch_bounds__(TLORA_BLOCK, 4) tlora_ring_apply(
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
            int inRow = inLength;  // the row itself: one row, no padding
            for (int m = 0; m < g.order; m++) {
                const bool last = m == g.order - 1;
                const unsigned before = (1u << m) - 1u;  // modes < m are contracted
                float* out = last ? result : (m & 1) ? odd : even;
                const int post = tlora_sizes(g, before, m + 1, g.order);
                // the result row is not padded; a state's rows are, for the next step's reads
                const int outPitch = last ? post : tlora_row_pitch(g.in[m + 1], post / g.in[m + 1]);
                tlora_step_any(in, nbIn, a, out, last ? a : -1, staged + g.core[m], g.rank, g.in[m], g.out[m],
                               tlora_sizes(g, before, 0, m), post, inRow, outPitch);
                inRow = outPitch;
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

// dst[e] = src[Σ_j digit_j(e)·stride_j] for e < n0⋯n4: dst row-major (n0, …, n4), its axis j at stride s_j in
// src. One thread per element of dst, so writes coalesce; the reads gather. n0⋯n4 fits an int (the host checks).
__global__ void __launch_bounds__(TLORA_BLOCK) tlora_permute(
        const float* __restrict__ src, float* __restrict__ dst, int n0, int n1, int n2, int n3, int n4, int s0,
        int s1, int s2, int s3, int s4) {
    const long long total = (long long) n0 * n1 * n2 * n3 * n4;
    const long long at = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= total) return;
    int e = (int) at;
    int from = (e % n4) * s4;
    e /= n4;
    from += (e % n3) * s3;
    e /= n3;
    from += (e % n2) * s2;
    e /= n2;
    from += (e % n1) * s1;
    e /= n1;
    from += e * s0;
    dst[at] = src[from];
}

// The cores' gradients of a ring of rank 1 (a Kronecker product, M[ō, ī] = ∏_d A_d[o_d, i_d]) without C = Σ w·vᵀ:
// ∂⟨w, M·v⟩/∂A_k[o, i] = Σ_{the other digits} w[…o…]·v_k[…i…], with v_k the row v taken through every core but k
// (its digit k still an input digit). Per row that is d·ΣI_d multiply-adds for all the cores (about 130 K at
// 1280 = [8, 10, 16]) where C costs ∏J·∏I (1.6 M), and no ∏J × ∏I scratch. Each block takes rowsPerBlock rows
// in order; for each row and core k: the other cores' mode products in the cyclic order k + 1, …, D − 1, 0, …,
// k − 1 (tlora_step_any, rows padded for the next mode as tlora_ring_apply pads them, the input row for the first
// one), then v_k and w with digit k last at odd pitches ([r][i] and [r][o]: a warp reads consecutive i and a few o
// without bank conflicts; for the last core v_k as the last step writes it and w in place), then the entries' sums
// over their slices of r, added to the block's items (tlora_kron_items_before) in shared memory. The block writes
// its items to partials[block]; tlora_kron_gradient_sum adds the blocks in a fixed order. Every sum has one owner
// and one order: the bits repeat.
// Dynamic shared memory: the staged cores, the row, two states (maxState each), the row of w (∏J), the two
// rearranged rows (pairFloats each) and the items. At least 4 blocks per SM: 64 registers, no spills (left to
// itself ptxas took 48 and spilled).
__global__ void __launch_bounds__(TLORA_BLOCK, 4) tlora_kron_gradient(
        const float* __restrict__ cores, const int* __restrict__ plan, int coreFloats, int maxState, int pairFloats,
        int items, const float* __restrict__ v, const float* __restrict__ w, long long rows, int rowsPerBlock,
        float* __restrict__ partials) {
    SPEFT_DYNAMIC_SHARED(float, shared);
    __shared__ Ring g;
    float* const staged = shared;
    tlora_stage(plan, cores, 0, g, staged);
    const int D = g.order;
    const int inLength = tlora_sizes(g, 0u, 0, D);
    const int outLength = tlora_sizes(g, ~0u, 0, D);
    float* const row = staged + coreFloats;
    float* const even = row + maxState;
    float* const odd = even + maxState;
    float* const wrow = odd + maxState;
    float* const vk = wrow + outLength;
    float* const wk = vk + pairFloats;
    float* const acc = wk + pairFloats;
    for (int j = threadIdx.x; j < items; j += blockDim.x) acc[j] = 0.f;
    const long long begin = (long long) blockIdx.x * rowsPerBlock;
    const long long end = min(rows, begin + rowsPerBlock);
    for (long long t = begin; t < end; t++) {
        __syncthreads();  // the previous row's rearranged w is read
        for (int j = threadIdx.x; j < outLength; j += blockDim.x) wrow[j] = w[t * outLength + j];
        for (int k = 0; k < D; k++) {
            // the row, its rows padded for the first mode product's reads (mode k + 1; mode 0 reads it whole)
            const int m0 = (k + 1) % D;
            const int post0 = tlora_sizes(g, 0u, m0 + 1, D);
            const int span0 = g.in[m0] * post0;
            const int pitch0 = m0 == 0 || D == 1 ? span0 : tlora_row_pitch(g.in[m0], post0);
            const TloraDivisor bySpan(span0);
            for (int j = threadIdx.x; j < inLength; j += blockDim.x) {
                const int p = bySpan.quotient(j);
                row[p * pitch0 + j - p * span0] = v[t * inLength + j];
            }
            __syncthreads();
            const float* in = row;
            int inRow = pitch0;
            unsigned contracted = 0u;
            for (int step = 1; step < D; step++) {
                const int m = (k + step) % D;
                const bool last = step == D - 1;
                const int pre = tlora_sizes(g, contracted, 0, m);
                const int post = tlora_sizes(g, contracted, m + 1, D);
                // padded for the next mode where it is m + 1; the one before mode 0 writes flat rows; the last one flat
                // rows, or for k = D − 1 (then post = I_k) v_k's rows [r][i] at the odd pitch the sums read
                const int outPitch = last ? (k == D - 1 ? post | 1 : post)
                                          : m == D - 1 ? post : tlora_row_pitch(g.in[m + 1], post / g.in[m + 1]);
                float* out = (step & 1) ? even : odd;
                tlora_step_any(in, 1, 0, out, -1, staged + g.core[m], 1, g.in[m], g.out[m], pre, post, inRow,
                               outPitch);
                contracted |= 1u << m;
                in = out;
                inRow = outPitch;
            }
            // v_k (the other digits as output digits, digit k as input) and w with digit k last: for k = D − 1 they
            // are so already (v_k from the last step at its odd pitch, w flat, which the sums read as broadcasts);
            // else rearranged, a thread per row r = (p, q) of the other digits (one division a row; neighbouring
            // threads read neighbouring words q and write at the odd pitches)
            const int I = g.in[k];
            const int J = g.out[k];
            const int after = tlora_sizes(g, ~0u, k + 1, D);
            const int others = outLength / J;
            const int vPitch = I | 1;
            const bool direct = k == D - 1 && D > 1;
            const int wPitch = direct ? J : J | 1;
            const float* const vr = direct ? in : vk;
            const float* const wr = direct ? wrow : wk;
            if (!direct) {
                for (int r = threadIdx.x; r < others; r += blockDim.x) {
                    const int p = r / after;
                    const int q = r - p * after;
                    const float* vs = in + p * I * after + q;
                    const float* ws = wrow + p * J * after + q;
#pragma unroll 1
                    for (int i = 0; i < I; i++) vk[r * vPitch + i] = vs[i * after];
#pragma unroll 1
                    for (int o = 0; o < J; o++) wk[r * wPitch + o] = ws[o * after];
                }
                __syncthreads();
            }
            const int entries = J * I;
            const int splits = tlora_kron_splits(entries);
            float* const mine = acc + tlora_kron_items_before(plan, k);
            for (int item = threadIdx.x; item < entries * splits; item += blockDim.x) {
                const int slice = item / entries;
                const int e = item - slice * entries;
                const float* wp = wr + slice * wPitch + e / I;
                const float* vp = vr + slice * vPitch + e % I;
                float sum = 0.f;
                for (int r = slice; r < others; r += splits, wp += splits * wPitch, vp += splits * vPitch) {
                    sum = fmaf(*wp, *vp, sum);
                }
                mine[item] += sum;
            }
            __syncthreads();  // vk, wk and the states are free for the next core
        }
    }
    __syncthreads();
    for (int j = threadIdx.x; j < items; j += blockDim.x) partials[(long long) blockIdx.x * items + j] = acc[j];
}

// into (the packed cores' gradients, core k's entry (o, i) at plan's offset + o·I_k + i) = scale·Σ over the blocks of
// tlora_kron_gradient and the entry's slices. A block per 32 entries (a lane each, so that a warp's loads coalesce),
// its warp w summing the blocks w, w + 8, … (all slices of each, in slice order) in four interleaved partial sums of
// independent loads, then the four, then the warps in warp order: one fixed order, the bits repeat, and each lane has
// several loads in flight where one lane walking every block in turn waited for each.
#define TLORA_SUM_WARPS (TLORA_BLOCK / 32)
__global__ void __launch_bounds__(TLORA_BLOCK) tlora_kron_gradient_sum(
        const int* __restrict__ plan, const float* __restrict__ partials, int blocks, int items, float scale,
        float* __restrict__ into) {
    __shared__ float warpSums[TLORA_SUM_WARPS][32];
    const int D = plan[0];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    int at = blockIdx.x * 32 + lane;  // the entry, then its place within core k
    int k = 0;
    int entries = plan[2] * plan[2 + D];
    while (k < D && at >= entries) {
        at -= entries;
        k++;
        entries = k < D ? plan[2 + k] * plan[2 + D + k] : 0;
    }
    float total = 0.f;
    if (k < D) {
        const int splits = tlora_kron_splits(entries);
        const float* src = partials + tlora_kron_items_before(plan, k) + at;
        float sum[4] = {0.f, 0.f, 0.f, 0.f};
        for (int b0 = warp; b0 < blocks; b0 += 4 * TLORA_SUM_WARPS) {
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int b = b0 + u * TLORA_SUM_WARPS;
                if (b < blocks) {
                    for (int slice = 0; slice < splits; slice++) sum[u] += src[(long long) b * items + slice * entries];
                }
            }
        }
        total = (sum[0] + sum[1]) + (sum[2] + sum[3]);
    }
    warpSums[warp][lane] = total;
    __syncthreads();
    if (warp == 0 && k < D) {
        float s = warpSums[0][lane];
        for (int w = 1; w < TLORA_SUM_WARPS; w++) s += warpSums[w][lane];
        into[plan[2 + 2 * D + k] + at] = scale * s;
    }
}

// E for core k: row o runs over the other modes' digits (their output digits, then their input digits, each in
// mode order, row-major), columns (b, a): E[o][b·R + a] = (A_{k+1}⋯A_D·A_1⋯A_{k−1})[a, b] at those digits; with
// one core, the identity. Then ∂⟨w, M·v⟩/∂A_k[o_k, i_k, b, a] = Σ_rest C[ō, ī]·E[rest][b, a] with C = Σ w·vᵀ, so
// that core k's gradient is one GEMM of C's permuted copy with E, written in the core's layout. One thread per
// (o, b): column b of the product, built from the right, in a fixed order.
__global__ void __launch_bounds__(TLORA_BLOCK) tlora_other_products(
        const float* __restrict__ cores, const int* __restrict__ plan, int k, int others, float* __restrict__ e) {
    const int D = plan[0];
    const int R = plan[1];
    const long long at = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= (long long) others * R) return;
    const int o = (int) (at / R);
    const int b = (int) (at % R);
    int inOthers = 1;  // ∏ I_m over m ≠ k: the stride of the last output digit
    for (int m = 0; m < D; m++) inOthers *= m == k ? 1 : plan[2 + D + m];
    float vec[TLORA_MAX_RING];
#pragma unroll
    for (int a = 0; a < TLORA_MAX_RING; a++) vec[a] = a == b ? 1.f : 0.f;
    for (int step = 1; step < D; step++) {
        const int m = (k - step + D) % D;  // k − 1, k − 2, …, k + 1 cyclically: the product from the right
        int outStride = inOthers;
        int inStride = 1;
        for (int n = m + 1; n < D; n++) {
            if (n != k) {
                outStride *= plan[2 + n];
                inStride *= plan[2 + D + n];
            }
        }
        const int J = plan[2 + m];
        const int I = plan[2 + D + m];
        const int om = (o / outStride) % J;
        const int im = (o / inStride) % I;
        const float* slice = cores + plan[2 + 2 * D + m] + (om * I + im) * R * R;
        float next[TLORA_MAX_RING];
#pragma unroll
        for (int a = 0; a < TLORA_MAX_RING; a++) {
            float acc = 0.f;
#pragma unroll
            for (int c = 0; c < TLORA_MAX_RING; c++) {
                if (a < R && c < R) acc = fmaf(slice[a * R + c], vec[c], acc);
            }
            next[a] = acc;
        }
#pragma unroll
        for (int a = 0; a < TLORA_MAX_RING; a++) vec[a] = next[a];
    }
    float* row = e + at * R;  // (o·R + b)·R: row o, column block b
#pragma unroll
    for (int a = 0; a < TLORA_MAX_RING; a++) {
        if (a < R) row[a] = vec[a];
    }
}

}  // extern "C"
