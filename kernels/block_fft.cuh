// FFTs computed by one thread block in shared memory, for kernels that transform a row and use its spectrum
// without a round trip through global memory (fourierft_forward_fused, fourierft_backward_fused).
//
// Conventions are cuFFT's: the forward transform is Σ x[q]·e^{−2πi·kq/N}, the inverse Σ X[k]·e^{+2πi·kq/N}, both
// unnormalized; a real row of N = 2M samples has the half spectrum X[0..M] (M + 1 bins), and a real inverse
// ignores the imaginary parts of X[0] and X[M].
//
// Lengths: M = odd · 2^p with odd one of 1, 3, 5, 7 (BlockFftLength), so N covers the powers of two and most
// transformer widths (768 = 2·3·2^7, 5120 = 2·5·2^9, 14336 = 2·7·2^10).
//
// Twiddles come from one table built in float64 on the host and rounded once, so every twiddle is the correctly
// rounded value whatever the transform's length: tw[j] = e^{−2πi·j/L}, j < L, for an L that every real transform
// using it divides (the radix-odd stages and the real split read it), followed by the radix-2 stages' table,
// tw[L + h + j] = e^{−2πi·j/(2h)} for the spans h = 1, 2, 4, … below P and j < h, P the largest power of two
// dividing L/2. A radix-2 pass reads its twiddles there at consecutive addresses (a warp's 32 in a few sectors),
// where the strided reads of e^{−2πi·j·(L/2h)/L} from the first part cost up to a sector each and made the L1 pipe
// the fused forward's limit on an H100.
//
// Shared memory: element i of a transform of length M lives at slot i + (i >> shift), shift = max(log2(M/odd) − 5,
// 1) (block_fft_pad): a warp reading 32 elements at digit-reversed positions, which differ only in their top bits,
// would otherwise hit one bank 32 times; padded, they spread over every bank. Contiguous runs stay contiguous
// within each 2^shift elements. An array for M elements takes block_fft_slots(n) float2s.
//
// A complex transform is one radix-`odd` stage of decimation in frequency (where odd > 1), which leaves `odd`
// interleaved sub-transforms of length 2^p in consecutive blocks, then radix-2 decimation in frequency on each,
// two stages per pass: natural order in, and out a digit-reversed order (block_fft_reversed: element k at
// (k mod odd)·2^p + bitrev_p(k / odd)). The real forward transform leaves its half spectrum in that order too (bin
// M at slot M: block_fft_slot), and the real inverse reads its input in natural order and leaves the real samples
// in reversed pairs (samples 2j and 2j + 1 at block_fft_reversed(j)), so neither needs a reordering pass. Every
// function ends with the block synchronized, and must be called by every thread of the block.
#pragma once

struct BlockFftLength {
    int m;     // M = odd · 2^p
    int odd;   // 1, 3, 5 or 7
    int log2;  // p
    int part;  // 2^p, the length of each sub-transform after the radix-odd stage
    int shift; // the padding's: element i at slot i + (i >> shift)
};

__device__ __forceinline__ BlockFftLength block_fft_length(int m, int odd) {
    BlockFftLength n;
    n.m = m;
    n.odd = odd;
    n.part = m / odd;
    n.log2 = __ffs(n.part) - 1;
    n.shift = max(n.log2 - 5, 1);
    return n;
}

// The shared-memory slot of element i (in natural order) of an array for a transform of length n.m.
__device__ __forceinline__ int block_fft_pad(int i, const BlockFftLength& n) {
    return i + (i >> n.shift);
}

// Float2s an array for elements 0 .. M takes (M + 1 elements, padded).
__device__ __forceinline__ int block_fft_slots(const BlockFftLength& n) {
    return block_fft_pad(n.m, n) + 1;
}

