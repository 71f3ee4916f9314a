// FouRA's kernels (DESIGN.md, FouRA): the transforms are folded into the factors beforehand (Â = A·𝒯_in,
// B̂ = 𝒯_out⁻¹·B), so the forward is x·Âᵀ → gate → ·B̂ᵀ: here as a projection and an expansion over blocks of
// tokens of one adapter each (mixed batches), or as cuBLAS products around foura_gate (CudaFouRA).
// Loaded by org.spectralpeft.foura.cuda.FouRAKernels.
#include "dtype.cuh"
#include "partial_sums.cuh"

// Tokens per block of the forward kernels: a block reads its adapter's Â or B̂ once for this many tokens.
#define FOURA_TOKENS 8
// Widest z: 2r for the DFT with r = 128.
#define FOURA_MAX_WIDTH 256
#define FOURA_BLOCK 256
#define FOURA_WARPS (FOURA_BLOCK / 32)
// Columns of Â per warp of foura_mixed_project_wide.
#define FOURA_PROJECT_COLUMNS 4

enum FouRAGate : int { FOURA_GATE_NONE = 0, FOURA_GATE_FIXED = 1, FOURA_GATE_ADAPTIVE = 2 };

// |z_q| of one token's z (Re at q, Im at rank + q for the DFT).
__device__ __forceinline__ float foura_magnitude(const float* zt, int q, int rank, int dft) {
    return dft ? hypotf(zt[q], zt[rank + q]) : fabsf(zt[q]);
}

// The ADAPTIVE gate's logit of component j: b_j + Σ_q G_jq·|z_q|.
__device__ __forceinline__ float foura_logit(const float* zt, const float* gate, int rank, int dft, int j) {
    float logit = gate[rank * rank + j];
    for (int q = 0; q < rank; q++) {
        logit = fmaf(gate[j * rank + q], foura_magnitude(zt, q, rank, dft), logit);
    }
    return logit;
}

// m_j of one token: 1 (NONE), the mask (FIXED), or [logit ≥ 0] (ADAPTIVE).
__device__ __forceinline__ float foura_mask(const float* zt, const float* gate, int gateKind, int rank, int dft, int j) {
    if (gateKind == FOURA_GATE_FIXED) {
        return gate[j];
    }
    if (gateKind == FOURA_GATE_ADAPTIVE) {
        return foura_logit(zt, gate, rank, dft, j) >= 0.f ? 1.f : 0.f;
    }
    return 1.f;
}

// Row of x and y of a block's token t: rows[first + t] in a mixed batch, else first + t.
__device__ __forceinline__ int foura_row(const int* rows, int first, int t) {
    return rows ? rows[first + t] : first + t;
}

// One adapter of a mixed batch, as the host writes it (40 bytes, 8-aligned: FouRAKernels.MIXED_ADAPTER_BYTES).
struct FouRAMixedAdapter {
    const float* aHat;
    const float* bHatT;
    const float* gate;
    int gateKind;
    int rank;
    int dft;
    float scale;
};
static_assert(sizeof(FouRAMixedAdapter) == 40, "the host's layout of a mixed batch's adapter");

// The forward on this library's kernels, for a mixed batch (every token through its own adapter) and, with a
// table of one adapter, for a single one: z = Â·x (foura_mixed_project), then y += B̂·w with w = scale·m(z) ⊙
// [Re z, −Im z] (DFT; [z] for the DCT) (foura_mixed_expand). Both are bound by reading the adapters' factors when
// the tokens' adapters differ, so each spreads one token block's work over many blocks (a warp per column of
// Â, a block per 256 outputs): enough loads in flight to keep the memory busy, where one block per token
// block read its 1 MiB of factors at a few GB/s.
//
// The blocks' table: per block {adapter, first, count}, count ≤ FOURA_TOKENS tokens of one adapter, token t
// of the block in row rows[first + t] of x and y (first + t without rows) and in row first + t of z (zStride
// floats each). Without a table, block b is adapter 0's tokens b·FOURA_TOKENS .. of `tokens`. Each token is in
// one block, so each row of y has one writer. Deterministic: every sum has one owner and a fixed order (Â·x by
// lane stride, then a fixed shuffle tree; B̂·w over the components in order); a token's result does not
// depend on the other tokens of its block, nor on the batch.
__device__ __forceinline__ void foura_block(const int* __restrict__ blocks, int tokens, int& adapter, int& first,
                                            int& count) {
    if (blocks) {
        const int* b = blocks + 3 * blockIdx.x;
        adapter = b[0];
        first = b[1];
        count = b[2];
    } else {
        adapter = 0;
        first = blockIdx.x * FOURA_TOKENS;
        count = min(FOURA_TOKENS, tokens - first);
    }
}

// Each lane's partial sums of a warp, acc[j][t], summed over the warp's 32 lanes by a fixed xor-shuffle tree (every
// lane ends with the sums): the projections' last step.
template <int COLUMNS, int TOKENS>
__device__ __forceinline__ void foura_warp_sums(float (&acc)[COLUMNS][TOKENS]) {
#pragma unroll
    for (int j = 0; j < COLUMNS; j++) {
#pragma unroll
        for (int t = 0; t < TOKENS; t++) {
#pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1) {
                acc[j][t] += __shfl_xor_sync(0xffffffffu, acc[j][t], offset);
            }
        }
    }
}

// The projections' last step: the warp's sums (foura_warp_sums), then lane 0 stores column c = c0 + j·FOURA_WARPS of
// token t at z[t·stride + c], for the first `count` tokens and the columns below `width`.
template <int COLUMNS, int TOKENS>
__device__ __forceinline__ void foura_store_columns(float (&acc)[COLUMNS][TOKENS], int c0, int width, int count,
                                                    float* z, long long stride) {
    foura_warp_sums(acc);
    if ((threadIdx.x & 31) == 0) {
#pragma unroll
        for (int j = 0; j < COLUMNS; j++) {
            const int c = c0 + j * FOURA_WARPS;
#pragma unroll
            for (int t = 0; t < TOKENS; t++) {
                if (t < count && c < width) {
                    z[t * stride + c] = acc[j][t];
                }
            }
        }
    }
}

// One token's row of `width` partial results, the first of `parts` rows `stride` floats apart, becomes their sum,
// added in part order; a thread per component (the caller synchronizes before the sums are read).
__device__ __forceinline__ void foura_add_parts(float* row, int width, int parts, long long stride) {
    for (int c = threadIdx.x; c < width; c += FOURA_BLOCK) {
        row[c] = sum_of_parts(row, c, parts, stride);
    }
}

