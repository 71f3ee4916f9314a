// Checks every kernel of kernels/fourierft.cu (but fourierft_hold_stream, a profiling aid that compiles to
// an empty function here) by running its source on the CPU (emulation.h) over the
// tables, inputs and chunk plans the Java side writes (KernelEmulationFixtures), each pipeline queued as
// CudaFourierFT queues it, with cuFFT replaced by float64 DFTs in cuFFT's layouts (out of place into dense
// rows, or in place with rows of 2·(len/2+1) floats). Results are compared with the closed forms in
// float64:
//   materialize, column-synthesis path (chunked): float32 (direct C2R or epilogue), bfloat16, merge
//   materialize, dense path (scatter + C2R-2D)
//   forward y += x·ΔWᵀ; backward ∂L/∂c (two-stage reduction) and ∂L/∂x += ∂L/∂y·ΔW
//   gradCoefficients ∂L/∂c from ∂L/∂ΔW: dense path (R2C-2D + gather) and column analysis (chunked)
//   usage: check_kernels FIXTURE_FILE        exit status 0 when every check passes
#include "emulation.h"
#include "fourierft.cu"

#include <complex>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace {

using cd = std::complex<double>;
constexpr unsigned kBlock = 64;  // threads per emulated block (the Java side launches 256)

unsigned blocksFor(long long count) { return (unsigned) std::max(1LL, (count + kBlock - 1) / kBlock); }

struct Chunk { int layerBegin, layers, rowBegin, rows; };

struct Spec {
    int dOut = 0, dIn = 0, n = 0;
    float scale = 0;
    std::vector<int> rows, cols, colStart, colRow, colCoeff, halfPos, halfStart, halfCoeff;
    std::vector<int> fwdStart, fwdCoeff, fwdSrc, trStart, trCoeff, trSrc, deltaGradBin, xBin, gyBin;
    std::vector<float> stepCos, stepSin, imSign;
    int halfIn() const { return dIn / 2 + 1; }
    int halfOut() const { return dOut / 2 + 1; }
};

struct Case {
    std::string name;
    int layers = 0, tokens = 0, batch = 0;  // batch: FftPlans.paddedBatch(tokens)
    std::vector<float> coeffs, x, gy, gradDeltaW;
    Spec s2d, s;
    std::vector<Chunk> chunks, gradChunks;
    std::vector<int> gradOrder;
    std::vector<float> gradStepCos, gradStepSin;
};

std::ifstream in;

void expect(const char* key) {
    std::string k;
    in >> k;
    if (k != key) { fprintf(stderr, "fixture: expected %s, got %s\n", key, k.c_str()); exit(2); }
}

std::vector<int> ints(const char* key) {
    expect(key);
    size_t count;
    in >> count;
    std::vector<int> v(count);
    for (auto& x : v) in >> x;
    return v;
}

float hexFloat() { std::string s; in >> s; return strtof(s.c_str(), nullptr); }

std::vector<float> floats(const char* key) {
    expect(key);
    size_t count;
    in >> count;
    std::vector<float> v(count);
    for (auto& x : v) x = hexFloat();
    return v;
}

void readSpec(const char* key, Spec& s) {
    expect(key);
    in >> s.dOut >> s.dIn >> s.n;
    s.scale = hexFloat();
    s.rows = ints("rows"); s.cols = ints("cols");
    s.colStart = ints("colStart"); s.colRow = ints("colRow"); s.colCoeff = ints("colCoeff");
    s.stepCos = floats("stepCos"); s.stepSin = floats("stepSin");
    s.halfPos = ints("halfPos"); s.halfStart = ints("halfStart"); s.halfCoeff = ints("halfCoeff");
    s.fwdStart = ints("groupStart"); s.fwdCoeff = ints("groupCoeff"); s.fwdSrc = ints("groupSrc");
    s.trStart = ints("groupStart"); s.trCoeff = ints("groupCoeff"); s.trSrc = ints("groupSrc");
    s.deltaGradBin = ints("deltaGradBin"); s.xBin = ints("xBin"); s.gyBin = ints("gyBin");
    s.imSign = floats("imSign");
}

