// Power-of-two FFTs computed by one thread block in shared memory, for kernels that transform a row and use
// its spectrum without a round trip through global memory (fourierft_forward_fused).
//
// Conventions are cuFFT's: the forward transform is Σ x[q]·e^{−2πi·kq/N}, the inverse Σ X[k]·e^{+2πi·kq/N}, both
// unnormalized; a real row of N = 2M samples has the half spectrum X[0..M] (M + 1 bins), and a real inverse
// ignores the imaginary parts of X[0] and X[M].
//
// Twiddles come from a table tw[j] = e^{−2πi·j/L}, j < L/2, for a power of two L at least as long as every
// real transform that uses it (built in float64 on the host and rounded once), so every twiddle is the
// correctly rounded value whatever the transform's length.
//
// The complex transforms are radix-2 decimation in frequency, two stages per pass: natural order in, bit-reversed
// order out. The
// real forward transform leaves its half spectrum in that order too (bin b < M at slot rev(b), bin M at slot
// M: block_fft_slot), and the real inverse reads its input in natural order and leaves the real samples in
// bit-reversed pairs (sample 2p and 2p + 1 at slot rev(p)), so neither needs a reordering pass. Every function
// ends with the block synchronized, and must be called by every thread of the block.
#pragma once

__device__ __forceinline__ float2 bfft_mul(float2 a, float2 b) {
    return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// The slot of element i < 2^logM of a bit-reversed sequence of 2^logM elements (logM may be 0).
__device__ __forceinline__ int block_fft_reversed(int i, int logM) {
    return logM == 0 ? 0 : (int) (__brev((unsigned) i) >> (32 - logM));
}

// The slot of bin b ≤ M of a half spectrum left by block_fft_real_forward (M = 2^logM).
__device__ __forceinline__ int block_fft_slot(int b, int logM) {
    return b == (1 << logM) ? b : block_fft_reversed(b, logM);
}

// In-place complex FFT of a[0 .. 2^logM), natural order in, bit-reversed out; conjugated twiddles when inverse.
// twStride = L / 2^logM. The radix-2 stages (span h: a[i], a[i + h] → their sum, and their difference times
// W_2h^j) run two at a time, each thread holding the four elements two stages share in registers: the same
// arithmetic as one stage at a time, with half the shared memory traffic and barriers; an odd stage count ends
// with one radix-2 stage of span 1.
__device__ __forceinline__ void block_fft_dif(float2* a, int logM, const float2* __restrict__ tw, int twStride,
                                              bool inverse) {
    const int m = 1 << logM;
    const float sign = inverse ? -1.0f : 1.0f;
    int h = m >> 1;
    int stride = twStride; // W_2h^j = tw[j · stride]
    for (; h >= 2; h >>= 2, stride <<= 2) {
        const int q = h >> 1; // span of the second stage
        for (int b = threadIdx.x; b < (m >> 2); b += blockDim.x) {
            const int j = b & (q - 1);
            const int i = ((b - j) << 2) + j; // element j of group b / q, whose 2h = 4q elements start at (b / q)·4q
            const float2 a0 = a[i], a1 = a[i + q], a2 = a[i + 2 * q], a3 = a[i + 3 * q];
            float2 w0 = __ldg(tw + j * stride), w1 = __ldg(tw + (j + q) * stride), w2 = __ldg(tw + 2 * j * stride);
            w0.y *= sign;
            w1.y *= sign;
            w2.y *= sign;
            const float2 b0 = make_float2(a0.x + a2.x, a0.y + a2.y); // first stage, span h
            const float2 b2 = bfft_mul(make_float2(a0.x - a2.x, a0.y - a2.y), w0);
            const float2 b1 = make_float2(a1.x + a3.x, a1.y + a3.y);
            const float2 b3 = bfft_mul(make_float2(a1.x - a3.x, a1.y - a3.y), w1);
            a[i] = make_float2(b0.x + b1.x, b0.y + b1.y); // second stage, span q, twiddle W_2q^j
            a[i + q] = bfft_mul(make_float2(b0.x - b1.x, b0.y - b1.y), w2);
            a[i + 2 * q] = make_float2(b2.x + b3.x, b2.y + b3.y);
            a[i + 3 * q] = bfft_mul(make_float2(b2.x - b3.x, b2.y - b3.y), w2);
        }
        __syncthreads();
    }
    if (h == 1) { // the last stage alone: span 1, twiddle W_2^0 = 1
        for (int b = threadIdx.x; b < (m >> 1); b += blockDim.x) {
            const float2 u = a[2 * b], v = a[2 * b + 1];
            a[2 * b] = make_float2(u.x + v.x, u.y + v.y);
            a[2 * b + 1] = make_float2(u.x - v.x, u.y - v.y);
        }
        __syncthreads();
    }
}

// The half spectrum of N = 2M real samples (M = 2^logM) that the caller has put in a[0 .. M) as complex pairs
// a[m] = (x[2m], x[2m + 1]), block synchronized: a needs M + 1 elements. On return bin b is at
// a[block_fft_slot(b, logM)]. tw's L is a multiple of N.
__device__ __forceinline__ void block_fft_real_forward(float2* a, int logM, const float2* __restrict__ tw, int twLength) {
    const int m = 1 << logM;
    block_fft_dif(a, logM, tw, twLength >> logM, false);
    const int realStride = twLength >> (logM + 1); // tw[k · realStride] = e^{−2πi·k/N}
    for (int k = threadIdx.x; k <= m / 2; k += blockDim.x) {
        // Z = DFT_M of the pairs; bins k and M − k of the real transform come from Z[k] and Z[M − k] (Z[M] = Z[0]):
        // E = (Z[k] + conj Z[M−k]) / 2, O = (Z[k] − conj Z[M−k]) / 2i, X[k] = E + W·O, X[M−k] = conj(E − W·O).
        const int kSlot = block_fft_reversed(k, logM);
        const int mirrorSlot = block_fft_reversed((m - k) & (m - 1), logM);
        const float2 z = a[kSlot], zm = a[mirrorSlot];
        const float2 e = make_float2(0.5f * (z.x + zm.x), 0.5f * (z.y - zm.y));
        const float2 o = make_float2(0.5f * (z.y + zm.y), -0.5f * (z.x - zm.x));
        const float2 wo = bfft_mul(__ldg(tw + k * realStride), o);
        a[kSlot] = make_float2(e.x + wo.x, e.y + wo.y);
        if (k == 0) {
            a[m] = make_float2(e.x - wo.x, 0.0f); // bin M, real
            a[kSlot].y = 0.0f;                    // bin 0, real
        } else if (2 * k != m) {
            a[block_fft_slot(m - k, logM)] = make_float2(e.x - wo.x, -(e.y - wo.y));
        }
    }
    __syncthreads();
}

// The N = 2M real samples (M = 2^logM) whose half spectrum the caller has put in a[0 .. M] in natural order,
// block synchronized. On return samples 2p and 2p + 1 are a[block_fft_reversed(p, logM)].x and .y. tw's L is a
// multiple of N.
__device__ __forceinline__ void block_fft_real_inverse(float2* a, int logM, const float2* __restrict__ tw, int twLength) {
    const int m = 1 << logM;
    const int realStride = twLength >> (logM + 1);
    for (int k = threadIdx.x; k <= m / 2; k += blockDim.x) {
        // The even samples are the inverse DFT_M of E[k] = X[k] + conj X[M−k], the odd ones of
        // O[k] = (X[k] − conj X[M−k])·e^{+2πi·k/N}; one complex inverse of E + i·O gives both.
        float2 x = a[k], xm = a[m - k];
        if (k == 0) {
            x.y = 0.0f;
            xm.y = 0.0f;
        }
        const float2 e = make_float2(x.x + xm.x, x.y - xm.y);
        float2 w = __ldg(tw + k * realStride);
        w.y = -w.y;
        const float2 o = bfft_mul(make_float2(x.x - xm.x, x.y + xm.y), w);
        a[k] = make_float2(e.x - o.y, e.y + o.x);
        if (k != 0 && 2 * k != m) {
            a[m - k] = make_float2(e.x + o.y, o.x - e.y); // conj(E) + i·conj(O)
        }
    }
    __syncthreads();
    block_fft_dif(a, logM, tw, twLength >> logM, true);
}