// w = scale·m(z) ⊙ [Re z, −Im z] (DFT; scale·m ⊙ z for the DCT) for `rows` tokens of z in shared memory
// (FOURA_MAX_WIDTH floats a token), the first `count` of them gated, the rest zero: the expansions' first step.
__device__ __forceinline__ void foura_gate_rows(const float* zs, float* w, int rows, int count,
                                                const float* __restrict__ gate, int gateKind, int rank, int dft,
                                                float scale) {
    for (int i = threadIdx.x; i < rows * rank; i += FOURA_BLOCK) {
        const int t = i / rank;
        const int j = i - t * rank;
        const float* zt = zs + t * FOURA_MAX_WIDTH;
        const float m = t < count ? foura_mask(zt, gate, gateKind, rank, dft, j) : 0.f;
        w[t * FOURA_MAX_WIDTH + j] = scale * m * zt[j];
        if (dft) {
            w[t * FOURA_MAX_WIDTH + rank + j] = -scale * m * zt[rank + j];
        }
    }
}

// acc[t] = Σ_c w[t][c]·B̂ᵀ[c][p], the components in order, for output p of TOKENS tokens (w as foura_gate_rows
// leaves it): the expansions' sums, a thread per output, B̂ᵀ read along its rows (coalesced across the block).
template <int TOKENS>
__device__ __forceinline__ void foura_expand_sums(const float* w, const float* __restrict__ bHatT, int width,
                                                  int dOut, int p, float (&acc)[TOKENS]) {
#pragma unroll
    for (int t = 0; t < TOKENS; t++) {
        acc[t] = 0.f;
    }
#pragma unroll 8
    for (int c = 0; c < width; c++) { // unrolled: eight of B̂'s loads in flight, not one
        const float b = __ldg(bHatT + (long long) c * dOut + p);
#pragma unroll
        for (int t = 0; t < TOKENS; t++) {
            acc[t] = fmaf(w[t * FOURA_MAX_WIDTH + c], b, acc[t]);
        }
    }
}

// z[first + t][c] = Σ_k Â[c][k]·x[row(t)][k] for the block's tokens: warp w of the block owns COLUMNS columns
// c = blockIdx.y·FOURA_WARPS·COLUMNS + w + j·FOURA_WARPS (j < COLUMNS; a column past its adapter's width is
// skipped), its lanes striding over k. Each x value loaded serves COLUMNS columns, and a lane keeps COLUMNS
// of Â's loads per step in flight (times the unrolled steps). The sums do not depend on COLUMNS.
template <int COLUMNS, int UNROLL>
__device__ __forceinline__ void foura_project_columns(
        const void* __restrict__ x, int xDtype, const FouRAMixedAdapter* __restrict__ adapters,
        const int* __restrict__ blocks, const int* __restrict__ rows, int tokens, int dIn, float* __restrict__ z,
        int zStride) {
    int adapter, first, count;
    foura_block(blocks, tokens, adapter, first, count);
    const FouRAMixedAdapter* a = adapters + adapter; // fields read one by one: a struct copy would go to local memory
    const int width = a->dft ? 2 * a->rank : a->rank;
    const int c0 = blockIdx.y * FOURA_WARPS * COLUMNS + (threadIdx.x >> 5);
    if (c0 >= width) {
        return; // the whole warp: no barrier follows
    }
    const int lane = threadIdx.x & 31;
    const float* __restrict__ aHat = a->aHat;
    long long xRow[FOURA_TOKENS];
    float acc[COLUMNS][FOURA_TOKENS];
#pragma unroll
    for (int t = 0; t < FOURA_TOKENS; t++) {
        xRow[t] = t < count ? (long long) foura_row(rows, first, t) * dIn : 0;
#pragma unroll
        for (int j = 0; j < COLUMNS; j++) {
            acc[j][t] = 0.f;
        }
    }
#pragma unroll UNROLL
    for (int k = lane; k < dIn; k += 32) {
        float av[COLUMNS];
#pragma unroll
        for (int j = 0; j < COLUMNS; j++) {
            const int c = c0 + j * FOURA_WARPS;
            av[j] = c < width ? __ldg(aHat + (long long) c * dIn + k) : 0.f;
        }
#pragma unroll
        for (int t = 0; t < FOURA_TOKENS; t++) {
            if (t < count) {
                const float xv = load_as_float(x, xRow[t] + k, xDtype);
#pragma unroll
                for (int j = 0; j < COLUMNS; j++) {
                    acc[j][t] = fmaf(xv, av[j], acc[j][t]);
                }
            }
        }
    }
    foura_store_columns(acc, c0, width, count, z + (long long) first * zStride, zStride);
}

// Tokens of foura_forward_small: the single forward at small T in one launch.
#define FOURA_SMALL_TOKENS 16
// Columns of Â a warp of foura_forward_small sums at once (their loads in flight together).
#define FOURA_SMALL_COLUMNS 4

// Element i of x as float, its dtype fixed at compile time (no per-load switch: loads stay in one basic block, so
// the compiler issues them together).
template <int DT>
__device__ __forceinline__ float foura_x(const void* __restrict__ x, long long i) {
    if (DT == DT_FLOAT16) {
        return __half2float(__ldg(static_cast<const __half*>(x) + i));
    } else if (DT == DT_BFLOAT16) {
        return __bfloat162float(__ldg(static_cast<const __nv_bfloat16*>(x) + i));
    } else {
        return __ldg(static_cast<const float*>(x) + i);
    }
}

// Elements i .. i + 3 of x as floats in one load (i a multiple of 4, x aligned to four elements: the host checks).
template <int DT>
__device__ __forceinline__ float4 foura_x4(const void* __restrict__ x, long long i) {
    if (DT == DT_FLOAT32) {
        return __ldg(reinterpret_cast<const float4*>(x) + i / 4);
    } else {
        const uint2 bits = __ldg(reinterpret_cast<const uint2*>(x) + i / 4);
        unsigned short h[4];
        memcpy(h, &bits, sizeof h);
        if (DT == DT_FLOAT16) {
            return make_float4(__half2float(__ushort_as_half(h[0])), __half2float(__ushort_as_half(h[1])),
                               __half2float(__ushort_as_half(h[2])), __half2float(__ushort_as_half(h[3])));
        } else {
            return make_float4(__bfloat162float(__ushort_as_bfloat16(h[0])), __bfloat162float(__ushort_as_bfloat16(h[1])),
                               __bfloat162float(__ushort_as_bfloat16(h[2])), __bfloat162float(__ushort_as_bfloat16(h[3])));
        }
    }
}

