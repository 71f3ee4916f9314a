// libcufft.so.12 stand-in: cuFFT plans with the documented data layouts, executed on the CPU in double
// precision through FFTW's complex transforms, queued on the plan's stream with every touched device range
// named so the core checks bounds, liveness and stream ordering.
//
// C2R definition (cuFFT's, for Hermitian input): the real part of the inverse DFT of the spectrum extended
// along the last dimension by X[u, k] = conj(X[-u, n-k]) for k > n/2. The imaginary parts of the
// self-conjugate bins (DC and Nyquist) therefore do not contribute. Unnormalized in both directions.

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../emu.h"
#include "cufft_api.h"

// FFTW 3 (double precision), declared from its documented API: the bundled library has no headers.
extern "C" {
typedef double fftw_complex[2];
typedef struct fftw_plan_s* fftw_plan;
typedef struct fftw_iodim64_do_not_use_me {
    ptrdiff_t n, is, os;
} fftw_iodim64;
fftw_plan fftw_plan_guru64_dft(int rank, const fftw_iodim64* dims, int howmany_rank, const fftw_iodim64* howmany_dims,
                               fftw_complex* in, fftw_complex* out, int sign, unsigned flags);
void fftw_execute_dft(const fftw_plan plan, fftw_complex* in, fftw_complex* out);
void fftw_destroy_plan(fftw_plan plan);
void* fftw_malloc(size_t bytes);
void fftw_free(void* p);
}
#define FFTW_FORWARD (-1)
#define FFTW_BACKWARD (+1)
#define FFTW_ESTIMATE (1U << 6)

