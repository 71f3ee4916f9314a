// The CPU kernel runtime: runs a grid's blocks one after another on the calling OS thread (spread over a
// few OS threads for large grids when SPECTRALPEFT_EMU_KERNEL_THREADS > 1), each block's threads as fibers with their own stacks. A fiber runs
// until its thread exits or reaches a barrier or warp operation; a thread that exits takes the next
// unstarted thread on the same stack, so a kernel without synchronization costs no switch per thread.
// Barriers and warp operations complete when their last participant arrives; if nothing can run and
// threads remain, the block is deadlocked and reported.
#include "cuda_cpu.h"
#include "register.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SPEMU_ASAN 1
#else
#define SPEMU_ASAN 0
#endif

#if !defined(__x86_64__)
#error "the kernel runtime's fiber switch is written for x86-64"
#endif

// spemu_switch(save, load): saves the callee-saved registers on the current stack, stores the stack pointer
// in *save, and resumes the context whose stack pointer is load. MXCSR and the x87 control word are not
// switched (ldmxcsr/fldcw cost more than the rest of a switch): every fiber of an OS thread shares them,
// and kernel code never changes them.
// spemu_fiber_start: where a fresh fiber's first switch returns to; calls r13(r12) and never returns.
extern "C" void spemu_switch(void** save, void* load) SPEMU_HIDDEN;
extern "C" void spemu_fiber_start() SPEMU_HIDDEN;
asm(R"(
    .text
    .globl spemu_switch
    .hidden spemu_switch
    .type spemu_switch, @function
    .p2align 4
spemu_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size spemu_switch, .-spemu_switch

    .globl spemu_fiber_start
    .hidden spemu_fiber_start
    .type spemu_fiber_start, @function
    .p2align 4
spemu_fiber_start:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size spemu_fiber_start, .-spemu_fiber_start
)");

namespace spemu {
namespace {

std::vector<EmuKernelInfo>& registry() {
    static std::vector<EmuKernelInfo> kernels;
    return kernels;
}

enum ThreadState : uint8_t { T_UNSTARTED, T_RUNNING, T_BARRIER, T_WARP, T_EXITED };

struct Fiber {
    void* sp = nullptr;       // saved stack pointer while switched out
    char* stack = nullptr;    // lowest usable byte (a guard page lies below)
    size_t size = 0;
    int thread = -1;          // linear id of the thread it runs, -1 when idle
    void* asan_fake = nullptr;
};

struct ThreadRec {
    uint3 idx;
    uint8_t state;
    int8_t kind;              // barrier or warp operation kind while waiting
    unsigned mask;
    int b, c;
    unsigned long long value, result;
    unsigned active;          // __activemask: the warp's lanes not exited when this lane last synchronized
    Fiber* fiber;
};

// The block being run by one OS thread.
struct Block {
    const EmuKernelInfo* kernel;
    void** params;
    unsigned n = 0;           // threads per block
    unsigned next = 0;        // next thread to start
    unsigned exited = 0;
    unsigned at_barrier = 0;
    bool failed = false;
    std::string error;
    std::vector<ThreadRec> threads;
    std::vector<uint8_t> warp_waiting;  // per warp: lanes waiting at a warp operation
    std::vector<unsigned> warp_live;    // per warp: lanes that exist and have not exited
    std::vector<Fiber*> ready;  // ring of runnable fibers
    size_t ready_head = 0, ready_count = 0;
    unsigned char* dynamic = nullptr;
    size_t dynamic_bytes = 0;

    void push_ready(Fiber* f) {
        ready[(ready_head + ready_count++) % ready.size()] = f;
    }
    Fiber* pop_ready() {
        Fiber* f = ready[ready_head];
        ready_head = (ready_head + 1) % ready.size();
        --ready_count;
        return f;
    }
};

size_t fiber_stack_bytes() {
    static const size_t bytes = [] {
        const char* e = getenv("SPECTRALPEFT_EMU_FIBER_STACK_KB");
        size_t kb = e && *e ? strtoul(e, nullptr, 10) : (SPEMU_ASAN ? 128 : 64);
        return std::max<size_t>(kb, 16) * 1024;
    }();
    return bytes;
}

void fiber_main(Fiber* f);

// Per OS thread: the scheduler's saved context, the fibers (kept for later blocks and launches).
struct Worker {
    void* sched_sp = nullptr;
    const void* sched_stack_bottom = nullptr;
    size_t sched_stack_size = 0;
    void* sched_fake = nullptr;
    std::vector<std::unique_ptr<Fiber>> fibers;
    std::vector<Fiber*> idle;
    Block block;
    Fiber* current = nullptr;
    size_t page = (size_t) sysconf(_SC_PAGESIZE);