bool readCase(Case& c) {
    std::string key;
    in >> key;
    if (key != "case") return false;
    in >> c.name;
    expect("layers"); in >> c.layers;
    expect("tokens"); in >> c.tokens;
    expect("batch"); in >> c.batch;
    c.coeffs = floats("coeffs"); c.x = floats("x"); c.gy = floats("gy"); c.gradDeltaW = floats("gradDeltaW");
    readSpec("spec2d", c.s2d);
    expect("chunks");
    size_t k;
    in >> k;
    c.chunks.resize(k);
    for (auto& ch : c.chunks) in >> ch.layerBegin >> ch.layers >> ch.rowBegin >> ch.rows;
    c.gradOrder = ints("gradOrder");
    c.gradStepCos = floats("gradStepCos");
    c.gradStepSin = floats("gradStepSin");
    expect("gradChunks");
    in >> k;
    c.gradChunks.resize(k);
    for (auto& ch : c.gradChunks) in >> ch.layerBegin >> ch.layers >> ch.rowBegin >> ch.rows;
    readSpec("spec", c.s);
    return true;
}

// ---------------------------------------------------------------- float64 references and DFTs

double basis(const Spec& s, int l, int p, int q) {
    double fp = (double) ((long long) p * s.rows[l] % s.dOut) / s.dOut;
    double fq = (double) ((long long) q * s.cols[l] % s.dIn) / s.dIn;
    return std::cos(2 * M_PI * (fp + fq));
}

std::vector<double> deltaW(const Spec& s, const float* c) {
    std::vector<double> w((size_t) s.dOut * s.dIn, 0.0);
    for (int l = 0; l < s.n; ++l)
        for (int p = 0; p < s.dOut; ++p)
            for (int q = 0; q < s.dIn; ++q) w[(size_t) p * s.dIn + q] += (double) s.scale * c[l] * basis(s, l, p, q);
    return w;
}

// ∂L/∂c_l = s · Σ_{p,q} m[p,q]·basis_l(p,q) for a d_out × d_in matrix m.
std::vector<double> coeffGrad(const Spec& s, const std::vector<double>& m) {
    std::vector<double> g(s.n, 0.0);
    for (int l = 0; l < s.n; ++l)
        for (int p = 0; p < s.dOut; ++p)
            for (int q = 0; q < s.dIn; ++q) g[l] += (double) s.scale * m[(size_t) p * s.dIn + q] * basis(s, l, p, q);
    return g;
}

cd unit(long long m, int len, int sign) { return std::polar(1.0, sign * 2 * M_PI * (double) (m % len) / len); }

// cuFFT's C2R of one line: Hermitian extension of bins 0..len/2, imaginary parts of self-conjugate bins ignored.
void c2r(const float2* bins, int len, std::vector<double>& out) {
    int h = len / 2 + 1;
    out.assign(len, 0.0);
    for (int q = 0; q < len; ++q)
        for (int v = 0; v < len; ++v) {
            bool stored = v < h;
            int b = stored ? v : len - v;
            double re = bins[b].x, im = stored ? bins[b].y : -bins[b].y;
            if (b == 0 || 2 * b == len) im = 0;
            out[q] += (cd(re, im) * unit((long long) q * v, len, +1)).real();
        }
}

// cuFFT's R2C of one line: bins 0..len/2 of Σ x·e^{-2πi qv/len}.
void r2c(const float* x, int len, float2* bins) {
    for (int v = 0; v <= len / 2; ++v) {
        cd sum = 0;
        for (int q = 0; q < len; ++q) sum += (double) x[q] * unit((long long) q * v, len, -1);
        bins[v] = make_float2((float) sum.real(), (float) sum.imag());
    }
}

double relError(const std::vector<double>& got, const std::vector<double>& ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return std::sqrt(num / den);
}

int failures = 0;

void report(const Case& c, const char* what, double err, double tol, const char* note = "") {
    bool ok = err < tol;
    failures += !ok;
    printf("%-4s %-20s %-34s relative error %.2e%s\n", ok ? "ok" : "FAIL", c.name.c_str(), what, err, note);
}

// ---------------------------------------------------------------- pipelines, as CudaFourierFT queues them

