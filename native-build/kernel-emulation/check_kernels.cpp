// Checks the materialize kernels (fourierft_column_synthesis, fourierft_epilogue) by running them on the
// CPU over the chunk plan and tables the Java side writes (KernelEmulationFixtures), with the row C2R
// transforms done by a float64 DFT in cuFFT's layouts (out of place into a dense float32 output, or in
// place with rows of 2·halfIn floats), against ΔW evaluated from its closed form in float64.
//   usage: check_kernels FIXTURE_FILE        exit status 0 when every case passes
#include "emulation.h"
#include "fourierft.cu"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace {

struct Chunk { int layerBegin, layers, rowBegin, rows; };

struct Case {
    std::string name;
    int dOut = 0, dIn = 0, n = 0, layers = 0;
    float scale = 0;
    std::vector<int> rows, cols, colStart, colRow, colCoeff;
    std::vector<float> coeffs, stepCos, stepSin;
    std::vector<Chunk> chunks;
};

std::vector<int> readInts(std::ifstream& in, const char* expect) {
    std::string key; size_t count;
    in >> key >> count;
    if (key != expect) { fprintf(stderr, "expected %s, got %s\n", expect, key.c_str()); exit(2); }
    std::vector<int> v(count);
    for (auto& x : v) in >> x;
    return v;
}

std::vector<float> readFloats(std::ifstream& in, const char* expect) {
    std::string key; size_t count;
    in >> key >> count;
    if (key != expect) { fprintf(stderr, "expected %s, got %s\n", expect, key.c_str()); exit(2); }
    std::vector<float> v(count);
    for (auto& x : v) { std::string s; in >> s; x = strtof(s.c_str(), nullptr); }
    return v;
}

bool readCase(std::ifstream& in, Case& c) {
    std::string key;
    in >> key;
    if (key != "case") return false;
    in >> c.name >> key >> c.dOut >> c.dIn >> c.n >> c.layers;
    std::string s;
    in >> key >> s;
    c.scale = strtof(s.c_str(), nullptr);
    c.rows = readInts(in, "rows");
    c.cols = readInts(in, "cols");
    c.coeffs = readFloats(in, "coeffs");
    c.colStart = readInts(in, "colStart");
    c.colRow = readInts(in, "colRow");
    c.colCoeff = readInts(in, "colCoeff");
    c.stepCos = readFloats(in, "stepCos");
    c.stepSin = readFloats(in, "stepSin");
    size_t k;
    in >> key >> k;
    c.chunks.resize(k);
    for (auto& ch : c.chunks) in >> ch.layerBegin >> ch.layers >> ch.rowBegin >> ch.rows;
    return true;
}

// ΔW of every layer from the closed form, float64.
std::vector<double> reference(const Case& c) {
    std::vector<double> w((size_t) c.layers * c.dOut * c.dIn, 0.0);
    for (int layer = 0; layer < c.layers; ++layer)
        for (int l = 0; l < c.n; ++l) {
            double a = (double) c.scale * c.coeffs[(size_t) layer * c.n + l];
            for (int p = 0; p < c.dOut; ++p) {
                double fp = (double) ((long long) p * c.rows[l] % c.dOut) / c.dOut;
                for (int q = 0; q < c.dIn; ++q) {
                    double fq = (double) ((long long) q * c.cols[l] % c.dIn) / c.dIn;
                    w[((size_t) layer * c.dOut + p) * c.dIn + q] += a * std::cos(2 * M_PI * (fp + fq));
                }
            }
        }
    return w;
}

