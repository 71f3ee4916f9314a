// FourierFT kernels. The FFTs themselves are cuFFT's, but for the fused forward's (block_fft.cuh); these kernels
// build the sparse spectra around them and gather from them. Dtype conversion and the epilogues are in common.cu.
//
// Determinism: no kernel uses floating-point atomics. Every output element is written by exactly
// one thread, which sums its contributions in the fixed order of the CSR grouping built on the
// host (FourierFTSpec), so repeated runs are bit-identical.

#include "block_fft.cuh"
#include "dtype.cuh"
#include "shared_memory.cuh"

// Entry encoding shared with SpectralGrouping.java: src = (sourceBin << 1) | flipImag.
__device__ __forceinline__ int src_bin(int packed) { return packed >> 1; }
__device__ __forceinline__ float src_imag_sign(int packed) { return (packed & 1) ? -1.0f : 1.0f; }

// acc + one token's product for a coefficient: Re r·Re q − sign·Im r·Im q, as two fused multiply-adds (both
// ∂L/∂c kernels, single-adapter and mixed, sum through it, so they give the same bits).
__device__ __forceinline__ float add_coeff_product(float acc, float2 r, float2 q, float sgn) {
    acc = fmaf(r.x, q.x, acc);
    return fmaf(-sgn * r.y, q.y, acc);
}

// One output bin of one token: halfScale · Σ_e c[entryCoeff[e]] · (Re R[b_e], ±Im R[b_e]) over entries e0..e1−1,
// in entry order, R[b] = binAt(b) (every gather sums through it, so the mixed batch's kernels, the single adapter's
// and the fused kernels, which read bins at their FFT's slots, sum alike).
template <class BinAt>
__device__ __forceinline__ float2 gather_bin_at(BinAt binAt, const float* __restrict__ coeffs,
                                                const int* __restrict__ entryCoeff, const int* __restrict__ entrySrc,
                                                int e0, int e1, float halfScale) {
    float re = 0.0f, im = 0.0f;
    for (int e = e0; e < e1; ++e) {
        const int packed = entrySrc[e];
        const float2 r = binAt(src_bin(packed));
        const float c = coeffs[entryCoeff[e]];
        re = fmaf(c, r.x, re);
        im = fmaf(c * src_imag_sign(packed), r.y, im);
    }
    return make_float2(halfScale * re, halfScale * im);
}

// gather_bin_at from a row of bins in natural order.
__device__ __forceinline__ float2 gather_bin(const float2* __restrict__ row, const float* __restrict__ coeffs,
                                             const int* __restrict__ entryCoeff, const int* __restrict__ entrySrc,
                                             int e0, int e1, float halfScale) {
    return gather_bin_at([row](int b) { return row[b]; }, coeffs, entryCoeff, entrySrc, e0, e1, halfScale);
}

// The steps both fused kernels take per token, on one block's shared memory.

// Whether every pair (row[2m], row[2m + 1]) of rows starting at even elements of base is one aligned access of two
// elements (8 bytes for float32, 4 for float16 and bfloat16): true for whole allocations, not for every view.
__device__ __forceinline__ bool fused_pairs_aligned(const void* base, int dtype) {
    const unsigned long long bytes = dtype == DT_FLOAT32 ? 8 : 4;
    return (reinterpret_cast<unsigned long long>(base) & (bytes - 1)) == 0;
}

// Elements i and i + 1 (i even) of a row of dtype DT as floats, in one access (fused_pairs_aligned).
template <int DT>
__device__ __forceinline__ float2 fused_pair(const void* base, long long i) {
    if constexpr (DT == DT_FLOAT32) {
        return *reinterpret_cast<const float2*>(static_cast<const float*>(base) + i);
    } else if constexpr (DT == DT_FLOAT16) {
        return __half22float2(*reinterpret_cast<const __half2*>(static_cast<const __half*>(base) + i));
    } else {
        return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(static_cast<const __nv_bfloat16*>(base) + i));
    }
}

// Stores v as elements i and i + 1 (i even) of a row of dtype DT in one access, each rounded to nearest even as
// store_from_float rounds it.
template <int DT>
__device__ __forceinline__ void fused_store_pair(void* base, long long i, float2 v) {
    if constexpr (DT == DT_FLOAT32) {
        *reinterpret_cast<float2*>(static_cast<float*>(base) + i) = v;
    } else if constexpr (DT == DT_FLOAT16) {
        *reinterpret_cast<__half2*>(static_cast<__half*>(base) + i) = __floats2half2_rn(v.x, v.y);
    } else {
        *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(base) + i) = __floats2bfloat162_rn(v.x, v.y);
    }
}

// fused_load_pairs for a row of dtype DT whose pairs are aligned: one access per pair. (Loads issued several at a
// time before their stores took the kernels from 32 to 47 registers, 40 to 57 with radix-8 passes.)
template <int DT>
__device__ __forceinline__ void fused_load_pairs_as(float2* a, const void* __restrict__ src, long long first,
                                                    const BlockFftLength& n) {
    for (int m = threadIdx.x; m < n.m; m += blockDim.x) a[block_fft_pad(m, n)] = fused_pair<DT>(src, first + 2 * m);
}