// Column-synthesis materialize (mode 0) or merge (mode 1, into w) of every layer through the chunks.
std::vector<double> columnPath(const Case& c, int dtype, int mode, const std::vector<float>& w, bool& allWritten) {
    const Spec& s = c.s2d;
    const int h = s.halfIn();
    const size_t total = (size_t) c.layers * s.dOut * s.dIn;
    std::vector<float> out32(dtype == DT_FLOAT32 ? total : 0);
    std::vector<__nv_bfloat16> out16(dtype == DT_BFLOAT16 ? total : 0);
    for (size_t i = 0; i < total; ++i) {
        float init = mode == 0 ? std::numeric_limits<float>::quiet_NaN() : w[i];
        if (dtype == DT_FLOAT32) out32[i] = init; else out16[i] = __float2bfloat16_rn(init);
    }
    size_t maxRows = 0;
    for (const auto& ch : c.chunks) maxRows = std::max(maxRows, (size_t) ch.layers * ch.rows);
    std::vector<float2> g(maxRows * h);
    allWritten = true;
    std::vector<double> row;
    for (const auto& ch : c.chunks) {
        const long long first = (long long) ch.layerBegin * s.dOut + ch.rowBegin;
        const long long count = (long long) ch.layers * ch.rows;
        for (auto& x : g) x = make_float2(NAN, NAN);
        // A small grid, so the kernel's grid-stride loops go round.
        launch(fourierft_column_synthesis, 2, 2, kBlock, g.data(), s.dOut, ch.rowBegin, ch.rows, h,
               c.coeffs.data() + (size_t) s.n * ch.layerBegin, s.n, s.colStart.data(), s.colRow.data(),
               s.colCoeff.data(), s.stepCos.data(), s.stepSin.data(), 0.5f * s.scale, ch.layers);
        for (long long i = 0; i < count * h; ++i)
            if (std::isnan(g[i].x) || std::isnan(g[i].y)) allWritten = false;
        const bool direct = mode == 0 && dtype == DT_FLOAT32 && (first * s.dIn * 4) % 8 == 0;
        float* padded = reinterpret_cast<float*>(g.data());
        for (long long r = 0; r < count; ++r) {
            c2r(g.data() + r * h, s.dIn, row);
            for (int q = 0; q < s.dIn; ++q) {
                if (direct) out32[(first + r) * s.dIn + q] = (float) row[q];
                else padded[r * 2 * h + q] = (float) row[q];  // in place: row r's bins were read already
            }
        }
        if (!direct) {
            void* dst = dtype == DT_FLOAT32 ? (void*) (out32.data() + first * s.dIn) : (void*) (out16.data() + first * s.dIn);
            launch(fourierft_epilogue, blocksFor(s.dIn), 3, kBlock, (const float*) padded, (long long) 2 * h, dst, dtype,
                   count, s.dIn, mode);
        }
    }
    std::vector<double> got(total);
    for (size_t i = 0; i < total; ++i) {
        double v = dtype == DT_FLOAT32 ? out32[i] : __bfloat162float(out16[i]);
        got[i] = mode == 0 ? v : v - w[i];
    }
    return got;
}

// Dense-spectrum materialize, float32 through the epilogue: zero, scatter, C2R-2D in place, epilogue.
std::vector<double> densePath(const Case& c) {
    const Spec& s = c.s2d;
    const int h = s.halfIn();
    const long long bins = (long long) s.dOut * h;
    std::vector<float2> spec((size_t) bins * c.layers, make_float2(0, 0));
    launch(fourierft_scatter_half_spectrum, blocksFor((long long) s.halfStart.size() - 1), (unsigned) c.layers, kBlock,
           spec.data(), bins, c.coeffs.data(), s.n, s.halfPos.data(), s.halfStart.data(), s.halfCoeff.data(),
           (int) s.halfStart.size() - 1, 0.5f * s.scale);
    std::vector<float> out((size_t) c.layers * s.dOut * s.dIn, NAN);
    std::vector<double> line;
    for (int layer = 0; layer < c.layers; ++layer) {
        float2* sp = spec.data() + (size_t) layer * bins;
        for (int v = 0; v < h; ++v) {  // inverse DFT down each column
            std::vector<cd> col(s.dOut, 0.0);
            for (int p = 0; p < s.dOut; ++p)
                for (int u = 0; u < s.dOut; ++u)
                    col[p] += cd(sp[(size_t) u * h + v].x, sp[(size_t) u * h + v].y) * unit((long long) p * u, s.dOut, +1);
            for (int p = 0; p < s.dOut; ++p) sp[(size_t) p * h + v] = make_float2((float) col[p].real(), (float) col[p].imag());
        }
        float* padded = reinterpret_cast<float*>(sp);
        for (int p = 0; p < s.dOut; ++p) {
            c2r(sp + (size_t) p * h, s.dIn, line);
            for (int q = 0; q < s.dIn; ++q) padded[(size_t) p * 2 * h + q] = (float) line[q];
        }
    }
    launch(fourierft_epilogue, blocksFor(s.dIn), 3, kBlock, (const float*) spec.data(), (long long) 2 * h,
           (void*) out.data(), (int) DT_FLOAT32, (long long) c.layers * s.dOut, s.dIn, 0);
    return std::vector<double>(out.begin(), out.end());
}

