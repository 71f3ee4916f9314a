// Internals of the emulated driver (libcuda.so.1), shared by its translation units: the device, the
// primary context, device memory and its checks, streams and events with their ordering checker.
#pragma once

#include <cuda.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../emu.h"

namespace emu {

// ---------------------------------------------------------------- device facts (an H100 SXM5)

constexpr int kComputeMajor = 9;
constexpr int kComputeMinor = 0;
constexpr int kSmCount = 132;
constexpr size_t kTotalMemory = 85520809984ull;  // 79.6 GiB, as an H100 80GB HBM3 reports
constexpr int kL2Bytes = 50331648;                // 48 MiB
constexpr int kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxGridX = 2147483647u;
constexpr unsigned kMaxGridYZ = 65535;
constexpr size_t kSharedPerBlock = 48 * 1024;
constexpr size_t kSharedPerBlockOptin = 232448;   // 227 KiB
constexpr int kDriverVersion = 13000;
extern const char* const kDeviceName;

// ---------------------------------------------------------------- errors

/** The status the next API call returns for an error reported since (0: none), cleared when taken. */
CUresult take_pending_error();

/** For a call that fails at once because of an error it reported: `code`, with the report consumed. */
inline CUresult failed(CUresult code) {
    take_pending_error();
    return code;
}

// ---------------------------------------------------------------- ordering (vector clocks)

/** A timeline: one per stream (the legacy default stream included). */
using Timeline = uint32_t;

/** What a piece of work has seen complete: timeline → last sequence number ordered before it. */
struct Clock {
    std::unordered_map<Timeline, uint64_t> seen;
    void join(const Clock& other);
    uint64_t at(Timeline t) const {
        auto it = seen.find(t);
        return it == seen.end() ? 0 : it->second;
    }
};

// ---------------------------------------------------------------- memory

/** One device range's access by one piece of work, kept per allocation for the ordering check. */
struct AccessRecord {
    Timeline timeline;
    uint64_t seq;
    uintptr_t begin, end;
    bool write;
    std::string what;
};

struct Allocation {
    uintptr_t base = 0;
    size_t size = 0;
    bool stream_ordered = false;  // cuMemAllocAsync
    bool free_queued = false;     // cuMemFreeAsync queued: any further use is a use after free
    uint64_t serial = 0;          // allocation number, for reports
    std::vector<AccessRecord> history;
};

// ---------------------------------------------------------------- streams

struct Op {
    uint64_t seq = 0;
    std::vector<std::pair<struct Stream*, uint64_t>> waits;  // run only after these have run
    std::function<void()> work;
    std::string what;
};

struct Stream {
    Timeline timeline = 0;
    bool blocking = true;   // synchronizes with the legacy default stream
    bool legacy = false;
    bool destroyed = false;
    bool retired = false;   // destroyed and every op seen by the host: ordered before all later work
    uint64_t enqueued = 0;  // seq of the last op queued
    Clock clock;            // what the next op has seen
    // execution
    std::deque<Op> queue;   // threaded mode
    uint64_t done = 0;      // seq of the last op run
    std::thread worker;
    bool stop = false;
};

struct Event {
    unsigned flags = 0;
    Stream* stream = nullptr;  // where it was last recorded (nullptr: never)
    uint64_t seq = 0;
    Clock clock;
    std::atomic<double> time_ms{0};
    bool destroyed = false;
};

// The one lock of the core's bookkeeping (memory, streams, clocks). Work itself runs without it.
std::recursive_mutex& lock();

Stream* stream_of(CUstream handle);  // nullptr: invalid; the legacy stream for 0, 1, 2
Stream* legacy_stream();
Stream* create_stream(bool blocking);
void destroy_stream(Stream* s);
void wait_stream(Stream* s);             // host waits for everything queued so far; joins its clock
void wait_all_streams();                 // cuCtxSynchronize
bool stream_idle(Stream* s);
void record_event(Event* e, Stream* s);
void wait_event_on_stream(Stream* s, Event* e);
void wait_event_on_host(Event* e);
bool event_complete(Event* e);
void shutdown_streams();                 // context release: drain and join every worker

/** A destroyed stream whose every op the host has waited for: ordered before anything queued since. */
bool is_retired(Timeline t);

/** Host-side knowledge (cuStreamSynchronize and friends join into it). Lock held. */
Clock& host_clock();

/** Allocation registry. Lock held for all of these. */
Allocation* find_allocation(uintptr_t address, bool allow_end);  // live allocation containing address
std::string describe_address(uintptr_t address);                 // for reports: nearest / freed
void* allocate_device(size_t bytes, bool stream_ordered);
CUresult free_device(uintptr_t base, const char* call);             // synchronous free
Allocation* lookup_base(uintptr_t base);
/** Checks an access of work about to be queued at (timeline, seq) with clock c; records it. */
bool check_and_record(const Access& a, Timeline t, uint64_t seq, const Clock& c, const std::string& work);
void release_all_memory(const char* why);  // reports leaks
size_t device_bytes_in_use();
size_t pool_used_bytes();
size_t pool_used_high();
void reset_pool_used_high();
void release_async_allocation(uintptr_t base);  // runs when a queued free executes

bool threaded_mode();

/** Enqueue with a prepared wait list (events); accesses already checked. */
bool enqueue_op(Stream* s, const std::string& what, std::vector<Access> accesses, std::function<void()> work,
                std::vector<std::pair<Stream*, uint64_t>> extra_waits, uint64_t* seq_out);

}  // namespace emu
