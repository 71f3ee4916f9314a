// Self-test of the CPU kernel runtime: loads the test module (selftest_kernels.cu) and the real kernel
// module (kernels/*.cu), launches kernels through emu_kernel_info / emu_run_grid over malloc'ed buffers,
// and checks every result exactly.
//   usage: run_selftest TEST_MODULE.so REAL_MODULE.so [--no-timing]     exit status 0 when every check passes
// SPECTRALPEFT_EMU_KERNEL_THREADS > 1 spreads the large grids (block reductions, atomics) over OS threads.
#include "../../emu.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../selftest_check.h"

namespace {

struct Complex { float x, y; };  // float2's layout
std::vector<std::string> reports;

void on_report(const char* message) { reports.push_back(message); }


struct Module {
    std::string path;
    int (*count)() = nullptr;
    const EmuKernelInfo* (*info)(int) = nullptr;
    int (*run)(const EmuKernelInfo*, const EmuLaunch*, void**, void (*)(const char*)) = nullptr;
    size_t (*high_water)(size_t*) = nullptr;

    explicit Module(const char* p) : path(p) {
        void* h = dlopen(p, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "cannot load %s: %s\n", p, dlerror());
            exit(2);
        }
        count = reinterpret_cast<int (*)()>(dlsym(h, "emu_kernel_count"));
        info = reinterpret_cast<const EmuKernelInfo* (*) (int)>(dlsym(h, "emu_kernel_info"));
        run = reinterpret_cast<decltype(run)>(dlsym(h, "emu_run_grid"));
        high_water = reinterpret_cast<decltype(high_water)>(dlsym(h, "spemu_fiber_stack_high_water"));
        if (!count || !info || !run) {
            fprintf(stderr, "%s lacks the module's entry points\n", p);
            exit(2);
        }
    }

    const EmuKernelInfo* find(const char* name) const {
        for (int i = 0; i < count(); ++i)
            if (strcmp(info(i)->name, name) == 0) return info(i);
        fprintf(stderr, "%s: no kernel %s\n", path.c_str(), name);
        exit(2);
    }

    // Launches `name` over grid x block with the given arguments (each passed by address, as kernelParams).
    template <class... A>
    int launch(const char* name, std::initializer_list<unsigned> grid, std::initializer_list<unsigned> block,
               size_t shared, A... args) const {
        const EmuKernelInfo* k = find(name);
        if (k->param_count != (int) sizeof...(A)) {
            fprintf(stderr, "%s takes %d parameters, given %zu\n", name, k->param_count, sizeof...(A));
            exit(2);
        }
        void* params[sizeof...(A) + 1] = {static_cast<void*>(&args)...};
        EmuLaunch l{{1, 1, 1}, {1, 1, 1}, shared};
        std::copy(grid.begin(), grid.end(), l.grid);
        std::copy(block.begin(), block.end(), l.block);
        return run(k, &l, params, on_report);
    }
};

template <class T>
T* buffer(size_t n, T fill = T()) {
    T* p = static_cast<T*>(malloc(n * sizeof(T)));
    for (size_t i = 0; i < n; ++i) p[i] = fill;
    return p;
}

void test_registration(const Module& m) {
    const EmuKernelInfo* k = m.find("st_block_reduce_static");
    check(k->param_count == 3 && k->param_sizes[0] == 8 && k->param_sizes[1] == 8 && k->param_sizes[2] == 4 &&
              k->param_kinds[0] == EMU_PARAM_CONST_POINTER && k->param_kinds[1] == EMU_PARAM_POINTER &&
              k->param_kinds[2] == EMU_PARAM_VALUE,
          "parameter sizes and kinds of st_block_reduce_static");
    check(m.count() == 15, "test module registers its 15 kernels (got " + std::to_string(m.count()) + ")");
}