// Pair m = (row[2m], row[2m + 1]) for m < n.m at its slot: a real row of any dtype as complex pairs for
// block_fft_real_forward. The dtype is dispatched once per row, and a pair is one access where the row's pairs are
// aligned (two scalar loads, each behind load_as_float's switch, otherwise).
__device__ __forceinline__ void fused_load_pairs(float2* a, const void* __restrict__ src, long long first, int dtype,
                                                 const BlockFftLength& n) {
    if (!fused_pairs_aligned(src, dtype)) {
        for (int m = threadIdx.x; m < n.m; m += blockDim.x) {
            a[block_fft_pad(m, n)] = make_float2(load_as_float(src, first + 2 * m, dtype),
                                                 load_as_float(src, first + 2 * m + 1, dtype));
        }
        return;
    }
    switch (dtype) {
        case DT_FLOAT16: fused_load_pairs_as<DT_FLOAT16>(a, src, first, n); break;
        case DT_BFLOAT16: fused_load_pairs_as<DT_BFLOAT16>(a, src, first, n); break;
        default: fused_load_pairs_as<DT_FLOAT32>(a, src, first, n); break;
    }
}

// Bin o ≤ to.m of z, in natural order at its slot (block_fft_pad): the gather/scatter (gather_bin_at) from a half
// spectrum left by block_fft_real_forward (bin b at block_fft_slot(b, from)), with coefficients in shared memory.
__device__ __forceinline__ void fused_gather(float2* z, const BlockFftLength& to, const float2* spectrum,
                                             const BlockFftLength& from,
                                             const float* coeffs, const int* __restrict__ binStart,
                                             const int* __restrict__ entryCoeff, const int* __restrict__ entrySrc,
                                             float halfScale) {
    const auto binAt = [spectrum, &from](int b) { return spectrum[block_fft_slot(b, from)]; };
    for (int o = threadIdx.x; o <= to.m; o += blockDim.x) {
        z[block_fft_pad(o, to)] = gather_bin_at(binAt, coeffs, entryCoeff, entrySrc, binStart[o], binStart[o + 1], halfScale);
    }
}

// fused_add_samples for a row of dtype DT whose pairs are aligned: one load and one store per pair.
template <int DT>
__device__ __forceinline__ void fused_add_samples_as(void* __restrict__ dst, long long first, const float2* a,
                                                     const BlockFftLength& n) {
    for (int j = threadIdx.x; j < n.m; j += blockDim.x) {
        const float2 v = a[block_fft_reversed(j, n)];
        const float2 old = fused_pair<DT>(dst, first + 2 * j);
        fused_store_pair<DT>(dst, first + 2 * j, make_float2(old.x + v.x, old.y + v.y));
    }
}

// row += the real samples block_fft_real_inverse left in a (samples 2j, 2j + 1 at block_fft_reversed(j, n)), in the
// row's dtype (dispatched once per row; the same sums and roundings whichever way the pairs are accessed).
__device__ __forceinline__ void fused_add_samples(void* __restrict__ dst, long long first, int dtype, const float2* a,
                                                  const BlockFftLength& n) {
    if (!fused_pairs_aligned(dst, dtype)) {
        for (int j = threadIdx.x; j < n.m; j += blockDim.x) {
            const float2 v = a[block_fft_reversed(j, n)];
            store_from_float(dst, first + 2 * j, dtype, load_as_float(dst, first + 2 * j, dtype) + v.x);
            store_from_float(dst, first + 2 * j + 1, dtype, load_as_float(dst, first + 2 * j + 1, dtype) + v.y);
        }
        return;
    }
    switch (dtype) {
        case DT_FLOAT16: fused_add_samples_as<DT_FLOAT16>(dst, first, a, n); break;
        case DT_BFLOAT16: fused_add_samples_as<DT_BFLOAT16>(dst, first, a, n); break;
        default: fused_add_samples_as<DT_FLOAT32>(dst, first, a, n); break;
    }
}

// Stages coefficient row `row` − 1 of the table in shared memory unless it is there already (*staged).
__device__ __forceinline__ void fused_stage_row(float* coeffs, const float* __restrict__ table, int n, int row,
                                                int* staged) {
    if (row != *staged) {
        const float* src = table + (long long) (row - 1) * n;
        for (int i = threadIdx.x; i < n; i += blockDim.x) coeffs[i] = src[i];
        *staged = row;
    }
}