// Rows of len (tokens of them) → their R2C bins, dense (tokens × (len/2+1)). Length 1 goes through
// fourierft_length_one_transform, as FftPlans does instead of calling cuFFT.
std::vector<float2> rowSpectra(const std::vector<float>& rows, int tokens, int len) {
    std::vector<float2> spec((size_t) tokens * (len / 2 + 1), make_float2(NAN, NAN));
    if (len == 1) {
        launch(fourierft_length_one_transform, 2, 1, kBlock, rows.data(), 1LL, reinterpret_cast<float*>(spec.data()), 2LL,
               (long long) tokens, 1);
        return spec;
    }
    for (int t = 0; t < tokens; ++t) r2c(rows.data() + (size_t) t * len, len, spec.data() + (size_t) t * (len / 2 + 1));
    return spec;
}

// The R2C spectra of tokens rows of len as CudaFourierFT.rowSpectra makes them: when the plan batch is
// rounded up, the rows are first copied by fourierft_to_float32 with zero rows after them, and all batch
// rows are transformed. The padding must come out exactly zero.
std::vector<float2> tokenSpectra(const void* rows, int dtype, const Case& c, int len) {
    std::vector<float> real((size_t) c.batch * len, NAN);
    if (c.batch != c.tokens || dtype != DT_FLOAT32) {
        launch(fourierft_to_float32, 3, 1, kBlock, rows, dtype, real.data(), (long long) c.tokens * len,
               (long long) c.batch * len);
    } else {
        const float* f = static_cast<const float*>(rows);
        real.assign(f, f + (size_t) c.tokens * len);
    }
    bool zero = true;
    for (size_t i = (size_t) c.tokens * len; i < real.size(); ++i) zero &= real[i] == 0.0f;
    report(c, "zero padding rows of the R2C input", zero ? 0.0 : 1.0, 0.5, zero ? "" : ", padding not zero");
    return rowSpectra(real, c.batch, len);
}

// out (tokens × outLen, float32) += C2R(gather/scatter of srcSpec) — CudaFourierFT.applyAxis: Z has batch
// rows, the padding rows zeroed by the gather, and the C2R runs over all of them.
void applyAxis(const std::vector<float2>& srcSpec, int srcBins, int outLen, const std::vector<int>& start,
               const std::vector<int>& coeff, const std::vector<int>& src, const Case& c, std::vector<float>& out) {
    const Spec& s = c.s;
    const int outBins = outLen / 2 + 1;
    std::vector<float2> z((size_t) c.batch * outBins, make_float2(NAN, NAN));
    launch(fourierft_gather_scatter, blocksFor(outBins), 3, kBlock, srcSpec.data(), srcBins, z.data(), outBins, outBins,
           c.coeffs.data(), start.data(), coeff.data(), src.data(), 0.5f * s.scale, c.tokens, c.batch);
    bool zero = true;
    for (size_t i = (size_t) c.tokens * outBins; i < z.size(); ++i) zero &= z[i].x == 0.0f && z[i].y == 0.0f;
    report(c, "zero padding rows of Z", zero ? 0.0 : 1.0, 0.5, zero ? "" : ", padding not zero");
    std::vector<double> line;
    float* padded = reinterpret_cast<float*>(z.data());
    for (int t = 0; t < c.batch; ++t) {
        c2r(z.data() + (size_t) t * outBins, outLen, line);
        for (int q = 0; q < outLen; ++q) padded[(size_t) t * 2 * outBins + q] = (float) line[q];
    }
    launch(fourierft_epilogue, blocksFor(outLen), 3, kBlock, (const float*) padded, (long long) 2 * outBins,
           (void*) out.data(), (int) DT_FLOAT32, (long long) c.tokens, outLen, 1);
}