void test_block_reduce(const Module& m, std::mt19937& rng) {
    const int n = 1 << 18, blocks = n / 256;  // large enough to spread over OS threads when asked
    int* in = buffer<int>(n);
    int* out = buffer<int>(blocks, -1);
    for (int i = 0; i < n; ++i) in[i] = (int) (rng() % 2001) - 1000;
    int rc = m.launch("st_block_reduce_static", {(unsigned) blocks}, {256}, 0, (const int*) in, out, n);
    bool ok = rc == 0;
    for (int b = 0; b < blocks && ok; ++b) {
        int s = 0;
        for (int i = 0; i < 256; ++i) s += in[b * 256 + i];
        ok = out[b] == s;
    }
    check(ok, "block reduction in static shared memory");
    free(in);
    free(out);

    const int threads = 128, nb = 3;
    float* fin = buffer<float>(threads * nb);
    float* fout = buffer<float>(nb, -1.0f);
    int* notNaN = buffer<int>(1, 0);
    for (int i = 0; i < threads * nb; ++i) fin[i] = (float) (i % 7) - 2.0f;  // small integers: exact sums
    rc = m.launch("st_block_reduce_dynamic", {nb}, {threads}, threads * sizeof(float), (const float*) fin, fout, notNaN);
    ok = rc == 0 && *notNaN == 0;
    for (int b = 0; b < nb && ok; ++b) {
        float s = 0;
        for (int i = 0; i < threads; ++i) s += fin[b * threads + i];
        ok = fout[b] == s;
    }
    check(ok, "block reduction in dynamic shared memory, NaN-filled at every block start");
    free(fin);
    free(fout);
    free(notNaN);
}

void test_shuffles(const Module& m, std::mt19937& rng) {
    const int n = 256;
    int* in = buffer<int>(n);
    for (int i = 0; i < n; ++i) in[i] = (int) (rng() % 1000) - 500;
    int *sums = buffer<int>(n / 32), *xs = buffer<int>(n), *scan = buffer<int>(n), *bc = buffer<int>(n),
        *rot = buffer<int>(n);
    long long* wide = buffer<long long>(n);
    const int rc = m.launch("st_warp_shuffles", {2}, {128}, 0, (const int*) in, sums, xs, scan, bc, rot, wide);
    bool okSum = rc == 0, okXor = rc == 0, okScan = rc == 0, okBc = rc == 0, okRot = rc == 0, okWide = rc == 0;
    for (int w = 0; w < n / 32; ++w) {
        int s = 0;
        for (int l = 0; l < 32; ++l) s += in[w * 32 + l];
        okSum = okSum && sums[w] == s;
        for (int l = 0; l < 32; ++l) {
            const int i = w * 32 + l;
            okXor = okXor && xs[i] == s;
            int c = 0;
            for (int k = l & ~7; k <= l; ++k) c += in[w * 32 + k];
            okScan = okScan && scan[i] == c;
            okBc = okBc && bc[i] == in[w * 32 + 5];
            okRot = okRot && rot[i] == in[w * 32 + (l & 16) + ((l + 1) & 15)];
            okWide = okWide && wide[i] == (long long) in[w * 32 + (l ^ 1)] << 33;
        }
    }
    check(okSum, "warp sum by __shfl_down_sync");
    check(okXor, "warp all-reduce by __shfl_xor_sync");
    check(okScan, "segmented inclusive scan by __shfl_up_sync with width 8");
    check(okBc, "broadcast by __shfl_sync");
    check(okRot, "rotation by __shfl_sync with width 16");
    check(okWide, "64-bit __shfl_xor_sync");
    for (int* p : {in, sums, xs, scan, bc, rot}) free(p);
    free(wide);
}