// The whole unmaterialized forward of a token in one block, for d_in = 2·halfIn and d_out = 2·halfOut with each half
// a power of two times 1, 3, 5 or 7 (oddIn, oddOut): y[t] += C2R of the gather/scatter of R2C(x[t]), as
// fourierft_gather_scatter_mixed_rows and cuFFT compute it, with the token's row, both spectra and its coefficients
// in shared memory (block_fft.cuh), so x is read once, y read and written once, and nothing else crosses global
// memory but the tables. One block per token, tokens strided over gridDim.x. tokenRow == nullptr: every token uses
// coeffTable's first row (a single adapter) and halfScale; else token t uses row tokenRow[t] − 1 of coeffTable and of
// rowHalfScale (each row's adapter's own α/(2·d_out·d_in): adapters of one index set may differ in α), and
// tokenRow[t] = 0 leaves y[t] alone (no adapter, or one of another index set). x and y are of any dtype; the sums
// of a bin are those of gather_bin_at in its order. spectrum: the block's dynamic shared memory, both half spectra padded
// (8·block_fft_slots bytes each) and then n floats. twiddles: block_fft.cuh's table for L, a multiple of d_in and
// d_out. Two kernels: fourierft_forward_fused for powers of two (oddIn = oddOut = 1: the radix-odd stages compiled
// out, half the registers) and fourierft_forward_fused_radix for the rest.
template <bool kOddRadix, bool kRadix8>
__device__ __forceinline__ void forward_fused(
        float2* const spectrum, const void* __restrict__ x, int xDtype, int halfIn, int oddIn, void* __restrict__ y,
        int yDtype, int halfOut, int oddOut, const float* __restrict__ coeffTable, int n, const int* __restrict__ tokenRow,
        const float* __restrict__ rowHalfScale, const int* __restrict__ binStart, const int* __restrict__ entryCoeff,
        const int* __restrict__ entrySrc, const float2* __restrict__ twiddles, int twiddleLength, float halfScale,
        int tokens) {
    const BlockFftLength in = block_fft_length(halfIn, kOddRadix ? oddIn : 1);
    const BlockFftLength out = block_fft_length(halfOut, kOddRadix ? oddOut : 1);
    const int dIn = 2 * halfIn, dOut = 2 * halfOut;
    float2* const z = spectrum + block_fft_slots(in);
    float* const coeffs = reinterpret_cast<float*>(z + block_fft_slots(out));
    int staged = 0; // the table row + 1 now in shared memory, 0 for none
    for (int t = blockIdx.x; t < tokens; t += gridDim.x) {
        const int row = tokenRow == nullptr ? 1 : tokenRow[t]; // the same for the whole block
        if (row == 0) continue;
        __syncthreads(); // the previous token is done with every buffer
        fused_stage_row(coeffs, coeffTable, n, row, &staged);
        fused_load_pairs(spectrum, x, (long long) t * dIn, xDtype, in);
        __syncthreads();
        block_fft_real_forward<kRadix8>(spectrum, in, twiddles, twiddleLength);
        fused_gather(z, out, spectrum, in, coeffs, binStart, entryCoeff, entrySrc,
                     rowHalfScale == nullptr ? halfScale : rowHalfScale[row - 1]);
        __syncthreads();
        block_fft_real_inverse<kRadix8>(z, out, twiddles, twiddleLength);
        fused_add_samples(y, (long long) t * dOut, yDtype, z, out);
    }
}

// The unmaterialized backward of a token in one block (the lengths as forward_fused takes them): x's and ∂L/∂y's
// rows transformed in shared memory, the token's products for ∂L/∂c written out, products[t·n + l] =
// Re X[a_l]·Re G[b_l] − sign_l·Im X[a_l]·Im G[b_l] (as fourierft_coeff_grad_partial multiplies them, with X and G
// the R2Cs of x and ∂L/∂y), and, where gx is not null, gx[t] += the forward with the roles of d_in and d_out swapped
// (the transposed grouping from G, x's spectrum buffer reused for it). The products are summed over tokens by
// fourierft_coeff_grad_rows in a fixed order. tokenRow and rowHalfScale as in forward_fused (only read for ∂L/∂x;
// tokens without a row are skipped and their products left unwritten). Dynamic shared memory: as forward_fused.
template <bool kOddRadix, bool kRadix8>
__device__ __forceinline__ void backward_fused(
        float2* const spectrum, const void* __restrict__ x, int xDtype, int halfIn, int oddIn,
        const void* __restrict__ gy, int gyDtype, int halfOut, int oddOut, void* __restrict__ gx, int gxDtype,
        const float* __restrict__ coeffTable, int n, const int* __restrict__ tokenRow,
        const float* __restrict__ rowHalfScale, const int* __restrict__ xBin, const int* __restrict__ gyBin,
        const float* __restrict__ imSign, const int* __restrict__ binStart, const int* __restrict__ entryCoeff,
        const int* __restrict__ entrySrc, const float2* __restrict__ twiddles, int twiddleLength, float halfScale,
        float* __restrict__ products, int tokens) {
    const BlockFftLength in = block_fft_length(halfIn, kOddRadix ? oddIn : 1);
    const BlockFftLength out = block_fft_length(halfOut, kOddRadix ? oddOut : 1);
    const int dIn = 2 * halfIn, dOut = 2 * halfOut;
    float2* const g = spectrum + block_fft_slots(in);
    float* const coeffs = reinterpret_cast<float*>(g + block_fft_slots(out));
    int staged = 0;
    for (int t = blockIdx.x; t < tokens; t += gridDim.x) {
        const int row = tokenRow == nullptr ? 1 : tokenRow[t]; // the same for the whole block
        if (row == 0) continue;
        __syncthreads(); // the previous token is done with every buffer
        if (gx != nullptr) fused_stage_row(coeffs, coeffTable, n, row, &staged);
        fused_load_pairs(spectrum, x, (long long) t * dIn, xDtype, in);
        fused_load_pairs(g, gy, (long long) t * dOut, gyDtype, out);
        __syncthreads();
        block_fft_real_forward<kRadix8>(spectrum, in, twiddles, twiddleLength);
        block_fft_real_forward<kRadix8>(g, out, twiddles, twiddleLength);
        float* const p = products + (long long) t * n;
        for (int l = threadIdx.x; l < n; l += blockDim.x) {
            const float2 r = spectrum[block_fft_slot(xBin[l], in)];
            const float2 q = g[block_fft_slot(gyBin[l], out)];
            p[l] = add_coeff_product(0.0f, r, q, imSign[l]);
        }
        if (gx == nullptr) continue;
        __syncthreads(); // x's spectrum is read; its buffer takes ∂L/∂x's
        fused_gather(spectrum, in, g, out, coeffs, binStart, entryCoeff, entrySrc,
                     rowHalfScale == nullptr ? halfScale : rowHalfScale[row - 1]);
        __syncthreads();
        block_fft_real_inverse<kRadix8>(spectrum, in, twiddles, twiddleLength);
        fused_add_samples(gx, (long long) t * dIn, gxDtype, spectrum, in);
    }
}