    ~Worker() {
        for (auto& f : fibers) release(f.get());
    }

    void release(Fiber* f) {
#if SPEMU_ASAN
        __asan_unpoison_memory_region(f->stack, f->size);
#endif
        munmap(f->stack - page, f->size + page);
    }

    // A fresh context: the first switch to it pops the initial registers and returns into spemu_fiber_start.
    void reset(Fiber* f) {
#if SPEMU_ASAN
        __asan_unpoison_memory_region(f->stack, f->size);  // frames abandoned by a failed block
#endif
        uint64_t* top = reinterpret_cast<uint64_t*>(f->stack + f->size);  // 16-byte aligned
        uint64_t* sp = top - 9;  // after the 7 slots are popped, the stack is 16-byte aligned (top - 16)
        sp[0] = 0;                                    // r15
        sp[1] = 0;                                    // r14
        sp[2] = reinterpret_cast<uint64_t>(&fiber_main);  // r13
        sp[3] = reinterpret_cast<uint64_t>(f);        // r12
        sp[4] = 0;                                    // rbx
        sp[5] = 0;                                    // rbp: ends frame-pointer unwinding here
        sp[6] = reinterpret_cast<uint64_t>(&spemu_fiber_start);
        sp[7] = sp[8] = 0;
        f->sp = sp;
        f->thread = -1;
    }

    Fiber* new_fiber() {
        const size_t size = (fiber_stack_bytes() + page - 1) / page * page;
        void* m = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, "cuda-emulator: kernel runtime: cannot map a fiber stack of %zu bytes\n", size);
            abort();
        }
        mprotect(m, page, PROT_NONE);  // guard: a stack overflow faults instead of corrupting memory
        auto f = std::make_unique<Fiber>();
        f->stack = static_cast<char*>(m) + page;
        f->size = size;
        reset(f.get());
        fibers.push_back(std::move(f));
        return fibers.back().get();
    }

    Fiber* idle_fiber() {
        if (idle.empty()) return new_fiber();
        Fiber* f = idle.back();
        idle.pop_back();
        return f;
    }

    Worker() {
#if SPEMU_ASAN
        // The scheduler runs on the OS thread's own stack; ASan needs its bounds when a fiber switches back.
        pthread_attr_t attr;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            void* addr = nullptr;
            pthread_attr_getstack(&attr, &addr, &sched_stack_size);
            sched_stack_bottom = addr;
            pthread_attr_destroy(&attr);
        }
#endif
    }

    void enter(Fiber* f) {
        current = f;
        if (f->thread >= 0) threadIdx = block.threads[f->thread].idx;
    }

    // Scheduler -> fiber; returns when the block has nothing left to run (finished, deadlocked or failed).
    void run(Fiber* f) {
        enter(f);
#if SPEMU_ASAN
        __sanitizer_start_switch_fiber(&sched_fake, f->stack, f->size);
#endif
        spemu_switch(&sched_sp, f->sp);
#if SPEMU_ASAN
        __sanitizer_finish_switch_fiber(sched_fake, nullptr, nullptr);
#endif
        current = nullptr;
    }

    // Fiber f waits (or idles): switch straight to the next runnable fiber, or to the scheduler when there is
    // none or the block failed. Returns when f runs again.
    void yield(Fiber* f) {
        Fiber* next = nullptr;
        if (!block.failed) {
            if (block.ready_count) next = block.pop_ready();
            else if (block.next < block.n) next = idle_fiber();
        }
        if (next == f) return;
        if (next) {
            enter(next);
#if SPEMU_ASAN
            __sanitizer_start_switch_fiber(&f->asan_fake, next->stack, next->size);
#endif
            spemu_switch(&f->sp, next->sp);
        } else {
#if SPEMU_ASAN
            __sanitizer_start_switch_fiber(&f->asan_fake, sched_stack_bottom, sched_stack_size);
#endif
            spemu_switch(&f->sp, sched_sp);
        }
#if SPEMU_ASAN
        __sanitizer_finish_switch_fiber(f->asan_fake, nullptr, nullptr);
#endif
    }
};