// foura_forward_small for x of dtype DT and at most TOKENS tokens (1, 4 or 16: FMAs for TOKENS tokens, whatever
// `tokens` is, and no branch per token inside the loop, so that a step's loads issue together); QUADS: d_in a
// multiple of 4, each lane's k = 4·(lane + 32·i) .. + 3 (float4 loads of Â and of x), else k = lane + 32·i. The
// sums' order depends on QUADS only, not on TOKENS or DT: every bucket gives a token the same bits.
template <int DT, bool QUADS, int TOKENS>
__device__ __forceinline__ void foura_small(
        const void* __restrict__ x, const float* __restrict__ aHat, const float* __restrict__ bHatT,
        const float* __restrict__ gate, int gateKind, int rank, int dft, float scale, int tokens, int dIn, int dOut,
        void* __restrict__ y, int yDtype, float* zs, float* w) {
    const int width = dft ? 2 * rank : rank;
    const int lane = threadIdx.x & 31;
    for (int c0 = threadIdx.x >> 5; c0 < width; c0 += FOURA_WARPS * FOURA_SMALL_COLUMNS) {
        float acc[FOURA_SMALL_COLUMNS][TOKENS];
#pragma unroll
        for (int j = 0; j < FOURA_SMALL_COLUMNS; j++) {
#pragma unroll
            for (int t = 0; t < TOKENS; t++) {
                acc[j][t] = 0.f;
            }
        }
        // a token past `tokens` reads token 0's x (in bounds, never stored): the loop stays free of branches
        int xRow[TOKENS]; // element offsets: 16 rows of x fit an int wherever d_in does
#pragma unroll
        for (int t = 0; t < TOKENS; t++) {
            xRow[t] = t < tokens ? t * dIn : 0;
        }
        if (QUADS) {
#pragma unroll(TOKENS > 4 ? 1 : 4) // 16 tokens: a step's 256 multiply-adds cover its loads' latency
            for (int k = 4 * lane; k < dIn; k += 128) {
                float4 av[FOURA_SMALL_COLUMNS];
#pragma unroll
                for (int j = 0; j < FOURA_SMALL_COLUMNS; j++) {
                    const int c = min(c0 + j * FOURA_WARPS, width - 1); // a column past z: a real one, not stored
                    av[j] = __ldg(reinterpret_cast<const float4*>(aHat + (long long) c * dIn + k));
                }
#pragma unroll
                for (int t = 0; t < TOKENS; t++) {
                    const float4 xv = foura_x4<DT>(x, xRow[t] + k);
#pragma unroll
                    for (int j = 0; j < FOURA_SMALL_COLUMNS; j++) {
                        float a = acc[j][t];
                        a = fmaf(xv.x, av[j].x, a);
                        a = fmaf(xv.y, av[j].y, a);
                        a = fmaf(xv.z, av[j].z, a);
                        acc[j][t] = fmaf(xv.w, av[j].w, a);
                    }
                }
            }
        } else {
#pragma unroll(TOKENS > 4 ? 1 : 4)
            for (int k = lane; k < dIn; k += 32) {
                float av[FOURA_SMALL_COLUMNS];
#pragma unroll
                for (int j = 0; j < FOURA_SMALL_COLUMNS; j++) {
                    const int c = min(c0 + j * FOURA_WARPS, width - 1);
                    av[j] = __ldg(aHat + (long long) c * dIn + k);
                }
#pragma unroll
                for (int t = 0; t < TOKENS; t++) {
                    const float xv = foura_x<DT>(x, xRow[t] + k);
#pragma unroll
                    for (int j = 0; j < FOURA_SMALL_COLUMNS; j++) {
                        acc[j][t] = fmaf(xv, av[j], acc[j][t]);
                    }
                }
            }
        }
        foura_store_columns(acc, c0, width, tokens, zs, FOURA_MAX_WIDTH);
    }
    __syncthreads();
    foura_gate_rows(zs, w, TOKENS, tokens, gate, gateKind, rank, dft, scale); // rows past the tokens: zero
    __syncthreads();
    const int p = blockIdx.x * FOURA_BLOCK + threadIdx.x;
    if (p >= dOut) {
        return;
    }
    float out[TOKENS];
    foura_expand_sums(w, bHatT, width, dOut, p, out);
#pragma unroll
    for (int t = 0; t < TOKENS; t++) {
        if (t < tokens) {
            const long long i = (long long) t * dOut + p;
            store_from_float(y, i, yDtype, load_as_float(y, i, yDtype) + out[t]);
        }
    }
}

// foura_forward_small's instantiations for one dtype of x: QUADS where d_in is a multiple of 4, and the smallest
// bucket of 1, 4 or 16 tokens that holds them.
template <int DT>
__device__ __forceinline__ void foura_small_dtype(
        const void* __restrict__ x, const float* __restrict__ aHat, const float* __restrict__ bHatT,
        const float* __restrict__ gate, int gateKind, int rank, int dft, float scale, int tokens, int dIn, int dOut,
        void* __restrict__ y, int yDtype, float* zs, float* w) {
#define FOURA_SMALL(QUADS, TOKENS) foura_small<DT, QUADS, TOKENS>(x, aHat, bHatT, gate, gateKind, rank, dft, scale, \
                                                                  tokens, dIn, dOut, y, yDtype, zs, w)
    const bool quads = (dIn & 3) == 0;
    if (tokens == 1) {
        quads ? FOURA_SMALL(true, 1) : FOURA_SMALL(false, 1);
    } else if (tokens <= 4) {
        quads ? FOURA_SMALL(true, 4) : FOURA_SMALL(false, 4);
    } else {
        quads ? FOURA_SMALL(true, FOURA_SMALL_TOKENS) : FOURA_SMALL(false, FOURA_SMALL_TOKENS);
    }
#undef FOURA_SMALL
}

// foura_add_product's tile: 64 tokens × 128 columns of out a block, 8 consecutive tokens × 4 consecutive columns a
// thread, the inner dimension staged 32 components at a time.
#define FOURA_ADD_TOKENS 64
#define FOURA_ADD_COLUMNS 128
#define FOURA_ADD_K 32
// The staged w's row pitch: a multiple of 4 (its float4 reads), 4 more than the tile so that the transposing
// stores fall in 8 banks rather than 1.
#define FOURA_ADD_W_PITCH (FOURA_ADD_TOKENS + 4)