extern "C" {

// ΔW's Hermitian half spectrum for `layers` coefficient vectors (coeffs is layers × n).
// Only the non-empty bins are written; the caller zeroes the spectrum first. Bin b of the
// grouping sits at linear position binPos[b] of a layer's d_out × (d_in/2+1) half spectrum and
// receives halfScale · Σ c[entryCoeff[e]]; the imaginary part of every bin is zero because the
// dense spectrum S holds real coefficients, so H = (S + S(-u,-v))/2 is real.
__global__ void fourierft_scatter_half_spectrum(
        float2* __restrict__ spectrum, long long binsPerLayer,
        const float* __restrict__ coeffs, int n,
        const int* __restrict__ binPos, const int* __restrict__ binStart,
        const int* __restrict__ entryCoeff, int nBins, float halfScale) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= nBins) return;
    const int layer = blockIdx.y;
    const float* c = coeffs + (long long) layer * n;
    float sum = 0.0f;
    for (int e = binStart[b]; e < binStart[b + 1]; ++e) sum += c[entryCoeff[e]];
    spectrum[layer * binsPerLayer + binPos[b]] = make_float2(halfScale * sum, 0.0f);
}

// Stage 1 of materialize for sparse spectra, replacing "zero the half spectrum, scatter, inverse FFT
// down every column": the inverse DFT along d_out of each half-spectrum column v, computed directly
// from the column's few entries,
//   G[p, v] = halfScale · Σ_{e in column v} c[colCoeff[e]] · ω^{p·colRow[e]},   ω = e^{2πi/d_out},
// for rows p in [rowBegin, rowBegin+rows) of `layers` layers (a chunk the caller sizes to stay in L2
// until the row C2R transform reads it), written densely (empty columns get zeros), so nothing needs
// clearing. One thread per (column v, tile of COLUMN_TILE_ROWS rows); v is the fastest index, so a warp
// writes consecutive bins of a row. Inside a tile the twiddle advances by one complex multiplication per
// row, by the entry's step ω^{colRow[e]} (a host-computed table, correctly rounded: its error
// accumulates over the tile); the start is computed from the exact integer phase (p0·row) mod d_out. In G, row p of layer l starts at (l·rows + p − rowBegin)·halfIn;
// layer l reads coefficient vector l·n.
#define COLUMN_TILE_ROWS 16

// e^{2πi m/d} for an integer phase 0 <= m < d, via the angle reduced to (-π, π]. Below 2^24, 2r and d
// are exact floats and the division is correctly rounded; above, double precision keeps it so.
__device__ __forceinline__ float2 unit_root(long long m, int d) {
    const long long r = 2 * m > d ? m - d : m;
    const float x = d < (1 << 24) ? (float) (2 * r) / (float) d : (float) (2.0 * (double) r / (double) d);
    float s, c;
    sincospif(x, &s, &c);
    return make_float2(c, s);
}

// e^{2πi·p·u/d} for 0 <= p, u < d, from the exact phase (p·u) mod d; the product fits 32 bits (a cheaper
// modulo) when d < 2^16.
__device__ __forceinline__ float2 unit_root_of_product(long long p, int u, int d) {
    const long long phase = d < 65536 ? (long long) ((unsigned) p * (unsigned) u % (unsigned) d) : p * u % d;
    return unit_root(phase, d);
}