void test_votes(const Module& m, std::mt19937& rng) {
    const int warps = 8, n = warps * 32;
    int* in = buffer<int>(n);
    for (int i = 0; i < n; ++i) {
        const int w = i / 32;
        in[i] = w == 0 ? 1 : w == 1 ? 0 : (int) (rng() % 3) - 1;  // all true, all false, mixed
    }
    unsigned *ballots = buffer<unsigned>(warps), *active = buffer<unsigned>(warps);
    int *any = buffer<int>(warps, -1), *all = buffer<int>(warps, -1);
    int rc = m.launch("st_votes", {2}, {128}, 0, (const int*) in, ballots, any, all, active);
    bool ok = rc == 0;
    for (int w = 0; w < warps; ++w) {
        unsigned b = 0;
        for (int l = 0; l < 32; ++l) b |= (unsigned) (in[w * 32 + l] > 0) << l;
        if (!(ballots[w] == b && any[w] == (b != 0) && all[w] == (b == 0xffffffffu) && active[w] == 0xffffffffu)) {
            fprintf(stderr, "warp %d: ballot %08x (expected %08x), any %d, all %d, active %08x\n", w, ballots[w], b,
                    any[w], all[w], active[w]);
            ok = false;
        }
    }
    check(ok, "__ballot_sync, __any_sync, __all_sync, __syncwarp, __activemask");
    unsigned* pb = buffer<unsigned>(2, 0);
    rc = m.launch("st_partial_ballot", {1}, {32}, 0, pb);
    check(rc == 0 && pb[0] == 0x0000aaaau && pb[1] == 0xff000000u, "ballots of two diverged half-warps");
    int* out = buffer<int>(3 * warps);
    unsigned* match = buffer<unsigned>(n);
    for (int i = 0; i < n; ++i) in[i] = (int) (rng() % 2001) - 1000;
    rc = m.launch("st_warp_reduce_match", {1}, {(unsigned) n}, 0, (const int*) in, out, match);
    ok = rc == 0;
    for (int w = 0; w < warps; ++w) {
        int s = 0, lo = in[w * 32], hi = in[w * 32];
        for (int l = 0; l < 32; ++l) {
            const int v = in[w * 32 + l];
            s += v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
            unsigned same = 0;
            for (int k = 0; k < 32; ++k) same |= (unsigned) ((in[w * 32 + k] & 3) == (v & 3)) << k;
            ok = ok && match[w * 32 + l] == same;
        }
        ok = ok && out[3 * w] == s && out[3 * w + 1] == lo && out[3 * w + 2] == hi;
    }
    check(ok, "__reduce_add/min/max_sync and __match_any_sync");
    free(in);
    free(ballots);
    free(active);
    free(any);
    free(all);
    free(pb);
    free(out);
    free(match);
}

void test_atomics(const Module& m, std::mt19937& rng) {
    const int n = 1 << 17;
    int* in = buffer<int>(n);
    for (int i = 0; i < n; ++i) in[i] = (int) (rng() % 100000) - 50000;
    unsigned* bins = buffer<unsigned>(16, 0);
    float* fsum = buffer<float>(1, 0.0f);
    unsigned long long* count = buffer<unsigned long long>(1, 0);
    int* mm = buffer<int>(3);
    mm[0] = -1 << 30;
    mm[1] = 1 << 30;
    mm[2] = 0;
    unsigned* cas = buffer<unsigned>(2, 0);
    const int rc = m.launch("st_atomics", {(unsigned) (n / 256 + 1)}, {256}, 0, (const int*) in, n, bins, fsum, count,
                            mm, cas);
    unsigned expect[16] = {};
    int hi = in[0], lo = in[0];
    for (int i = 0; i < n; ++i) {
        ++expect[in[i] & 15];
        hi = std::max(hi, in[i]);
        lo = std::min(lo, in[i]);
    }
    check(rc == 0 && memcmp(bins, expect, sizeof expect) == 0 && *fsum == (float) n && *count == (unsigned long long) n &&
              mm[0] == hi && mm[1] == lo && mm[2] == -n && cas[0] == 2u * n && cas[1] == 7u,
          "atomicAdd (unsigned, float, 64-bit), atomicMax/Min/Sub/CAS/Exch from 513 blocks");
    free(in);
    free(bins);
    free(fsum);
    free(count);
    free(mm);
    free(cas);
}