thread_local Worker* tls_worker = nullptr;
thread_local std::unique_ptr<Worker> tls_worker_owner;

Worker& worker() {
    if (!tls_worker) {
        tls_worker_owner = std::make_unique<Worker>();
        tls_worker = tls_worker_owner.get();
    }
    return *tls_worker;
}

// Ends the block with the failure already in w.block.error (set in a statement of its own: the calling
// frames are abandoned, so no object they hold is ever destroyed).
[[noreturn]] void fail_current(Worker& w) {
    Block& b = w.block;
    b.failed = true;
    Fiber* f = w.current;
    w.yield(f);  // to the scheduler, which abandons the block and resets this fiber: it never resumes here
    abort();
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

void release_barrier(Block& b, ThreadRec* self) {
    unsigned count = 0;
    for (unsigned i = 0; i < b.n; ++i)
        if (b.threads[i].state == T_BARRIER && b.threads[i].value) ++count;
    const unsigned waiting = b.at_barrier;
    b.at_barrier = 0;
    for (unsigned i = 0; i < b.n; ++i) {
        ThreadRec& t = b.threads[i];
        if (t.state != T_BARRIER) continue;
        switch (t.kind) {
            case BAR_COUNT: t.result = count; break;
            case BAR_AND: t.result = count == waiting; break;
            case BAR_OR: t.result = count != 0; break;
            default: t.result = 0; break;
        }
        t.active = b.warp_live[i / 32];
        t.state = T_RUNNING;
        if (&t != self) b.push_ready(t.fiber);
    }
}

bool barrier_complete(const Block& b) { return b.at_barrier > 0 && b.next == b.n && b.at_barrier == b.n - b.exited; }

void fiber_main(Fiber* f) {
    Worker& w = worker();
#if SPEMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    for (;;) {
        Block& b = w.block;
        while (b.next < b.n) {
            const unsigned id = b.next++;
            ThreadRec& t = b.threads[id];
            t.state = T_RUNNING;
            t.fiber = f;
            f->thread = (int) id;
            threadIdx = t.idx;
            b.kernel->invoke(b.params);
            t.state = T_EXITED;
            ++b.exited;
            b.warp_live[id / 32] &= ~(1u << (id & 31));
            if (barrier_complete(b)) release_barrier(b, nullptr);  // exited threads no longer count
        }
        f->thread = -1;
        w.idle.push_back(f);
        w.yield(f);
    }
}

const char* warp_kind_name(int kind) {
    static const char* const names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                        "__ballot_sync", "__any_sync", "__all_sync", "__syncwarp",
                                        "__match_any_sync", "__match_all_sync", "__reduce_add_sync",
                                        "__reduce_min_sync", "__reduce_max_sync", "__reduce_and_sync",
                                        "__reduce_or_sync", "__reduce_xor_sync"};
    return kind >= 0 && kind < WARP_KIND_COUNT ? names[kind] : "?";
}