__global__ void __launch_bounds__(256, 3) fourierft_column_synthesis(
        float2* __restrict__ out, int dOut, int rowBegin, int rows, int halfIn,
        const float* __restrict__ coeffs, int n,
        const int* __restrict__ colStart, const int* __restrict__ colRow, const int* __restrict__ colCoeff,
        const float* __restrict__ colStepCos, const float* __restrict__ colStepSin, float halfScale, int layers) {
    const long long tiles = (rows + COLUMN_TILE_ROWS - 1) / COLUMN_TILE_ROWS;
    const long long items = tiles * halfIn;
    const int rowEnd = rowBegin + rows;
    for (int layer = blockIdx.y; layer < layers; layer += gridDim.y) {
        const float* c = coeffs + (long long) layer * n;
        float2* g = out + (long long) layer * rows * halfIn;
        for (long long item = blockIdx.x * (long long) blockDim.x + threadIdx.x; item < items;
             item += (long long) gridDim.x * blockDim.x) {
            const int v = (int) (item % halfIn);
            const long long p0 = rowBegin + (item / halfIn) * COLUMN_TILE_ROWS;
            float re[COLUMN_TILE_ROWS], im[COLUMN_TILE_ROWS];
#pragma unroll
            for (int i = 0; i < COLUMN_TILE_ROWS; ++i) {
                re[i] = 0.0f;
                im[i] = 0.0f;
            }
            const int e1 = colStart[v + 1];
            for (int e = colStart[v]; e < e1; ++e) {
                const int u = colRow[e];
                const float a = halfScale * c[colCoeff[e]];
                float2 w = unit_root_of_product(p0, u, dOut);
                const float2 step = make_float2(colStepCos[e], colStepSin[e]);
#pragma unroll
                for (int i = 0; i < COLUMN_TILE_ROWS; ++i) {
                    re[i] = fmaf(a, w.x, re[i]);
                    im[i] = fmaf(a, w.y, im[i]);
                    const float wx = fmaf(w.x, step.x, -w.y * step.y);
                    w.y = fmaf(w.x, step.y, w.y * step.x);
                    w.x = wx;
                }
            }
#pragma unroll
            for (int i = 0; i < COLUMN_TILE_ROWS; ++i) {
                if (p0 + i < rowEnd) g[(p0 + i - rowBegin) * halfIn + v] = make_float2(re[i], im[i]);
            }
        }
    }
}

// ∂L/∂c from ∂L/∂ΔW without a column transform, the transpose of column synthesis: given the row R2C
// spectra F1 of rows [rowBegin, rowBegin+rows) (rows × halfIn complex, pitch halfIn, a chunk the caller
// keeps in L2), each coefficient l, reading bin (u_l, v_l) of the 2-D spectrum, needs only
//   Σ_p Re(F1[p, v_l] · e^{-2πi·p·u_l/d_out}).
// One thread per (tile of COLUMN_TILE_ROWS rows, coefficient); coefficients are visited in `order`
// (sorted by column, so neighbouring threads read neighbouring columns) and each tile's sum goes to
// partial[tile·n + l], tiles numbered from row 0 (rowBegin is a multiple of the tile), so
// fourierft_coeff_grad_reduce over all tiles, in order, gives ∂L/∂c. The twiddle advances by the
// conjugate of the coefficient's step e^{2πi·u_l/d_out} (host table) from an exact start.
__global__ void __launch_bounds__(256) fourierft_column_analysis(
        const float2* __restrict__ rowSpec, int dOut, int rowBegin, int rows, int halfIn,
        const int* __restrict__ order, const int* __restrict__ bin,
        const float* __restrict__ stepCos, const float* __restrict__ stepSin, int n, float* __restrict__ partial) {
    const long long tiles = (rows + COLUMN_TILE_ROWS - 1) / COLUMN_TILE_ROWS;
    const int rowEnd = rowBegin + rows;
    for (long long item = blockIdx.x * (long long) blockDim.x + threadIdx.x; item < tiles * n;
         item += (long long) gridDim.x * blockDim.x) {
        const int l = order[item % n];
        const int u = bin[l] / halfIn;
        const int v = bin[l] % halfIn;
        const long long p0 = rowBegin + (item / n) * COLUMN_TILE_ROWS;
        float2 w = unit_root_of_product(p0, u, dOut);
        w.y = -w.y;
        const float2 step = make_float2(stepCos[l], -stepSin[l]);
        float acc = 0.0f;
        for (int i = 0; i < COLUMN_TILE_ROWS && p0 + i < rowEnd; ++i) {
            const float2 f = rowSpec[(p0 + i - rowBegin) * halfIn + v];
            acc = fmaf(f.x, w.x, acc);
            acc = fmaf(-f.y, w.y, acc);
            const float wx = fmaf(w.x, step.x, -w.y * step.y);
            w.y = fmaf(w.x, step.y, w.y * step.x);
            w.x = wx;
        }
        partial[(p0 / COLUMN_TILE_ROWS) * n + l] = acc;
    }
}


// Per token t and output bin o (0..outBins-1), the unmaterialized forward's spectrum:
//   Z[t,o] = halfScale · Σ_e c[entryCoeff[e]] · (Re R[t,b_e], ±Im R[t,b_e])
// where R is the R2C transform of the input rows (inBins bins per token) and the sign encodes
// the conjugations of DFT→X and of the mirrored output bin. Every bin is written (zero when
// empty), so Z needs no clearing. Z rows are zPitch float2 apart. Rows [tokens, rows) are
// padding (a batch rounded up to a cuFFT plan's size) and are written as zeros.
__global__ void fourierft_gather_scatter(
        const float2* __restrict__ in, int inBins,
        float2* __restrict__ out, int outBins, int zPitch,
        const float* __restrict__ coeffs,
        const int* __restrict__ binStart, const int* __restrict__ entryCoeff,
        const int* __restrict__ entrySrc, float halfScale, int tokens, int rows) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= outBins) return;
    const int e0 = binStart[o], e1 = binStart[o + 1];
    for (int t = blockIdx.y; t < rows; t += gridDim.y) {
        if (t >= tokens) {
            out[(long long) t * zPitch + o] = make_float2(0.0f, 0.0f);
            continue;
        }
        out[(long long) t * zPitch + o] = gather_bin(in + (long long) t * inBins, coeffs, entryCoeff, entrySrc, e0, e1,
                                                     halfScale);
    }
}