// Four consecutive elements of a row of out at i as floats (n of them valid, the rest 0): one 16-byte (float32) or
// two 4-byte (float16, bfloat16) loads where vec (all four valid, aligned), else one element at a time.
template <int DT>
__device__ __forceinline__ void foura_load4(const void* base, long long i, int n, bool vec, float (&v)[4]) {
    if (vec && n == 4) {
        if constexpr (DT == DT_FLOAT32) {
            const float4 q = *reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
            v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
        } else if constexpr (DT == DT_FLOAT16) {
            const __half2* h = reinterpret_cast<const __half2*>(static_cast<const __half*>(base) + i);
            const float2 a = __half22float2(h[0]);
            const float2 b = __half22float2(h[1]);
            v[0] = a.x; v[1] = a.y; v[2] = b.x; v[3] = b.y;
        } else {
            const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(static_cast<const __nv_bfloat16*>(base) + i);
            const float2 a = __bfloat1622float2(h[0]);
            const float2 b = __bfloat1622float2(h[1]);
            v[0] = a.x; v[1] = a.y; v[2] = b.x; v[3] = b.y;
        }
        return;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) v[j] = j < n ? load_as_float(base, i + j, DT) : 0.f;
}

// The store matching foura_load4: the n valid elements, rounded to nearest even for float16 and bfloat16.
template <int DT>
__device__ __forceinline__ void foura_store4(void* base, long long i, int n, bool vec, const float (&v)[4]) {
    if (vec && n == 4) {
        if constexpr (DT == DT_FLOAT32) {
            *reinterpret_cast<float4*>(static_cast<float*>(base) + i) = make_float4(v[0], v[1], v[2], v[3]);
        } else if constexpr (DT == DT_FLOAT16) {
            __half2* h = reinterpret_cast<__half2*>(static_cast<__half*>(base) + i);
            h[0] = __floats2half2_rn(v[0], v[1]);
            h[1] = __floats2half2_rn(v[2], v[3]);
        } else {
            __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(base) + i);
            h[0] = __floats2bfloat162_rn(v[0], v[1]);
            h[1] = __floats2bfloat162_rn(v[2], v[3]);
        }
        return;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        if (j < n) store_from_float(base, i + j, DT, v[j]);
    }
}

