// FouRA's kernels (DESIGN.md, FouRA): the transforms are folded into the factors beforehand (Â = A·𝒯_in,
// B̂ = 𝒯_out⁻¹·B), so the forward is x·Âᵀ → gate → ·B̂ᵀ, fused here so that z never leaves the chip.
// Loaded by org.spectralpeft.foura.cuda.FouRAKernels.
#include "dtype.cuh"

// Tokens per block: each block reads Â and B̂ once for this many tokens (from L2 after the first blocks).
#define FOURA_TOKENS 8
// Input features staged in shared memory per step.
#define FOURA_K_TILE 512
// Widest z: 2r for the DFT with r = 128.
#define FOURA_MAX_WIDTH 256
#define FOURA_BLOCK 256

enum FouRAGate : int { FOURA_GATE_NONE = 0, FOURA_GATE_FIXED = 1, FOURA_GATE_ADAPTIVE = 2 };

extern "C" {

// y[t] += B̂·w(t) with w = scale·m(z) ⊙ [Re z, −Im z] (DFT; [z] for the DCT) and z = Â·x[t], for FOURA_TOKENS
// tokens per block. aHat is width × dIn and bHatT is width × dOut (B̂ transposed, so that the threads of a
// block read consecutive outputs), both float32 row-major; width = 2·rank (DFT) or rank (DCT), at most
// FOURA_MAX_WIDTH. gate: none; the FIXED mask (rank values); or the ADAPTIVE G (rank × rank) then b (rank),
// m_i = [b_i + Σ_j G_ij·|z_j| ≥ 0]. Deterministic: every sum has one owner and a fixed order (the x·Âᵀ sums
// by lane stride, then a fixed shuffle tree, then tile by tile).
__global__ void __launch_bounds__(FOURA_BLOCK) foura_forward(
        const void* __restrict__ x, int xDtype, const float* __restrict__ aHat, const float* __restrict__ bHatT,
        const float* __restrict__ gate, int gateKind, int rank, int dft, float scale,
        int dIn, int dOut, int tokens, void* __restrict__ y, int yDtype) {
    __shared__ float xs[FOURA_TOKENS * FOURA_K_TILE];
    __shared__ float z[FOURA_TOKENS * FOURA_MAX_WIDTH];
    __shared__ float w[FOURA_TOKENS * FOURA_MAX_WIDTH];
    const int width = dft ? 2 * rank : rank;
    const int first = blockIdx.x * FOURA_TOKENS;
    const int count = min(FOURA_TOKENS, tokens - first);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = FOURA_BLOCK / 32;

    for (int i = threadIdx.x; i < FOURA_TOKENS * width; i += FOURA_BLOCK) {
        const int t = i / width;
        z[t * FOURA_MAX_WIDTH + i - t * width] = 0.f;
    }
    // z = Â·x: a warp owns columns c ≡ warp (mod warps); its lanes stride over the tile's features
    for (int k0 = 0; k0 < dIn; k0 += FOURA_K_TILE) {
        const int kn = min(FOURA_K_TILE, dIn - k0);
        __syncthreads(); // the previous tile is consumed (and z cleared, the first time)
        for (int i = threadIdx.x; i < FOURA_TOKENS * FOURA_K_TILE; i += FOURA_BLOCK) {
            const int t = i / FOURA_K_TILE;
            const int k = i - t * FOURA_K_TILE;
            xs[i] = t < count && k < kn ? load_as_float(x, (long long) (first + t) * dIn + k0 + k, xDtype) : 0.f;
        }
        __syncthreads();
        for (int c = warp; c < width; c += warps) {
            const float* a = aHat + (long long) c * dIn + k0;
            float acc[FOURA_TOKENS];
#pragma unroll
            for (int t = 0; t < FOURA_TOKENS; t++) {
                acc[t] = 0.f;
            }
            for (int k = lane; k < kn; k += 32) {
                const float av = a[k];
#pragma unroll
                for (int t = 0; t < FOURA_TOKENS; t++) {
                    acc[t] = fmaf(xs[t * FOURA_K_TILE + k], av, acc[t]);
                }
            }
#pragma unroll
            for (int t = 0; t < FOURA_TOKENS; t++) {
#pragma unroll
                for (int offset = 16; offset > 0; offset >>= 1) {
                    acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], offset);
                }
            }
            if (lane == 0) {
#pragma unroll
                for (int t = 0; t < FOURA_TOKENS; t++) {
                    z[t * FOURA_MAX_WIDTH + c] += acc[t];
                }
            }
        }
    }
    __syncthreads();

    // the gate, per token and component
    for (int i = threadIdx.x; i < FOURA_TOKENS * rank; i += FOURA_BLOCK) {
        const int t = i / rank;
        const int j = i - t * rank;
        const float* zt = z + t * FOURA_MAX_WIDTH;
        float m = 1.f;
        if (gateKind == FOURA_GATE_FIXED) {
            m = gate[j];
        } else if (gateKind == FOURA_GATE_ADAPTIVE) {
            float logit = gate[rank * rank + j];
            for (int q = 0; q < rank; q++) {
                const float magnitude = dft ? hypotf(zt[q], zt[rank + q]) : fabsf(zt[q]);
                logit = fmaf(gate[j * rank + q], magnitude, logit);
            }
            m = logit >= 0.f ? 1.f : 0.f;
        }
        w[t * FOURA_MAX_WIDTH + j] = scale * m * zt[j];
        if (dft) {
            w[t * FOURA_MAX_WIDTH + rank + j] = -scale * m * zt[rank + j];
        }
    }
    __syncthreads();

    // y += B̂·w: a thread per output feature, reading B̂ᵀ along its row (coalesced across the block)
    for (int p = threadIdx.x; p < dOut; p += FOURA_BLOCK) {
        float acc[FOURA_TOKENS];
#pragma unroll
        for (int t = 0; t < FOURA_TOKENS; t++) {
            acc[t] = 0.f;
        }
        for (int c = 0; c < width; c++) {
            const float b = bHatT[(long long) c * dOut + p];
#pragma unroll
            for (int t = 0; t < FOURA_TOKENS; t++) {
                acc[t] = fmaf(w[t * FOURA_MAX_WIDTH + c], b, acc[t]);
            }
        }
        for (int t = 0; t < count; t++) {
            const long long i = (long long) (first + t) * dOut + p;
            store_from_float(y, i, yDtype, load_as_float(y, i, yDtype) + acc[t]);
        }
    }
}

}  // extern "C"
