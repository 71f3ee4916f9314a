// Device memory: host allocations of exactly the requested size (so AddressSanitizer sees an access one
// past the end), filled with a NaN byte pattern, registered so that every range handed to a copy, memset,
// transform, GEMM or kernel can be checked against the live allocations; plus the reports.
#include <execinfo.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core.h"

namespace emu {

const char* const kDeviceName = "NVIDIA H100 80GB HBM3 (emulated)";

namespace {

std::atomic<int> g_pending{0};
std::atomic<long> g_errors{0};
std::mutex g_report_mutex;

std::map<uintptr_t, Allocation>& live() {
    static auto* m = new std::map<uintptr_t, Allocation>();
    return *m;
}

/** Recently freed ranges, for "use after free" reports (bounded). */
struct Freed { uintptr_t base; size_t size; uint64_t serial; std::string how; };
std::deque<Freed>& freed() {
    static auto* d = new std::deque<Freed>();
    return *d;
}

uint64_t g_serial = 0;
size_t g_in_use = 0;
size_t g_pool_used = 0;
size_t g_pool_high = 0;

void vreport(const char* prefix, const char* format, va_list ap) {
    char buffer[4096];
    vsnprintf(buffer, sizeof buffer, format, ap);
    std::lock_guard<std::mutex> guard(g_report_mutex);
    fprintf(stderr, "cuda-emulator: %s%s\n", prefix, buffer);
    fflush(stderr);
    if (const char* log = getenv("SPECTRALPEFT_EMU_LOG")) {
        if (FILE* f = fopen(log, "a")) {
            fprintf(f, "%s%s\n", prefix, buffer);
            fclose(f);
        }
    }
}

}  // namespace

void error(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    vreport("error: ", format, ap);
    va_end(ap);
    g_errors++;
    g_pending.store(CUDA_ERROR_ILLEGAL_ADDRESS);
    const char* abort_flag = getenv("SPECTRALPEFT_EMU_ABORT");
    if (abort_flag && strcmp(abort_flag, "1") == 0) {
        void* frames[64];
        int n = backtrace(frames, 64);
        backtrace_symbols_fd(frames, n, STDERR_FILENO);
        abort();
    }
}

void note(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    vreport("", format, ap);
    va_end(ap);
}

CUresult take_pending_error() {
    return (CUresult) g_pending.exchange(0);
}

void scribble(void* ptr, size_t bytes) {
    memset(ptr, 0xff, bytes);  // all-ones: NaN as float32, float16 and bfloat16
}

void Clock::join(const Clock& other) {
    for (const auto& [t, s] : other.seen) {
        uint64_t& mine = seen[t];
        if (s > mine) mine = s;
    }
}

Allocation* find_allocation(uintptr_t address, bool allow_end) {
    auto& m = live();
    auto it = m.upper_bound(address);
    if (it == m.begin()) return nullptr;
    --it;
    Allocation& a = it->second;
    if (address < a.base + a.size || (allow_end && address == a.base + a.size)) return &a;
    return nullptr;
}

Allocation* lookup_base(uintptr_t base) {
    auto it = live().find(base);
    return it == live().end() ? nullptr : &it->second;
}

std::string describe_address(uintptr_t address) {
    char buffer[256];
    for (auto it = freed().rbegin(); it != freed().rend(); ++it) {
        if (address >= it->base && address < it->base + it->size) {
            snprintf(buffer, sizeof buffer, "inside allocation #%llu (%zu bytes at %#lx), already freed by %s",
                     (unsigned long long) it->serial, it->size, (unsigned long) it->base, it->how.c_str());
            return buffer;
        }
    }
    auto& m = live();
    auto after = m.upper_bound(address);
    if (after != m.begin()) {
        auto before = std::prev(after);
        const Allocation& a = before->second;
        snprintf(buffer, sizeof buffer, "%zu bytes past the end of allocation #%llu (%zu bytes at %#lx)",
                 (size_t) (address - (a.base + a.size)), (unsigned long long) a.serial, a.size,
                 (unsigned long) a.base);
        return buffer;
    }
    return "not in any device allocation";
}

bool check_range(const void* ptr, size_t bytes, const std::string& what) {
    std::lock_guard<std::recursive_mutex> guard(lock());
    uintptr_t p = (uintptr_t) ptr;
    Allocation* a = find_allocation(p, bytes == 0);
    if (a == nullptr) {
        error("%s: %#lx (%zu bytes) is %s", what.c_str(), (unsigned long) p, bytes, describe_address(p).c_str());
        return false;
    }
    if (a->free_queued) {
        error("%s: %#lx is in allocation #%llu, whose free is already queued (use after free)", what.c_str(),
              (unsigned long) p, (unsigned long long) a->serial);
        return false;
    }
    if (bytes > a->size - (p - a->base)) {
        error("%s: %zu bytes at %#lx run %zu bytes past the end of allocation #%llu (%zu bytes at %#lx)",
              what.c_str(), bytes, (unsigned long) p, (size_t) (p + bytes - (a->base + a->size)),
              (unsigned long long) a->serial, a->size, (unsigned long) a->base);
        return false;
    }
    return true;
}

void* allocate_device(size_t bytes, bool stream_ordered) {
    void* p = nullptr;
    if (posix_memalign(&p, 256, bytes == 0 ? 1 : bytes) != 0) return nullptr;
    scribble(p, bytes);
    Allocation a;
    a.base = (uintptr_t) p;
    a.size = bytes;
    a.stream_ordered = stream_ordered;
    a.serial = ++g_serial;
    live()[a.base] = std::move(a);
    g_in_use += bytes;
    if (stream_ordered) {
        g_pool_used += bytes;
        if (g_pool_used > g_pool_high) g_pool_high = g_pool_used;
    }
    return p;
}

namespace {
void forget(std::map<uintptr_t, Allocation>::iterator it, const std::string& how) {
    Allocation& a = it->second;
    g_in_use -= a.size;
    if (a.stream_ordered) g_pool_used -= a.size;
    freed().push_back({a.base, a.size, a.serial, how});
    if (freed().size() > 4096) freed().pop_front();
    free((void*) a.base);
    live().erase(it);
}
}  // namespace

CUresult free_device(uintptr_t base, const char* call) {
    auto it = live().find(base);
    if (it == live().end()) {
        error("%s(%#lx): not the start of a live allocation (%s)", call, (unsigned long) base,
              describe_address(base).c_str());
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    if (it->second.free_queued) {
        error("%s(%#lx): allocation #%llu is already being freed (double free)", call, (unsigned long) base,
              (unsigned long long) it->second.serial);
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    forget(it, call);
    return CUDA_SUCCESS;
}

void release_async_allocation(uintptr_t base) {
    std::lock_guard<std::recursive_mutex> guard(lock());
    auto it = live().find(base);
    if (it != live().end()) forget(it, "cuMemFreeAsync");
}

void release_all_memory(const char* why) {
    auto& m = live();
    if (!m.empty()) {
        size_t bytes = 0;
        std::string list;
        int shown = 0;
        for (auto& [base, a] : m) {
            bytes += a.size;
            if (shown++ < 8) {
                char b[96];
                snprintf(b, sizeof b, "%s#%llu (%zu bytes)", list.empty() ? "" : ", ", (unsigned long long) a.serial,
                         a.size);
                list += b;
            }
        }
        error("%s: %zu device allocations (%zu bytes) were never freed (leak): %s%s", why, m.size(), bytes,
              list.c_str(), m.size() > 8 ? ", ..." : "");
    }
    while (!m.empty()) forget(m.begin(), why);
}

size_t device_bytes_in_use() { return g_in_use; }
size_t pool_used_bytes() { return g_pool_used; }
size_t pool_used_high() { return g_pool_high; }
void reset_pool_used_high() { g_pool_high = g_pool_used; }

bool check_and_record(const Access& access, Timeline t, uint64_t seq, const Clock& c, const std::string& work) {
    uintptr_t begin = (uintptr_t) access.ptr;
    Allocation* a = find_allocation(begin, access.bytes == 0);
    if (a == nullptr || a->free_queued || access.bytes > a->size - (begin - a->base)) {
        check_range(access.ptr, access.bytes, work + " " + access.what);  // reports the reason
        return false;
    }
    uintptr_t end = begin + access.bytes;
    for (const AccessRecord& p : a->history) {
        if (!(p.write || access.write) || p.end <= begin || end <= p.begin) continue;
        if (p.timeline == t || c.at(p.timeline) >= p.seq || is_retired(p.timeline)) continue;
        error("%s: %s %s bytes [%lu, %lu) of allocation #%llu while %s on another stream %s them and is not "
              "ordered before it (a missing event wait or synchronization)",
              work.c_str(), access.write ? "writes" : "reads", access.what.c_str(),
              (unsigned long) (begin - a->base), (unsigned long) (end - a->base), (unsigned long long) a->serial,
              p.what.c_str(), p.write ? "writes" : "reads");
        return false;
    }
    // Drop what this access supersedes: records ordered before it that it covers (a write covers any
    // access; a read covers reads of its own timeline), so histories stay short.
    auto& h = a->history;
    for (size_t i = 0; i < h.size();) {
        const AccessRecord& p = h[i];
        bool ordered = p.timeline == t || c.at(p.timeline) >= p.seq || is_retired(p.timeline);
        bool covered = begin <= p.begin && p.end <= end;
        if (ordered && covered && (access.write || (!p.write && p.timeline == t))) {
            h[i] = h.back();
            h.pop_back();
        } else {
            ++i;
        }
    }
    if (h.size() > 64) h.erase(h.begin());  // oldest first out: a bounded check
    h.push_back({t, seq, begin, end, access.write, work + " (" + access.what + ")"});
    return true;
}

}  // namespace emu

// Under AddressSanitizer (built with -fsanitize-recover=address and run with halt_on_error=0), a bad access
// inside a kernel or a stand-in becomes an emulator error like any other: the next CUDA call fails in the test
// that caused it, instead of the whole JVM aborting with no test named.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
namespace {

void report_asan(const char* report) {
    // The report's first line says what happened; its first frame that names a source line says where.
    char what[512] = "", where[512] = "";
    if (const char* e = strstr(report, "ERROR: AddressSanitizer: ")) {
        size_t n = strcspn(e, "\n");
        snprintf(what, sizeof what, "%.*s", (int) n, e);
    }
    for (const char* line = report; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : nullptr) {
        const char* frame = strstr(line, " in ");
        size_t n = strcspn(line, "\n");
        if (frame && frame < line + n && line[strspn(line, " ")] == '#' && memmem(line, n, ".cu:", 4)) {
            snprintf(where, sizeof where, "%.*s", (int) (line + n - frame - 4), frame + 4);
            break;
        }
    }
    emu::error("%s%s%s", what[0] ? what : "AddressSanitizer reported an error", where[0] ? " at " : "", where);
}

__attribute__((constructor)) void install_asan_report() { __asan_set_error_report_callback(report_asan); }

}  // namespace
#endif
