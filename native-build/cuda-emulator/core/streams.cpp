// Streams and events. Two modes (SPECTRALPEFT_EMU_STREAMS):
//   immediate  work runs when it is queued, on the queuing thread, one piece at a time process-wide;
//   threaded   each stream is a worker thread that runs its queue in order, waiting where CUDA would
//              (events, the legacy default stream's implicit synchronization).
// In both modes every piece of work carries a vector clock of what it is ordered after (stream order,
// event waits, the legacy stream's implicit synchronization, and whatever the host had waited for when
// it queued the work), and its device accesses are checked against earlier conflicting accesses on other
// streams (memory.cpp): an unordered pair is reported when the second is queued, whichever mode runs it.
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include "core.h"

namespace emu {

namespace {

// Queues and `done` counters (threaded mode). Never destroyed: stream workers may still be waiting on the
// condition variable when the process exits and static destructors run.
std::mutex& g_exec_mutex = *new std::mutex();
std::condition_variable& g_exec_cv = *new std::condition_variable();

std::vector<Stream*>& streams() {    // every stream ever made; never deleted (events may point at them)
    static auto* v = new std::vector<Stream*>();
    return *v;
}
std::unordered_set<Stream*>& live_streams() {
    static auto* s = new std::unordered_set<Stream*>();
    return *s;
}
std::unordered_set<Timeline>& retired() {
    static auto* s = new std::unordered_set<Timeline>();
    return *s;
}
Timeline g_next_timeline = 1;
Stream* g_legacy = nullptr;

void join_live(Clock& into, const Clock& from) {
    for (const auto& [t, s] : from.seen) {
        if (retired().count(t)) continue;
        uint64_t& mine = into.seen[t];
        if (s > mine) mine = s;
    }
}

void worker_loop(Stream* s) {
    std::unique_lock<std::mutex> lk(g_exec_mutex);
    for (;;) {
        g_exec_cv.wait(lk, [&] { return s->stop || !s->queue.empty(); });
        if (s->queue.empty()) return;  // stop requested and drained
        Op op = std::move(s->queue.front());
        s->queue.pop_front();
        g_exec_cv.wait(lk, [&] {
            for (auto& [other, seq] : op.waits)
                if (other->done < seq) return false;
            return true;
        });
        lk.unlock();
        if (op.work) op.work();
        lk.lock();
        s->done = op.seq;
        g_exec_cv.notify_all();
    }
}

void retire(Stream* s) {
    if (s->retired) return;
    s->retired = true;
    retired().insert(s->timeline);
    host_clock().seen.erase(s->timeline);
    s->clock.seen.clear();
}

}  // namespace

std::recursive_mutex& lock() {
    static auto* m = new std::recursive_mutex();
    return *m;
}

bool threaded_mode() {
    static const bool threaded = [] {
        const char* m = getenv("SPECTRALPEFT_EMU_STREAMS");
        if (m == nullptr || strcmp(m, "immediate") == 0 || *m == 0) return false;
        if (strcmp(m, "threaded") == 0) return true;
        note("SPECTRALPEFT_EMU_STREAMS=%s is neither immediate nor threaded; using immediate", m);
        return false;
    }();
    return threaded;
}

const char* stream_mode() { return threaded_mode() ? "threaded" : "immediate"; }

bool is_retired(Timeline t) { return retired().count(t) != 0; }

Clock& host_clock() {
    static auto* c = new Clock();
    return *c;
}

Stream* legacy_stream() {
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (g_legacy == nullptr) {
        g_legacy = new Stream();
        g_legacy->timeline = g_next_timeline++;
        g_legacy->legacy = true;
        streams().push_back(g_legacy);
    }
    return g_legacy;
}

Stream* create_stream(bool blocking) {
    std::lock_guard<std::recursive_mutex> guard(lock());
    Stream* s = new Stream();
    s->timeline = g_next_timeline++;
    s->blocking = blocking;
    streams().push_back(s);
    live_streams().insert(s);
    return s;
}

Stream* stream_of(CUstream handle) {
    uintptr_t h = (uintptr_t) handle;
    if (h <= 2) return legacy_stream();  // 0, CU_STREAM_LEGACY; the per-thread stream is treated as legacy
    std::lock_guard<std::recursive_mutex> guard(lock());
    Stream* s = (Stream*) handle;
    return live_streams().count(s) ? s : nullptr;
}

bool valid_stream(void* stream) { return stream_of((CUstream) stream) != nullptr; }

bool enqueue_op(Stream* s, const std::string& what, std::vector<Access> accesses, std::function<void()> work,
                std::vector<std::pair<Stream*, uint64_t>> waits, uint64_t* seq_out) {
    std::unique_lock<std::recursive_mutex> guard(lock());
    Clock c = s->clock;
    join_live(c, host_clock());
    if (s->legacy) {
        for (Stream* b : live_streams()) {
            if (b->blocking && b->enqueued > 0) {
                join_live(c, b->clock);
                waits.emplace_back(b, b->enqueued);
            }
        }
    } else if (s->blocking) {
        Stream* l = legacy_stream();
        if (l->enqueued > 0) {
            join_live(c, l->clock);
            waits.emplace_back(l, l->enqueued);
        }
    }
    uint64_t seq = ++s->enqueued;
    c.seen[s->timeline] = seq;
    bool ok = true;
    for (const Access& a : accesses) {
        if (!check_and_record(a, s->timeline, seq, c, what)) {
            ok = false;
            break;
        }
    }
    s->clock = std::move(c);
    if (seq_out) *seq_out = seq;
    if (!ok) work = nullptr;  // the sequence number is still consumed, by an empty op
    if (!threaded_mode()) {
        if (work) work();     // under the lock: one piece of work at a time, in queuing order
        s->done = seq;
        return ok;
    }
    {
        // Queued under the bookkeeping lock, so the queue's order is the order of the sequence numbers even
        // when several threads queue on one stream.
        std::lock_guard<std::mutex> lk(g_exec_mutex);
        if (!s->worker.joinable()) s->worker = std::thread(worker_loop, s);
        s->queue.push_back(Op{seq, std::move(waits), std::move(work), what});
    }
    guard.unlock();
    g_exec_cv.notify_all();
    return ok;
}

bool enqueue(void* stream, const std::string& what, std::vector<Access> accesses, std::function<void()> work) {
    if (!has_current_context()) {
        error("%s: no CUDA context is current on this thread", what.c_str());
        return false;
    }
    Stream* s = stream_of((CUstream) stream);
    if (s == nullptr) {
        error("%s: stream %p is not a live stream", what.c_str(), stream);
        return false;
    }
    return enqueue_op(s, what, std::move(accesses), std::move(work), {}, nullptr);
}

void wait_stream(Stream* s) {
    uint64_t target;
    Clock snapshot;
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        target = s->enqueued;
        snapshot = s->clock;
    }
    if (threaded_mode()) {
        std::unique_lock<std::mutex> lk(g_exec_mutex);
        g_exec_cv.wait(lk, [&] { return s->done >= target; });
    }
    std::lock_guard<std::recursive_mutex> guard(lock());
    join_live(host_clock(), snapshot);
    if (s->destroyed && host_clock().at(s->timeline) >= s->enqueued) retire(s);
}