// a·b. Left to the compiler's contraction into fused multiply-adds (pinning the rounding with fmaf took the fused
// forward from 32 to 40 registers and the radix backward into spills), so two kernels built from the same source
// may round it differently on a GPU; the emulator's build never contracts.
__device__ __forceinline__ float2 bfft_mul(float2 a, float2 b) {
    return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// e^{∓2πi·j/L} for j < L (the inverse's sign when sign = −1).
__device__ __forceinline__ float2 bfft_twiddle(const float2* __restrict__ tw, int j, float sign) {
    float2 w = __ldg(tw + j);
    w.y *= sign;
    return w;
}

// One butterfly of a radix-2 decimation-in-frequency stage: (u, v) → (u + v, (u − v)·w).
__device__ __forceinline__ void bfft_butterfly(float2& u, float2& v, float2 w) {
    const float2 d = make_float2(u.x - v.x, u.y - v.y);
    u = make_float2(u.x + v.x, u.y + v.y);
    v = bfft_mul(d, w);
}

// w·(−i), or w·(+i) when sign = −1 (the inverse's conjugated twiddles): W_2h^(j + h/2) from W_2h^j, a swap and a
// sign, so exactly the rounded value of the twiddle it stands for.
__device__ __forceinline__ float2 bfft_quarter(float2 w, float sign) {
    return make_float2(w.y * sign, -w.x * sign);
}

// The shared-memory slot of element k < M of a transform's output (digit-reversed, padded).
__device__ __forceinline__ int block_fft_reversed(int k, const BlockFftLength& n) {
    const int s = k % n.odd, r = k / n.odd;
    const int rev = n.log2 == 0 ? 0 : (int) (__brev((unsigned) r) >> (32 - n.log2));
    return block_fft_pad(s * n.part + rev, n);
}

// The slot of bin b ≤ M of a half spectrum left by block_fft_real_forward.
__device__ __forceinline__ int block_fft_slot(int b, const BlockFftLength& n) {
    return b == n.m ? block_fft_pad(b, n) : block_fft_reversed(b, n);
}

// The radix-R stage of decimation in frequency (R = n.odd): element j + m·part (m < R) of the input feeds output
// block s, y_s[j] = W_M^{j·s} · Σ_m x[j + m·part]·W_R^{m·s}, stored at s·part + j (the same slots, so in place).
template <int R>
__device__ __forceinline__ void block_fft_odd_stage(float2* a, const BlockFftLength& n, const float2* __restrict__ tw,
                                                    int twLength, float sign) {
    const int unitR = twLength / R, unitM = twLength / n.m; // j·s < M, so every index is below L
    for (int j = threadIdx.x; j < n.part; j += blockDim.x) {
        float2 x[R];
#pragma unroll
        for (int m = 0; m < R; ++m) x[m] = a[block_fft_pad(j + m * n.part, n)];
#pragma unroll
        for (int s = 0; s < R; ++s) {
            float2 y = x[0];
#pragma unroll
            for (int m = 1; m < R; ++m) {
                const float2 t = bfft_mul(x[m], bfft_twiddle(tw, ((m * s) % R) * unitR, sign));
                y.x += t.x;
                y.y += t.y;
            }
            a[block_fft_pad(s * n.part + j, n)] = s == 0 ? y : bfft_mul(y, bfft_twiddle(tw, j * s * unitM, sign));
        }
    }
    __syncthreads();
}

// x after the DIF stages of spans 16, 8, 4, 2 and 1 on a group of 32 elements held one per lane of a warp (lane l
// holds element l): the partner of a stage of span s is lane l ^ s, by shuffle; the lower lane keeps the sum, the
// upper takes the difference times W_2s^(l mod s) (w[k] for span 16 >> k; span 1 multiplies by 1). The same
// arithmetic as the shared-memory passes, operand for operand.
__device__ __forceinline__ float2 block_fft_warp_stages(float2 x, int lane, const float2 (&w)[4]) {
#pragma unroll
    for (int k = 0; k < 5; ++k) {
        const int span = 16 >> k;
        const float2 y = make_float2(__shfl_xor_sync(0xffffffffu, x.x, span), __shfl_xor_sync(0xffffffffu, x.y, span));
        if (lane & span) {
            const float2 d = make_float2(y.x - x.x, y.y - x.y);
            x = k < 4 ? bfft_mul(d, w[k]) : d;
        } else {
            x = make_float2(x.x + y.x, x.y + y.y);
        }
    }
    return x;
}

// The radix-2 stages of spans h0 (32 or 16) down to 1, after the shared-memory passes: each warp takes groups of
// 2·h0 consecutive elements, one or two per lane (a span-32 stage between a lane's two elements in registers), and
// block_fft_warp_stages does the rest; every read and write is a warp's 32 consecutive elements. Per-lane twiddles
// are loaded once. Ends with the block synchronized.
__device__ __forceinline__ void block_fft_warp_tail(float2* a, const BlockFftLength& n, const float2* __restrict__ stage,
                                                    float sign, int h0) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    float2 w[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
        const int span = 16 >> k;
        w[k] = bfft_twiddle(stage, span + (lane & (span - 1)), sign);
    }
    if (h0 == 32) {
        const float2 w32 = bfft_twiddle(stage, 32 + lane, sign);
        for (int g = warp; g < (n.m >> 6); g += warps) {
            const int s0 = block_fft_pad(64 * g + lane, n), s1 = block_fft_pad(64 * g + 32 + lane, n);
            float2 x0 = a[s0], x1 = a[s1];
            bfft_butterfly(x0, x1, w32); // span 32, in registers
            a[s0] = block_fft_warp_stages(x0, lane, w);
            a[s1] = block_fft_warp_stages(x1, lane, w);
        }
    } else {
        for (int g = warp; g < (n.m >> 5); g += warps) {
            const int s0 = block_fft_pad(32 * g + lane, n);
            a[s0] = block_fft_warp_stages(a[s0], lane, w);
        }
    }
    __syncthreads();
}

