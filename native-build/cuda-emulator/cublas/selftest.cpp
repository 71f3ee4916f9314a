// Self-test of the cuBLAS stand-ins (libcublas.so.13, libcublasLt.so.13) over the emulated driver, run by
// build.sh in both stream modes. Results are compared bit for bit with a double-precision reference rounded
// once by the toolkit's own host conversions (cuda_fp16.h, cuda_bf16.h). Checks that expect the emulator to
// report an error look for the call's failure and the CUDA_ERROR_ILLEGAL_ADDRESS the next driver call returns.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cublas_api.h"

extern "C" {
// stubs: declared here only to check that they answer "not supported"
cublasStatus_t cublasLtMatmulDescCreate(void** desc, int compute, int scale);
cublasStatus_t cublasSscal_v2(cublasHandle_t handle, int n, const float* alpha, float* x, int incx);
}

#include "../selftest_check.h"

namespace {

CUdeviceptr alloc(size_t bytes) {
    CUdeviceptr p = 0;
    if (cuMemAlloc(&p, bytes == 0 ? 4 : bytes) != CUDA_SUCCESS) {
        fprintf(stderr, "cuMemAlloc(%zu) failed\n", bytes);
        std::exit(1);
    }
    return p;
}

template <class T> CUdeviceptr upload(const std::vector<T>& v) {
    CUdeviceptr p = alloc(v.size() * sizeof(T));
    cuMemcpyHtoD(p, v.data(), v.size() * sizeof(T));
    cuStreamSynchronize(CU_STREAM_LEGACY);  // a copy from pageable memory may return before it lands
    return p;
}

template <class T> std::vector<T> download(CUdeviceptr p, size_t n) {
    std::vector<T> v(n);
    cuMemcpyDtoH(v.data(), p, n * sizeof(T));
    return v;
}

template <class T> bool same_bits(T a, T b) { return std::memcmp(&a, &b, sizeof(T)) == 0; }

/** An element of a small set of dyadic values, so every product and sum below is exact in double. */
double value(unsigned& seed) {
    seed = seed * 1103515245u + 12345u;
    return (double) ((int) ((seed >> 16) % 17) - 8) / 4;
}

uint16_t half_bits(double x) { return __half_raw(__double2half(x)).x; }
uint16_t bf16_bits(double x) { return __nv_bfloat16_raw(__double2bfloat16(x)).x; }
double from_half(uint16_t b) { __half_raw r; r.x = b; return __half2float(__half(r)); }
double from_bf16(uint16_t b) { __nv_bfloat16_raw r; r.x = b; return __bfloat162float(__nv_bfloat16(r)); }

/** op(X)(i, j) of a column-major matrix. */
double at(const std::vector<double>& x, int ld, bool trans, int i, int j) { return trans ? x[j + i * ld] : x[i + j * ld]; }

/** The double reference alpha * op(A) op(B) + beta * C (C ignored when beta == 0). */
std::vector<double> reference(int m, int n, int k, bool ta, bool tb, double alpha, const std::vector<double>& a,
                              int lda, const std::vector<double>& b, int ldb, double beta,
                              const std::vector<double>& c, int ldc) {
    std::vector<double> r(c.size(), NAN);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int l = 0; l < k; l++) s += at(a, lda, ta, i, l) * at(b, ldb, tb, l, j);
            r[i + j * ldc] = alpha * s + (beta != 0 ? beta * c[i + j * ldc] : 0.0);
        }
    return r;
}