// The mixed batch's form of fourierft_gather_scatter: token t takes its coefficients from row tokenRow[t] − 1 of
// a table of n-coefficient rows (one row per adapter of this index set used in the batch), and its scale from the same
// row of rowHalfScale (the row's adapter's α/(2·d_out·d_in)); tokenRow[t] = 0 marks
// a token of another index set, or without an adapter: its spectrum is written as zeros, so that adding this
// group's result into y leaves it alone.
__global__ void fourierft_gather_scatter_mixed(
        const float2* __restrict__ in, int inBins,
        float2* __restrict__ out, int outBins, int zPitch,
        const float* __restrict__ coeffTable, int n, const int* __restrict__ tokenRow,
        const float* __restrict__ rowHalfScale, const int* __restrict__ binStart, const int* __restrict__ entryCoeff,
        const int* __restrict__ entrySrc, int tokens, int rows) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= outBins) return;
    const int e0 = binStart[o], e1 = binStart[o + 1];
    for (int t = blockIdx.y; t < rows; t += gridDim.y) {
        const int row = t < tokens ? tokenRow[t] : 0;
        if (row == 0) {
            out[(long long) t * zPitch + o] = make_float2(0.0f, 0.0f);
            continue;
        }
        out[(long long) t * zPitch + o] = gather_bin(in + (long long) t * inBins, coeffTable + (long long) (row - 1) * n,
                                                     entryCoeff, entrySrc, e0, e1, rowHalfScale[row - 1]);
    }
}

// fourierft_gather_scatter_mixed with a block per token (and chunk of its bins) in place of a block per 256 bins of
// one token: the block first copies its token's n coefficients into shared memory in coalesced loads (again only
// when the next token in its stride has another row), then sums bins
// chunkBegin + threadIdx.x, + blockDim.x, … below chunkEnd through gather_bin, which reads the row from shared
// memory: the same sums in the same order, so the same bits. gridDim.x chunks split the bins (the host keeps
// enough blocks for small batches); tokens are strided over gridDim.y. Dynamic shared memory: 4·n bytes.
__global__ void __launch_bounds__(256) fourierft_gather_scatter_mixed_rows(
        const float2* __restrict__ in, int inBins,
        float2* __restrict__ out, int outBins, int zPitch,
        const float* __restrict__ coeffTable, int n, const int* __restrict__ tokenRow,
        const float* __restrict__ rowHalfScale, const int* __restrict__ binStart, const int* __restrict__ entryCoeff,
        const int* __restrict__ entrySrc, int tokens, int rows) {
    SPEFT_DYNAMIC_SHARED(float, coeffs);
    const int chunk = (outBins + gridDim.x - 1) / gridDim.x;
    const int oBegin = blockIdx.x * chunk;
    const int oEnd = min(outBins, oBegin + chunk);
    int staged = 0; // the table row + 1 now in shared memory, 0 for none
    for (int t = blockIdx.y; t < rows; t += gridDim.y) {
        const int row = t < tokens ? tokenRow[t] : 0; // the same for the whole block
        float2* z = out + (long long) t * zPitch;
        if (row == 0) {
            for (int o = oBegin + threadIdx.x; o < oEnd; o += blockDim.x) z[o] = make_float2(0.0f, 0.0f);
            continue;
        }
        if (row != staged) {
            __syncthreads(); // every thread is done reading the previous row
            const float* src = coeffTable + (long long) (row - 1) * n;
            for (int i = threadIdx.x; i < n; i += blockDim.x) coeffs[i] = src[i];
            __syncthreads();
            staged = row;
        }
        const float2* r = in + (long long) t * inBins;
        const float halfScale = rowHalfScale[row - 1];
        for (int o = oBegin + threadIdx.x; o < oEnd; o += blockDim.x) {
            z[o] = gather_bin(r, coeffs, entryCoeff, entrySrc, binStart[o], binStart[o + 1], halfScale);
        }
    }
}

// The fused kernels' parameters and the arguments they hand on, one list for each family of three kernels.
#define FUSED_FORWARD_PARAMS                                                                                          \
    const void* __restrict__ x, int xDtype, int halfIn, int oddIn, void* __restrict__ y, int yDtype, int halfOut,     \
        int oddOut, const float* __restrict__ coeffTable, int n, const int* __restrict__ tokenRow,                    \
        const float* __restrict__ rowHalfScale, const int* __restrict__ binStart, const int* __restrict__ entryCoeff, \
        const int* __restrict__ entrySrc, const float2* __restrict__ twiddles, int twiddleLength, float halfScale,    \
        int tokens
#define FUSED_FORWARD_ARGS                                                                                            \
    x, xDtype, halfIn, oddIn, y, yDtype, halfOut, oddOut, coeffTable, n, tokenRow, rowHalfScale, binStart,            \
        entryCoeff, entrySrc, twiddles, twiddleLength, halfScale, tokens