// foura_add_product for one dtype of out (see there).
template <int DT>
__device__ __forceinline__ void foura_add_product_dtype(const float* __restrict__ w, const float* __restrict__ m,
                                                        int tokens, int width, int d, void* __restrict__ out, bool vec,
                                                        float (*ws)[FOURA_ADD_W_PITCH], float (*ms)[FOURA_ADD_COLUMNS]) {
    const int t0 = blockIdx.y * FOURA_ADD_TOKENS;
    const int c0 = blockIdx.x * FOURA_ADD_COLUMNS;
    const int tx = threadIdx.x & 31;  // columns c0 + 4·tx .. + 3
    const int ty = threadIdx.x >> 5;  // tokens t0 + 8·ty .. + 7
    const int c = c0 + 4 * tx;
    const int n = max(0, min(4, d - c));
    // out's values first: their loads are in flight while the products are summed
    float o[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int t = t0 + 8 * ty + j;
        foura_load4<DT>(out, (long long) t * d + c, t < tokens ? n : 0, vec, o[j]);
    }
    float acc[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++) {
#pragma unroll
        for (int q = 0; q < 4; q++) acc[j][q] = 0.f;
    }
    for (int k0 = 0; k0 < width; k0 += FOURA_ADD_K) {
        __syncthreads();  // the previous chunk is read
#pragma unroll
        for (int e = threadIdx.x; e < FOURA_ADD_TOKENS * FOURA_ADD_K; e += FOURA_BLOCK) {  // along k: coalesced rows of w
            const int t = e / FOURA_ADD_K;
            const int k = e - t * FOURA_ADD_K;
            ws[k][t] = t0 + t < tokens && k0 + k < width ? w[(long long) (t0 + t) * width + k0 + k] : 0.f;
        }
#pragma unroll
        for (int e = threadIdx.x; e < FOURA_ADD_K * FOURA_ADD_COLUMNS / 4; e += FOURA_BLOCK) {  // rows of M, 4 columns each
            const int k = e / (FOURA_ADD_COLUMNS / 4);
            const int cc = 4 * (e - k * (FOURA_ADD_COLUMNS / 4));
            float v[4] = {0.f, 0.f, 0.f, 0.f};
            if (k0 + k < width) {
                foura_load4<DT_FLOAT32>(m, (long long) (k0 + k) * d + c0 + cc, max(0, min(4, d - c0 - cc)), vec, v);
            }
            *reinterpret_cast<float4*>(&ms[k][cc]) = make_float4(v[0], v[1], v[2], v[3]);
        }
        __syncthreads();
        const int kn = min(FOURA_ADD_K, width - k0);  // a narrow z (the DCT at r = 16: 16) skips the zero padding
#pragma unroll 8
        for (int k = 0; k < kn; k++) {
            const float4 wa = *reinterpret_cast<const float4*>(&ws[k][8 * ty]);
            const float4 wb = *reinterpret_cast<const float4*>(&ws[k][8 * ty + 4]);
            const float4 mv = *reinterpret_cast<const float4*>(&ms[k][4 * tx]);
            const float wt[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
            for (int j = 0; j < 8; j++) {
                acc[j][0] = fmaf(wt[j], mv.x, acc[j][0]);
                acc[j][1] = fmaf(wt[j], mv.y, acc[j][1]);
                acc[j][2] = fmaf(wt[j], mv.z, acc[j][2]);
                acc[j][3] = fmaf(wt[j], mv.w, acc[j][3]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int t = t0 + 8 * ty + j;
#pragma unroll
        for (int q = 0; q < 4; q++) o[j][q] += acc[j][q];
        foura_store4<DT>(out, (long long) t * d + c, t < tokens ? n : 0, vec, o[j]);
    }
}

extern "C" {

// foura_project_columns with a column per warp: the most blocks for a batch of distinct adapters.
__global__ void __launch_bounds__(FOURA_BLOCK) foura_mixed_project(
        const void* __restrict__ x, int xDtype, const FouRAMixedAdapter* __restrict__ adapters,
        const int* __restrict__ blocks, const int* __restrict__ rows, int tokens, int dIn, float* __restrict__ z,
        int zStride) {
    foura_project_columns<1, 8>(x, xDtype, adapters, blocks, rows, tokens, dIn, z, zStride);
}

// foura_project_columns with FOURA_PROJECT_COLUMNS columns per warp: x read once for them, for blocks of
// several tokens.
__global__ void __launch_bounds__(FOURA_BLOCK, 2) foura_mixed_project_wide(
        const void* __restrict__ x, int xDtype, const FouRAMixedAdapter* __restrict__ adapters,
        const int* __restrict__ blocks, const int* __restrict__ rows, int tokens, int dIn, float* __restrict__ z,
        int zStride) {
    foura_project_columns<FOURA_PROJECT_COLUMNS, 4>(x, xDtype, adapters, blocks, rows, tokens, dIn, z, zStride);
}

// One adapter's z = Â·x for all its tokens, as tiles of FOURA_TILE_T tokens × FOURA_TILE_C columns of Â over a
// chunk of kChunk columns of x each (split K: blockIdx.y = columnTile + columnTiles·part), from tiles of x and Â
// staged in shared memory; each thread owns 2 tokens × 4 columns, summed in k order within the chunk, and writes
// them to zParts[part] (tokens × width each): foura_mixed_expand adds the parts in order. The single forward's
// "tiled" path: where one adapter's tokens are many, x is read once (the mixed kernels reread it per column or
// per four) and Â once per tile of tokens.
#define FOURA_TILE_T 64
#define FOURA_TILE_C 32
#define FOURA_TILE_K 32
__global__ void __launch_bounds__(FOURA_BLOCK) foura_project_tiled(
        const void* __restrict__ x, int xDtype, const float* __restrict__ aHat, int tokens, int dIn, int width,
        int columnTiles, int kChunk, float* __restrict__ zParts) {
    // xs[k][t] and as[k][c]: a thread's 2 tokens and 4 columns at one k are adjacent (one 8- and one 16-byte load);
    // the row pitches (66, 36) keep those loads aligned and spread the transposing stores over the banks
    __shared__ __align__(16) float xs[FOURA_TILE_K][FOURA_TILE_T + 2];
    __shared__ __align__(16) float as[FOURA_TILE_K][FOURA_TILE_C + 4];
    const int part = blockIdx.y / columnTiles;
    const int t0 = blockIdx.x * FOURA_TILE_T;
    const int c0 = (blockIdx.y - part * columnTiles) * FOURA_TILE_C;
    const int kBegin = part * kChunk;
    const int kEnd = min(dIn, kBegin + kChunk);
    const int tx = threadIdx.x & 7;   // columns c0 + 4·tx .. + 3
    const int ty = threadIdx.x >> 3;  // tokens t0 + 2·ty, + 1
    float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
    for (int k0 = kBegin; k0 < kEnd; k0 += FOURA_TILE_K) {
#pragma unroll
        for (int j = 0; j < FOURA_TILE_T * FOURA_TILE_K / FOURA_BLOCK; j++) { // along k: coalesced rows of x
            const int e = threadIdx.x + j * FOURA_BLOCK;
            const int t = e / FOURA_TILE_K;
            const int k = e - t * FOURA_TILE_K;
            xs[k][t] = t0 + t < tokens && k0 + k < kEnd ? load_as_float(x, (long long) (t0 + t) * dIn + k0 + k, xDtype)
                                                        : 0.f;
        }
#pragma unroll
        for (int j = 0; j < FOURA_TILE_C * FOURA_TILE_K / FOURA_BLOCK; j++) {
            const int e = threadIdx.x + j * FOURA_BLOCK;
            const int c = e / FOURA_TILE_K;
            const int k = e - c * FOURA_TILE_K;
            as[k][c] = c0 + c < width && k0 + k < kEnd ? __ldg(aHat + (long long) (c0 + c) * dIn + k0 + k) : 0.f;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < FOURA_TILE_K; k++) {
            const float2 xv = *reinterpret_cast<const float2*>(&xs[k][2 * ty]);
            const float4 av = *reinterpret_cast<const float4*>(&as[k][4 * tx]);
            acc[0][0] = fmaf(xv.x, av.x, acc[0][0]);
            acc[0][1] = fmaf(xv.x, av.y, acc[0][1]);
            acc[0][2] = fmaf(xv.x, av.z, acc[0][2]);
            acc[0][3] = fmaf(xv.x, av.w, acc[0][3]);
            acc[1][0] = fmaf(xv.y, av.x, acc[1][0]);
            acc[1][1] = fmaf(xv.y, av.y, acc[1][1]);
            acc[1][2] = fmaf(xv.y, av.z, acc[1][2]);
            acc[1][3] = fmaf(xv.y, av.w, acc[1][3]);
        }
        __syncthreads();
    }
    float* out = zParts + (long long) part * tokens * width;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int t = t0 + 2 * ty + i;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int c = c0 + 4 * tx + j;
            if (t < tokens && c < width) {
                out[(long long) t * width + c] = acc[i][j];
            }
        }
    }
}

// y[row(t)] += B̂·w(t) for the block's tokens and outputs blockIdx.y·FOURA_BLOCK .. (a thread each, reading B̂ᵀ
// along its rows: coalesced across the block), with w = scale·m(z) ⊙ [Re z, −Im z] (DFT; [z] for the DCT) from
// the projection's z (foura_project_tiled's: the sum of zParts parts, zPartStride floats apart, in order). The
// gate needs a token's whole z (the ADAPTIVE logits), so every block computes its tokens' w: r² multiply-adds per
// token at most, small against the r·256 of its outputs.
__global__ void __launch_bounds__(FOURA_BLOCK) foura_mixed_expand(
        const FouRAMixedAdapter* __restrict__ adapters, const int* __restrict__ blocks, const int* __restrict__ rows,
        int tokens, const float* __restrict__ z, int zStride, int zParts, long long zPartStride, int dOut,
        void* __restrict__ y, int yDtype) {
    __shared__ float zs[FOURA_TOKENS * FOURA_MAX_WIDTH];
    __shared__ float w[FOURA_TOKENS * FOURA_MAX_WIDTH];
    int adapter, first, count;
    foura_block(blocks, tokens, adapter, first, count);
    const FouRAMixedAdapter* a = adapters + adapter;
    const int rank = a->rank;
    const int dft = a->dft;
    const int width = dft ? 2 * rank : rank;
    const float* __restrict__ gate = a->gate;
    const int gateKind = a->gateKind;
    const float scale = a->scale;
    for (int i = threadIdx.x; i < FOURA_TOKENS * width; i += FOURA_BLOCK) {
        const int t = i / width;
        const int j = i - t * width;
        float v = 0.f;
        if (t < count) { // z, or the sum of its parts in order (foura_project_tiled's chunks of x's columns)
            const long long at = (long long) (first + t) * zStride + j;
            v = z[at];
            for (int part = 1; part < zParts; part++) {
                v += z[part * zPartStride + at];
            }
        }
        zs[t * FOURA_MAX_WIDTH + j] = v;
    }
    __syncthreads();
    foura_gate_rows(zs, w, FOURA_TOKENS, count, gate, gateKind, rank, dft, scale);
    __syncthreads();
    const int p = blockIdx.y * FOURA_BLOCK + threadIdx.x;
    if (p >= dOut) {
        return;
    }
    float acc[FOURA_TOKENS];
    foura_expand_sums(w, a->bHatT, width, dOut, p, acc);
#pragma unroll
    for (int t = 0; t < FOURA_TOKENS; t++) { // unrolled, so that acc stays in registers
        if (t < count) {
            const long long i = (long long) foura_row(rows, first, t) * dOut + p;
            store_from_float(y, i, yDtype, load_as_float(y, i, yDtype) + acc[t]);
        }
    }
}

// The single forward y += scale·B̂·m(Â·x) for tokens ≤ FOURA_SMALL_TOKENS, in one launch: every block computes the
// tokens' whole z = Â·x itself, then the gate, then its FOURA_BLOCK outputs of each token. Â and x are read by every
// block (after the first, from L2: 512 KB of Â at d_in = 4096, r = 16 DFT), which at small T costs less than the
// SGEMM route's three launches and two cuBLAS calls (about 15 µs of host time each), or a second launch and a
// scratch for z. The sums have one order in every block (so every block's z is the same, bit for bit): warp w owns
// columns w + FOURA_WARPS·(j + FOURA_SMALL_COLUMNS·g), each lane sums its k = 4·(lane + 32·i) .. + 3 in order
// (float4 loads of Â and x where d_in is a multiple of 4, x then aligned to four elements, else k = lane + 32·i),
// then a fixed shuffle tree; B̂·w over the components in order. Specialized per dtype of x and per bucket of tokens
// (foura_small). Deterministic; not the SGEMM route's bits.
__global__ void __launch_bounds__(FOURA_BLOCK) foura_forward_small(
        const void* __restrict__ x, int xDtype, const float* __restrict__ aHat, const float* __restrict__ bHatT,
        const float* __restrict__ gate, int gateKind, int rank, int dft, float scale, int tokens, int dIn, int dOut,
        void* __restrict__ y, int yDtype) {
    __shared__ float zs[FOURA_SMALL_TOKENS * FOURA_MAX_WIDTH];
    __shared__ float w[FOURA_SMALL_TOKENS * FOURA_MAX_WIDTH];
    if (xDtype == DT_FLOAT16) {
        foura_small_dtype<DT_FLOAT16>(x, aHat, bHatT, gate, gateKind, rank, dft, scale, tokens, dIn, dOut, y, yDtype,
                                      zs, w);
    } else if (xDtype == DT_BFLOAT16) {
        foura_small_dtype<DT_BFLOAT16>(x, aHat, bHatT, gate, gateKind, rank, dft, scale, tokens, dIn, dOut, y, yDtype,
                                       zs, w);
    } else {
        foura_small_dtype<DT_FLOAT32>(x, aHat, bHatT, gate, gateKind, rank, dft, scale, tokens, dIn, dOut, y, yDtype,
                                      zs, w);
    }
}

// The gate between the SGEMM path's products, per token and component, in place: z (tokens × width float32) becomes
// w = scale·m ⊙ [Re z, −Im z] (DFT) or scale·m ⊙ z (DCT). A block per token, so that the ADAPTIVE gate's
// logits read the token's whole z before any of it is overwritten. With parts > 1, z is the first of that many
// partial products (a split of d_in, partStride floats apart), added into it in part order first.
__global__ void __launch_bounds__(FOURA_BLOCK) foura_gate(
        float* __restrict__ z, const float* __restrict__ gate, int gateKind, int rank, int dft, float scale, int tokens,
        int parts, long long partStride) {
    const int width = dft ? 2 * rank : rank;
    for (int t = blockIdx.x; t < tokens; t += gridDim.x) {
        float* zt = z + (long long) t * width;
        if (parts > 1) {
            foura_add_parts(zt, width, parts, partStride);
            __syncthreads(); // the sums before any logit reads them
        }
        float m[2];
        int owned = 0;
        for (int j = threadIdx.x; j < rank; j += FOURA_BLOCK, owned++) {
            m[owned] = foura_mask(zt, gate, gateKind, rank, dft, j);
        }
        __syncthreads(); // every logit has read z
        owned = 0;
        for (int j = threadIdx.x; j < rank; j += FOURA_BLOCK, owned++) {
            zt[j] *= scale * m[owned];
            if (dft) {
                zt[rank + j] *= -scale * m[owned];
            }
        }
        __syncthreads();
    }
}

// The token t and component j < rank of this thread of an elementwise gate pass (a thread per token and component),
// or false for a thread past tokens × rank.
__device__ __forceinline__ bool foura_gate_element(int tokens, int rank, long long* t, int* j) {
    const long long at = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (at >= (long long) tokens * rank) return false;
    *t = at / rank;
    *j = (int) (at - *t * rank);
    return true;
}

// foura_gate for the NONE and FIXED gates, whose mask does not depend on z: a thread per token and component q < rank
// (Re and, for the DFT, Im), so that a launch fills the device where a block per token left all but rank of its
// threads idle (9 µs at T = 4096, r = 16 on an H100). The same sums and products, in the same order, as foura_gate.
__global__ void __launch_bounds__(FOURA_BLOCK) foura_gate_elementwise(
        float* __restrict__ z, const float* __restrict__ gate, int gateKind, int rank, int dft, float scale, int tokens,
        int parts, long long partStride) {
    long long t;
    int j;
    if (!foura_gate_element(tokens, rank, &t, &j)) return;
    const int width = dft ? 2 * rank : rank;
    float* zt = z + t * width;
    const float m = foura_mask(zt, gate, gateKind, rank, dft, j);  // NONE and FIXED: z not read
    for (int c = j; c < width; c += rank) {  // Re, then Im for the DFT
        const float v = sum_of_parts(zt, c, parts, partStride);
        zt[c] = c < rank ? v * (scale * m) : v * (-scale * m);
    }
}

// The backward's per-token pass. In: z (tokens × width, Â·x) and dz (tokens × width, B̂ᵀ·∂L/∂y). Out, in
// place: z becomes the gated w that B̂ multiplied, dz becomes ∂L/∂z (with the ADAPTIVE gate's
// straight-through terms, DESIGN.md); for ADAPTIVE, dLogit (tokens × rank) gets ∂L/∂logit and absZ (tokens ×
// rank) |z|, whose products summed over tokens are the gate's gradient. A block per token; rank ≤ 2·FOURA_BLOCK.
__global__ void __launch_bounds__(FOURA_BLOCK) foura_gate_backward(
        float* __restrict__ z, float* __restrict__ dz, const float* __restrict__ gate, int gateKind, int rank,
        int dft, float alpha, int tokens, float* __restrict__ dLogit, float* __restrict__ absZ, int zParts,
        int dzParts, long long partStride) {
    __shared__ float sLogit[2 * FOURA_BLOCK];
    const int width = dft ? 2 * rank : rank;
    for (int t = blockIdx.x; t < tokens; t += gridDim.x) {
        float* zt = z + (long long) t * width;
        float* dzt = dz + (long long) t * width;
        if (zParts > 1 || dzParts > 1) { // partial products over parts of d_in (z) and d_out (dz), added in order
            foura_add_parts(zt, width, zParts, partStride);
            foura_add_parts(dzt, width, dzParts, partStride);
            __syncthreads();
        }
        float m[2];
        int owned = 0;
        for (int j = threadIdx.x; j < rank; j += FOURA_BLOCK, owned++) {
            float mj = 1.f;
            if (gateKind == FOURA_GATE_FIXED) {
                mj = gate[j];
            } else if (gateKind == FOURA_GATE_ADAPTIVE) {
                const float logit = foura_logit(zt, gate, rank, dft, j);
                mj = logit >= 0.f ? 1.f : 0.f;
                float dm = dzt[j] * zt[j];
                if (dft) {
                    dm -= dzt[rank + j] * zt[rank + j];
                }
                // σ'(l) = σ(l)·σ(−l) = e/(1+e)² with e = e^{−|l|}: 1 − σ would cancel for large logits
                const float e = expf(-fabsf(logit));
                sLogit[j] = alpha * dm * (e / ((1.f + e) * (1.f + e)));
                dLogit[(long long) t * rank + j] = sLogit[j];
                absZ[(long long) t * rank + j] = foura_magnitude(zt, j, rank, dft);
            }
            m[owned] = mj;
        }
        __syncthreads(); // sLogit complete, every logit has read z
        owned = 0;
        for (int j = threadIdx.x; j < rank; j += FOURA_BLOCK, owned++) {
            float extraRe = 0.f;
            float extraIm = 0.f;
            if (gateKind == FOURA_GATE_ADAPTIVE) {
                // |z_j| feels the gate: ∂L/∂z_j gains s_j·z_j/|z_j| with s_j = Σ_i ∂L/∂logit_i·G_ij
                float sj = 0.f;
                for (int i = 0; i < rank; i++) {
                    sj = fmaf(sLogit[i], gate[i * rank + j], sj);
                }
                const float re = zt[j];
                const float im = dft ? zt[rank + j] : 0.f;
                const float magnitude = foura_magnitude(zt, j, rank, dft);
                if (magnitude > 0.f) {
                    extraRe = sj * re / magnitude;
                    extraIm = sj * im / magnitude;
                }
            }
            const float g = alpha * m[owned];
            dzt[j] = fmaf(g, dzt[j], extraRe);
            zt[j] *= g;
            if (dft) {
                dzt[rank + j] = fmaf(-g, dzt[rank + j], extraIm);
                zt[rank + j] *= -g;
            }
        }
        __syncthreads();
    }
}

// foura_gate_backward for the NONE and FIXED gates (no logits): a thread per token and component q < rank, the same
// sums and products, in the same order, as there: w = g·[Re z, −Im z] and ∂L/∂z = g·[Re dz, −Im dz] with g = α·m
// (each ∂L/∂z one fused multiply-add, as there, so that even the sign of an underflowing product is the same).
__global__ void __launch_bounds__(FOURA_BLOCK) foura_gate_backward_elementwise(
        float* __restrict__ z, float* __restrict__ dz, const float* __restrict__ gate, int gateKind, int rank, int dft,
        float alpha, int tokens, int zParts, int dzParts, long long partStride) {
    long long t;
    int j;
    if (!foura_gate_element(tokens, rank, &t, &j)) return;
    const int width = dft ? 2 * rank : rank;
    float* zt = z + t * width;
    float* dzt = dz + t * width;
    const float g = alpha * foura_mask(zt, gate, gateKind, rank, dft, j);  // NONE and FIXED: z not read
    for (int c = j; c < width; c += rank) {
        const float v = sum_of_parts(zt, c, zParts, partStride);
        const float dv = sum_of_parts(dzt, c, dzParts, partStride);
        dzt[c] = fmaf(c < rank ? g : -g, dv, 0.f);  // foura_gate_backward's, whose straight-through term is 0 here
        zt[c] = c < rank ? v * g : v * -g;
    }
}

// ΔW = B̂·diag(g)·Â into dst (d_out × d_in, any dtype): mode 0 stores, 1 adds, 2 subtracts. bHatT is width ×
// d_out, aHat width × d_in (float32), g the width per-component factors α·m' (m' = [m, −m] for the DFT). A
// thread per element.
__global__ void foura_delta(
        const float* __restrict__ bHatT, const float* __restrict__ aHat, const float* __restrict__ g, int width,
        int dOut, int dIn, void* __restrict__ dst, int dtype, int mode) {
    const int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= dIn) return;
    for (int p = blockIdx.y; p < dOut; p += gridDim.y) {
        float acc = 0.f;
        for (int c = 0; c < width; c++) {
            acc = fmaf(bHatT[(long long) c * dOut + p] * g[c], aHat[(long long) c * dIn + q], acc);
        }
        const long long i = (long long) p * dIn + q;
        if (mode == 0) {
            store_from_float(dst, i, dtype, acc);
        } else {
            const float v = load_as_float(dst, i, dtype);
            store_from_float(dst, i, dtype, mode == 1 ? v + acc : v - acc);
        }
    }
}

// ---- the folds on the device: rows of length d through cuFFT's real transforms (cufftComplex = float2) ----

// The orthonormal DCT's scale of bin k.
__device__ __forceinline__ float foura_dct_scale(int k, int d) {
    return k == 0 ? sqrtf(1.f / d) : sqrtf(2.f / d);
}

// e^{iπk/(2d)} in double, rounded once (the half-sample twiddle of the DCT through an FFT).
__device__ __forceinline__ float2 foura_half_twiddle(int k, int d) {
    const double angle = 3.14159265358979323846 * k / (2.0 * d);
    return make_float2((float) cos(angle), (float) sin(angle));
}

// DFT fold: from the R2C half spectra of `rows` rows (halfBins = d/2+1 each), the full spectra scaled:
// re[i·d + k] = scale·Re X_i[k], im[i·d + k] = imSign·scale·Im X_i[k] (X[k] = conj(X[d−k]) past d/2).
// Â: re = Â's rows 0..r−1, im = rows r..2r−1, imSign = 1; B̂ᵀ from Bᵀ's rows: imSign = −1 (the conjugate).
__global__ void foura_fold_expand(const float2* __restrict__ half, int rows, int d, float scale, float imSign,
                                  float* __restrict__ re, float* __restrict__ im) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= d) return;
    const int halfBins = d / 2 + 1;
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        const bool mirrored = k >= halfBins;
        const float2 x = half[(long long) i * halfBins + (mirrored ? d - k : k)];
        re[(long long) i * d + k] = scale * x.x;
        im[(long long) i * d + k] = imSign * scale * (mirrored ? -x.y : x.y);
    }
}