void test_index_3d(const Module& m) {
    const unsigned gx = 3, gy = 2, gz = 2, bx = 8, by = 4, bz = 2;
    const unsigned threads = bx * by * bz, total = gx * gy * gz * threads;
    unsigned* out = buffer<unsigned>(4 * total, ~0u);
    unsigned* ballots = buffer<unsigned>(total / 32, 0);
    const int rc = m.launch("st_index_3d", {gx, gy, gz}, {bx, by, bz}, 0, out, ballots);
    bool ok = rc == 0;
    for (unsigned z = 0; z < gz; ++z)
        for (unsigned y = 0; y < gy; ++y)
            for (unsigned x = 0; x < gx; ++x)
                for (unsigned tz = 0; tz < bz; ++tz)
                    for (unsigned ty = 0; ty < by; ++ty)
                        for (unsigned tx = 0; tx < bx; ++tx) {
                            const unsigned g = ((z * gy + y) * gx + x) * threads + (tz * by + ty) * bx + tx;
                            ok = ok && out[4 * g] == (tx | ty << 8 | tz << 16) && out[4 * g + 1] == (x | y << 8 | z << 16) &&
                                 out[4 * g + 2] == (bx | by << 8 | bz << 16) && out[4 * g + 3] == (gx | gy << 8 | gz << 16);
                        }
    for (unsigned w = 0; w < total / 32; ++w) ok = ok && ballots[w] == 0xff00ff00u;
    check(ok, "3-D grid and block indices, warps from linear thread ids");
    free(out);
    free(ballots);
}