#define FUSED_BACKWARD_PARAMS                                                                                         \
    const void* __restrict__ x, int xDtype, int halfIn, int oddIn, const void* __restrict__ gy, int gyDtype,          \
        int halfOut, int oddOut, void* __restrict__ gx, int gxDtype, const float* __restrict__ coeffTable, int n,     \
        const int* __restrict__ tokenRow, const float* __restrict__ rowHalfScale, const int* __restrict__ xBin,       \
        const int* __restrict__ gyBin, const float* __restrict__ imSign, const int* __restrict__ binStart,             \
        const int* __restrict__ entryCoeff, const int* __restrict__ entrySrc, const float2* __restrict__ twiddles,     \
        int twiddleLength, float halfScale, float* __restrict__ products, int tokens
#define FUSED_BACKWARD_ARGS                                                                                           \
    x, xDtype, halfIn, oddIn, gy, gyDtype, halfOut, oddOut, gx, gxDtype, coeffTable, n, tokenRow, rowHalfScale, xBin, \
        gyBin, imSign, binStart, entryCoeff, entrySrc, twiddles, twiddleLength, halfScale, products, tokens

// The fused forward (forward_fused above): powers of two, and lengths with a radix-3, 5 or 7 stage. The dynamic shared
// memory is declared in each kernel, in C linkage, as every kernel of this file does.
__global__ void __launch_bounds__(256) fourierft_forward_fused(FUSED_FORWARD_PARAMS) {
    SPEFT_DYNAMIC_SHARED(float2, spectrum);
    forward_fused<false, false>(spectrum, FUSED_FORWARD_ARGS);
}

__global__ void __launch_bounds__(256) fourierft_forward_fused_radix(FUSED_FORWARD_PARAMS) {
    SPEFT_DYNAMIC_SHARED(float2, spectrum);
    forward_fused<true, false>(spectrum, FUSED_FORWARD_ARGS);
}

// fourierft_forward_fused with its FFTs' passes three radix-2 stages at a time where they can be (block_fft_complex's
// kRadix8; the same operations): one round trip through shared memory and one barrier fewer per FFT at 4096 points,
// for 40 registers against 32 (at 4096² shared memory holds either to 6 blocks an SM; layers of under 28 KB, which
// 32 registers let run 8 blocks, get 6). Opt-in (spectralpeft.fourierft.fftPass=radix8, FusedForward) until a GPU
// has timed it beside the other.
__global__ void __launch_bounds__(256) fourierft_forward_fused_pass8(FUSED_FORWARD_PARAMS) {
    SPEFT_DYNAMIC_SHARED(float2, spectrum);
    forward_fused<false, true>(spectrum, FUSED_FORWARD_ARGS);
}

// The fused backward (backward_fused above): powers of two, and lengths with a radix-3, 5 or 7 stage.
__global__ void __launch_bounds__(256) fourierft_backward_fused(FUSED_BACKWARD_PARAMS) {
    SPEFT_DYNAMIC_SHARED(float2, spectrum);
    backward_fused<false, false>(spectrum, FUSED_BACKWARD_ARGS);
}

__global__ void __launch_bounds__(256) fourierft_backward_fused_radix(FUSED_BACKWARD_PARAMS) {
    SPEFT_DYNAMIC_SHARED(float2, spectrum);
    backward_fused<true, false>(spectrum, FUSED_BACKWARD_ARGS);
}

// fourierft_backward_fused with radix-8 passes, as fourierft_forward_fused_pass8 (the same operations as the other).
__global__ void __launch_bounds__(256) fourierft_backward_fused_pass8(FUSED_BACKWARD_PARAMS) {
    SPEFT_DYNAMIC_SHARED(float2, spectrum);
    backward_fused<false, true>(spectrum, FUSED_BACKWARD_ARGS);
}

// ∂L/∂c's partial sums from fourierft_backward_fused's products (rows × n): partial[tile, l] = Σ of the products of
// tile's tokens in their order, tile i's tokens being order[tileBegin[i] .. tileEnd[i]) (order == nullptr: the
// tokens themselves), each (tile, l) one thread; fourierft_coeff_grad_reduce (or _mixed) then sums the tiles in order.
__global__ void fourierft_coeff_grad_rows(
        const float* __restrict__ products, int n, const int* __restrict__ order, const int* __restrict__ tileBegin,
        const int* __restrict__ tileEnd, int tiles, float* __restrict__ partial) {
    const int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l >= n) return;
    for (int tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
        float acc = 0.0f;
        for (int i = tileBegin[tile]; i < tileEnd[tile]; ++i) {
            const long long t = order == nullptr ? i : order[i];
            acc += products[t * n + l];
        }
        partial[(long long) tile * n + l] = acc;
    }
}

// ∂L/∂c from the R2C transform F of ∂L/∂ΔW (layers × bins): grad[l] = scale · Re F[gatherBin[l]].
__global__ void fourierft_gather_real(
        const float2* __restrict__ spectrum, long long binsPerLayer,
        const int* __restrict__ gatherBin, int n, float scale, float* __restrict__ grad) {
    const int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l >= n) return;
    const int layer = blockIdx.y;
    grad[(long long) layer * n + l] = scale * spectrum[layer * binsPerLayer + gatherBin[l]].x;
}