// DFT adjoint fold, first half: the Hermitian part H_k = scale·(c_k + conj(c_{d−k}))/2, k ≤ d/2, of
// c_k = re[k] + i·imSign·im[k] per row, for a C2R: Re(Σ_k c_k·e^{+2πi·jk/d}) = C2R(H).
__global__ void foura_fold_hermitian(const float* __restrict__ re, const float* __restrict__ im, int rows, int d,
                                     float scale, float imSign, float2* __restrict__ half) {
    const int halfBins = d / 2 + 1;
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= halfBins) return;
    const int m = (d - k) % d;
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        const float* r = re + (long long) i * d;
        const float* c = im + (long long) i * d;
        half[(long long) i * halfBins + k] = make_float2(0.5f * scale * (r[k] + r[m]), 0.5f * scale * imSign * (c[k] - c[m]));
    }
}

// DCT-III (orthonormal) of rows, first half: with Z_k = s_k·v_k·e^{iπk/(2d)}, the Hermitian part
// H_k = (Z_k + conj(Z_{d−k}))/2 for k ≤ d/2, whose C2R w gives y by foura_dct_reorder (Makhoul's algorithm).
__global__ void foura_dct3_pre(const float* __restrict__ v, int rows, int d, float2* __restrict__ half) {
    const int halfBins = d / 2 + 1;
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= halfBins) return;
    const int m = (d - k) % d;
    const float2 tk = foura_half_twiddle(k, d);
    const float2 tm = foura_half_twiddle(m, d);
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        const float vk = foura_dct_scale(k, d) * v[(long long) i * d + k];
        const float vm = foura_dct_scale(m, d) * v[(long long) i * d + m];
        half[(long long) i * halfBins + k] = make_float2(0.5f * (vk * tk.x + vm * tm.x), 0.5f * (vk * tk.y - vm * tm.y));
    }
}