const char* barrier_kind_name(int kind) {
    static const char* const names[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and", "__syncthreads_or"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}

// Every lane of `mask` (warp starting at thread `base`) has arrived: compute each lane's result.
void complete_warp_op(Worker& w, unsigned base, unsigned mask, ThreadRec* self) {
    Block& b = w.block;
    ThreadRec* lanes = &b.threads[base];
    const int kind = self->kind;
    for (unsigned m = mask; m; m &= m - 1) {
        const int l = __builtin_ctz(m);
        if (lanes[l].kind != kind) {
            b.error = format("warp operation lanes disagree in kernel %s, block (%u,%u,%u), warp %u: lane %d at %s, "
                             "lane %d at %s (mask 0x%08x)",
                             b.kernel->name, blockIdx.x, blockIdx.y, blockIdx.z, base / 32, (int) (self - lanes),
                             warp_kind_name(kind), l, warp_kind_name(lanes[l].kind), mask);
            fail_current(w);
        }
    }
    unsigned long long ballot = 0;
    for (unsigned m = mask; m; m &= m - 1) {
        const int l = __builtin_ctz(m);
        if (lanes[l].value) ballot |= 1ull << l;
    }
    const bool is_signed = self->c != 0;
    auto less = [is_signed](unsigned long long x, unsigned long long y) {
        return is_signed ? (int) (unsigned) x < (int) (unsigned) y : (unsigned) x < (unsigned) y;
    };
    unsigned long long reduced = 0;
    bool first = true;
    bool all_equal = true;
    for (unsigned m = mask; m; m &= m - 1) {
        const unsigned long long v = lanes[__builtin_ctz(m)].value;
        if (first) { reduced = v; first = false; continue; }
        all_equal = all_equal && v == lanes[__builtin_ctz(mask)].value;
        switch (kind) {
            case WARP_REDUCE_ADD: reduced = (unsigned) (reduced + v); break;
            case WARP_REDUCE_MIN: if (less(v, reduced)) reduced = v; break;
            case WARP_REDUCE_MAX: if (less(reduced, v)) reduced = v; break;
            case WARP_REDUCE_AND: reduced &= v; break;
            case WARP_REDUCE_OR: reduced |= v; break;
            case WARP_REDUCE_XOR: reduced ^= v; break;
            default: break;
        }
    }
    for (unsigned m = mask; m; m &= m - 1) {
        const int lane = __builtin_ctz(m);
        ThreadRec& t = lanes[lane];
        switch (kind) {
            case WARP_SHFL_IDX: case WARP_SHFL_UP: case WARP_SHFL_DOWN: case WARP_SHFL_XOR: {
                // PTX shfl.sync: segmask = c[12:8], clamp = c[4:0]
                const int segmask = (t.c >> 8) & 0x1f, clamp = t.c & 0x1f;
                const int max_lane = (lane & segmask) | (clamp & ~segmask);
                const int min_lane = lane & segmask;
                int j;
                bool in;
                switch (kind) {
                    case WARP_SHFL_UP: j = lane - t.b; in = j >= max_lane; break;
                    case WARP_SHFL_DOWN: j = lane + t.b; in = j <= max_lane; break;
                    case WARP_SHFL_XOR: j = lane ^ (t.b & 0x1f); in = j <= max_lane; break;
                    default: j = min_lane | (t.b & 0x1f & ~segmask); in = j <= max_lane; break;
                }
                if (!in) j = lane;
                // Reading a lane outside the mask is undefined on the GPU: give NaN bytes, not a plausible value.
                t.result = (mask >> j & 1) ? lanes[j].value : ~0ull;
                break;
            }
            case WARP_BALLOT: t.result = ballot; break;
            case WARP_ANY: t.result = ballot != 0; break;
            case WARP_ALL: t.result = ballot == mask; break;
            case WARP_SYNC: t.result = 0; break;
            case WARP_MATCH_ANY: {
                unsigned same = 0;
                for (unsigned k = mask; k; k &= k - 1)
                    if (lanes[__builtin_ctz(k)].value == t.value) same |= 1u << __builtin_ctz(k);
                t.result = same;
                break;
            }
            case WARP_MATCH_ALL: t.result = all_equal ? mask : 0; break;
            default: t.result = reduced; break;
        }
        t.active = b.warp_live[base / 32];
        t.state = T_RUNNING;
        if (&t != self) b.push_ready(t.fiber);
    }
    b.warp_waiting[base / 32] -= (uint8_t) __builtin_popcount(mask);
}

// "0-15, 17, 20-31" for the threads whose state matches.
template <class Pred>
std::string ranges(const Block& b, Pred pred) {
    std::string s;
    for (unsigned i = 0; i < b.n;) {
        if (!pred(b.threads[i])) { ++i; continue; }
        unsigned j = i;
        while (j + 1 < b.n && pred(b.threads[j + 1])) ++j;
        if (!s.empty()) s += ", ";
        s += j == i ? std::to_string(i) : std::to_string(i) + "-" + std::to_string(j);
        i = j + 1;
    }
    return s;
}

std::string deadlock_message(const Block& b) {
    std::string m = format("deadlock in kernel %s, block (%u,%u,%u) of (%u,%u,%u) threads (%u,%u,%u): ", b.kernel->name,
                           blockIdx.x, blockIdx.y, blockIdx.z, gridDim.x, gridDim.y, gridDim.z, blockDim.x,
                           blockDim.y, blockDim.z);
    bool first = true;
    for (int k = 0; k < 4; ++k) {
        const std::string r = ranges(b, [k](const ThreadRec& t) { return t.state == T_BARRIER && t.kind == k; });
        if (r.empty()) continue;
        m += format("%sthreads %s waiting at %s", first ? "" : "; ", r.c_str(), barrier_kind_name(k));
        first = false;
    }
    // Warp waits, grouped by operation and mask.
    std::vector<std::pair<int, unsigned>> seen;
    for (unsigned i = 0; i < b.n; ++i) {
        const ThreadRec& t = b.threads[i];
        if (t.state != T_WARP) continue;
        const std::pair<int, unsigned> key{t.kind, t.mask};
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
        seen.push_back(key);
        const std::string r = ranges(b, [key](const ThreadRec& u) {
            return u.state == T_WARP && u.kind == key.first && u.mask == key.second;
        });
        m += format("%sthreads %s waiting at %s(mask 0x%08x)", first ? "" : "; ", r.c_str(), warp_kind_name(key.first),
                    key.second);
        first = false;
    }
    const std::string ex = ranges(b, [](const ThreadRec& t) { return t.state == T_EXITED; });
    if (!ex.empty()) m += "; threads " + ex + " have exited";
    if (b.at_barrier > 0 && b.exited > 0) m += " (a __syncthreads not reached by every thread that has not exited)";
    return m;
}

// Runs one block (blockIdx set by the caller); false with b.error set on failure.
bool run_block(Worker& w) {
    Block& b = w.block;
    unsigned i = 0;
    for (unsigned z = 0; z < blockDim.z; ++z)
        for (unsigned y = 0; y < blockDim.y; ++y)
            for (unsigned x = 0; x < blockDim.x; ++x, ++i) {
                ThreadRec& t = b.threads[i];
                t.idx = make_uint3(x, y, z);
                t.state = T_UNSTARTED;
                t.fiber = nullptr;
            }
    b.next = 0;
    b.exited = 0;
    b.at_barrier = 0;
    b.failed = false;
    b.ready_head = b.ready_count = 0;
    std::fill(b.warp_waiting.begin(), b.warp_waiting.end(), 0);
    for (unsigned w = 0; w < b.warp_live.size(); ++w) {
        const unsigned lanes = std::min(32u, b.n - 32 * w);
        b.warp_live[w] = lanes == 32 ? ~0u : (1u << lanes) - 1;
    }
    for (unsigned k = 0; k < b.n; ++k) b.threads[k].active = b.warp_live[k / 32];
    if (b.dynamic_bytes) memset(b.dynamic, 0xff, b.dynamic_bytes);
    for (;;) {
        if (b.ready_count) w.run(b.pop_ready());
        else if (b.next < b.n) w.run(w.idle_fiber());
        else break;
        if (b.failed) break;
    }
    if (!b.failed && b.exited == b.n) return true;
    if (!b.failed) b.error = deadlock_message(b);
    // Abandon the block's suspended threads: their fibers start afresh.
    std::vector<Fiber*> busy;
    for (unsigned k = 0; k < b.n; ++k) {
        Fiber* f = b.threads[k].fiber;
        if (f && f->thread == (int) k) busy.push_back(f);
    }
    for (Fiber* f : busy) {
        w.reset(f);
        w.idle.push_back(f);
    }
    return false;
}

// OS threads per grid: 1 unless SPECTRALPEFT_EMU_KERNEL_THREADS says more. One keeps every run of a kernel
// bit-identical, floating-point atomics included, so a failing test reproduces; more only pay on idle cores.
int worker_threads() {
    static const int n = [] {
        const char* e = getenv("SPECTRALPEFT_EMU_KERNEL_THREADS");
        return e && *e ? std::max(1, std::min(64, atoi(e))) : 1;
    }();
    return n;
}

struct Grid {
    const EmuKernelInfo* kernel;
    const EmuLaunch* launch;
    void** params;
    unsigned long long blocks;
    std::atomic<unsigned long long> next{0};
    std::atomic<bool> failed{false};
    std::mutex mutex;
    unsigned long long error_block = ~0ull;
    std::string error;
};

void run_blocks(Grid& g) {
    Worker& w = worker();
    Block& b = w.block;
    const EmuLaunch& l = *g.launch;
    blockDim = make_uint3(l.block[0], l.block[1], l.block[2]);
    gridDim = make_uint3(l.grid[0], l.grid[1], l.grid[2]);
    b.kernel = g.kernel;
    b.params = g.params;
    b.n = l.block[0] * l.block[1] * l.block[2];
    if (b.threads.size() < b.n) b.threads.resize(b.n);
    if (b.ready.size() < b.n + 1) b.ready.resize(b.n + 1);
    b.warp_waiting.resize((b.n + 31) / 32);
    b.warp_live.resize((b.n + 31) / 32);
    // Exactly the launch's size (malloc aligns to 16), so ASan reports any access past it.
    std::unique_ptr<unsigned char, void (*)(void*)> dynamic(static_cast<unsigned char*>(malloc(l.dynamic_shared_bytes)),
                                                            free);
    b.dynamic = dynamic.get();
    b.dynamic_bytes = l.dynamic_shared_bytes;
    const unsigned long long per_z = (unsigned long long) l.grid[0] * l.grid[1];
    for (;;) {
        if (g.failed.load(std::memory_order_relaxed)) break;
        const unsigned long long k = g.next.fetch_add(1, std::memory_order_relaxed);
        if (k >= g.blocks) break;
        blockIdx = make_uint3((unsigned) (k % l.grid[0]), (unsigned) (k % per_z / l.grid[0]), (unsigned) (k / per_z));
        if (!run_block(w)) {
            std::lock_guard<std::mutex> lock(g.mutex);
            if (k < g.error_block) {
                g.error_block = k;
                g.error = b.error;
            }
            g.failed = true;
            break;
        }
    }
    b.dynamic = nullptr;
    b.dynamic_bytes = 0;
}

}  // namespace

void register_kernel(const EmuKernelInfo& info) { registry().push_back(info); }

int block_sync(int kind, int pred) {
    Worker& w = *tls_worker;
    Block& b = w.block;
    Fiber* f = w.current;
    ThreadRec& t = b.threads[f->thread];
    t.state = T_BARRIER;
    t.kind = (int8_t) kind;
    t.value = pred != 0;
    ++b.at_barrier;
    if (barrier_complete(b)) release_barrier(b, &t);
    else w.yield(f);
    return (int) t.result;
}

unsigned long long warp_op(int kind, unsigned mask, unsigned long long value, int bval, int c) {
    Worker& w = *tls_worker;
    Block& b = w.block;
    Fiber* f = w.current;
    const unsigned id = (unsigned) f->thread;
    const unsigned lane = id & 31, base = id & ~31u;
    ThreadRec& t = b.threads[id];
    if (!(mask >> lane & 1)) {
        b.error = format("kernel %s, block (%u,%u,%u), thread %u: %s with mask 0x%08x that does not name the "
                         "calling lane %u",
                         b.kernel->name, blockIdx.x, blockIdx.y, blockIdx.z, id, warp_kind_name(kind), mask, lane);
        fail_current(w);
    }
    if (kind <= WARP_SHFL_XOR) {
        const int width = 32 - ((c >> 8) & 0xff);
        if (width < 1 || width > 32 || (width & (width - 1))) {
            b.error = format("kernel %s, block (%u,%u,%u), thread %u: %s with width %d (must be a power of two "
                             "up to 32)",
                             b.kernel->name, blockIdx.x, blockIdx.y, blockIdx.z, id, warp_kind_name(kind), width);
            fail_current(w);
        }
    }
    t.state = T_WARP;
    t.kind = (int8_t) kind;
    t.mask = mask;
    t.value = value;
    t.b = bval;
    t.c = c;
    // Only when enough lanes wait is it worth looking at which.
    bool complete = ++b.warp_waiting[base / 32] >= __builtin_popcount(mask);
    for (unsigned m = complete ? mask : 0; m; m &= m - 1) {
        const unsigned k = base + __builtin_ctz(m);
        if (k >= b.n || b.threads[k].state != T_WARP || b.threads[k].mask != mask) {
            complete = false;
            break;
        }
    }
    if (complete) complete_warp_op(w, base, mask, &t);
    else w.yield(f);
    return t.result;
}

// Lanes run one at a time here, so "not exited now" would drop lanes that merely ran ahead; a converged
// warp on the GPU sees every lane that was still there at its last synchronization.
unsigned active_mask() {
    Worker& w = *tls_worker;
    return w.block.threads[w.current->thread].active;
}

void* dynamic_shared() { return tls_worker->block.dynamic; }

// A kernel's access through a pointer its type's alignment does not divide (compiled with -fsanitize=alignment, see
// build-module.sh): the GPU stops such a kernel with cudaErrorMisalignedAddress; here the block fails with the
// access's place, as any other checker failure of a kernel does. The data's layout is the sanitizer ABI's
// (__ubsan_handle_type_mismatch_v1: the source location, the type's descriptor, log2 of the alignment, the kind).
void misaligned(const void* data, const void* pointer) {
    struct Location { const char* file; uint32_t line, column; };
    struct TypeMismatch { Location at; const void* type; unsigned char log_alignment, kind; };
    const TypeMismatch& m = *static_cast<const TypeMismatch*>(data);
    Worker* w = tls_worker;
    if (!w || !w->current) {
        fprintf(stderr, "cuda-emulator: misaligned access at 0x%llx (%u-byte alignment) outside a kernel, %s:%u\n",
                (unsigned long long) (uintptr_t) pointer, 1u << m.log_alignment, m.at.file, m.at.line);
        abort();
    }
    Block& b = w->block;
    b.error = format("kernel %s, block (%u,%u,%u), thread %u: misaligned address 0x%llx for an access that needs "
                     "%u-byte alignment at %s:%u",
                     b.kernel->name, blockIdx.x, blockIdx.y, blockIdx.z, (unsigned) w->current->thread,
                     (unsigned long long) (uintptr_t) pointer, 1u << m.log_alignment, m.at.file, m.at.line);
    fail_current(*w);
}

}  // namespace spemu