// The radix-2 stages of spans h and q = h/2 in one pass over the n.m elements (groups of 2h = 4q tiling every
// sub-transform): each thread holds the four elements the two stages share in registers. Twiddles from the stages'
// table (stage[h + j] = W_2h^j): W_2h^j and W_2q^j read, W_2h^(j+q) = bfft_quarter(W_2h^j). Ends synchronized.
__device__ __forceinline__ void block_fft_pass4(float2* a, const BlockFftLength& n, const float2* __restrict__ stage,
                                                float sign, int h) {
    const int q = h >> 1; // span of the second stage
    for (int b = threadIdx.x; b < (n.m >> 2); b += blockDim.x) {
        const int j = b & (q - 1);
        const int i = ((b - j) << 2) + j; // element j of group b / q, whose 2h = 4q elements start at (b / q)·4q
        const int s0 = block_fft_pad(i, n), s1 = block_fft_pad(i + q, n), s2 = block_fft_pad(i + 2 * q, n),
                  s3 = block_fft_pad(i + 3 * q, n);
        float2 x0 = a[s0], x1 = a[s1], x2 = a[s2], x3 = a[s3];
        const float2 w0 = bfft_twiddle(stage, h + j, sign), w2 = bfft_twiddle(stage, q + j, sign);
        bfft_butterfly(x0, x2, w0); // span h
        bfft_butterfly(x1, x3, bfft_quarter(w0, sign));
        bfft_butterfly(x0, x1, w2); // span q: W_2q^j
        bfft_butterfly(x2, x3, w2);
        a[s0] = x0;
        a[s1] = x1;
        a[s2] = x2;
        a[s3] = x3;
    }
    __syncthreads();
}

// The radix-2 stages of spans h, h/2 and r = h/4 in one pass (groups of 2h = 8r elements): each thread holds the
// eight elements the three stages share, element m of its group at j + m·r. The same operations, operand for
// operand, as three single stages, with W_2h^(j + 2r) and W_2h^(j + 3r) (and W_h^(j + r)) the bfft_quarter of the
// twiddles read, as block_fft_pass4 derives its second one: 4 twiddle reads per 8 elements and 3 stages, against
// 4 per 8 elements and 2 stages in block_fft_pass4, and one round trip through shared memory and one barrier
// where 3/2 passes of block_fft_pass4 take them. A warp reads 32 consecutive elements per access while r ≥ 32.
__device__ __forceinline__ void block_fft_pass8(float2* a, const BlockFftLength& n, const float2* __restrict__ stage,
                                                float sign, int h) {
    const int r = h >> 2; // span of the third stage
    for (int b = threadIdx.x; b < (n.m >> 3); b += blockDim.x) {
        const int j = b & (r - 1);
        const int i = ((b - j) << 3) + j; // element j of group b / r, whose 8r elements start at (b / r)·8r
        float2 x[8];
#pragma unroll
        for (int m = 0; m < 8; ++m) x[m] = a[block_fft_pad(i + m * r, n)];
        const float2 w0 = bfft_twiddle(stage, h + j, sign), w1 = bfft_twiddle(stage, h + r + j, sign);
        bfft_butterfly(x[0], x[4], w0); // span h = 4r: W_2h^(j + m·r) for element m < 4
        bfft_butterfly(x[1], x[5], w1);
        bfft_butterfly(x[2], x[6], bfft_quarter(w0, sign));
        bfft_butterfly(x[3], x[7], bfft_quarter(w1, sign));
        const float2 v0 = bfft_twiddle(stage, 2 * r + j, sign), u0 = bfft_twiddle(stage, r + j, sign);
#pragma unroll
        for (int half = 0; half < 8; half += 4) { // each half on its own from here, and stored before the next
            bfft_butterfly(x[half], x[half + 2], v0); // span 2r: W_4r^(j + m·r) for element m < 2 of the half
            bfft_butterfly(x[half + 1], x[half + 3], bfft_quarter(v0, sign));
            bfft_butterfly(x[half], x[half + 1], u0); // span r: W_2r^j
            bfft_butterfly(x[half + 2], x[half + 3], u0);
#pragma unroll
            for (int m = half; m < half + 4; ++m) a[block_fft_pad(i + m * r, n)] = x[m];
        }
    }
    __syncthreads();
}