void test_sync_reductions(const Module& m) {
    int* in = buffer<int>(128);
    int* out = buffer<int>(4, -1);
    for (int i = 0; i < 128; ++i) in[i] = i % 3 == 0;
    int rc = m.launch("st_sync_reductions", {1}, {128}, 0, (const int*) in, out);
    check(rc == 0 && out[0] == 43 && out[1] == 0 && out[2] == 1 && out[3] == 1,
          "__syncthreads_count/_and/_or; a barrier completed by the threads that have not exited");
    for (int i = 0; i < 128; ++i) in[i] = 5;
    rc = m.launch("st_sync_reductions", {1}, {128}, 0, (const int*) in, out);
    check(rc == 0 && out[0] == 128 && out[1] == 1 && out[2] == 1, "__syncthreads_and of all true");
    free(in);
    free(out);
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

void test_failures(const Module& m) {
    int* out = buffer<int>(64, 0);
    reports.clear();
    int rc = m.launch("st_deadlock_divergent_sync", {2}, {64}, 0, out);
    check(rc != 0 && reports.size() == 1 && contains(reports[0], "deadlock") &&
              contains(reports[0], "st_deadlock_divergent_sync") && contains(reports[0], "block (0,0,0)") &&
              contains(reports[0], "threads 0-15 waiting at __syncthreads") &&
              contains(reports[0], "threads 16-31 waiting at __shfl_sync(mask 0xffffffff)"),
          "divergent __syncthreads reported as a deadlock: " + (reports.empty() ? std::string("no report") : reports[0]));
    if (!reports.empty()) printf("  reported: %s\n", reports[0].c_str());
    reports.clear();
    rc = m.launch("st_deadlock_exited_lane", {1}, {32}, 0, out);
    check(rc != 0 && reports.size() == 1 && contains(reports[0], "deadlock") && contains(reports[0], "threads 31 have exited"),
          "shuffle naming an exited lane reported as a deadlock: " + (reports.empty() ? std::string("no report") : reports[0]));
    if (!reports.empty()) printf("  reported: %s\n", reports[0].c_str());
    reports.clear();
    unsigned* u = buffer<unsigned>(32, 0);
    rc = m.launch("st_disagree", {1}, {32}, 0, u);
    check(rc != 0 && reports.size() == 1 && contains(reports[0], "disagree"),
          "lanes at different warp operations reported: " + (reports.empty() ? std::string("no report") : reports[0]));
    if (!reports.empty()) printf("  reported: %s\n", reports[0].c_str());
    reports.clear();
    float* floats = buffer<float>(8, 0.0f);
    float* sink = buffer<float>(32, 0.0f);
    rc = m.launch("st_misaligned_float2", {1}, {32}, 0, (const float*) (floats + 1), sink);
    check(rc != 0 && reports.size() == 1 && contains(reports[0], "misaligned address") && contains(reports[0], "8-byte"),
          "a float2 load at an address 4 bytes off reported as misaligned: " +
              (reports.empty() ? std::string("no report") : reports[0]));
    if (!reports.empty()) printf("  reported: %s\n", reports[0].c_str());
    reports.clear();
    floats[2] = 1.0f;
    floats[3] = 2.0f;
    rc = m.launch("st_misaligned_float2", {1}, {32}, 0, (const float*) (floats + 2), sink);
    check(rc == 0 && reports.empty() && std::all_of(sink, sink + 32, [](float v) { return v == 3.0f; }),
          "the same load 8 bytes in runs");
    reports.clear();
    rc = m.launch("st_nosync", {1}, {2048}, 0, out, 64);
    check(rc != 0 && reports.size() == 1 && contains(reports[0], "invalid launch"), "a block of 2048 threads is refused");
    reports.clear();
    // After the abandoned blocks, the runtime runs kernels normally again.
    int* in = buffer<int>(256);
    for (int i = 0; i < 256; ++i) in[i] = i;
    int* sums = buffer<int>(1, 0);
    rc = m.launch("st_block_reduce_static", {1}, {256}, 0, (const int*) in, sums, 256);
    check(rc == 0 && *sums == 255 * 256 / 2 && reports.empty(), "kernels run normally after reported failures");
    free(out);
    free(u);
    free(in);
    free(floats);
    free(sink);
    free(sums);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void measure(const Module& m) {
    const int n = 1 << 22;
    int* out = buffer<int>(n, 0);
    m.launch("st_nosync", {1}, {256}, 0, out, 256);  // warm up
    auto t0 = std::chrono::steady_clock::now();
    int rc = m.launch("st_nosync", {(unsigned) (n / 256)}, {256}, 0, out, n);
    const double nosync = seconds_since(t0);
    bool ok = rc == 0;
    for (int i = 0; i < n && ok; ++i) ok = out[i] == 2 * i + 1;
    check(ok, "no-sync kernel over 4M threads");
    t0 = std::chrono::steady_clock::now();
    rc = m.launch("st_sync_cost", {(unsigned) (n / 256)}, {256}, 0, out, n);
    const double sync = seconds_since(t0);
    ok = rc == 0;
    for (int i = 0; i < n && ok; ++i) {
        const int b = i / 256 * 256, w = i % 256 / 32 * 32;
        long long s = 0;
        for (int l = 0; l < 32; ++l) s += b + 255 - (w + l);
        ok = out[i] == (int) s;
    }
    check(ok, "__syncthreads + 5 __shfl_xor_sync kernel over 4M threads");
    const char* workers = getenv("SPECTRALPEFT_EMU_KERNEL_THREADS");
    printf("  timing (%s OS threads): no-sync kernel %.1f ns per thread (%.3f s for 4M threads); "
           "1 barrier + 5 shuffles %.1f ns per thread\n",
           workers ? workers : "1", nosync * 1e9 / n, nosync, sync * 1e9 / n);
    if (m.high_water) {
        size_t stack = 0;
        const size_t used = m.high_water(&stack);
        printf("  fiber stacks: %zu KiB touched at most of %zu KiB (this OS thread)\n", used / 1024, stack / 1024);
    }
    free(out);
}

// The real module loads, and spectralpeft_to_float32 / spectralpeft_epilogue give the exact conversions.
void test_real_module(const Module& r) {
    const uint16_t half[3] = {0x3c00, 0xc000, 0x3800};  // 1, -2, 0.5 in float16
    float* dst = buffer<float>(5, -7.0f);
    uint16_t* src = buffer<uint16_t>(3);
    memcpy(src, half, sizeof half);
    int rc = r.launch("spectralpeft_to_float32", {1}, {4}, 0, (const void*) src, 1, dst, 3LL, 5LL);
    check(rc == 0 && dst[0] == 1.0f && dst[1] == -2.0f && dst[2] == 0.5f && dst[3] == 0.0f && dst[4] == 0.0f,
          "real module: spectralpeft_to_float32 from float16 with zero padding");
    // epilogue, bfloat16 accumulate: dst (2 x 3, dense) += src (pitch 4)
    float* s = buffer<float>(8);
    for (int i = 0; i < 8; ++i) s[i] = (float) i;
    uint16_t* d = buffer<uint16_t>(6, 0x3f80);  // 1.0 in bfloat16
    rc = r.launch("spectralpeft_epilogue", {1, 2}, {32}, 0, (const float*) s, 4LL, (void*) d, 2, 2LL, 3, 1);
    const uint16_t expect[6] = {0x3f80, 0x4000, 0x4040, 0x40a0, 0x40c0, 0x40e0};  // 1,2,3 and 5,6,7
    check(rc == 0 && memcmp(d, expect, sizeof expect) == 0, "real module: spectralpeft_epilogue bfloat16 accumulate");
    // column synthesis of one coefficient at row frequency 0: every row of the column is halfScale·c = (1, 0)
    Complex* g = buffer<Complex>(4, Complex{-1.0f, -1.0f});
    float* coeffs = buffer<float>(1, 2.0f);
    int* colStart = buffer<int>(2, 0);
    colStart[1] = 1;
    int *colRow = buffer<int>(1, 0), *colCoeff = buffer<int>(1, 0);
    float *stepCos = buffer<float>(1, 1.0f), *stepSin = buffer<float>(1, 0.0f);
    rc = r.launch("fourierft_column_synthesis", {1, 1}, {256}, 0, g, 4, 0, 4, 1, (const float*) coeffs, 1,
                  (const int*) colStart, (const int*) colRow, (const int*) colCoeff, (const float*) stepCos,
                  (const float*) stepSin, 0.5f, 1);
    bool ok = rc == 0;
    for (int p = 0; p < 4; ++p) ok = ok && g[p].x == 1.0f && g[p].y == 0.0f;
    check(ok, "real module: fourierft_column_synthesis of one coefficient");
    printf("  real module: %d kernels\n", r.count());
    if (r.high_water) {
        size_t stack = 0;
        const size_t used = r.high_water(&stack);
        printf("  real module fiber stacks: %zu KiB touched at most of %zu KiB\n", used / 1024, stack / 1024);
    }
    free(g);
    free(coeffs);
    free(colStart);
    free(colRow);
    free(colCoeff);
    free(stepCos);
    free(stepSin);
    free(dst);
    free(src);
    free(s);
    free(d);
}

}  // namespace

int main(int argc, char** argv) {
    const bool timing = !(argc == 4 && strcmp(argv[3], "--no-timing") == 0);
    if (argc != 3 && timing) {
        fprintf(stderr, "usage: run_selftest TEST_MODULE.so REAL_MODULE.so [--no-timing]\n");
        return 2;
    }
    const Module test(argv[1]), real(argv[2]);
    std::mt19937 rng(12345);
    test_registration(test);
    test_block_reduce(test, rng);
    test_shuffles(test, rng);
    test_votes(test, rng);
    test_atomics(test, rng);
    test_index_3d(test);
    test_sync_reductions(test);
    test_failures(test);
    test_real_module(real);
    if (timing) measure(test);
    printf("kernel runtime self-test: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