// Makhoul's reordering, dst[j] = src[n(j)] with n(j) = j/2 for even j and d−1−(j−1)/2 for odd j: after the
// C2R of foura_dct3_pre it gives the DCT-III; its inverse, dst[n(j)] = src[j] (inverse = 1), is the
// reordering before the R2C of a DCT-II.
__global__ void foura_dct_reorder(const float* __restrict__ src, int rows, int d, int inverse, float* __restrict__ dst) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    const int n = (j & 1) == 0 ? j / 2 : d - 1 - (j - 1) / 2;
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        const long long row = (long long) i * d;
        if (inverse) {
            dst[row + n] = src[row + j];
        } else {
            dst[row + j] = src[row + n];
        }
    }
}

// DCT-II (orthonormal) of rows, last half: from the R2C half spectra U of the reordered rows,
// X_k = s_k·Re(e^{−iπk/(2d)}·U_k) (U_k = conj(U_{d−k}) past d/2).
__global__ void foura_dct2_post(const float2* __restrict__ half, int rows, int d, float* __restrict__ x) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= d) return;
    const int halfBins = d / 2 + 1;
    const bool mirrored = k >= halfBins;
    const float2 t = foura_half_twiddle(k, d);
    const float s = foura_dct_scale(k, d);
    for (int i = blockIdx.y; i < rows; i += gridDim.y) {
        const float2 u = half[(long long) i * halfBins + (mirrored ? d - k : k)];
        const float uIm = mirrored ? -u.y : u.y;
        x[(long long) i * d + k] = s * (t.x * u.x + t.y * uIm);
    }
}