// In-place complex FFT of elements 0 .. M − 1 of a (slots as block_fft_pad), natural order in, reversed order out
// (block_fft_reversed); conjugated twiddles when inverse. kRadix8: the passes of span ≥ 32 three stages at a time
// where they can be (below), else two; the same operations either way (the same bits where the compiler contracts
// bfft_mul alike in both).
template <bool kRadix8>
__device__ __forceinline__ void block_fft_complex(float2* a, const BlockFftLength& n, const float2* __restrict__ tw,
                                                  int twLength, bool inverse) {
    const float sign = inverse ? -1.0f : 1.0f;
    switch (n.odd) { // the radix-odd stage, where there is one
        case 3: block_fft_odd_stage<3>(a, n, tw, twLength, sign); break;
        case 5: block_fft_odd_stage<5>(a, n, tw, twLength, sign); break;
        case 7: block_fft_odd_stage<7>(a, n, tw, twLength, sign); break;
        default: break;
    }
    // Radix-2 decimation in frequency on each of the `odd` blocks of 2^p, several stages per pass over shared memory
    // (block_fft_pass4, block_fft_pass8: groups of 2h elements tile every block, so one loop covers them all). Passes
    // run while a warp's 32 threads read 32 consecutive elements (every stage of a pass of span ≥ 32); the stages of
    // spans below 64 or 32 then run in registers and warp shuffles (block_fft_warp_tail), where passes of small span
    // met 2-, 4- and 8-way bank conflicts. Passes must take the k = p − 6 stages of span ≥ 64, and may take the
    // span-32 one: radix-4 passes take k or k + 1 stages, whichever is even (⌈k/2⌉ passes); with kRadix8, k where 3
    // divides it, else k + 1, in radix-8 passes and one radix-4 pass where 3 does not divide k + 1 (⌈k/3⌉ passes: 2
    // against 3 at 4096 points, 3 against 4 at 16384). The tail takes the rest (h0 = 32 or 16). Sub-transforms shorter
    // than 64 take radix-4 passes down to an odd stage count's last stage of span 1 alone.
    const float2* __restrict__ stage = tw + twLength;
    int h = n.part >> 1;
    const bool warpTail = n.part >= 64;
    if (kRadix8 && warpTail) {
        const int k = n.log2 - 6;
        int stages = k % 3 == 0 ? k : k + 1;
        for (; stages >= 3; stages -= 3, h >>= 3) block_fft_pass8(a, n, stage, sign, h);
        if (stages == 2) {
            block_fft_pass4(a, n, stage, sign, h);
            h >>= 2;
        }
    } else {
        for (; h >= (warpTail ? 64 : 2); h >>= 2) block_fft_pass4(a, n, stage, sign, h);
    }
    if (warpTail) {
        block_fft_warp_tail(a, n, stage, sign, h);
        return;
    }
    if (h == 1) { // the last stage alone: span 1, twiddle W_2^0 = 1
        for (int b = threadIdx.x; b < (n.m >> 1); b += blockDim.x) {
            const int s0 = block_fft_pad(2 * b, n), s1 = block_fft_pad(2 * b + 1, n);
            const float2 u = a[s0], v = a[s1];
            a[s0] = make_float2(u.x + v.x, u.y + v.y);
            a[s1] = make_float2(u.x - v.x, u.y - v.y);
        }
        __syncthreads();
    }
}