// Unmaterialized ∂L/∂c, stage 1: per tile of tokens, per coefficient l,
//   partial[tile, l] = Σ_{t in tile} Re R[t,a_l]·Q[t,b_l] − sign_l · Im R[t,a_l]·Im Q[t,b_l]
// with R = R2C(x), Q = R2C(∂L/∂y) and sign_l = ±1 from the conjugations (see FourierFTSpec).
// Tiles are strided over gridDim.y; each (tile, l) is still summed by one thread in token order.
__global__ void fourierft_coeff_grad_partial(
        const float2* __restrict__ xSpec, int xBins, const float2* __restrict__ gySpec, int gyBins,
        const int* __restrict__ xBin, const int* __restrict__ gyBin, const float* __restrict__ imSign,
        int n, int tokens, int tileTokens, float* __restrict__ partial) {
    const int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l >= n) return;
    const int a = xBin[l], b = gyBin[l];
    const float sgn = imSign[l];
    const int tiles = (tokens + tileTokens - 1) / tileTokens;
    for (int tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
        const long long t0 = (long long) tile * tileTokens;
        const long long t1 = min((long long) tokens, t0 + tileTokens);
        float acc = 0.0f;
        for (long long t = t0; t < t1; ++t) {
            acc = add_coeff_product(acc, xSpec[t * xBins + a], gySpec[t * gyBins + b], sgn);
        }
        partial[(long long) tile * n + l] = acc;
    }
}

// Stage 2: grad[l] = scale · Σ_tile partial[tile, l], tiles summed in order.
__global__ void fourierft_coeff_grad_reduce(
        const float* __restrict__ partial, int tiles, int n, float scale, float* __restrict__ grad) {
    const int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l >= n) return;
    float acc = 0.0f;
    for (int tile = 0; tile < tiles; ++tile) acc += partial[(long long) tile * n + l];
    grad[l] = scale * acc;
}

// The mixed batch's ∂L/∂c, stage 1: the coefficient products of fourierft_coeff_grad_partial over tiles of one
// adapter's tokens each: tile i sums the tokens order[tileBegin[i] .. tileEnd[i]), where order lists the tokens
// grouped by adapter, each adapter's in token order, and a tile holds at most one partial sum's worth of one
// adapter's tokens. Per (tile, l) one thread sums in token order, as the single-adapter kernel does.
__global__ void fourierft_coeff_grad_partial_mixed(
        const float2* __restrict__ xSpec, int xBins, const float2* __restrict__ gySpec, int gyBins,
        const int* __restrict__ xBin, const int* __restrict__ gyBin, const float* __restrict__ imSign, int n,
        const int* __restrict__ order, const int* __restrict__ tileBegin, const int* __restrict__ tileEnd,
        int tiles, float* __restrict__ partial) {
    const int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l >= n) return;
    const int a = xBin[l], b = gyBin[l];
    const float sgn = imSign[l];
    for (int tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
        float acc = 0.0f;
        for (int i = tileBegin[tile]; i < tileEnd[tile]; ++i) {
            const long long t = order[i];
            acc = add_coeff_product(acc, xSpec[t * xBins + a], gySpec[t * gyBins + b], sgn);
        }
        partial[(long long) tile * n + l] = acc;
    }
}

// Stage 2: adapter j's gradient, its tiles adapterTile[j] .. adapterTile[j + 1] − 1 summed in order as
// fourierft_coeff_grad_reduce sums a single adapter's, times its own scale adapterScale[j] (s = α/(d_out·d_in) of
// that adapter: adapters of one index set may differ in α), to grad[gradOffset[j] + l].
__global__ void fourierft_coeff_grad_reduce_mixed(
        const float* __restrict__ partial, const int* __restrict__ adapterTile, const long long* __restrict__ gradOffset,
        const float* __restrict__ adapterScale, int adapters, int n, float* __restrict__ grad) {
    const int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l >= n) return;
    for (int j = blockIdx.y; j < adapters; j += gridDim.y) {
        float acc = 0.0f;
        for (int tile = adapterTile[j]; tile < adapterTile[j + 1]; ++tile) acc += partial[(long long) tile * n + l];
        grad[gradOffset[j] + l] = adapterScale[j] * acc;
    }
}

// A mixed batch's rows from its raw ids, for one index set of a pool's device copy: entries[id] is
// (set << 24) | (row + 1) for an adapter on the device (0: none), so tokenRow[t] = row + 1 of token t's adapter where
// that adapter is of `set`, else 0 (id −1, or another set). The host has checked every id other than −1 against
// its own copy of the entries before the launch, so entries[id] is in bounds.
__global__ void fourierft_token_rows(
        const int* __restrict__ ids, int tokens, const int* __restrict__ entries, int set, int* __restrict__ tokenRow) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= tokens) return;
    const int id = ids[t];
    const int entry = id < 0 ? 0 : entries[id];
    tokenRow[t] = (entry >> 24) == set ? (entry & 0xFFFFFF) : 0;
}

}  // extern "C"