// dst (cols × rows) = srcᵀ (src rows × cols), float32: B (d_out × r) to Bᵀ's rows for the fold, and ∂Bᵀ back to ∂B.
__global__ void foura_transpose(const float* __restrict__ src, int rows, int cols, float* __restrict__ dst) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        dst[(long long) c * rows + r] = src[(long long) r * cols + c];
    }
}

// out (tokens × d, any dtype) += w·M, w tokens × width and M width × d (float32, row-major): the SGEMM route's products
// whose output is tokens × d and whose inner dimension is z's width (y += w·B̂ᵀ in the forward, ∂x += ∂z·Â in the
// backward). cuBLAS's SGEMM with β = 1 took 68 µs on an H100 at 4096 × 4096 × 32, where reading and writing out takes
// about 45; here a block owns 64 tokens × 128 columns of out and each thread 8 tokens × 4 columns, whose values of
// out it loads before the products, so that their latency passes while w and M (staged in shared memory 32
// components at a time: per component two float4 reads of w, broadcast across the warp, and one of M for 32
// multiply-adds) are summed. Each sum runs over the components in order and is added to out once (one rounding for
// float16 and bfloat16: no float32 scratch and no epilogue pass). vec: d a multiple of 4 and out and M aligned to 4
// elements, so that rows are read four elements at a time; else one at a time. Grid: column tiles × token tiles.
__global__ void __launch_bounds__(FOURA_BLOCK, 2) foura_add_product(
        const float* __restrict__ w, const float* __restrict__ m, int tokens, int width, int d,
        void* __restrict__ out, int outDtype, int vec) {
    __shared__ __align__(16) float ws[FOURA_ADD_K][FOURA_ADD_W_PITCH];
    __shared__ __align__(16) float ms[FOURA_ADD_K][FOURA_ADD_COLUMNS];
    if (outDtype == DT_FLOAT16) {
        foura_add_product_dtype<DT_FLOAT16>(w, m, tokens, width, d, out, vec != 0, ws, ms);
    } else if (outDtype == DT_BFLOAT16) {
        foura_add_product_dtype<DT_BFLOAT16>(w, m, tokens, width, d, out, vec != 0, ws, ms);
    } else {
        foura_add_product_dtype<DT_FLOAT32>(w, m, tokens, width, d, out, vec != 0, ws, ms);
    }
}

}  // extern "C"