void synchronize(void* stream) {
    if (Stream* s = stream_of((CUstream) stream)) wait_stream(s);
}

bool stream_idle(Stream* s) {
    uint64_t target;
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        target = s->enqueued;
    }
    std::lock_guard<std::mutex> lk(g_exec_mutex);
    return s->done >= target;
}

void wait_all_streams() {
    std::vector<Stream*> all;
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        all = streams();
    }
    for (Stream* s : all)
        if (!s->retired) wait_stream(s);
}

void destroy_stream(Stream* s) {
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        s->destroyed = true;
        live_streams().erase(s);
        if (host_clock().at(s->timeline) >= s->enqueued) retire(s);
    }
    std::thread worker;
    {
        std::lock_guard<std::mutex> lk(g_exec_mutex);
        s->stop = true;
        worker = std::move(s->worker);
    }
    g_exec_cv.notify_all();
    if (worker.joinable()) worker.join();  // drains the queue first, as CUDA finishes a destroyed stream's work
}

void record_event(Event* e, Stream* s) {
    std::lock_guard<std::recursive_mutex> guard(lock());
    uint64_t seq = 0;
    Event* target = e;
    enqueue_op(s, "cuEventRecord", {}, [target] {
        using namespace std::chrono;
        target->time_ms = duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
    }, {}, &seq);
    e->stream = s;
    e->seq = seq;
    e->clock = s->clock;
}

void wait_event_on_stream(Stream* s, Event* e) {
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (e->stream == nullptr) return;  // never recorded: nothing to wait for
    join_live(s->clock, e->clock);
    enqueue_op(s, "cuStreamWaitEvent", {}, nullptr, {{e->stream, e->seq}}, nullptr);
}

void wait_event_on_host(Event* e) {
    Stream* s;
    uint64_t seq;
    Clock snapshot;
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        s = e->stream;
        seq = e->seq;
        snapshot = e->clock;
    }
    if (s == nullptr) return;
    if (threaded_mode()) {
        std::unique_lock<std::mutex> lk(g_exec_mutex);
        g_exec_cv.wait(lk, [&] { return s->done >= seq; });
    }
    std::lock_guard<std::recursive_mutex> guard(lock());
    join_live(host_clock(), snapshot);
}

bool event_complete(Event* e) {
    std::lock_guard<std::mutex> lk(g_exec_mutex);
    return e->stream == nullptr || e->stream->done >= e->seq;
}

void shutdown_streams() {
    wait_all_streams();
    std::vector<Stream*> owned;
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        owned.assign(live_streams().begin(), live_streams().end());
    }
    for (Stream* s : owned) destroy_stream(s);
    std::thread worker;
    {
        std::lock_guard<std::mutex> lk(g_exec_mutex);
        if (g_legacy != nullptr) {
            g_legacy->stop = true;
            worker = std::move(g_legacy->worker);
        }
    }
    g_exec_cv.notify_all();
    if (worker.joinable()) worker.join();
    std::lock_guard<std::mutex> lk(g_exec_mutex);
    if (g_legacy != nullptr) g_legacy->stop = false;
}

}  // namespace emu
