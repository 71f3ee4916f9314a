// The CUDA emulator's internal interface: what libcuda.so.1 (the core: contexts, device memory, streams,
// the checkers) offers the other stand-ins (libcudart.so.13, libcufft.so.12, libcublas.so.13), and the
// contract between the core and the kernel module (libspectralpeft-kernels.so: kernels/*.cu built by g++).
//
// Device memory is host memory here: a device pointer is a host address that the core handed out, so
// stand-ins and kernels dereference it directly. What they must do instead of touching memory at once is
// queue the work on its stream with emu::enqueue, naming every device range the work reads or writes:
// the core checks the ranges against the live allocations when the work is queued, orders the work as
// CUDA orders streams, and checks that conflicting accesses from different streams are ordered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#define EMU_EXPORT __attribute__((visibility("default")))

namespace emu {

/** A device range one piece of queued work touches. `what` names it in reports ("cufftExecR2C idata"). */
struct Access {
    const void* ptr;
    size_t bytes;
    bool write;
    std::string what;
};

/**
 * Records a checker error: printed to standard error as "cuda-emulator: error: <message>", counted, and
 * returned as CUDA_ERROR_ILLEGAL_ADDRESS (700) by the next driver or runtime call that returns a status
 * (so JCuda throws in the Java test that caused it). With SPECTRALPEFT_EMU_ABORT=1 the process aborts
 * instead, with a backtrace. Thread-safe. printf-style.
 */
EMU_EXPORT void error(const char* format, ...) __attribute__((format(printf, 1, 2)));

/** Printed as "cuda-emulator: <message>" (not an error: a call the emulator does not implement, ...). */
EMU_EXPORT void note(const char* format, ...) __attribute__((format(printf, 1, 2)));

/**
 * Whether [ptr, ptr + bytes) lies inside one live device allocation. If not, reports an error naming
 * `what` and the nearest allocation (or that the range was freed) and returns false. bytes == 0 checks
 * only that ptr is inside or one past the end of an allocation.
 */
EMU_EXPORT bool check_range(const void* ptr, size_t bytes, const std::string& what);

/**
 * Queues `work` on `stream` (a CUstream/cudaStream_t value; 0 and CU_STREAM_LEGACY = 1 are the legacy
 * default stream, CU_STREAM_PER_THREAD = 2 the per-thread one). The accesses are checked first (each
 * must lie in a live allocation; conflicting accesses on other streams must be ordered before this work
 * by stream order, events or synchronization); if a check fails, the error is reported and the work is
 * not queued, and enqueue returns false. Otherwise the work runs in stream order: at once on the calling
 * thread in the "immediate" stream mode, on the stream's worker thread in the "threaded" mode
 * (SPECTRALPEFT_EMU_STREAMS=immediate|threaded). Needs a current context (returns false, reporting, if
 * none). `what` names the work in reports.
 */
EMU_EXPORT bool enqueue(void* stream, const std::string& what, std::vector<Access> accesses,
                        std::function<void()> work);

/** Blocks until everything queued on `stream` so far has run (cuStreamSynchronize). */
EMU_EXPORT void synchronize(void* stream);

/** Whether `stream` is 0, 1, 2 or a live stream of the current context. */
EMU_EXPORT bool valid_stream(void* stream);

/** Overwrites [ptr, ptr + bytes) with a garbage pattern (work areas, C2R inputs cuFFT may destroy). */
EMU_EXPORT void scribble(void* ptr, size_t bytes);

/** Whether a context is current on the calling thread (the runtime-API stand-ins make the primary one current). */
EMU_EXPORT bool has_current_context();

/** Makes device 0's primary context current on this thread, retaining it once per process (runtime API). */
EMU_EXPORT void ensure_runtime_context();

/** "immediate" or "threaded". */
EMU_EXPORT const char* stream_mode();

}  // namespace emu

// ------------------------------------------------------------------------------------------------
// The kernel module: libspectralpeft-kernels.so, every kernels/*.cu compiled by g++ with the kernel
// runtime (fibers for threads, __syncthreads, __shared__, warp shuffles and votes, atomics). The core
// dlopens it and looks up these C functions.

extern "C" {

/** How a kernel parameter is used, from its C++ type: a value, a pointer to const, a pointer to non-const. */
enum EmuParamKind : int { EMU_PARAM_VALUE = 0, EMU_PARAM_CONST_POINTER = 1, EMU_PARAM_POINTER = 2 };

struct EmuKernelInfo {
    const char* name;          // the extern "C" name, equal to the PTX .entry name
    int param_count;
    const size_t* param_sizes; // sizeof each parameter, in order
    const int* param_kinds;    // EmuParamKind of each parameter
    // Runs the kernel body for the current (block, thread), unpacking params (cuLaunchKernel's
    // kernelParams: params[i] points at parameter i's value).
    void (*invoke)(void** params);
};

struct EmuLaunch {
    unsigned grid[3];
    unsigned block[3];
    size_t dynamic_shared_bytes;
};

/** Number of kernels in the module, and each one's description (valid for the module's lifetime). */
EMU_EXPORT int emu_kernel_count();
EMU_EXPORT const EmuKernelInfo* emu_kernel_info(int index);

/**
 * Runs a whole grid: every block, each block's threads as fibers (so barriers, shared memory and warp
 * operations behave as on the GPU). Returns 0, or nonzero after calling report(message) once for a
 * failure the runtime detects (a barrier not reached by every thread of the block, a warp operation
 * whose lanes disagree, ...). Thread-safe: launches on different streams may run concurrently.
 */
EMU_EXPORT int emu_run_grid(const EmuKernelInfo* kernel, const EmuLaunch* launch, void** params,
                            void (*report)(const char* message));
}

// ------------------------------------------------------------------------------------------------
// Module images (module_image.cpp, part of the core): what cuModuleLoadData is given.

namespace emu {

struct ModuleEntry {
    std::string name;                // .entry name
    std::vector<size_t> param_sizes; // bytes of each parameter, in order
    unsigned max_threads = 0;        // .maxntid product (0: not declared)
    size_t static_shared_bytes = 0;  // .shared variables of the entry (and module-level ones it may use)
};

/**
 * Parses a module image: PTX text (NUL-terminated), an sm_XX cubin (ELF), or a fatbin (with or without
 * its wrapper), and lists its kernel entries. `kind` becomes "ptx", "cubin sm_90", "fatbin", ... On
 * failure returns false with a reason in `error`.
 */
EMU_EXPORT bool parse_module_image(const void* image, std::vector<ModuleEntry>* entries, std::string* kind,
                                   std::string* error);

}  // namespace emu