/** A column-major matrix of `ld * cols` values, padding included. */
std::vector<double> matrix(int ld, int cols, unsigned seed) {
    std::vector<double> v((size_t) ld * cols);
    for (double& x : v) x = value(seed);
    return v;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

void sgemm_case(cublasHandle_t h, int m, int n, int k, cublasOperation_t opa, cublasOperation_t opb, double beta,
                bool nan_c) {
    const bool ta = opa != CUBLAS_OP_N, tb = opb != CUBLAS_OP_N;
    const int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 4;
    auto a = matrix(lda, ta ? m : k, 1 + m), b = matrix(ldb, tb ? k : n, 2 + n), c = matrix(ldc, n, 3 + k);
    if (nan_c) std::fill(c.begin(), c.end(), NAN);
    const float alpha = 1.5f, fbeta = (float) beta;
    CUdeviceptr da = upload(to_float(a)), db = upload(to_float(b)), dc = upload(to_float(c));
    std::string what = "Sgemm " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) + " op " +
                       std::to_string(opa) + std::to_string(opb) + " beta " + std::to_string(beta) +
                       (nan_c ? " NaN C" : "");
    check(cublasSgemm_v2(h, opa, opb, m, n, k, &alpha, (const float*) da, lda, (const float*) db, ldb, &fbeta,
                         (float*) dc, ldc) == CUBLAS_STATUS_SUCCESS,
          what + ": status");
    auto r = reference(m, n, k, ta, tb, alpha, a, lda, b, ldb, beta, c, ldc);
    auto got = download<float>(dc, c.size());
    bool ok = true;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < ldc; i++) {
            size_t x = i + (size_t) j * ldc;
            // rows past m are padding: untouched (still NaN when C was NaN-filled)
            float expect = i < m ? (float) r[x] : (float) c[x];
            if (!same_bits(got[x], expect)) ok = false;
        }
    check(ok, what + ": values");
    cuMemFree(da);
    cuMemFree(db);
    cuMemFree(dc);
}

/** The status of a call that should be refused by the core, and the error it reports (700 next). */
bool reported(cublasStatus_t status) {
    return status == CUBLAS_STATUS_EXECUTION_FAILED && cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS;
}

}  // namespace