namespace {

using i64 = long long;

// FFTW's planner is not thread-safe (execution is); plans are made and destroyed under this lock.
std::mutex& fftw_planner_lock() {
    static std::mutex m;
    return m;
}

enum class Kind { C2C, R2C, C2R };

/** One side (input or output) of a plan: element steps, in units of that side's element type. */
struct Side {
    i64 count[3];  // elements per dimension, rank padded to three with leading dimensions of 1
    i64 step[3];   // element step per dimension
    i64 dist;      // element step between batch items
    size_t elem;   // bytes per element
};

/** The highest element index of a side, or -1 past 2^62 bytes. */
i64 highest_index(const Side& s, i64 batch) {
    __int128 h = (__int128) (batch - 1) * s.dist;
    for (int p = 0; p < 3; p++) h += (__int128) (s.count[p] - 1) * s.step[p];
    if ((h + 1) * (__int128) s.elem > ((__int128) 1 << 62)) return -1;
    return (i64) h;
}

size_t extent_bytes(const Side& s, i64 batch) {
    return (size_t) (highest_index(s, batch) + 1) * s.elem;
}

/** Whether no two elements of the side share an address (each byte written at most once). */
bool disjoint(const Side& s, i64 batch) {
    std::vector<std::pair<i64, i64>> dims;  // (step, count)
    if (batch > 1) dims.push_back({s.dist, batch});
    for (int p = 0; p < 3; p++)
        if (s.count[p] > 1) dims.push_back({s.step[p], s.count[p]});
    std::sort(dims.begin(), dims.end());
    // Sufficient: each dimension's step clears the whole block of the finer ones.
    i64 span = 1;
    bool nested = true;
    for (auto [step, count] : dims) {
        if (step < span) {
            nested = false;
            break;
        }
        span += step * (count - 1);
    }
    if (nested) return true;
    // Otherwise compare every element's index, for layouts small enough.
    __int128 total = 1;
    for (auto [step, count] : dims) total *= count;
    if (total > ((__int128) 1 << 22)) return true;  // not decided; such layouts are not expected
    std::vector<i64> offsets{0};
    for (auto [step, count] : dims) {
        size_t had = offsets.size();
        for (i64 c = 1; c < count; c++)
            for (size_t k = 0; k < had; k++) offsets.push_back(offsets[k] + c * step);
    }
    std::sort(offsets.begin(), offsets.end());
    return std::adjacent_find(offsets.begin(), offsets.end()) == offsets.end();
}

/** An FFTW plan, destroyed under the planner lock. */
struct FftwPlan {
    fftw_plan p = nullptr;
    FftwPlan() = default;
    FftwPlan(const FftwPlan&) = delete;
    FftwPlan& operator=(const FftwPlan&) = delete;
    ~FftwPlan() {
        if (p) {
            std::lock_guard<std::mutex> g(fftw_planner_lock());
            fftw_destroy_plan(p);
        }
    }
};

/** What a made plan computes, immutable once made (queued work holds it by shared_ptr). */
struct Geometry {
    Kind kind = Kind::C2C;
    bool dbl = false;  // Z2Z/D2Z/Z2D
    int rank = 1;
    i64 L[3] = {1, 1, 1};  // logical sizes, padded to rank three with leading 1s
    i64 nc = 1;            // last-dimension length on the complex side (L[2]/2+1 for real transforms)
    i64 batch = 1;
    Side in, out;          // layout out of place
    Side in_ip, out_ip;    // layout in place (the basic layout pads the real side)
    std::string in_place_problem;          // empty: in place allowed
    size_t work_bytes = 0;
    // FFTW plans over one item held in a dense buffer of L[0]*L[1]*L[2] complex doubles, in place.
    FftwPlan forward, backward;  // C2C: whole-rank transforms
    FftwPlan lead, last;         // R2C/C2R: the leading dimensions of the first nc columns; the rows
    i64 item() const { return L[0] * L[1] * L[2]; }
};

struct Plan {
    std::mutex m;
    bool auto_alloc = true;
    std::shared_ptr<const Geometry> geo;  // null until made
    void* stream = nullptr;
    void* work = nullptr;  // set by cufftSetWorkArea
};

std::mutex g_plans_mutex;
std::unordered_map<cufftHandle, std::shared_ptr<Plan>> g_plans;
cufftHandle g_next_handle = 1;

std::shared_ptr<Plan> find_plan(cufftHandle h) {
    std::lock_guard<std::mutex> g(g_plans_mutex);
    auto it = g_plans.find(h);
    return it == g_plans.end() ? nullptr : it->second;
}

bool type_info(int type, Kind* kind, bool* dbl) {
    switch (type) {
        case CUFFT_C2C: *kind = Kind::C2C; *dbl = false; return true;
        case CUFFT_R2C: *kind = Kind::R2C; *dbl = false; return true;
        case CUFFT_C2R: *kind = Kind::C2R; *dbl = false; return true;
        case CUFFT_Z2Z: *kind = Kind::C2C; *dbl = true; return true;
        case CUFFT_D2Z: *kind = Kind::R2C; *dbl = true; return true;
        case CUFFT_Z2D: *kind = Kind::C2R; *dbl = true; return true;
    }
    return false;
}

/** side dims (logical, length rank) with embed (nullptr: packed) → Side. */
Side make_side(int rank, const i64* dims, const i64* embed, i64 stride, i64 dist, size_t elem) {
    Side s;
    s.elem = elem;
    for (int p = 0; p < 3; p++) {
        s.count[p] = 1;
        s.step[p] = 0;
    }
    i64 step = stride;
    for (int d = rank - 1; d >= 0; d--) {
        int p = 3 - rank + d;
        s.count[p] = dims[d];
        s.step[p] = step;
        if (d > 0 || !embed) step *= embed ? embed[d] : dims[d];  // embed[0] is not used
    }
    s.dist = embed ? dist : step;  // packed: one item after the other
    return s;
}

/** Whether stride * embed[1] * ... * embed[rank-1] stays below 2^62 (so the steps do not overflow). */
bool steps_fit(int rank, const i64* embed, i64 stride) {
    __int128 step = stride;
    for (int d = rank - 1; d >= 1; d--) {
        step *= embed[d];
        if (step > ((__int128) 1 << 62)) return false;
    }
    return true;
}

/** Why an in-place transform cannot use the layouts a (input) and b (output); empty: it can. */
std::string in_place_check(const Geometry& g, const Side& a, const Side& b) {
    if (g.kind == Kind::C2C) {
        if (g.batch > 1 && a.dist != b.dist) return "input and output batch distances differ";
        for (int p = 0; p < 3; p++)
            if (a.count[p] > 1 && a.step[p] != b.step[p]) return "input and output strides or embeds differ";
        if (!disjoint(b, g.batch)) return "the elements overlap";
        return "";
    }
    const Side& real = g.kind == Kind::R2C ? a : b;
    const Side& cplx = g.kind == Kind::R2C ? b : a;
    // The padded layout: complex element k of a row occupies exactly real elements 2k and 2k+1.
    if (g.batch > 1 && real.dist != 2 * cplx.dist)
        return "the real batch distance is not twice the complex one (the padded layout)";
    for (int p = 0; p < 2; p++)
        if (real.count[p] > 1 && real.step[p] != 2 * cplx.step[p])
            return "the real row pitch is not 2*(n/2+1) floats for every complex row (the padded layout)";
    if (g.L[2] >= 2 && (real.step[2] != 1 || cplx.step[2] != 1))
        return "in-place real transforms need unit strides along the last dimension (the padded layout)";
    if (!disjoint(real, g.batch) || !disjoint(cplx, g.batch)) return "the elements overlap";
    return "";
}

/**
 * Validates a plan description and computes its geometry (and, with fftw, its FFTW plans). Returns the
 * cuFFT status; explains failures with a note naming `call`.
 */
cufftResult build(const char* call, int rank, const i64* n, const i64* inembed, i64 istride, i64 idist,
                  const i64* onembed, i64 ostride, i64 odist, int type, i64 batch, bool fftw,
                  std::shared_ptr<Geometry>* result) {
    auto g = std::make_shared<Geometry>();
    if (!type_info(type, &g->kind, &g->dbl)) {
        emu::note("%s: cufftType 0x%x is not a cuFFT transform type", call, type);
        return CUFFT_INVALID_TYPE;
    }
    if (rank < 1 || rank > 3) {
        emu::note("%s: rank %d is not 1, 2 or 3", call, rank);
        return CUFFT_INVALID_SIZE;
    }
    if (n == nullptr) {
        emu::note("%s: n is NULL", call);
        return CUFFT_INVALID_VALUE;
    }
    for (int d = 0; d < rank; d++)
        if (n[d] < 1) {
            emu::note("%s: n[%d] = %lld is not a transform size", call, d, n[d]);
            return CUFFT_INVALID_SIZE;
        }
    if (batch < 1) {
        emu::note("%s: batch %lld is not positive", call, batch);
        return CUFFT_INVALID_SIZE;
    }
    {
        // Each item is transformed in a dense double buffer; anything past the device's memory is not a
        // real plan (and would only make the host allocation fail).
        __int128 item = 1;
        for (int d = 0; d < rank && item <= ((__int128) 1 << 40); d++) item *= n[d];
        if (item * 16 > ((__int128) 1 << 37) || item * batch > ((__int128) 1 << 56)) {
            emu::note("%s: the transform is larger than the device memory", call);
            return CUFFT_INVALID_SIZE;
        }
    }
    g->rank = rank;
    g->batch = batch;
    for (int d = 0; d < rank; d++) g->L[3 - rank + d] = n[d];
    bool real = g->kind != Kind::C2C;
    g->nc = real ? g->L[2] / 2 + 1 : g->L[2];
    size_t rb = g->dbl ? 8 : 4, cb = 2 * rb;

    i64 real_dims[3], cplx_dims[3], padded_dims[3];
    for (int d = 0; d < rank; d++) real_dims[d] = cplx_dims[d] = padded_dims[d] = n[d];
    cplx_dims[rank - 1] = g->nc;
    padded_dims[rank - 1] = real ? 2 * g->nc : n[rank - 1];
    const i64* in_dims = g->kind == Kind::C2R ? cplx_dims : real_dims;
    const i64* out_dims = g->kind == Kind::R2C ? cplx_dims : real_dims;
    size_t in_elem = g->kind == Kind::R2C ? rb : cb, out_elem = g->kind == Kind::C2R ? rb : cb;

    // Either embed NULL: the basic layout, the other advanced parameters ignored (cuFFT's rule).
    if (inembed == nullptr || onembed == nullptr) {
        g->in = make_side(rank, in_dims, nullptr, 1, 0, in_elem);
        g->out = make_side(rank, out_dims, nullptr, 1, 0, out_elem);
        // In place, the real side is padded to 2*(n/2+1) per row (FFTW-compatible).
        g->in_ip = g->kind == Kind::R2C ? make_side(rank, padded_dims, padded_dims, 1,
                                                    g->L[0] * g->L[1] * 2 * g->nc, in_elem)
                                        : g->in;
        g->out_ip = g->kind == Kind::C2R ? make_side(rank, padded_dims, padded_dims, 1,
                                                     g->L[0] * g->L[1] * 2 * g->nc, out_elem)
                                         : g->out;
        if (g->kind == Kind::R2C) {  // counts are the logical ones, the padding only in the steps
            g->in_ip.count[2] = g->L[2];
        }
        if (g->kind == Kind::C2R) g->out_ip.count[2] = g->L[2];
    } else {
        if (istride < 1 || ostride < 1) {
            emu::note("%s: strides must be positive (istride %lld, ostride %lld)", call, istride, ostride);
            return CUFFT_INVALID_VALUE;
        }
        if (idist < 0 || odist < 0) {
            emu::note("%s: negative batch distance (idist %lld, odist %lld)", call, idist, odist);
            return CUFFT_INVALID_VALUE;
        }
        for (int d = 1; d < rank; d++) {  // embed[0] is not used, as in cuFFT
            if (inembed[d] < in_dims[d] || onembed[d] < out_dims[d]) {
                emu::note("%s: inembed[%d] = %lld / onembed[%d] = %lld smaller than the data (%lld / %lld)", call,
                          d, inembed[d], d, onembed[d], in_dims[d], out_dims[d]);
                return CUFFT_INVALID_VALUE;
            }
        }
        if (!steps_fit(rank, inembed, istride) || !steps_fit(rank, onembed, ostride)) {
            emu::note("%s: the embeds and strides describe more than 2^62 elements", call);
            return CUFFT_INVALID_SIZE;
        }
        g->in = g->in_ip = make_side(rank, in_dims, inembed, istride, idist, in_elem);
        g->out = g->out_ip = make_side(rank, out_dims, onembed, ostride, odist, out_elem);
    }
    if (highest_index(g->in, batch) < 0 || highest_index(g->out, batch) < 0 || highest_index(g->in_ip, batch) < 0 ||
        highest_index(g->out_ip, batch) < 0) {
        emu::note("%s: the data extent does not fit in 2^62 bytes", call);
        return CUFFT_INVALID_SIZE;
    }
    if (!disjoint(g->out, batch)) {
        emu::note("%s: output elements overlap (onembed/ostride/odist place two elements at one address)", call);
        return CUFFT_INVALID_VALUE;
    }
    g->in_place_problem = in_place_check(*g, g->in_ip, g->out_ip);

    // Plausible scratch: one item's complex data, so a missing or short work area is caught.
    i64 complex_per_item = g->L[0] * g->L[1] * g->nc;
    g->work_bytes = std::max<size_t>(256, (size_t) complex_per_item * cb);

    if (fftw) {
        size_t total = (size_t) g->item();
        fftw_complex* buf = (fftw_complex*) fftw_malloc(std::max<size_t>(total, 1) * sizeof(fftw_complex));
        if (!buf) return CUFFT_ALLOC_FAILED;
        fftw_iodim64 dims[3];
        for (int d = 0; d < rank; d++) {
            int p = 3 - rank + d;
            ptrdiff_t step = 1;
            for (int q = p + 1; q < 3; q++) step *= g->L[q];
            dims[d] = {(ptrdiff_t) g->L[p], step, step};
        }
        bool ok = true;
        {
            std::lock_guard<std::mutex> lock(fftw_planner_lock());
            if (g->kind == Kind::C2C) {
                g->forward.p = fftw_plan_guru64_dft(rank, dims, 0, nullptr, buf, buf, FFTW_FORWARD, FFTW_ESTIMATE);
                g->backward.p = fftw_plan_guru64_dft(rank, dims, 0, nullptr, buf, buf, FFTW_BACKWARD, FFTW_ESTIMATE);
                ok = g->forward.p && g->backward.p;
            } else {
                // Real transforms: the rows (last dimension) and the leading dimensions of the first nc
                // columns only, so the redundant half of the spectrum is never transformed twice.
                int sign = g->kind == Kind::R2C ? FFTW_FORWARD : FFTW_BACKWARD;
                if (rank > 1) {
                    fftw_iodim64 cols = {(ptrdiff_t) g->nc, 1, 1};
                    g->lead.p = fftw_plan_guru64_dft(rank - 1, dims, 1, &cols, buf, buf, sign, FFTW_ESTIMATE);
                    ok = g->lead.p != nullptr;
                }
                fftw_iodim64 rows = {(ptrdiff_t) (g->L[0] * g->L[1]), (ptrdiff_t) g->L[2], (ptrdiff_t) g->L[2]};
                g->last.p = fftw_plan_guru64_dft(1, &dims[rank - 1], 1, &rows, buf, buf, sign, FFTW_ESTIMATE);
                ok = ok && g->last.p != nullptr;
            }
        }
        fftw_free(buf);
        if (!ok) {
            emu::note("%s: FFTW could not plan the transform", call);
            return CUFFT_SETUP_FAILED;
        }
    }
    *result = std::move(g);
    return CUFFT_SUCCESS;
}

// ------------------------------------------------------------------------------------------------ execution

inline i64 index_of(const Side& s, i64 b, i64 i0, i64 i1, i64 i2) {
    return b * s.dist + i0 * s.step[0] + i1 * s.step[1] + i2 * s.step[2];
}

/** Runs the transform of every batch item: gather into doubles, FFTW, scatter. */
template <typename R>
void compute(const Geometry& g, const Side& in, const Side& out, const R* ip, R* op, int sign) {
    const i64 L0 = g.L[0], L1 = g.L[1], L2 = g.L[2];
    const i64 cols_in = in.count[2];
    fftw_complex* buf = (fftw_complex*) fftw_malloc((size_t) g.item() * sizeof(fftw_complex));
    if (!buf) {
        emu::error("cuFFT stand-in: out of host memory for a %lld-element transform", (long long) g.item());
        return;
    }
    for (i64 b = 0; b < g.batch; b++) {
        // Gather (real input: imaginary part 0; C2R: the nc stored columns, the others follow by symmetry).
        for (i64 i0 = 0; i0 < L0; i0++)
            for (i64 i1 = 0; i1 < L1; i1++) {
                fftw_complex* row = buf + (i0 * L1 + i1) * L2;
                for (i64 i2 = 0; i2 < cols_in; i2++) {
                    i64 e = index_of(in, b, i0, i1, i2);
                    if (g.kind == Kind::R2C) {
                        row[i2][0] = ip[e];
                        row[i2][1] = 0;
                    } else {
                        row[i2][0] = ip[2 * e];
                        row[i2][1] = ip[2 * e + 1];
                    }
                }
            }
        // Transform.
        if (g.kind == Kind::C2C) {
            fftw_execute_dft(sign == CUFFT_FORWARD ? g.forward.p : g.backward.p, buf, buf);
        } else if (g.kind == Kind::R2C) {
            fftw_execute_dft(g.last.p, buf, buf);
            if (g.lead.p) fftw_execute_dft(g.lead.p, buf, buf);
        } else {
            if (g.lead.p) fftw_execute_dft(g.lead.p, buf, buf);
            for (i64 r = 0; r < L0 * L1; r++) {  // Hermitian extension along the last dimension
                fftw_complex* row = buf + r * L2;
                for (i64 k = g.nc; k < L2; k++) {
                    row[k][0] = row[L2 - k][0];
                    row[k][1] = -row[L2 - k][1];
                }
            }
            fftw_execute_dft(g.last.p, buf, buf);
        }
        // Scatter.
        const i64 cols_out = out.count[2];
        for (i64 i0 = 0; i0 < L0; i0++)
            for (i64 i1 = 0; i1 < L1; i1++) {
                const fftw_complex* row = buf + (i0 * L1 + i1) * L2;
                for (i64 i2 = 0; i2 < cols_out; i2++) {
                    i64 e = index_of(out, b, i0, i1, i2);
                    if (g.kind == Kind::C2R) {
                        op[e] = (R) row[i2][0];
                    } else {
                        op[2 * e] = (R) row[i2][0];
                        op[2 * e + 1] = (R) row[i2][1];
                    }
                }
            }
    }
    fftw_free(buf);
}

/** Overwrites every element of a side (a destroyed C2R input). */
void scribble_side(const Side& s, i64 batch, void* base) {
    char* p = (char*) base;
    for (i64 b = 0; b < batch; b++)
        for (i64 i0 = 0; i0 < s.count[0]; i0++)
            for (i64 i1 = 0; i1 < s.count[1]; i1++) {
                if (s.step[2] == 1 || s.count[2] == 1) {
                    emu::scribble(p + index_of(s, b, i0, i1, 0) * s.elem, s.count[2] * s.elem);
                } else {
                    for (i64 i2 = 0; i2 < s.count[2]; i2++)
                        emu::scribble(p + index_of(s, b, i0, i1, i2) * s.elem, s.elem);
                }
            }
}

/** In-place C2R: the parts of the last complex element of each row that are padding, not output. */
void scribble_padding(const Geometry& g, const Side& cplx, void* base) {
    char* p = (char*) base;
    size_t rb = g.dbl ? 8 : 4;
    i64 k = g.nc - 1;
    bool even_pad = 2 * k >= g.L[2];  // both halves are padding (even n)
    for (i64 b = 0; b < g.batch; b++)
        for (i64 i0 = 0; i0 < cplx.count[0]; i0++)
            for (i64 i1 = 0; i1 < cplx.count[1]; i1++) {
                char* c = p + index_of(cplx, b, i0, i1, k) * cplx.elem;
                if (even_pad) emu::scribble(c, 2 * rb);
                else emu::scribble(c + rb, rb);
            }
}

template <typename R>
cufftResult execute(const char* call, cufftHandle handle, const void* idata, void* odata, Kind kind, bool dbl,
                    int sign) {
    std::shared_ptr<Plan> plan = find_plan(handle);
    if (!plan) {
        emu::note("%s: %d is not a live cuFFT plan", call, handle);
        return CUFFT_INVALID_PLAN;
    }
    std::lock_guard<std::mutex> lock(plan->m);
    std::shared_ptr<const Geometry> g = plan->geo;
    if (!g) {
        emu::note("%s: plan %d has not been made (cufftMakePlan*)", call, handle);
        return CUFFT_INVALID_PLAN;
    }
    if (g->kind != kind || g->dbl != dbl) {
        emu::note("%s: plan %d was made for another transform type", call, handle);
        return CUFFT_INVALID_PLAN;
    }
    if (kind == Kind::C2C && sign != CUFFT_FORWARD && sign != CUFFT_INVERSE) {
        emu::note("%s: direction %d is neither CUFFT_FORWARD (-1) nor CUFFT_INVERSE (1)", call, sign);
        return CUFFT_INVALID_VALUE;
    }
    if (idata == nullptr || odata == nullptr) {
        emu::note("%s: idata or odata is NULL", call);
        return CUFFT_INVALID_VALUE;
    }
    if (!emu::has_current_context()) emu::ensure_runtime_context();

    bool in_place = idata == odata;
    const Side& in = in_place ? g->in_ip : g->in;
    const Side& out = in_place ? g->out_ip : g->out;
    if (in_place && !g->in_place_problem.empty()) {
        emu::error("%s: plan %d executed in place (idata == odata = %p) but %s", call, handle, odata,
                   g->in_place_problem.c_str());
        return CUFFT_INVALID_VALUE;
    }
    if ((uintptr_t) idata % in.elem != 0 || (uintptr_t) odata % out.elem != 0) {
        emu::error("%s: misaligned data (idata %p needs %zu-byte alignment, odata %p needs %zu)", call, idata,
                   in.elem, odata, out.elem);
        return CUFFT_INVALID_VALUE;
    }
    size_t in_bytes = extent_bytes(in, g->batch), out_bytes = extent_bytes(out, g->batch);
    uintptr_t i0 = (uintptr_t) idata, o0 = (uintptr_t) odata;
    if (!in_place && i0 < o0 + out_bytes && o0 < i0 + in_bytes) {
        emu::error("%s: out-of-place transform whose input [%p, +%zu) and output [%p, +%zu) overlap", call, idata,
                   in_bytes, odata, out_bytes);
        return CUFFT_INVALID_VALUE;
    }

    std::string name = call;
    std::vector<emu::Access> accesses;
    // C2R destroys its input (cuFFT documents it may overwrite it): a write, for the ordering checks too.
    accesses.push_back({idata, in_bytes, kind == Kind::C2R, name + " idata"});
    accesses.push_back({odata, out_bytes, true, name + " odata"});
    void* work = plan->work;
    size_t work_bytes = g->work_bytes;
    if (work) {
        accesses.push_back({work, work_bytes, true, name + " work area"});
    } else if (!plan->auto_alloc) {
        emu::error("%s: plan %d has auto-allocation off (cufftSetAutoAllocation(plan, 0)) and no work area: call "
                   "cufftSetWorkArea with %zu bytes first", call, handle, work_bytes);
        return CUFFT_EXEC_FAILED;
    }
    // Otherwise the plan's own work area is internal to the computation.

    Side in_copy = in, out_copy = out;
    const R* ip = (const R*) idata;
    R* op = (R*) odata;
    bool ok = emu::enqueue(plan->stream, name, std::move(accesses), [g, in_copy, out_copy, ip, op, sign, work,
                                                                      work_bytes, in_place, kind]() {
        compute<R>(*g, in_copy, out_copy, ip, op, sign);
        if (work) emu::scribble(work, work_bytes);
        if (kind == Kind::C2R) {
            if (in_place) scribble_padding(*g, in_copy, (void*) ip);
            else scribble_side(in_copy, g->batch, (void*) ip);
        }
    });
    return ok ? CUFFT_SUCCESS : CUFFT_EXEC_FAILED;
}

// ------------------------------------------------------------------------------------------------ planning

cufftResult make_plan(const char* call, cufftHandle handle, int rank, const i64* n, const i64* inembed,
                      i64 istride, i64 idist, const i64* onembed, i64 ostride, i64 odist, int type, i64 batch,
                      size_t* work_size) {
    std::shared_ptr<Plan> plan = find_plan(handle);
    if (!plan) {
        emu::note("%s: %d is not a live cuFFT plan (cufftCreate)", call, handle);
        return CUFFT_INVALID_PLAN;
    }
    std::lock_guard<std::mutex> lock(plan->m);
    if (plan->geo) {
        emu::note("%s: plan %d has already been made", call, handle);
        return CUFFT_INVALID_PLAN;
    }
    std::shared_ptr<Geometry> g;
    cufftResult r = build(call, rank, n, inembed, istride, idist, onembed, ostride, odist, type, batch, true, &g);
    if (r != CUFFT_SUCCESS) return r;
    plan->geo = std::move(g);
    if (work_size) *work_size = plan->geo->work_bytes;
    return CUFFT_SUCCESS;
}

cufftResult estimate(const char* call, int rank, const i64* n, const i64* inembed, i64 istride, i64 idist,
                     const i64* onembed, i64 ostride, i64 odist, int type, i64 batch, size_t* work_size) {
    if (!work_size) return CUFFT_INVALID_VALUE;
    std::shared_ptr<Geometry> g;
    cufftResult r = build(call, rank, n, inembed, istride, idist, onembed, ostride, odist, type, batch, false, &g);
    if (r == CUFFT_SUCCESS) *work_size = g->work_bytes;
    return r;
}

cufftHandle new_handle() {
    std::lock_guard<std::mutex> g(g_plans_mutex);
    cufftHandle h = g_next_handle++;
    g_plans[h] = std::make_shared<Plan>();
    return h;
}

void drop_handle(cufftHandle h) {
    std::lock_guard<std::mutex> g(g_plans_mutex);
    g_plans.erase(h);
}

/** cufftPlan*: create and make, destroying the handle again on failure. */
cufftResult create_and_make(const char* call, cufftHandle* out, int rank, const i64* n, int type, i64 batch) {
    if (!out) return CUFFT_INVALID_VALUE;
    cufftHandle h = new_handle();
    cufftResult r = make_plan(call, h, rank, n, nullptr, 1, 0, nullptr, 1, 0, type, batch, nullptr);
    if (r != CUFFT_SUCCESS) {
        drop_handle(h);
        return r;
    }
    *out = h;
    return CUFFT_SUCCESS;
}

/** Copies an int array of `rank` entries (nullptr stays nullptr). */
struct Dims64 {
    i64 v[3] = {0, 0, 0};
    const i64* p = nullptr;
    Dims64(int rank, const int* a) {
        if (!a) return;
        for (int d = 0; d < rank && d < 3; d++) v[d] = a[d];
        p = v;
    }
};

bool plan_exists(const char* call, cufftHandle h) {
    if (find_plan(h)) return true;
    emu::note("%s: %d is not a live cuFFT plan", call, h);
    return false;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ the API

extern "C" {

EMU_EXPORT cufftResult cufftGetVersion(int* version) {
    if (!version) return CUFFT_INVALID_VALUE;
    *version = CUFFT_VERSION;
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftGetProperty(libraryPropertyType type, int* value) {
    if (!value) return CUFFT_INVALID_VALUE;
    switch (type) {
        case MAJOR_VERSION: *value = CUFFT_VER_MAJOR; return CUFFT_SUCCESS;
        case MINOR_VERSION: *value = CUFFT_VER_MINOR; return CUFFT_SUCCESS;
        case PATCH_LEVEL: *value = CUFFT_VER_PATCH; return CUFFT_SUCCESS;
    }
    return CUFFT_INVALID_TYPE;
}

EMU_EXPORT cufftResult cufftCreate(cufftHandle* plan) {
    if (!plan) return CUFFT_INVALID_VALUE;
    *plan = new_handle();
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftDestroy(cufftHandle plan) {
    std::shared_ptr<Plan> p;
    {
        std::lock_guard<std::mutex> g(g_plans_mutex);
        auto it = g_plans.find(plan);
        if (it == g_plans.end()) {
            emu::note("cufftDestroy: %d is not a live cuFFT plan", plan);
            return CUFFT_INVALID_PLAN;
        }
        p = std::move(it->second);
        g_plans.erase(it);
    }
    // Queued work keeps the geometry alive; the handle is gone at once.
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftSetAutoAllocation(cufftHandle plan, int autoAllocate) {
    std::shared_ptr<Plan> p = find_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    std::lock_guard<std::mutex> lock(p->m);
    if (p->geo) {
        // cuFFT fixes the choice when the plan is made.
        emu::note("cufftSetAutoAllocation: plan %d is already made; the call has no effect", plan);
        return CUFFT_SUCCESS;
    }
    p->auto_alloc = autoAllocate != 0;
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftSetWorkArea(cufftHandle plan, void* workArea) {
    std::shared_ptr<Plan> p = find_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    std::lock_guard<std::mutex> lock(p->m);
    p->work = workArea;  // checked (as a write of the work) when a transform is queued
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftSetStream(cufftHandle plan, cudaStream_t stream) {
    std::shared_ptr<Plan> p = find_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    std::lock_guard<std::mutex> lock(p->m);
    p->stream = (void*) stream;  // checked by the core when a transform is queued
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftPlan1d(cufftHandle* plan, int nx, cufftType type, int batch) {
    i64 n[1] = {nx};
    return create_and_make("cufftPlan1d", plan, 1, n, type, batch);
}

EMU_EXPORT cufftResult cufftPlan2d(cufftHandle* plan, int nx, int ny, cufftType type) {
    i64 n[2] = {nx, ny};
    return create_and_make("cufftPlan2d", plan, 2, n, type, 1);
}

EMU_EXPORT cufftResult cufftPlan3d(cufftHandle* plan, int nx, int ny, int nz, cufftType type) {
    i64 n[3] = {nx, ny, nz};
    return create_and_make("cufftPlan3d", plan, 3, n, type, 1);
}

EMU_EXPORT cufftResult cufftPlanMany(cufftHandle* plan, int rank, int* n, int* inembed, int istride, int idist,
                                     int* onembed, int ostride, int odist, cufftType type, int batch) {
    if (!plan) return CUFFT_INVALID_VALUE;
    if (rank < 1 || rank > 3) return CUFFT_INVALID_SIZE;
    Dims64 n64(rank, n), in64(rank, inembed), on64(rank, onembed);
    cufftHandle h = new_handle();
    cufftResult r = make_plan("cufftPlanMany", h, rank, n64.p, in64.p, istride, idist, on64.p, ostride, odist, type,
                              batch, nullptr);
    if (r != CUFFT_SUCCESS) {
        drop_handle(h);
        return r;
    }
    *plan = h;
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftMakePlan1d(cufftHandle plan, int nx, cufftType type, int batch, size_t* workSize) {
    i64 n[1] = {nx};
    return make_plan("cufftMakePlan1d", plan, 1, n, nullptr, 1, 0, nullptr, 1, 0, type, batch, workSize);
}

EMU_EXPORT cufftResult cufftMakePlan2d(cufftHandle plan, int nx, int ny, cufftType type, size_t* workSize) {
    i64 n[2] = {nx, ny};
    return make_plan("cufftMakePlan2d", plan, 2, n, nullptr, 1, 0, nullptr, 1, 0, type, 1, workSize);
}

EMU_EXPORT cufftResult cufftMakePlan3d(cufftHandle plan, int nx, int ny, int nz, cufftType type, size_t* workSize) {
    i64 n[3] = {nx, ny, nz};
    return make_plan("cufftMakePlan3d", plan, 3, n, nullptr, 1, 0, nullptr, 1, 0, type, 1, workSize);
}

EMU_EXPORT cufftResult cufftMakePlanMany(cufftHandle plan, int rank, int* n, int* inembed, int istride, int idist,
                                         int* onembed, int ostride, int odist, cufftType type, int batch,
                                         size_t* workSize) {
    if (rank < 1 || rank > 3) return CUFFT_INVALID_SIZE;
    Dims64 n64(rank, n), in64(rank, inembed), on64(rank, onembed);
    return make_plan("cufftMakePlanMany", plan, rank, n64.p, in64.p, istride, idist, on64.p, ostride, odist, type,
                     batch, workSize);
}

EMU_EXPORT cufftResult cufftMakePlanMany64(cufftHandle plan, int rank, long long int* n, long long int* inembed,
                                           long long int istride, long long int idist, long long int* onembed,
                                           long long int ostride, long long int odist, cufftType type,
                                           long long int batch, size_t* workSize) {
    return make_plan("cufftMakePlanMany64", plan, rank, n, inembed, istride, idist, onembed, ostride, odist, type,
                     batch, workSize);
}

EMU_EXPORT cufftResult cufftEstimate1d(int nx, cufftType type, int batch, size_t* workSize) {
    i64 n[1] = {nx};
    return estimate("cufftEstimate1d", 1, n, nullptr, 1, 0, nullptr, 1, 0, type, batch, workSize);
}

EMU_EXPORT cufftResult cufftEstimate2d(int nx, int ny, cufftType type, size_t* workSize) {
    i64 n[2] = {nx, ny};
    return estimate("cufftEstimate2d", 2, n, nullptr, 1, 0, nullptr, 1, 0, type, 1, workSize);
}

EMU_EXPORT cufftResult cufftEstimate3d(int nx, int ny, int nz, cufftType type, size_t* workSize) {
    i64 n[3] = {nx, ny, nz};
    return estimate("cufftEstimate3d", 3, n, nullptr, 1, 0, nullptr, 1, 0, type, 1, workSize);
}

EMU_EXPORT cufftResult cufftEstimateMany(int rank, int* n, int* inembed, int istride, int idist, int* onembed,
                                         int ostride, int odist, cufftType type, int batch, size_t* workSize) {
    if (rank < 1 || rank > 3) return CUFFT_INVALID_SIZE;
    Dims64 n64(rank, n), in64(rank, inembed), on64(rank, onembed);
    return estimate("cufftEstimateMany", rank, n64.p, in64.p, istride, idist, on64.p, ostride, odist, type, batch,
                    workSize);
}

EMU_EXPORT cufftResult cufftGetSize(cufftHandle plan, size_t* workSize) {
    std::shared_ptr<Plan> p = find_plan(plan);
    if (!p) return CUFFT_INVALID_PLAN;
    if (!workSize) return CUFFT_INVALID_VALUE;
    std::lock_guard<std::mutex> lock(p->m);
    if (!p->geo) {
        emu::note("cufftGetSize: plan %d has not been made", plan);
        return CUFFT_INVALID_PLAN;
    }
    *workSize = p->geo->work_bytes;
    return CUFFT_SUCCESS;
}

EMU_EXPORT cufftResult cufftGetSize1d(cufftHandle plan, int nx, cufftType type, int batch, size_t* workSize) {
    if (!plan_exists("cufftGetSize1d", plan)) return CUFFT_INVALID_PLAN;
    i64 n[1] = {nx};
    return estimate("cufftGetSize1d", 1, n, nullptr, 1, 0, nullptr, 1, 0, type, batch, workSize);
}

EMU_EXPORT cufftResult cufftGetSize2d(cufftHandle plan, int nx, int ny, cufftType type, size_t* workSize) {
    if (!plan_exists("cufftGetSize2d", plan)) return CUFFT_INVALID_PLAN;
    i64 n[2] = {nx, ny};
    return estimate("cufftGetSize2d", 2, n, nullptr, 1, 0, nullptr, 1, 0, type, 1, workSize);
}

EMU_EXPORT cufftResult cufftGetSize3d(cufftHandle plan, int nx, int ny, int nz, cufftType type, size_t* workSize) {
    if (!plan_exists("cufftGetSize3d", plan)) return CUFFT_INVALID_PLAN;
    i64 n[3] = {nx, ny, nz};
    return estimate("cufftGetSize3d", 3, n, nullptr, 1, 0, nullptr, 1, 0, type, 1, workSize);
}

EMU_EXPORT cufftResult cufftGetSizeMany(cufftHandle plan, int rank, int* n, int* inembed, int istride, int idist,
                                        int* onembed, int ostride, int odist, cufftType type, int batch,
                                        size_t* workArea) {
    if (!plan_exists("cufftGetSizeMany", plan)) return CUFFT_INVALID_PLAN;
    if (rank < 1 || rank > 3) return CUFFT_INVALID_SIZE;
    Dims64 n64(rank, n), in64(rank, inembed), on64(rank, onembed);
    return estimate("cufftGetSizeMany", rank, n64.p, in64.p, istride, idist, on64.p, ostride, odist, type, batch,
                    workArea);
}

EMU_EXPORT cufftResult cufftGetSizeMany64(cufftHandle plan, int rank, long long int* n, long long int* inembed,
                                          long long int istride, long long int idist, long long int* onembed,
                                          long long int ostride, long long int odist, cufftType type,
                                          long long int batch, size_t* workSize) {
    if (!plan_exists("cufftGetSizeMany64", plan)) return CUFFT_INVALID_PLAN;
    return estimate("cufftGetSizeMany64", rank, n, inembed, istride, idist, onembed, ostride, odist, type, batch,
                    workSize);
}

EMU_EXPORT cufftResult cufftExecC2C(cufftHandle plan, cufftComplex* idata, cufftComplex* odata, int direction) {
    return execute<float>("cufftExecC2C", plan, idata, odata, Kind::C2C, false, direction);
}

EMU_EXPORT cufftResult cufftExecR2C(cufftHandle plan, cufftReal* idata, cufftComplex* odata) {
    return execute<float>("cufftExecR2C", plan, idata, odata, Kind::R2C, false, CUFFT_FORWARD);
}

EMU_EXPORT cufftResult cufftExecC2R(cufftHandle plan, cufftComplex* idata, cufftReal* odata) {
    return execute<float>("cufftExecC2R", plan, idata, odata, Kind::C2R, false, CUFFT_INVERSE);
}

EMU_EXPORT cufftResult cufftExecZ2Z(cufftHandle plan, cufftDoubleComplex* idata, cufftDoubleComplex* odata,
                                    int direction) {
    return execute<double>("cufftExecZ2Z", plan, idata, odata, Kind::C2C, true, direction);
}

EMU_EXPORT cufftResult cufftExecD2Z(cufftHandle plan, cufftDoubleReal* idata, cufftDoubleComplex* odata) {
    return execute<double>("cufftExecD2Z", plan, idata, odata, Kind::R2C, true, CUFFT_FORWARD);
}

EMU_EXPORT cufftResult cufftExecZ2D(cufftHandle plan, cufftDoubleComplex* idata, cufftDoubleReal* odata) {
    return execute<double>("cufftExecZ2D", plan, idata, odata, Kind::C2R, true, CUFFT_INVERSE);
}

}  // extern "C"
