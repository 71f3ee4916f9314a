// Self-test of the cuFFT stand-in: transforms against a direct double-precision DFT, on device memory from
// the driver API, and the errors the stand-in must report. Exits nonzero on any failure.

#include <cuda.h>

#include <cmath>
#include <complex>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cufft_api.h"

extern "C" int cufftResetPlanProperty(cufftHandle plan, int property);  // a stub: not emulated

namespace {

using i64 = long long;
using cd = std::complex<double>;

int g_passed = 0, g_failed = 0;

void check(bool ok, const char* format, ...) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    va_list ap;
    va_start(ap, format);
    fprintf(stderr, "FAILED: ");
    vfprintf(stderr, format, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

void* dalloc(size_t bytes) {
    CUdeviceptr p = 0;
    CUresult r = cuMemAlloc_v2(&p, bytes);
    if (r != CUDA_SUCCESS) {
        fprintf(stderr, "cuMemAlloc(%zu) failed: %d\n", bytes, (int) r);
        exit(2);
    }
    return (void*) p;
}

void dfree(void* p) { cuMemFree_v2((CUdeviceptr) p); }

// A copy from pageable memory may return before it lands: synchronize so every stream sees the data.
bool upload(void* d, const void* h, size_t bytes) {
    return cuMemcpyHtoD_v2((CUdeviceptr) d, h, bytes) == CUDA_SUCCESS && cuStreamSynchronize(CU_STREAM_LEGACY) == CUDA_SUCCESS;
}

bool download(void* h, const void* d, size_t bytes) {
    return cuMemcpyDtoH_v2(h, (CUdeviceptr) d, bytes) == CUDA_SUCCESS;
}

/** Whether a checker error is pending (the next driver call returns CUDA_ERROR_ILLEGAL_ADDRESS); clears it. */
CUresult sync_status() { return cuCtxSynchronize(); }

// ------------------------------------------------------------------------------------------ reference DFTs

/** Direct multi-dimensional DFT of a dense row-major L[0] x L[1] x L[2] array, unnormalized. */
std::vector<cd> dft(const i64 L[3], const std::vector<cd>& x, int sign) {
    std::vector<cd> X(x.size());
    for (i64 u0 = 0; u0 < L[0]; u0++)
        for (i64 u1 = 0; u1 < L[1]; u1++)
            for (i64 u2 = 0; u2 < L[2]; u2++) {
                cd s = 0;
                for (i64 a = 0; a < L[0]; a++)
                    for (i64 b = 0; b < L[1]; b++)
                        for (i64 c = 0; c < L[2]; c++) {
                            // Phase in turns, reduced exactly before scaling.
                            double t = (double) ((u0 * a) % L[0]) / L[0] + (double) ((u1 * b) % L[1]) / L[1] +
                                       (double) ((u2 * c) % L[2]) / L[2];
                            double ang = sign * 2 * M_PI * t;
                            s += x[(a * L[1] + b) * L[2] + c] * cd(cos(ang), sin(ang));
                        }
                X[(u0 * L[1] + u1) * L[2] + u2] = s;
            }
    return X;
}

/** C2R reference: the real part of the inverse DFT of the Hermitian extension of the half spectrum. */
std::vector<double> c2r_reference(const i64 L[3], const std::vector<cd>& half) {
    i64 nc = L[2] / 2 + 1;
    std::vector<cd> full((size_t) (L[0] * L[1] * L[2]));
    for (i64 u0 = 0; u0 < L[0]; u0++)
        for (i64 u1 = 0; u1 < L[1]; u1++)
            for (i64 k = 0; k < L[2]; k++) {
                cd v = k < nc ? half[(u0 * L[1] + u1) * nc + k]
                              : std::conj(half[(((L[0] - u0) % L[0]) * L[1] + (L[1] - u1) % L[1]) * nc + (L[2] - k)]);
                full[(u0 * L[1] + u1) * L[2] + k] = v;
            }
    std::vector<cd> x = dft(L, full, +1);
    std::vector<double> r(x.size());
    for (size_t i = 0; i < x.size(); i++) r[i] = x[i].real();
    return r;
}

// ------------------------------------------------------------------------------------------ one case

struct SideLayout {
    i64 dims[3];   // elements per dimension (rank entries)
    i64 embed[3];  // storage dimensions (embed[0] unused)
    i64 stride, dist;
};

/** The documented advanced-layout position of element (b, i): b*dist + ((i0*embed1 + i1)*embed2 + i2)*stride. */
i64 position(const SideLayout& s, int rank, i64 b, const i64* i) {
    i64 lin = i[0];
    for (int d = 1; d < rank; d++) lin = lin * s.embed[d] + i[d];
    return b * s.dist + lin * s.stride;
}

i64 elements(const SideLayout& s, int rank) {
    i64 e = 1;
    for (int d = 0; d < rank; d++) e *= s.dims[d];
    return e;
}

/** Multi-index of the e-th element (row-major over dims). */
void unflatten(const SideLayout& s, int rank, i64 e, i64* i) {
    for (int d = rank - 1; d >= 0; d--) {
        i[d] = e % s.dims[d];
        e /= s.dims[d];
    }
}

i64 highest(const SideLayout& s, int rank, i64 batch) {
    i64 last[3];
    for (int d = 0; d < rank; d++) last[d] = s.dims[d] - 1;
    return position(s, rank, batch - 1, last);
}

struct Case {
    std::string name;
    int type = CUFFT_R2C;
    int rank = 1;
    i64 n[3] = {1, 1, 1};
    i64 batch = 1;
    bool advanced = false;  // otherwise the basic layout (NULL embeds)
    i64 inembed[3] = {0, 0, 0}, istride = 1, idist = 0;
    i64 onembed[3] = {0, 0, 0}, ostride = 1, odist = 0;
    bool in_place = false;
    int direction = CUFFT_FORWARD;
    bool auto_alloc = false;  // off: a work area of exactly workSize bytes from cuMemAlloc
    bool own_stream = false;
};

bool is_double(int type) { return type == CUFFT_Z2Z || type == CUFFT_D2Z || type == CUFFT_Z2D; }
bool real_in(int type) { return type == CUFFT_R2C || type == CUFFT_D2Z; }
bool real_out(int type) { return type == CUFFT_C2R || type == CUFFT_Z2D; }

/** The sides as the cuFFT documentation lays them out for this case. */
void layouts(const Case& c, SideLayout* in, SideLayout* out) {
    int r = c.rank;
    bool real = real_in(c.type) || real_out(c.type);
    i64 nc = real ? c.n[r - 1] / 2 + 1 : c.n[r - 1];
    for (int d = 0; d < r; d++) in->dims[d] = out->dims[d] = c.n[d];
    if (real_out(c.type)) in->dims[r - 1] = nc;
    if (real_in(c.type)) out->dims[r - 1] = nc;
    if (c.advanced) {
        for (int d = 0; d < r; d++) {
            in->embed[d] = c.inembed[d];
            out->embed[d] = c.onembed[d];
        }
        in->stride = c.istride;
        in->dist = c.idist;
        out->stride = c.ostride;
        out->dist = c.odist;
        return;
    }
    // Basic layout: packed; in place, the real side's rows padded to 2*(n/2+1).
    for (SideLayout* s : {in, out}) {
        bool real_side = (s == in && real_in(c.type)) || (s == out && real_out(c.type));
        for (int d = 0; d < r; d++) s->embed[d] = s->dims[d];
        if (real_side && c.in_place) s->embed[r - 1] = 2 * nc;
        s->stride = 1;
        s->dist = 1;
        for (int d = 0; d < r; d++) s->dist *= s->embed[d];
    }
}

template <typename R>
void run_case_t(const Case& c) {
    const char* nm = c.name.c_str();
    const int r = c.rank;
    SideLayout in, out;
    layouts(c, &in, &out);
    size_t ib = real_in(c.type) ? sizeof(R) : 2 * sizeof(R), ob = real_out(c.type) ? sizeof(R) : 2 * sizeof(R);
    size_t in_bytes = (size_t) (highest(in, r, c.batch) + 1) * ib;
    size_t out_bytes = (size_t) (highest(out, r, c.batch) + 1) * ob;

    cufftHandle h;
    check(cufftCreate(&h) == CUFFT_SUCCESS, "%s: cufftCreate", nm);
    if (!c.auto_alloc) check(cufftSetAutoAllocation(h, 0) == CUFFT_SUCCESS, "%s: cufftSetAutoAllocation", nm);
    size_t ws = 0, ws_size = 0;
    i64* ie = c.advanced ? const_cast<i64*>(c.inembed) : nullptr;
    i64* oe = c.advanced ? const_cast<i64*>(c.onembed) : nullptr;
    cufftResult st = cufftMakePlanMany64(h, r, const_cast<i64*>(c.n), ie, c.istride, c.idist, oe, c.ostride, c.odist,
                                         (cufftType) c.type, c.batch, &ws);
    check(st == CUFFT_SUCCESS, "%s: cufftMakePlanMany64 returned %d", nm, st);
    if (st != CUFFT_SUCCESS) return;
    check(ws >= 256, "%s: workSize %zu", nm, ws);
    check(cufftGetSize(h, &ws_size) == CUFFT_SUCCESS && ws_size == ws, "%s: cufftGetSize", nm);

    // Buffers: every byte set to a sentinel, the data at the element positions.
    size_t alloc_in = c.in_place ? std::max(in_bytes, out_bytes) : in_bytes;
    std::vector<R> hin(alloc_in / sizeof(R), (R) 1234.5);
    std::mt19937_64 rng(0x5eed + c.n[0] * 131 + c.n[r - 1] * 7 + c.batch);
    std::uniform_real_distribution<double> U(-1, 1);
    i64 per_in = elements(in, r), per_out = elements(out, r);
    i64 L[3] = {1, 1, 1};
    for (int d = 0; d < r; d++) L[3 - r + d] = c.n[d];
    std::vector<std::vector<cd>> logical(c.batch);  // input per item, dense over its own dims
    for (i64 b = 0; b < c.batch; b++) {
        logical[b].resize(per_in);
        for (i64 e = 0; e < per_in; e++) {
            i64 i[3];
            unflatten(in, r, e, i);
            i64 p = position(in, r, b, i);
            if (real_in(c.type)) {
                double v = U(rng);
                hin[p] = (R) v;
                logical[b][e] = (double) (R) v;
            } else {
                double re = U(rng), im = U(rng);
                hin[2 * p] = (R) re;
                hin[2 * p + 1] = (R) im;
                logical[b][e] = cd((double) (R) re, (double) (R) im);
            }
        }
    }
    void* din = dalloc(alloc_in);
    void* dout = c.in_place ? din : dalloc(out_bytes);
    std::vector<R> hout_init(out_bytes / sizeof(R), (R) -777.25);
    check(upload(din, hin.data(), alloc_in), "%s: upload", nm);
    if (!c.in_place) check(upload(dout, hout_init.data(), out_bytes), "%s: upload out", nm);
    void* work = nullptr;
    if (!c.auto_alloc) {
        work = dalloc(ws);
        check(cufftSetWorkArea(h, work) == CUFFT_SUCCESS, "%s: cufftSetWorkArea", nm);
    }
    CUstream stream = nullptr;
    if (c.own_stream) {
        check(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS, "%s: cuStreamCreate", nm);
        check(cufftSetStream(h, (cudaStream_t) stream) == CUFFT_SUCCESS, "%s: cufftSetStream", nm);
    }

    switch (c.type) {
        case CUFFT_R2C: st = cufftExecR2C(h, (cufftReal*) din, (cufftComplex*) dout); break;
        case CUFFT_C2R: st = cufftExecC2R(h, (cufftComplex*) din, (cufftReal*) dout); break;
        case CUFFT_C2C: st = cufftExecC2C(h, (cufftComplex*) din, (cufftComplex*) dout, c.direction); break;
        case CUFFT_D2Z: st = cufftExecD2Z(h, (cufftDoubleReal*) din, (cufftDoubleComplex*) dout); break;
        case CUFFT_Z2D: st = cufftExecZ2D(h, (cufftDoubleComplex*) din, (cufftDoubleReal*) dout); break;
        case CUFFT_Z2Z: st = cufftExecZ2Z(h, (cufftDoubleComplex*) din, (cufftDoubleComplex*) dout, c.direction); break;
    }
    check(st == CUFFT_SUCCESS, "%s: exec returned %d", nm, st);
    if (c.own_stream) check(cuStreamSynchronize(stream) == CUDA_SUCCESS, "%s: cuStreamSynchronize", nm);
    check(sync_status() == CUDA_SUCCESS, "%s: an error was reported", nm);

    std::vector<R> hout(out_bytes / sizeof(R));
    check(download(hout.data(), dout, out_bytes), "%s: download", nm);

    // Compare every output element with the reference; out of place, every other byte keeps its sentinel.
    double err2 = 0, ref2 = 0;
    std::vector<bool> touched(hout.size(), false);
    for (i64 b = 0; b < c.batch; b++) {
        std::vector<cd> ref;
        std::vector<double> ref_real;
        if (real_out(c.type)) {
            ref_real = c2r_reference(L, logical[b]);
        } else {
            ref = dft(L, logical[b], real_in(c.type) ? -1 : c.direction);
        }
        for (i64 e = 0; e < per_out; e++) {
            i64 i[3];
            unflatten(out, r, e, i);
            i64 p = position(out, r, b, i);
            if (real_out(c.type)) {
                double d = hout[p] - ref_real[e];
                err2 += d * d;
                ref2 += ref_real[e] * ref_real[e];
                touched[p] = true;
            } else {
                // Reference index in the full dense array (the complex side's last index < n).
                i64 full = 0;
                for (int d = 0; d < r; d++) full = full * c.n[d] + i[d];
                cd v(hout[2 * p], hout[2 * p + 1]);
                err2 += std::norm(v - ref[full]);
                ref2 += std::norm(ref[full]);
                touched[2 * p] = touched[2 * p + 1] = true;
            }
        }
    }
    double rel = std::sqrt(err2 / std::max(ref2, 1e-300));
    double tol = is_double(c.type) ? 1e-12 : 2e-6;
    check(rel < tol, "%s: relative error %.3g (tolerance %.1g)", nm, rel, tol);
    if (!c.in_place) {
        size_t untouched_changed = 0;
        for (size_t k = 0; k < hout.size(); k++)
            if (!touched[k] && memcmp(&hout[k], &hout_init[k], sizeof(R)) != 0) untouched_changed++;
        check(untouched_changed == 0, "%s: %zu output values outside the layout were written", nm,
              untouched_changed);
    }
    // C2R out of place destroys its input: every input element must have been overwritten.
    if (real_out(c.type) && !c.in_place) {
        std::vector<R> after(hin.size());
        check(download(after.data(), din, alloc_in), "%s: download input", nm);
        size_t kept = 0;
        for (i64 b = 0; b < c.batch; b++)
            for (i64 e = 0; e < per_in; e++) {
                i64 i[3];
                unflatten(in, r, e, i);
                i64 p = position(in, r, b, i);
                if (memcmp(&after[2 * p], &hin[2 * p], 2 * sizeof(R)) == 0) kept++;
            }
        check(kept == 0, "%s: C2R out of place left %zu input elements intact", nm, kept);
    }
    if (stream) cuStreamDestroy_v2(stream);
    check(cufftDestroy(h) == CUFFT_SUCCESS, "%s: cufftDestroy", nm);
    dfree(din);
    if (!c.in_place) dfree(dout);
    if (work) dfree(work);
}

void run_case(const Case& c) {
    if (is_double(c.type)) run_case_t<double>(c);
    else run_case_t<float>(c);
}

Case basic(std::string name, int type, std::vector<i64> n, i64 batch, bool in_place) {
    Case c;
    c.name = name;
    c.type = type;
    c.rank = (int) n.size();
    for (int d = 0; d < c.rank; d++) c.n[d] = n[d];
    c.batch = batch;
    c.in_place = in_place;
    return c;
}

/** How the plans of java/org/spectralpeft/cuda/FftPlans.java lay data out (padded: rows of 2*(n/2+1) floats). */
Case java_style(int type, i64 rows, i64 cols, i64 batch, bool padded, bool in_place) {
    Case c;
    c.name = std::string(type == CUFFT_R2C ? "R2C" : "C2R") + " java-style " + std::to_string(rows) + "x" +
             std::to_string(cols) + " x" + std::to_string(batch) + (padded ? " padded" : "") +
             (in_place ? " in place" : "");
    c.type = type;
    c.rank = rows == 0 ? 1 : 2;
    i64 nc = cols / 2 + 1, realCols = padded ? 2 * nc : cols;
    i64 cplx[2], real[2];
    if (c.rank == 1) {
        c.n[0] = cols;
        cplx[0] = nc;
        real[0] = realCols;
    } else {
        c.n[0] = rows;
        c.n[1] = cols;
        cplx[0] = rows;
        cplx[1] = nc;
        real[0] = rows;
        real[1] = realCols;
    }
    i64 complexPerItem = std::max<i64>(rows, 1) * nc, realPerItem = std::max<i64>(rows, 1) * realCols;
    bool c2r = type == CUFFT_C2R;
    c.advanced = true;
    for (int d = 0; d < c.rank; d++) {
        c.inembed[d] = c2r ? cplx[d] : real[d];
        c.onembed[d] = c2r ? real[d] : cplx[d];
    }
    c.idist = c2r ? complexPerItem : realPerItem;
    c.odist = c2r ? realPerItem : complexPerItem;
    c.batch = batch;
    c.in_place = in_place;
    return c;
}

// ------------------------------------------------------------------------------------------ error cases

/** An expected checker error: a failure status, and CUDA_ERROR_ILLEGAL_ADDRESS from the next driver call. */
void expect_reported(cufftResult st, const char* what) {
    check(st != CUFFT_SUCCESS, "%s: exec returned CUFFT_SUCCESS", what);
    CUresult r = sync_status();
    check(r == CUDA_ERROR_ILLEGAL_ADDRESS, "%s: next driver call returned %d, not 700", what, (int) r);
}

/** An expected plan-time rejection: exactly `want`, and no checker error. */
void expect_status(cufftResult st, cufftResult want, const char* what) {
    check(st == want, "%s: returned %d, expected %d", what, st, want);
    check(sync_status() == CUDA_SUCCESS, "%s: a checker error was reported", what);
}

void error_cases() {
    const i64 n = 30, nc = n / 2 + 1;
    size_t real_bytes = n * 4, cplx_bytes = nc * 8;
    float hreal[n];
    for (int i = 0; i < n; i++) hreal[i] = (float) sin(i * 0.37);

    auto plan_r2c = [&](bool auto_alloc, size_t* ws) {
        cufftHandle h;
        cufftCreate(&h);
        if (!auto_alloc) cufftSetAutoAllocation(h, 0);
        long long nn[1] = {n};
        cufftMakePlanMany64(h, 1, nn, nullptr, 1, 0, nullptr, 1, 0, CUFFT_R2C, 1, ws);
        return h;
    };
    size_t ws = 0;

    {  // the work area too small
        cufftHandle h = plan_r2c(false, &ws);
        void* in = dalloc(real_bytes);
        void* out = dalloc(cplx_bytes);
        void* work = dalloc(ws - 1);
        upload(in, hreal, real_bytes);
        cufftSetWorkArea(h, work);
        expect_reported(cufftExecR2C(h, (cufftReal*) in, (cufftComplex*) out), "work area one byte short");
        cufftDestroy(h);
        dfree(in);
        dfree(out);
        dfree(work);
    }
    {  // no work area with auto-allocation off
        cufftHandle h = plan_r2c(false, &ws);
        void* in = dalloc(real_bytes);
        void* out = dalloc(cplx_bytes);
        upload(in, hreal, real_bytes);
        expect_reported(cufftExecR2C(h, (cufftReal*) in, (cufftComplex*) out), "missing work area");
        cufftDestroy(h);
        dfree(in);
        dfree(out);
    }
    {  // the output one complex element short; then a freed input; then a freed work area
        cufftHandle h = plan_r2c(false, &ws);
        void* in = dalloc(real_bytes);
        void* out = dalloc(cplx_bytes - 8);
        void* work = dalloc(ws);
        upload(in, hreal, real_bytes);
        cufftSetWorkArea(h, work);
        expect_reported(cufftExecR2C(h, (cufftReal*) in, (cufftComplex*) out), "output past the end of its allocation");
        dfree(out);
        out = dalloc(cplx_bytes);
        dfree(in);
        expect_reported(cufftExecR2C(h, (cufftReal*) in, (cufftComplex*) out), "freed input buffer");
        in = dalloc(real_bytes);
        check(cufftExecR2C(h, (cufftReal*) in, (cufftComplex*) out) == CUFFT_SUCCESS && sync_status() == CUDA_SUCCESS,
              "valid buffers after errors");
        dfree(work);
        expect_reported(cufftExecR2C(h, (cufftReal*) in, (cufftComplex*) out), "freed work area");
        cufftDestroy(h);
        dfree(in);
        dfree(out);
    }
    {  // C2R input one element short (the complex side is n/2+1 long)
        cufftHandle h;
        size_t w;
        check(cufftCreate(&h) == CUFFT_SUCCESS && cufftMakePlan1d(h, (int) n, CUFFT_C2R, 1, &w) == CUFFT_SUCCESS,
              "C2R plan");
        void* in = dalloc(cplx_bytes - 8);
        void* out = dalloc(real_bytes);
        expect_reported(cufftExecC2R(h, (cufftComplex*) in, (cufftReal*) out), "C2R input of n/2 elements");
        cufftDestroy(h);
        dfree(in);
        dfree(out);
    }
    {  // in place with an unpadded advanced layout; basic in place with an unpadded buffer
        cufftHandle h;
        cufftCreate(&h);
        long long nn[1] = {n}, re[1] = {n}, ce[1] = {nc};
        size_t w;
        check(cufftMakePlanMany64(h, 1, nn, re, 1, n, ce, 1, nc, CUFFT_R2C, 2, &w) == CUFFT_SUCCESS, "unpadded plan");
        void* buf = dalloc(2 * cplx_bytes);
        expect_reported(cufftExecR2C(h, (cufftReal*) buf, (cufftComplex*) buf), "in place without the padded layout");
        cufftDestroy(h);
        dfree(buf);
        h = plan_r2c(true, &w);
        buf = dalloc(real_bytes);  // in place needs n/2+1 complex elements
        expect_reported(cufftExecR2C(h, (cufftReal*) buf, (cufftComplex*) buf), "in place in an unpadded buffer");
        cufftDestroy(h);
        dfree(buf);
    }
    {  // overlapping out-of-place buffers
        cufftHandle h = plan_r2c(true, &ws);
        void* buf = dalloc(4 * cplx_bytes);
        expect_reported(cufftExecR2C(h, (cufftReal*) buf, (cufftComplex*) ((char*) buf + 8)),
                        "overlapping input and output");
        cufftDestroy(h);
        dfree(buf);
    }
    {  // plan-time validation
        cufftHandle h;
        long long n0[1] = {0}, n2[2] = {4, 6}, small[2] = {4, 3}, ok2[2] = {4, 4}, nn[1] = {n};
        size_t w;
        cufftCreate(&h);
        expect_status(cufftMakePlanMany64(h, 1, n0, nullptr, 1, 0, nullptr, 1, 0, CUFFT_R2C, 1, &w), CUFFT_INVALID_SIZE,
                      "n = 0");
        expect_status(cufftMakePlanMany64(h, 4, n2, nullptr, 1, 0, nullptr, 1, 0, CUFFT_R2C, 1, &w), CUFFT_INVALID_SIZE,
                      "rank 4");
        expect_status(cufftMakePlanMany64(h, 1, nn, nullptr, 1, 0, nullptr, 1, 0, CUFFT_R2C, 0, &w), CUFFT_INVALID_SIZE,
                      "batch 0");
        expect_status(cufftMakePlanMany64(h, 2, n2, small, 1, 24, ok2, 1, 16, CUFFT_R2C, 1, &w), CUFFT_INVALID_VALUE,
                      "inembed smaller than n");
        long long cshort[2] = {4, 3}, rfull[2] = {4, 6};
        expect_status(cufftMakePlanMany64(h, 2, n2, rfull, 1, 24, cshort, 1, 12, CUFFT_R2C, 1, &w),
                      CUFFT_INVALID_VALUE, "onembed smaller than n/2+1");
        expect_status(cufftMakePlanMany64(h, 2, n2, rfull, 1, 24, ok2, 1, 4, CUFFT_R2C, 2, &w), CUFFT_INVALID_VALUE,
                      "overlapping output items");
        expect_status(cufftMakePlanMany64(h, 1, nn, nullptr, 1, 0, nullptr, 1, 0, (cufftType) 0x33, 1, &w),
                      CUFFT_INVALID_TYPE, "bad type");
        expect_status(cufftExecR2C(h, nullptr, nullptr), CUFFT_INVALID_PLAN, "exec before the plan is made");
        check(cufftMakePlanMany64(h, 1, nn, nullptr, 1, 0, nullptr, 1, 0, CUFFT_R2C, 1, &w) == CUFFT_SUCCESS,
              "make after rejected attempts");
        void* a = dalloc(cplx_bytes);
        void* b = dalloc(cplx_bytes);
        expect_status(cufftExecC2R(h, (cufftComplex*) a, (cufftReal*) b), CUFFT_INVALID_PLAN, "C2R on an R2C plan");
        cufftDestroy(h);
        expect_status(cufftExecR2C(h, (cufftReal*) a, (cufftComplex*) b), CUFFT_INVALID_PLAN, "destroyed plan");
        cufftHandle c2c;
        cufftPlan1d(&c2c, 8, CUFFT_C2C, 1);
        expect_status(cufftExecC2C(c2c, (cufftComplex*) a, (cufftComplex*) b, 0), CUFFT_INVALID_VALUE,
                      "C2C direction 0");
        cufftDestroy(c2c);
        dfree(a);
        dfree(b);
        cufftHandle p;
        expect_status(cufftPlan1d(&p, 0, CUFFT_C2C, 1), CUFFT_INVALID_SIZE, "cufftPlan1d n = 0");
        long long huge[2] = {1LL << 40, 1LL << 40}, big_embed[2] = {4, 1LL << 62};
        cufftCreate(&h);
        expect_status(cufftMakePlanMany64(h, 2, huge, nullptr, 1, 0, nullptr, 1, 0, CUFFT_C2C, 1, &w),
                      CUFFT_INVALID_SIZE, "a transform larger than the device");
        expect_status(cufftMakePlanMany64(h, 2, n2, big_embed, 4, 0, big_embed, 1, 0, CUFFT_C2C, 1, &w),
                      CUFFT_INVALID_SIZE, "embed times stride past 2^62");
        cufftDestroy(h);
    }
    {  // in-place C2R overwrites the padding of the last complex element of each row
        cufftHandle h;
        check(cufftPlan1d(&h, 8, CUFFT_C2R, 2) == CUFFT_SUCCESS, "C2R padding plan");
        std::vector<float> host(2 * 10, 0.5f);
        void* buf = dalloc(host.size() * 4);
        upload(buf, host.data(), host.size() * 4);
        check(cufftExecC2R(h, (cufftComplex*) buf, (cufftReal*) buf) == CUFFT_SUCCESS, "C2R in place exec");
        sync_status();
        download(host.data(), buf, host.size() * 4);
        check(std::isnan(host[8]) || host[8] != 0.5f, "C2R in place: padding kept its value");
        cufftDestroy(h);
        dfree(buf);
    }
}

/**
 * One plan serving two streams at once, each with its own buffers and work area (as the library's plan
 * cache does), then the same with one work area shared by both unordered streams, which must be reported.
 */
void two_stream_cases() {
    const int n = 30, nc = n / 2 + 1, batch = 64;
    cufftHandle h;
    size_t ws = 0;
    cufftCreate(&h);
    cufftSetAutoAllocation(h, 0);
    check(cufftMakePlan1d(h, n, CUFFT_R2C, batch, &ws) == CUFFT_SUCCESS, "two streams: plan");
    CUstream s[2];
    void *in[2], *out[2], *work[2];
    std::vector<float> x[2];
    for (int k = 0; k < 2; k++) {
        cuStreamCreate(&s[k], CU_STREAM_NON_BLOCKING);
        x[k].resize(n * batch);
        for (int i = 0; i < n * batch; i++) x[k][i] = (float) sin(0.1 * i + k);
        in[k] = dalloc(4 * n * batch);
        out[k] = dalloc(8 * nc * batch);
        work[k] = dalloc(ws);
        upload(in[k], x[k].data(), 4 * n * batch);
    }
    for (int rep = 0; rep < 4; rep++)
        for (int k = 0; k < 2; k++) {
            cufftSetStream(h, (cudaStream_t) s[k]);
            cufftSetWorkArea(h, work[k]);
            check(cufftExecR2C(h, (cufftReal*) in[k], (cufftComplex*) out[k]) == CUFFT_SUCCESS,
                  "two streams: exec %d on stream %d", rep, k);
        }
    for (int k = 0; k < 2; k++) check(cuStreamSynchronize(s[k]) == CUDA_SUCCESS, "two streams: synchronize %d", k);
    check(sync_status() == CUDA_SUCCESS, "two streams: an error was reported");
    i64 L[3] = {1, 1, n};
    for (int k = 0; k < 2; k++) {
        std::vector<float> y(2 * nc * batch);
        download(y.data(), out[k], y.size() * 4);
        double err = 0, ref2 = 0;
        for (int b = 0; b < batch; b++) {
            std::vector<cd> item(n);
            for (int i = 0; i < n; i++) item[i] = x[k][b * n + i];
            std::vector<cd> X = dft(L, item, -1);
            for (int j = 0; j < nc; j++) {
                err += std::norm(cd(y[2 * (b * nc + j)], y[2 * (b * nc + j) + 1]) - X[j]);
                ref2 += std::norm(X[j]);
            }
        }
        check(std::sqrt(err / ref2) < 2e-6, "two streams: stream %d result error %g", k, std::sqrt(err / ref2));
    }
    // One work area for both streams, not ordered between them: a race on the GPU.
    cufftSetWorkArea(h, work[0]);
    cufftSetStream(h, (cudaStream_t) s[0]);
    check(cufftExecR2C(h, (cufftReal*) in[0], (cufftComplex*) out[0]) == CUFFT_SUCCESS, "shared work area: first");
    cufftSetStream(h, (cudaStream_t) s[1]);
    expect_reported(cufftExecR2C(h, (cufftReal*) in[1], (cufftComplex*) out[1]),
                    "one work area shared by two unordered streams");
    for (int k = 0; k < 2; k++) {
        cuStreamSynchronize(s[k]);
        cuStreamDestroy_v2(s[k]);
        dfree(in[k]);
        dfree(out[k]);
        dfree(work[k]);
    }
    sync_status();
    cufftDestroy(h);
}

/** cufftPlanMany (32-bit parameters) and cufftMakePlanMany64 give the same result for the same layout. */
void plan_many_case() {
    int n[1] = {12}, ie[1] = {15}, oe[1] = {9};
    long long n64[1] = {12}, ie64[1] = {15}, oe64[1] = {9};
    const int batch = 3, idist = 15, odist = 10;
    cufftHandle a, b;
    size_t w;
    check(cufftPlanMany(&a, 1, n, ie, 1, idist, oe, 1, odist, CUFFT_R2C, batch) == CUFFT_SUCCESS, "cufftPlanMany");
    cufftCreate(&b);
    check(cufftMakePlanMany64(b, 1, n64, ie64, 1, idist, oe64, 1, odist, CUFFT_R2C, batch, &w) == CUFFT_SUCCESS,
          "cufftMakePlanMany64 for cufftPlanMany");
    std::vector<float> x(idist * batch);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float) cos(0.7 * i);
    size_t out_bytes = 8 * (odist * (batch - 1) + 7);
    void* in = dalloc(4 * x.size());
    void* o1 = dalloc(out_bytes);
    void* o2 = dalloc(out_bytes);
    upload(in, x.data(), 4 * x.size());
    check(cufftExecR2C(a, (cufftReal*) in, (cufftComplex*) o1) == CUFFT_SUCCESS &&
              cufftExecR2C(b, (cufftReal*) in, (cufftComplex*) o2) == CUFFT_SUCCESS,
          "cufftPlanMany exec");
    std::vector<char> y1(out_bytes), y2(out_bytes);
    download(y1.data(), o1, out_bytes);
    download(y2.data(), o2, out_bytes);
    check(y1 == y2, "cufftPlanMany and cufftMakePlanMany64 agree");
    cufftDestroy(a);
    cufftDestroy(b);
    dfree(in);
    dfree(o1);
    dfree(o2);
}

void api_cases() {
    int v = 0;
    check(cufftGetVersion(&v) == CUFFT_SUCCESS && v >= 12000 && v < 13000, "cufftGetVersion %d", v);
    int major = -1;
    check(cufftGetProperty(MAJOR_VERSION, &major) == CUFFT_SUCCESS && major == 12, "cufftGetProperty major %d",
          major);
    size_t e = 0, m = 0, g = 0;
    check(cufftEstimate1d(4096, CUFFT_R2C, 8, &e) == CUFFT_SUCCESS && e > 0, "cufftEstimate1d");
    cufftHandle h;
    cufftCreate(&h);
    check(cufftGetSize1d(h, 4096, CUFFT_R2C, 8, &g) == CUFFT_SUCCESS && g == e, "cufftGetSize1d");
    check(cufftMakePlan1d(h, 4096, CUFFT_R2C, 8, &m) == CUFFT_SUCCESS && m == e, "cufftMakePlan1d workSize");
    cufftDestroy(h);
    int n2[2] = {45, 28};
    check(cufftEstimateMany(2, n2, nullptr, 1, 0, nullptr, 1, 0, CUFFT_C2R, 3, &e) == CUFFT_SUCCESS &&
              e >= 45 * 15 * 8, "cufftEstimateMany");
    check(cufftResetPlanProperty(0, 0) == CUFFT_NOT_SUPPORTED, "a stub returns CUFFT_NOT_SUPPORTED");
}

}  // namespace