void checkCase(const Case& c) {
    // materialize and merge, both paths
    std::vector<double> ref;
    for (int layer = 0; layer < c.layers; ++layer) {
        std::vector<double> w = deltaW(c.s2d, c.coeffs.data() + (size_t) layer * c.s2d.n);
        ref.insert(ref.end(), w.begin(), w.end());
    }
    std::vector<float> w(ref.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = (float) std::sin(0.7 * (double) i);
    char what[80];
    struct Mode { const char* what; int dtype, mode; double tol; } modes[] = {
        {"materialize float32", DT_FLOAT32, 0, 1e-5},
        {"materialize bfloat16", DT_BFLOAT16, 0, 1e-2},
        {"merge float32", DT_FLOAT32, 1, 1e-5},
    };
    for (const auto& m : modes) {
        bool written;
        std::vector<double> got = columnPath(c, m.dtype, m.mode, w, written);
        snprintf(what, sizeof what, "%s, %zu chunks", m.what, c.chunks.size());
        report(c, what, relError(got, ref), written ? m.tol : -1, written ? "" : ", some G elements never written");
    }
    report(c, "materialize float32, dense path", relError(densePath(c), ref), 1e-5);

    // forward, backward (spec, not spec2d), with layer 0's coefficients
    const Spec& s = c.s;
    std::vector<double> dw = deltaW(s, c.coeffs.data());
    std::vector<float> y((size_t) c.tokens * s.dOut), gx((size_t) c.tokens * s.dIn);
    for (size_t i = 0; i < y.size(); ++i) y[i] = (float) std::cos(0.3 * (double) i);
    for (size_t i = 0; i < gx.size(); ++i) gx[i] = (float) std::cos(0.5 * (double) i);
    std::vector<float> y0 = y, gx0 = gx;
    std::vector<float2> xSpec = tokenSpectra(c.x.data(), DT_FLOAT32, c, s.dIn);
    std::vector<float2> gySpec = tokenSpectra(c.gy.data(), DT_FLOAT32, c, s.dOut);
    applyAxis(xSpec, s.halfIn(), s.dOut, s.fwdStart, s.fwdCoeff, s.fwdSrc, c, y);
    std::vector<double> yGot(y.size()), yRef(y.size(), 0.0);
    for (int t = 0; t < c.tokens; ++t)
        for (int p = 0; p < s.dOut; ++p) {
            yGot[(size_t) t * s.dOut + p] = (double) y[(size_t) t * s.dOut + p] - y0[(size_t) t * s.dOut + p];
            for (int q = 0; q < s.dIn; ++q)
                yRef[(size_t) t * s.dOut + p] += (double) c.x[(size_t) t * s.dIn + q] * dw[(size_t) p * s.dIn + q];
        }
    report(c, "forward y += x·ΔWᵀ", relError(yGot, yRef), 1e-5);

    {  // the same with x in bfloat16: widened on the device, compared with x rounded to bfloat16
        std::vector<__nv_bfloat16> x16(c.x.size());
        for (size_t i = 0; i < x16.size(); ++i) x16[i] = __float2bfloat16_rn(c.x[i]);
        std::vector<float> y2 = y0;
        applyAxis(tokenSpectra(x16.data(), DT_BFLOAT16, c, s.dIn), s.halfIn(), s.dOut, s.fwdStart, s.fwdCoeff, s.fwdSrc,
                  c, y2);
        std::vector<double> got(y2.size()), ref(y2.size(), 0.0);
        for (int t = 0; t < c.tokens; ++t)
            for (int p = 0; p < s.dOut; ++p) {
                got[(size_t) t * s.dOut + p] = (double) y2[(size_t) t * s.dOut + p] - y0[(size_t) t * s.dOut + p];
                for (int q = 0; q < s.dIn; ++q)
                    ref[(size_t) t * s.dOut + p] += (double) __bfloat162float(x16[(size_t) t * s.dIn + q])
                                                    * dw[(size_t) p * s.dIn + q];
            }
        report(c, "forward, x bfloat16", relError(got, ref), 1e-5);
    }

    const int tile = 64, tiles = (c.tokens + tile - 1) / tile;
    std::vector<float> partial((size_t) tiles * s.n, NAN), grad(s.n, NAN);
    launch(fourierft_coeff_grad_partial, blocksFor(s.n), 1, kBlock, xSpec.data(), s.halfIn(), gySpec.data(), s.halfOut(),
           s.xBin.data(), s.gyBin.data(), s.imSign.data(), s.n, c.tokens, tile, partial.data());
    launch(fourierft_coeff_grad_reduce, blocksFor(s.n), 1, kBlock, partial.data(), tiles, s.n, s.scale, grad.data());
    std::vector<double> m((size_t) s.dOut * s.dIn, 0.0);  // gyᵀ·x
    for (int t = 0; t < c.tokens; ++t)
        for (int p = 0; p < s.dOut; ++p)
            for (int q = 0; q < s.dIn; ++q)
                m[(size_t) p * s.dIn + q] += (double) c.gy[(size_t) t * s.dOut + p] * c.x[(size_t) t * s.dIn + q];
    report(c, "backward ∂L/∂c", relError(std::vector<double>(grad.begin(), grad.end()), coeffGrad(s, m)), 1e-5);

    applyAxis(gySpec, s.halfOut(), s.dIn, s.trStart, s.trCoeff, s.trSrc, c, gx);
    std::vector<double> gxGot(gx.size()), gxRef(gx.size(), 0.0);
    for (int t = 0; t < c.tokens; ++t)
        for (int q = 0; q < s.dIn; ++q) {
            gxGot[(size_t) t * s.dIn + q] = (double) gx[(size_t) t * s.dIn + q] - gx0[(size_t) t * s.dIn + q];
            for (int p = 0; p < s.dOut; ++p)
                gxRef[(size_t) t * s.dIn + q] += (double) c.gy[(size_t) t * s.dOut + p] * dw[(size_t) p * s.dIn + q];
        }
    report(c, "backward ∂L/∂x += ∂L/∂y·ΔW", relError(gxGot, gxRef), 1e-5);

    // gradCoefficients (spec2d): R2C-2D of ∂L/∂ΔW, then the gather
    const Spec& t2 = c.s2d;
    const int h = t2.halfIn();
    std::vector<float2> rowsF = rowSpectra(c.gradDeltaW, t2.dOut, t2.dIn);
    std::vector<float2> f(rowsF.size());
    for (int v = 0; v < h; ++v)
        for (int u = 0; u < t2.dOut; ++u) {
            cd sum = 0;
            for (int p = 0; p < t2.dOut; ++p)
                sum += cd(rowsF[(size_t) p * h + v].x, rowsF[(size_t) p * h + v].y) * unit((long long) p * u, t2.dOut, -1);
            f[(size_t) u * h + v] = make_float2((float) sum.real(), (float) sum.imag());
        }
    std::vector<float> g2(t2.n, NAN);
    launch(fourierft_gather_real, blocksFor(t2.n), 1, kBlock, (const float2*) f.data(), (long long) t2.dOut * h,
           t2.deltaGradBin.data(), t2.n, t2.scale, g2.data());
    std::vector<double> gdw(c.gradDeltaW.begin(), c.gradDeltaW.end());
    std::vector<double> gradRef = coeffGrad(t2, gdw);
    report(c, "gradCoefficients ∂L/∂c, dense path", relError(std::vector<double>(g2.begin(), g2.end()), gradRef), 1e-5);

    // gradCoefficients, column analysis: chunk by chunk, row R2C then per-tile sums, reduced in tile order
    const int tiles2 = (t2.dOut + 15) / 16;
    std::vector<float> partial2((size_t) tiles2 * t2.n, NAN), g3(t2.n, NAN);
    size_t maxRows = 0;
    for (const auto& ch : c.gradChunks) maxRows = std::max(maxRows, (size_t) ch.rows);
    std::vector<float2> rowSpec(maxRows * h);
    for (const auto& ch : c.gradChunks) {
        for (auto& x : rowSpec) x = make_float2(NAN, NAN);
        for (int r = 0; r < ch.rows; ++r)
            r2c(c.gradDeltaW.data() + (size_t) (ch.rowBegin + r) * t2.dIn, t2.dIn, rowSpec.data() + (size_t) r * h);
        launch(fourierft_column_analysis, 3, 1, kBlock, (const float2*) rowSpec.data(), t2.dOut, ch.rowBegin, ch.rows, h,
               c.gradOrder.data(), t2.deltaGradBin.data(), c.gradStepCos.data(), c.gradStepSin.data(), t2.n,
               partial2.data());
    }
    launch(fourierft_coeff_grad_reduce, blocksFor(t2.n), 1, kBlock, (const float*) partial2.data(), tiles2, t2.n, t2.scale,
           g3.data());
    snprintf(what, sizeof what, "gradCoefficients ∂L/∂c, %zu chunks", c.gradChunks.size());
    report(c, what, relError(std::vector<double>(g3.begin(), g3.end()), gradRef), 1e-5);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) { fprintf(stderr, "usage: check_kernels FIXTURE_FILE\n"); return 2; }
    in.open(argv[1]);
    std::string key, seed;
    in >> key >> seed;
    printf("fixtures %s (seed %s)\n", argv[1], seed.c_str());
    int cases = 0;
    Case c;
    while (readCase(c)) {
        ++cases;
        checkCase(c);
    }
    printf("%d cases, %d failures\n", cases, failures);
    return failures == 0 && cases > 0 ? 0 : 1;
}