// The half spectrum of N = 2M real samples that the caller has put in a as complex pairs, pair m = (x[2m],
// x[2m + 1]) at a[block_fft_pad(m, n)], block synchronized: a needs block_fft_slots(n) elements. On return bin b is
// at a[block_fft_slot(b, n)]. kRadix8 as block_fft_complex takes it.
template <bool kRadix8>
__device__ __forceinline__ void block_fft_real_forward(float2* a, const BlockFftLength& n, const float2* __restrict__ tw,
                                                       int twLength) {
    const int m = n.m;
    block_fft_complex<kRadix8>(a, n, tw, twLength, false);
    const int unitN = twLength / (2 * m); // tw[k · unitN] = e^{−2πi·k/N}
    for (int k = threadIdx.x; k <= m / 2; k += blockDim.x) {
        // Z = DFT_M of the pairs; bins k and M − k of the real transform come from Z[k] and Z[M − k] (Z[M] = Z[0]):
        // E = (Z[k] + conj Z[M−k]) / 2, O = (Z[k] − conj Z[M−k]) / 2i, X[k] = E + W·O, X[M−k] = conj(E − W·O).
        const int kSlot = block_fft_reversed(k, n);
        const int mirrorSlot = block_fft_reversed(k == 0 ? 0 : m - k, n);
        const float2 z = a[kSlot], zm = a[mirrorSlot];
        const float2 e = make_float2(0.5f * (z.x + zm.x), 0.5f * (z.y - zm.y));
        const float2 o = make_float2(0.5f * (z.y + zm.y), -0.5f * (z.x - zm.x));
        const float2 wo = bfft_mul(__ldg(tw + k * unitN), o);
        a[kSlot] = make_float2(e.x + wo.x, e.y + wo.y);
        if (k == 0) {
            a[block_fft_pad(m, n)] = make_float2(e.x - wo.x, 0.0f); // bin M, real
            a[kSlot].y = 0.0f;                    // bin 0, real
        } else if (2 * k != m) {
            a[block_fft_slot(m - k, n)] = make_float2(e.x - wo.x, -(e.y - wo.y));
        }
    }
    __syncthreads();
}

// The N = 2M real samples whose half spectrum the caller has put in a in natural order (bin b at
// a[block_fft_pad(b, n)], b ≤ M), block synchronized. On return samples 2j and 2j + 1 are
// a[block_fft_reversed(j, n)].x and .y. kRadix8 as block_fft_complex takes it.
template <bool kRadix8>
__device__ __forceinline__ void block_fft_real_inverse(float2* a, const BlockFftLength& n, const float2* __restrict__ tw,
                                                       int twLength) {
    const int m = n.m;
    const int unitN = twLength / (2 * m);
    for (int k = threadIdx.x; k <= m / 2; k += blockDim.x) {
        // The even samples are the inverse DFT_M of E[k] = X[k] + conj X[M−k], the odd ones of
        // O[k] = (X[k] − conj X[M−k])·e^{+2πi·k/N}; one complex inverse of E + i·O gives both.
        const int kSlot = block_fft_pad(k, n), mirrorSlot = block_fft_pad(m - k, n);
        float2 x = a[kSlot], xm = a[mirrorSlot];
        if (k == 0) {
            x.y = 0.0f;
            xm.y = 0.0f;
        }
        const float2 e = make_float2(x.x + xm.x, x.y - xm.y);
        float2 w = __ldg(tw + k * unitN);
        w.y = -w.y;
        const float2 o = bfft_mul(make_float2(x.x - xm.x, x.y + xm.y), w);
        a[kSlot] = make_float2(e.x - o.y, e.y + o.x);
        if (k != 0 && 2 * k != m) {
            a[mirrorSlot] = make_float2(e.x + o.y, o.x - e.y); // conj(E) + i·conj(O)
        }
    }
    __syncthreads();
    block_fft_complex<kRadix8>(a, n, tw, twLength, true);
}