// cuFFT's C2R of one row: the Hermitian extension of bins 0..dIn/2, imaginary parts of the self-conjugate
// bins ignored, unnormalized, e^{+2πi qv/dIn}.
void c2rRow(const float2* bins, int dIn, std::vector<double>& out) {
    int h = dIn / 2 + 1;
    out.assign(dIn, 0.0);
    for (int q = 0; q < dIn; ++q) {
        double sum = 0;
        for (int v = 0; v < dIn; ++v) {
            bool stored = v < h;
            int b = stored ? v : dIn - v;
            double re = bins[b].x, im = stored ? bins[b].y : -bins[b].y;
            if (b == 0 || 2 * b == dIn) im = 0;
            double ph = 2 * M_PI * (double) ((long long) q * v % dIn) / dIn;
            sum += re * std::cos(ph) - im * std::sin(ph);
        }
        out[q] = sum;
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

// Materialize (mode 0) or merge (mode 1, into weights w) of every layer through the chunks, as
// CudaFourierFT.inverse2d queues it; the destination has dtype DT_* and an 8-byte aligned base.
std::vector<double> run(const Case& c, int dtype, int mode, const std::vector<float>& w, bool& allWritten) {
    const int h = c.dIn / 2 + 1;
    const size_t total = (size_t) c.layers * c.dOut * c.dIn;
    std::vector<float> out32(dtype == DT_FLOAT32 ? total : 0);
    std::vector<__nv_bfloat16> out16(dtype == DT_BFLOAT16 ? total : 0);
    for (size_t i = 0; i < total; ++i) {
        float init = mode == 0 ? std::numeric_limits<float>::quiet_NaN() : w[i];
        if (dtype == DT_FLOAT32) out32[i] = init; else out16[i] = __float2bfloat16_rn(init);
    }
    size_t maxRows = 0;
    for (const auto& ch : c.chunks) maxRows = std::max(maxRows, (size_t) ch.layers * ch.rows);
    std::vector<float2> g(maxRows * h);
    const float halfScale = 0.5f * c.scale;
    allWritten = true;
    std::vector<double> row;
    for (const auto& ch : c.chunks) {
        const long long first = (long long) ch.layerBegin * c.dOut + ch.rowBegin;
        const long long count = (long long) ch.layers * ch.rows;
        for (auto& x : g) x = make_float2(NAN, NAN);
        // A small grid (2 × 2 blocks of 64 threads) so the kernel's grid-stride loops go round.
        launch(fourierft_column_synthesis, 2, 2, 64, g.data(), c.dOut, ch.rowBegin, ch.rows, h,
               c.coeffs.data() + (size_t) c.n * ch.layerBegin, c.n, c.colStart.data(), c.colRow.data(),
               c.colCoeff.data(), c.stepCos.data(), c.stepSin.data(), halfScale, ch.layers);
        for (long long i = 0; i < count * h; ++i)
            if (std::isnan(g[i].x) || std::isnan(g[i].y)) allWritten = false;
        const bool direct = mode == 0 && dtype == DT_FLOAT32 && (first * c.dIn * 4) % 8 == 0;
        float* padded = reinterpret_cast<float*>(g.data());
        for (long long r = 0; r < count; ++r) {
            c2rRow(g.data() + r * h, c.dIn, row);
            for (int q = 0; q < c.dIn; ++q) {
                if (direct) out32[(first + r) * c.dIn + q] = (float) row[q];
                else padded[r * 2 * h + q] = (float) row[q];  // in place: row r's bins are already read
            }
        }
        if (!direct) {
            void* dst = dtype == DT_FLOAT32 ? (void*) (out32.data() + first * c.dIn)
                                            : (void*) (out16.data() + first * c.dIn);
            // x covers the columns (as FourierFTKernels launches it); rows go round a small y
            launch(fourierft_epilogue, (unsigned) (c.dIn + 63) / 64, 3, 64, (const float*) padded, (long long) 2 * h,
                   dst, dtype, count, c.dIn, mode);
        }
    }
    std::vector<double> got(total);
    for (size_t i = 0; i < total; ++i) {
        double v = dtype == DT_FLOAT32 ? out32[i] : __bfloat162float(out16[i]);
        got[i] = mode == 0 ? v : v - w[i];
    }
    return got;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) { fprintf(stderr, "usage: check_kernels FIXTURE_FILE\n"); return 2; }
    std::ifstream in(argv[1]);
    std::string key, seed;
    in >> key >> seed;
    printf("fixtures %s (seed %s)\n", argv[1], seed.c_str());
    int failures = 0, cases = 0;
    Case c;
    while (readCase(in, c)) {
        ++cases;
        std::vector<double> ref = reference(c);
        std::vector<float> w(ref.size());
        for (size_t i = 0; i < w.size(); ++i) w[i] = (float) std::sin(0.7 * (double) i);
        struct Mode { const char* what; int dtype, mode; double tol; } modes[] = {
            {"materialize float32", DT_FLOAT32, 0, 1e-5},
            {"materialize bfloat16", DT_BFLOAT16, 0, 1e-2},
            {"merge float32", DT_FLOAT32, 1, 1e-5},
        };
        for (const auto& m : modes) {
            bool written;
            std::vector<double> got = run(c, m.dtype, m.mode, w, written);
            double err = relError(got, ref);
            bool ok = written && err < m.tol;
            failures += !ok;
            printf("%-4s %-22s %-24s %zu chunks, relative error %.2e%s\n", ok ? "ok" : "FAIL", c.name.c_str(), m.what,
                   c.chunks.size(), err, written ? "" : ", some G elements never written");
        }
    }
    printf("%d cases, %d failures\n", cases, failures);
    return failures == 0 && cases > 0 ? 0 : 1;
}