int main() {
    CUdevice dev;
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
        fprintf(stderr, "no emulated context\n");
        return 1;
    }

    // ------------------------------------------------------------ handle, settings, texts
    cublasHandle_t h = nullptr;
    check(cublasCreate_v2(&h) == CUBLAS_STATUS_SUCCESS && h != nullptr, "cublasCreate_v2");
    check(cublasCreate_v2(nullptr) == CUBLAS_STATUS_INVALID_VALUE, "cublasCreate_v2(NULL)");
    int version = 0, major = -1;
    check(cublasGetVersion_v2(h, &version) == CUBLAS_STATUS_SUCCESS && version == CUBLAS_VERSION, "version");
    check(cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS && major == 13, "major version");
    check(cublasGetCudartVersion() == 13000, "cudart version");
    check(std::string(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE)) == "CUBLAS_STATUS_INVALID_VALUE", "name");
    check(std::string(cublasGetStatusString(CUBLAS_STATUS_NOT_SUPPORTED)).find("not supported") != std::string::npos,
          "string");
    check(std::string(cublasGetStatusName((cublasStatus_t) 12345)) == "<unknown>", "unknown name");
    cublasPointerMode_t pm;
    cublasMath_t mm;
    check(cublasGetPointerMode_v2(h, &pm) == CUBLAS_STATUS_SUCCESS && pm == CUBLAS_POINTER_MODE_HOST, "pointer mode");
    check(cublasSetPointerMode_v2(h, (cublasPointerMode_t) 7) == CUBLAS_STATUS_INVALID_VALUE, "bad pointer mode");
    check(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS &&
              cublasGetMathMode(h, &mm) == CUBLAS_STATUS_SUCCESS && mm == CUBLAS_TF32_TENSOR_OP_MATH,
          "math mode");
    check(cublasSetMathMode(h, (cublasMath_t) 9) == CUBLAS_STATUS_INVALID_VALUE, "bad math mode");
    cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
    cublasAtomicsMode_t am;
    check(cublasSetAtomicsMode(h, CUBLAS_ATOMICS_ALLOWED) == CUBLAS_STATUS_SUCCESS &&
              cublasGetAtomicsMode(h, &am) == CUBLAS_STATUS_SUCCESS && am == CUBLAS_ATOMICS_ALLOWED,
          "atomics mode");
    check(cublasSscal_v2(h, 1, nullptr, nullptr, 1) == CUBLAS_STATUS_NOT_SUPPORTED, "a stub says not supported");

    // ------------------------------------------------------------ Sgemm: every op pair, odd sizes, padded
    const int sizes[][3] = {{7, 5, 3}, {33, 17, 9}, {1, 1, 1}, {4, 6, 0}};
    const cublasOperation_t ops[] = {CUBLAS_OP_N, CUBLAS_OP_T};
    for (auto& s : sizes)
        for (auto opa : ops)
            for (auto opb : ops) {
                sgemm_case(h, s[0], s[1], s[2], opa, opb, 0.0, true);
                sgemm_case(h, s[0], s[1], s[2], opa, opb, 1.0, false);
                sgemm_case(h, s[0], s[1], s[2], opa, opb, -0.75, false);
            }
    sgemm_case(h, 5, 4, 3, CUBLAS_OP_C, CUBLAS_OP_C, -0.75, false);  // C is T for real types

    // computed in double, rounded once: 1 + 2^-24 + 2^-40 is above the tie, so it rounds up in float
    {
        std::vector<float> a = {1.0f, std::ldexp(1.0f, -24), std::ldexp(1.0f, -40)}, b = {1, 1, 1};
        CUdeviceptr da = upload(a), db = upload(b), dc = alloc(4);
        float one = 1, zero = 0;
        cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 3, &one, (float*) da, 1, (float*) db, 3, &zero, (float*) dc, 1);
        check(download<float>(dc, 1)[0] == 1.0f + std::ldexp(1.0f, -23), "Sgemm sums in double, rounds once");
        cuMemFree(da);
        cuMemFree(db);
        cuMemFree(dc);
    }

    // ------------------------------------------------------------ Dgemm
    {
        int m = 6, n = 5, k = 7;
        auto a = matrix(m, k, 11), b = matrix(n, k, 12), c = matrix(m, n, 13);
        CUdeviceptr da = upload(a), db = upload(b), dc = upload(c);
        double alpha = -2, beta = 0.5;
        check(cublasDgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, &alpha, (double*) da, m, (double*) db, n, &beta,
                             (double*) dc, m) == CUBLAS_STATUS_SUCCESS,
              "Dgemm status");
        check(download<double>(dc, c.size()) == reference(m, n, k, false, true, alpha, a, m, b, n, beta, c, m),
              "Dgemm values");
        cuMemFree(da);
        cuMemFree(db);
        cuMemFree(dc);
    }

    // ------------------------------------------------------------ GemmEx: half and bfloat16 inputs
    for (cudaDataType in : {CUDA_R_16F, CUDA_R_16BF}) {
        for (cudaDataType out : {CUDA_R_32F, in}) {
            int m = 9, n = 7, k = 11, lda = k + 1, ldb = k, ldc = m + 2;  // op(A) = T, op(B) = N
            auto a = matrix(lda, m, 21), b = matrix(ldb, n, 22), c = matrix(ldc, n, 23);
            for (double& x : a) {  // values the input type holds exactly, so the reference sees what the GEMM sees
                x *= 1.0 + 1.0 / 64;
                x = in == CUDA_R_16F ? from_half(half_bits(x)) : from_bf16(bf16_bits(x));
            }
            auto bits = [&](const std::vector<double>& v) {
                std::vector<uint16_t> r;
                for (double x : v) r.push_back(in == CUDA_R_16F ? half_bits(x) : bf16_bits(x));
                return r;
            };
            CUdeviceptr da = upload(bits(a)), db = upload(bits(b));
            CUdeviceptr dc = out == CUDA_R_32F ? upload(to_float(c)) : upload(bits(c));
            float alpha = 0.8125f, beta = -1.25f;  // beta * C rounds in double only
            std::string what = std::string("GemmEx ") + (in == CUDA_R_16F ? "half" : "bfloat16") + " -> " +
                               (out == CUDA_R_32F ? "float" : "same");
            check(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, (void*) da, in, lda, (void*) db, in, ldb,
                               &beta, (void*) dc, out, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) ==
                      CUBLAS_STATUS_SUCCESS,
                  what + ": status");
            auto r = reference(m, n, k, true, false, alpha, a, lda, b, ldb, beta, c, ldc);
            bool ok = true;
            if (out == CUDA_R_32F) {
                auto got = download<float>(dc, c.size());
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++) ok &= same_bits(got[i + j * ldc], (float) r[i + j * ldc]);
            } else {
                auto got = download<uint16_t>(dc, c.size());
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++) {
                        double x = r[i + j * ldc];
                        ok &= got[i + j * ldc] == (in == CUDA_R_16F ? half_bits(x) : bf16_bits(x));
                    }
            }
            check(ok, what + ": values");
            cuMemFree(da);
            cuMemFree(db);
            cuMemFree(dc);
        }
    }

    // one rounding to bfloat16, ties to even: 1 + 2^-8 + 2^-30 rounds up (through float it would tie down)
    {
        const double sums[][4] = {{1, std::ldexp(1, -8), std::ldexp(1, -30), 0},  // above the tie: up
                                  {1, std::ldexp(1, -8), 0, 0},                   // tie: to even (1.0)
                                  {1, 3 * std::ldexp(1, -8), 0, 0},               // tie: to even (1 + 2^-6)
                                  {1, -std::ldexp(1, -9), -std::ldexp(1, -30), 0}};
        for (auto& s : sums) {
            std::vector<uint16_t> a, b(4, bf16_bits(1));
            for (double x : s) a.push_back(bf16_bits(x));
            CUdeviceptr da = upload(a), db = upload(b), dc = alloc(2);
            float one = 1, zero = 0;
            cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 4, &one, (void*) da, CUDA_R_16BF, 1, (void*) db,
                         CUDA_R_16BF, 4, &zero, (void*) dc, CUDA_R_16BF, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            check(download<uint16_t>(dc, 1)[0] == bf16_bits(s[0] + s[1] + s[2] + s[3]),
                  "bfloat16 rounding of " + std::to_string(s[0] + s[1] + s[2]));
            cuMemFree(da);
            cuMemFree(db);
            cuMemFree(dc);
        }
        check(bf16_bits(1 + std::ldexp(1, -8) + std::ldexp(1, -30)) == 0x3f81, "reference rounds once");
    }

    // Hgemm: half scalars; a tie, overflow to infinity, a subnormal tie
    {
        const double cases[][3] = {{1, std::ldexp(1, -11), 1},                      // tie: 1.0
                                   {1, std::ldexp(1, -11) + std::ldexp(1, -20), 1},  // above: up
                                   {60000, 60000, 1},                               // infinity
                                   {std::ldexp(1, -24), 0, 0.5},                    // half a subnormal: 0
                                   {3 * std::ldexp(1, -24), 0, 0.5}};               // 1.5 ulp: 2 ulp
        for (auto& cse : cases) {
            std::vector<uint16_t> a = {half_bits(cse[0]), half_bits(cse[1])}, b = {half_bits(1), half_bits(1)};
            CUdeviceptr da = upload(a), db = upload(b), dc = alloc(2);
            uint16_t alpha = half_bits(cse[2]), beta = half_bits(0);
            check(cublasHgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &alpha, (uint16_t*) da, 1, (uint16_t*) db, 2, &beta,
                              (uint16_t*) dc, 1) == CUBLAS_STATUS_SUCCESS,
                  "Hgemm status");
            double exact = cse[2] * (from_half(a[0]) + from_half(a[1]));
            check(download<uint16_t>(dc, 1)[0] == half_bits(exact), "Hgemm rounding of " + std::to_string(exact));
            cuMemFree(da);
            cuMemFree(db);
            cuMemFree(dc);
        }
    }

    // int8 inputs: int32 output with CUBLAS_COMPUTE_32I (int scalars), float output with CUBLAS_COMPUTE_32F;
    // and the _64 entry points and cublasSgemmEx on the same data
    {
        int m = 3, n = 2, k = 5;
        std::vector<int8_t> a(m * k), b(k * n);
        std::vector<double> da_ref(m * k), db_ref(k * n);
        for (int i = 0; i < m * k; i++) da_ref[i] = a[i] = (int8_t) (i * 37 % 255 - 127);
        for (int i = 0; i < k * n; i++) db_ref[i] = b[i] = (int8_t) (i * 53 % 255 - 127);
        CUdeviceptr da = upload(a), db = upload(b), dc = alloc(m * n * 4);
        int ialpha = 3, ibeta = 0;
        check(cublasGemmEx_64(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &ialpha, (void*) da, CUDA_R_8I, m, (void*) db,
                              CUDA_R_8I, k, &ibeta, (void*) dc, CUDA_R_32I, m, CUBLAS_COMPUTE_32I,
                              CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS,
              "GemmEx_64 int8 -> int32: status");
        auto r = reference(m, n, k, false, false, 3, da_ref, m, db_ref, k, 0, std::vector<double>(m * n), m);
        auto got = download<int32_t>(dc, m * n);
        bool ok = true;
        for (int x = 0; x < m * n; x++) ok &= got[x] == (int32_t) r[x];
        check(ok, "GemmEx_64 int8 -> int32: values");
        float falpha = 0.5f, fbeta = 0;
        check(cublasSgemmEx_64(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &falpha, (void*) da, CUDA_R_8I, m, (void*) db,
                               CUDA_R_8I, k, &fbeta, (void*) dc, CUDA_R_32F, m) == CUBLAS_STATUS_SUCCESS,
              "SgemmEx_64 int8 -> float: status");
        auto gotf = download<float>(dc, m * n);
        ok = true;
        for (int x = 0; x < m * n; x++) ok &= gotf[x] == (float) (r[x] / 6);
        check(ok, "SgemmEx_64 int8 -> float: values");
        check(cublasSgemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &falpha, (void*) da, CUDA_R_8I, m, (void*) db,
                            CUDA_R_8I, k, &fbeta, (void*) dc, CUDA_R_16F, m) == CUBLAS_STATUS_NOT_SUPPORTED,
              "SgemmEx int8 -> half is not supported");
        std::vector<float> fa(da_ref.begin(), da_ref.end()), fb(db_ref.begin(), db_ref.end());
        CUdeviceptr dfa = upload(fa), dfb = upload(fb);
        check(cublasSgemm_v2_64(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &falpha, (float*) dfa, m, (float*) dfb, k, &fbeta,
                                (float*) dc, m) == CUBLAS_STATUS_SUCCESS &&
                  download<float>(dc, m * n) == gotf,
              "Sgemm_v2_64");
        for (CUdeviceptr p : {da, db, dc, dfa, dfb}) cuMemFree(p);
    }

    // ------------------------------------------------------------ strided batches
    {
        int m = 5, n = 3, k = 4, batch = 3;
        long long sa = m * k + 7, sb = k * n + 1, sc = m * n + 5;
        auto a = matrix(1, sa * batch, 31), b = matrix(1, sb * batch, 32), c = matrix(1, sc * batch, 33);
        CUdeviceptr da = upload(to_float(a)), db = upload(to_float(b)), dc = upload(to_float(c));
        float alpha = 2, beta = 0.25f;
        check(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, (float*) da, m, sa, (float*) db, k,
                                        sb, &beta, (float*) dc, m, sc, batch) == CUBLAS_STATUS_SUCCESS,
              "SgemmStridedBatched status");
        auto got = download<float>(dc, c.size());
        bool ok = true;
        for (int i = 0; i < batch; i++) {
            std::vector<double> ai(a.begin() + i * sa, a.begin() + i * sa + m * k),
                bi(b.begin() + i * sb, b.begin() + i * sb + k * n), ci(c.begin() + i * sc, c.begin() + i * sc + m * n);
            auto r = reference(m, n, k, false, false, alpha, ai, m, bi, k, beta, ci, m);
            for (int x = 0; x < m * n; x++) ok &= got[i * sc + x] == (float) r[x];
            for (int x = m * n; x < sc; x++) ok &= same_bits(got[i * sc + x], (float) c[i * sc + x]);  // gaps untouched
        }
        check(ok, "SgemmStridedBatched values");

        // the same through cublasGemmStridedBatchedEx with half inputs and a broadcast A (stride 0)
        std::vector<uint16_t> ha, hb;
        for (double x : a) ha.push_back(half_bits(x));
        for (double x : b) hb.push_back(half_bits(x));
        CUdeviceptr dha = upload(ha), dhb = upload(hb), dfc = alloc(sc * batch * 4);
        float zero = 0;
        check(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, (void*) dha, CUDA_R_16F, m, 0,
                                         (void*) dhb, CUDA_R_16F, k, sb, &zero, (void*) dfc, CUDA_R_32F, m, sc, batch,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP) == CUBLAS_STATUS_SUCCESS,
              "GemmStridedBatchedEx status");
        got = download<float>(dfc, sc * batch);
        ok = true;
        for (int i = 0; i < batch; i++) {
            std::vector<double> bi(b.begin() + i * sb, b.begin() + i * sb + k * n);
            auto r = reference(m, n, k, false, false, alpha, a, m, bi, k, 0, std::vector<double>(m * n), m);
            for (int x = 0; x < m * n; x++) ok &= got[i * sc + x] == (float) r[x];
        }
        check(ok, "GemmStridedBatchedEx values");

        // pointer arrays in device memory (cublasSgemmBatched), batches in reverse order
        std::vector<CUdeviceptr> pa, pb, pc;
        for (int i = batch - 1; i >= 0; i--) {
            pa.push_back(da + i * sa * 4);
            pb.push_back(db + i * sb * 4);
            pc.push_back(dfc + i * sc * 4);
        }
        CUdeviceptr dpa = upload(pa), dpb = upload(pb), dpc = upload(pc);
        check(cublasSgemmBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, (const float* const*) dpa, m,
                                 (const float* const*) dpb, k, &zero, (float* const*) dpc, m,
                                 batch) == CUBLAS_STATUS_SUCCESS,
              "SgemmBatched status");
        got = download<float>(dfc, sc * batch);
        ok = true;
        for (int i = 0; i < batch; i++) {
            std::vector<double> ai(a.begin() + i * sa, a.begin() + i * sa + m * k),
                bi(b.begin() + i * sb, b.begin() + i * sb + k * n);
            auto r = reference(m, n, k, false, false, alpha, ai, m, bi, k, 0, std::vector<double>(m * n), m);
            for (int x = 0; x < m * n; x++) ok &= got[i * sc + x] == (float) r[x];
        }
        check(ok, "SgemmBatched values");
        for (CUdeviceptr p : {da, db, dc, dha, dhb, dfc, dpa, dpb, dpc}) cuMemFree(p);
    }

    // ------------------------------------------------------------ pointer mode device, on a created stream
    {
        CUstream stream;
        cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING);
        cudaStream_t got_stream = nullptr;
        check(cublasSetStream_v2(h, (cudaStream_t) stream) == CUBLAS_STATUS_SUCCESS &&
                  cublasGetStream_v2(h, &got_stream) == CUBLAS_STATUS_SUCCESS && got_stream == (cudaStream_t) stream,
              "stream");
        check(cublasSetPointerMode_v2(h, CUBLAS_POINTER_MODE_DEVICE) == CUBLAS_STATUS_SUCCESS, "device pointer mode");
        int m = 4, n = 3, k = 5;
        auto a = matrix(m, k, 41), b = matrix(k, n, 42);
        std::vector<float> c(m * n, NAN);
        CUdeviceptr da = upload(to_float(a)), db = upload(to_float(b)), dc = upload(c);
        CUdeviceptr scalars = upload(std::vector<float>{-1.5f, 0.0f});
        check(cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, (float*) scalars, (float*) da, m, (float*) db, k,
                             (float*) (scalars + 4), (float*) dc, m) == CUBLAS_STATUS_SUCCESS,
              "device scalars: status");
        cuStreamSynchronize(stream);
        auto r = reference(m, n, k, false, false, -1.5, a, m, b, k, 0, std::vector<double>(m * n), m);
        auto got = download<float>(dc, m * n);
        bool ok = true;
        for (int x = 0; x < m * n; x++) ok &= got[x] == (float) r[x];
        check(ok, "device scalars, beta 0 over NaN: values");
        float host_alpha = 1;
        check(reported(cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &host_alpha, (float*) da, m, (float*) db,
                                      k, (float*) (scalars + 4), (float*) dc, m)),
              "a host alpha in device pointer mode is reported");
        cublasSetPointerMode_v2(h, CUBLAS_POINTER_MODE_HOST);
        cublasSetStream_v2(h, nullptr);
        for (CUdeviceptr p : {da, db, dc, scalars}) cuMemFree(p);
        cuStreamDestroy(stream);
    }

    // ------------------------------------------------------------ argument checks and reported misuse
    {
        int m = 6, n = 4, k = 3;
        CUdeviceptr da = alloc(m * k * 4), db = alloc(k * n * 4), dc = alloc(m * n * 4);
        cuMemsetD32(da, 0, m * k);
        cuMemsetD32(db, 0, k * n);
        float one = 1, zero = 0;
        auto sgemm = [&](cublasHandle_t hh, cublasOperation_t oa, int mm, int lda, CUdeviceptr a, int ldc) {
            return cublasSgemm_v2(hh, oa, CUBLAS_OP_N, mm, n, k, &one, (float*) a, lda, (float*) db, k, &zero,
                                  (float*) dc, ldc);
        };
        check(sgemm(h, CUBLAS_OP_N, m, m, da, m) == CUBLAS_STATUS_SUCCESS, "valid call");
        check(sgemm(h, CUBLAS_OP_N, m, m - 1, da, m) == CUBLAS_STATUS_INVALID_VALUE, "lda < m");
        check(sgemm(h, CUBLAS_OP_T, m, k - 1, da, m) == CUBLAS_STATUS_INVALID_VALUE, "lda < k for op T");
        check(sgemm(h, CUBLAS_OP_N, m, m, da, m - 1) == CUBLAS_STATUS_INVALID_VALUE, "ldc < m");
        check(sgemm(h, (cublasOperation_t) 3, m, m, da, m) == CUBLAS_STATUS_INVALID_VALUE, "bad op");
        check(sgemm(h, CUBLAS_OP_N, -1, m, da, m) == CUBLAS_STATUS_INVALID_VALUE, "m < 0");
        check(sgemm(nullptr, CUBLAS_OP_N, m, m, da, m) == CUBLAS_STATUS_NOT_INITIALIZED, "no handle");
        check(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, (void*) da, CUDA_R_16F, m, (void*) db,
                           CUDA_R_32F, k, &zero, (void*) dc, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED,
              "mixed A/B types are not supported");
        check(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, (void*) da, CUDA_R_32F, m, (void*) db,
                           CUDA_R_32F, k, &zero, (void*) dc, CUDA_R_32F, m, (cublasComputeType_t) 1,
                           CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED,
              "a bad compute type is not supported");
        check(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, (float*) da, m, 0, (float*) db, k,
                                        0, &zero, (float*) dc, m, 0, -1) == CUBLAS_STATUS_INVALID_VALUE,
              "batchCount < 0");
        check(cuCtxSynchronize() == CUDA_SUCCESS, "nothing reported so far");

        fprintf(stderr, "(the errors below are expected)\n");
        check(reported(sgemm(h, CUBLAS_OP_N, m, m, da, m + 1)), "C past its allocation is reported");
        check(reported(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, (float*) da, m, 0,
                                                 (float*) db, k, 0, &zero, (float*) dc, m, m * n, 2)),
              "a batch of C past its allocation is reported");
        CUdeviceptr freed = alloc(m * k * 4);
        cuMemFree(freed);
        check(reported(sgemm(h, CUBLAS_OP_N, m, m, freed, m)), "a freed A is reported");
        check(cublasSetWorkspace_v2(h, (void*) (da + 4), 64) == CUBLAS_STATUS_INVALID_VALUE, "misaligned workspace");
        check(cublasSetWorkspace_v2(h, (void*) da, m * k * 4 + 256) == CUBLAS_STATUS_INVALID_VALUE &&
                  cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS,
              "a workspace past its allocation is reported");
        CUdeviceptr ws = alloc(4096);
        check(cublasSetWorkspace_v2(h, (void*) ws, 4096) == CUBLAS_STATUS_SUCCESS, "workspace");
        check(sgemm(h, CUBLAS_OP_N, m, m, da, m) == CUBLAS_STATUS_SUCCESS, "a call with a workspace");
        cuMemFree(ws);
        check(reported(sgemm(h, CUBLAS_OP_N, m, m, da, m)), "a freed workspace still set is reported");
        cublasSetStream_v2(h, nullptr);  // resets the workspace
        check(sgemm(h, CUBLAS_OP_N, m, m, da, m) == CUBLAS_STATUS_SUCCESS, "cublasSetStream resets the workspace");

        cublasHandle_t gone;
        cublasCreate_v2(&gone);
        check(cublasDestroy_v2(gone) == CUBLAS_STATUS_SUCCESS, "destroy");
        check(sgemm(gone, CUBLAS_OP_N, m, m, da, m) == CUBLAS_STATUS_NOT_INITIALIZED &&
                  cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS,
              "a destroyed handle is reported");
        for (CUdeviceptr p : {da, db, dc}) cuMemFree(p);
    }

    // ------------------------------------------------------------ helper copies
    {
        int rows = 3, cols = 4, lda = 5, ldb = 4;
        std::vector<double> host(lda * cols), back(lda * cols, -1);
        for (size_t i = 0; i < host.size(); i++) host[i] = (double) i;
        CUdeviceptr d = alloc(ldb * cols * 8);
        check(cublasSetMatrix(rows, cols, 8, host.data(), lda, (void*) d, ldb) == CUBLAS_STATUS_SUCCESS &&
                  cublasGetMatrix(rows, cols, 8, (void*) d, ldb, back.data(), lda) == CUBLAS_STATUS_SUCCESS,
              "Set/GetMatrix");
        bool ok = true;
        for (int j = 0; j < cols; j++)
            for (int i = 0; i < lda; i++) ok &= back[i + j * lda] == (i < rows ? host[i + j * lda] : -1);
        check(ok, "Set/GetMatrix values");
        std::vector<float> v = {1, 2, 3}, w(5, 0);
        check(cublasSetVector(3, 4, v.data(), 1, (void*) d, 2) == CUBLAS_STATUS_SUCCESS &&
                  cublasGetVector(3, 4, (void*) d, 2, w.data(), 2) == CUBLAS_STATUS_SUCCESS && w[0] == 1 &&
                  w[2] == 2 && w[4] == 3 && w[1] == 0,
              "Set/GetVector with increments");
        check(cublasSetMatrix(rows, cols, 8, host.data(), lda, (void*) d, 0) == CUBLAS_STATUS_INVALID_VALUE,
              "SetMatrix ldb 0");
        fprintf(stderr, "(the error below is expected)\n");
        check(cublasSetMatrix(rows, cols + 1, 8, host.data(), lda, (void*) d, ldb) == CUBLAS_STATUS_MAPPING_ERROR &&
                  cuCtxSynchronize() == CUDA_ERROR_ILLEGAL_ADDRESS,
              "SetMatrix past the allocation is reported");
        cuMemFree(d);
    }

    check(cublasDestroy_v2(h) == CUBLAS_STATUS_SUCCESS, "cublasDestroy_v2");

    // ------------------------------------------------------------ cublasLt
    {
        cublasLtHandle_t lt = nullptr;
        check(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS && lt != nullptr, "cublasLtCreate");
        check(cublasLtGetVersion() == CUBLAS_VERSION, "cublasLtGetVersion");
        check(std::string(cublasLtGetStatusName(CUBLAS_STATUS_SUCCESS)) == "CUBLAS_STATUS_SUCCESS", "Lt status name");
        void* desc = nullptr;
        check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_NOT_SUPPORTED,
              "Lt stub says not supported");
        check(cublasLtDestroy(lt) == CUBLAS_STATUS_SUCCESS, "cublasLtDestroy");
    }

    cuDevicePrimaryCtxRelease(dev);
    printf("cublas stand-in self-test: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