// The sanitizer's entry points for a failed alignment check, recoverable and not (only kernels are instrumented).
// (The pointer is a void* as GCC declares these built-ins, which -std=gnu++17 holds a program to.)
extern "C" void __ubsan_handle_type_mismatch_v1(void* data, void* pointer) { spemu::misaligned(data, pointer); }
extern "C" void __ubsan_handle_type_mismatch_v1_abort(void* data, void* pointer) { spemu::misaligned(data, pointer); }

extern "C" {

EMU_EXPORT int emu_kernel_count() { return (int) spemu::registry().size(); }

EMU_EXPORT const EmuKernelInfo* emu_kernel_info(int index) {
    auto& r = spemu::registry();
    return index >= 0 && (size_t) index < r.size() ? &r[index] : nullptr;
}

EMU_EXPORT int emu_run_grid(const EmuKernelInfo* kernel, const EmuLaunch* launch, void** params,
                            void (*report)(const char* message)) {
    using namespace spemu;
    const EmuLaunch& l = *launch;
    const unsigned long long threads = (unsigned long long) l.block[0] * l.block[1] * l.block[2];
    const unsigned long long blocks = (unsigned long long) l.grid[0] * l.grid[1] * l.grid[2];
    if (threads == 0 || threads > 1024 || blocks == 0) {
        const std::string m = format("kernel %s: invalid launch, grid (%u,%u,%u), block (%u,%u,%u) (a block has 1 to "
                                     "1024 threads, every dimension at least 1)",
                                     kernel->name, l.grid[0], l.grid[1], l.grid[2], l.block[0], l.block[1], l.block[2]);
        report(m.c_str());
        return 1;
    }
    Grid g;
    g.kernel = kernel;
    g.launch = launch;
    g.params = params;
    g.blocks = blocks;
    // Several OS threads only where the grid is large enough to pay for starting them.
    int n = worker_threads();
    if (blocks * threads < (1ull << 16)) n = 1;
    n = (int) std::min<unsigned long long>(n, blocks);
    std::vector<std::thread> helpers;
    for (int i = 1; i < n; ++i) helpers.emplace_back([&g] { run_blocks(g); });
    run_blocks(g);
    for (auto& t : helpers) t.join();
    if (g.failed) {
        report(g.error.c_str());
        return 1;
    }
    return 0;
}

// Diagnostics: the most stack any fiber of the calling OS thread has touched (pages resident), in bytes,
// and the fiber stack size; for sizing SPECTRALPEFT_EMU_FIBER_STACK_KB.
EMU_EXPORT size_t spemu_fiber_stack_high_water(size_t* stack_bytes) {
    spemu::Worker& w = spemu::worker();
    if (stack_bytes) *stack_bytes = spemu::fiber_stack_bytes();
    size_t most = 0;
    for (auto& f : w.fibers) {
        std::vector<unsigned char> resident(f->size / w.page);
        if (mincore(f->stack, f->size, resident.data()) != 0) continue;
        size_t lowest = f->size;
        for (size_t i = 0; i < resident.size(); ++i)
            if (resident[i] & 1) { lowest = i * w.page; break; }
        most = std::max(most, f->size - lowest);
    }
    return most;
}

}  // extern "C"