int main() {
    CUcontext ctx;
    CUdevice dev;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
        fprintf(stderr, "no CUDA context\n");
        return 2;
    }
    api_cases();

    // 1-D real transforms, odd and even sizes, batched, out of place and in place (padded basic layout).
    for (i64 n : {1, 2, 3, 7, 12, 30}) {
        for (int type : {CUFFT_R2C, CUFFT_C2R}) {
            for (bool ip : {false, true}) {
                std::string name = std::string(type == CUFFT_R2C ? "R2C" : "C2R") + " 1d n=" + std::to_string(n) +
                                   (ip ? " in place" : "");
                Case c = basic(name, type, {n}, 3, ip);
                c.auto_alloc = n % 2 == 1;
                run_case(c);
            }
        }
    }
    // 2-D, both orientations, in and out of place.
    for (auto dims : std::vector<std::vector<i64>>{{45, 28}, {28, 45}, {3, 7}, {2, 2}}) {
        for (int type : {CUFFT_R2C, CUFFT_C2R})
            for (bool ip : {false, true}) {
                std::string name = std::string(type == CUFFT_R2C ? "R2C" : "C2R") + " 2d " + std::to_string(dims[0]) +
                                   "x" + std::to_string(dims[1]) + (ip ? " in place" : "");
                run_case(basic(name, type, dims, dims[0] == 45 ? 1 : 2, ip));
            }
    }
    // Layouts of the library's own plans.
    for (int type : {CUFFT_R2C, CUFFT_C2R}) {
        run_case(java_style(type, 0, 12, 4, false, false));
        run_case(java_style(type, 0, 7, 4, true, false));
        run_case(java_style(type, 0, 12, 4, true, true));
        run_case(java_style(type, 0, 7, 3, true, true));
        run_case(java_style(type, 45, 28, 2, false, false));
        run_case(java_style(type, 6, 9, 2, true, true));
        run_case(java_style(type, 6, 9, 2, true, false));
    }
    // Advanced layouts: gaps between items, strides, embeds larger than the data.
    {
        Case c = basic("R2C 1d n=12 idist/odist with gaps", CUFFT_R2C, {12}, 3, false);
        c.advanced = true;
        c.inembed[0] = 15; c.idist = 15;
        c.onembed[0] = 9; c.odist = 10;
        run_case(c);
        c.type = CUFFT_C2R;
        c.name = "C2R 1d n=12 idist/odist with gaps";
        c.inembed[0] = 9; c.idist = 10;
        c.onembed[0] = 15; c.odist = 13;
        run_case(c);
    }
    {
        Case c = basic("R2C 2d 5x6 strided", CUFFT_R2C, {5, 6}, 2, false);
        c.advanced = true;
        c.inembed[0] = 5; c.inembed[1] = 8; c.istride = 2; c.idist = 5 * 8 * 2 + 3;
        c.onembed[0] = 7; c.onembed[1] = 5; c.ostride = 3; c.odist = 5 * 5 * 3 + 1;
        run_case(c);
        c.type = CUFFT_C2R;
        c.name = "C2R 2d 5x6 strided";
        c.inembed[1] = 4; c.istride = 3; c.idist = 5 * 4 * 3 + 2;
        c.onembed[1] = 7; c.ostride = 2; c.odist = 5 * 7 * 2;
        run_case(c);
    }
    {
        Case c = basic("R2C 1d n=7 interleaved batch", CUFFT_R2C, {7}, 3, false);
        c.advanced = true;  // items interleaved: stride = batch, dist = 1
        c.inembed[0] = 7; c.istride = 3; c.idist = 1;
        c.onembed[0] = 4; c.ostride = 3; c.odist = 1;
        run_case(c);
    }
    // Complex transforms, both directions, single and double precision, 1-D to 3-D.
    for (int dir : {CUFFT_FORWARD, CUFFT_INVERSE}) {
        std::string d = dir == CUFFT_FORWARD ? " forward" : " inverse";
        run_case(basic("C2C 1d n=12 x3" + d, CUFFT_C2C, {12}, 3, false));
        run_case(basic("C2C 1d n=7 x2 in place" + d, CUFFT_C2C, {7}, 2, true));
        run_case(basic("C2C 2d 45x28" + d, CUFFT_C2C, {45, 28}, 1, false));
        run_case(basic("C2C 3d 3x4x5" + d, CUFFT_C2C, {3, 4, 5}, 2, false));
        run_case(basic("Z2Z 2d 6x5" + d, CUFFT_Z2Z, {6, 5}, 2, false));
        Case c = basic("C2C 2d 4x6 strided" + d, CUFFT_C2C, {4, 6}, 2, false);
        c.advanced = true;
        c.inembed[1] = 7; c.istride = 2; c.idist = 4 * 7 * 2;
        c.onembed[1] = 6; c.ostride = 1; c.odist = 30;
        c.direction = dir;
        run_case(c);
    }
    for (bool ip : {false, true}) {
        run_case(basic(std::string("D2Z 2d 6x9") + (ip ? " in place" : ""), CUFFT_D2Z, {6, 9}, 2, ip));
        run_case(basic(std::string("Z2D 2d 6x9") + (ip ? " in place" : ""), CUFFT_Z2D, {6, 9}, 2, ip));
        run_case(basic(std::string("Z2D 3d 3x4x6") + (ip ? " in place" : ""), CUFFT_Z2D, {3, 4, 6}, 1, ip));
    }
    {
        Case c = basic("R2C 1d n=30 x4 on a created stream", CUFFT_R2C, {30}, 4, false);
        c.own_stream = true;
        run_case(c);
        c.type = CUFFT_C2R;
        c.name = "C2R 1d n=30 x4 on a created stream";
        run_case(c);
    }
    // The C2C inverse of the forward reproduces the input times N (round trip through the stand-in alone).
    {
        const int n = 30;
        cufftHandle h;
        cufftPlan1d(&h, n, CUFFT_C2C, 1);
        std::vector<float> x(2 * n), y(2 * n);
        for (int i = 0; i < 2 * n; i++) x[i] = (float) cos(i * 1.3);
        void* d = dalloc(8 * n);
        upload(d, x.data(), 8 * n);
        cufftExecC2C(h, (cufftComplex*) d, (cufftComplex*) d, CUFFT_FORWARD);
        cufftExecC2C(h, (cufftComplex*) d, (cufftComplex*) d, CUFFT_INVERSE);
        download(y.data(), d, 8 * n);
        double err = 0;
        for (int i = 0; i < 2 * n; i++) err = std::max(err, (double) fabs(y[i] / n - x[i]));
        check(err < 1e-5, "C2C round trip error %g", err);
        cufftDestroy(h);
        dfree(d);
    }
    plan_many_case();
    error_cases();
    two_stream_cases();
    // The last driver reference: the context's streams drain and any leaked allocation is reported.
    check(cuDevicePrimaryCtxRelease(dev) == CUDA_SUCCESS, "cuDevicePrimaryCtxRelease (a leak or late error)");

    printf("cufft stand-in self-test: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
