// Modules and launches. A module image (PTX, sm_90 cubin or fatbin) is parsed for its entries, and each
// entry is bound to the CPU build of the same kernel in the kernel module (libspectralpeft-kernels.so),
// whose parameter sizes must equal the image's: a mismatch means the image was built from other sources.
// A launch is checked against sm_90's limits and the entry's, its parameters are copied, its pointer
// parameters must point into live allocations, and the grid runs as queued work on the stream.
#include <dlfcn.h>

#include <cstring>
#include <memory>

#include "core.h"

using namespace emu;

namespace {

struct KernelModule {
    void* handle = nullptr;
    int (*count)() = nullptr;
    const EmuKernelInfo* (*info)(int) = nullptr;
    int (*run)(const EmuKernelInfo*, const EmuLaunch*, void**, void (*)(const char*)) = nullptr;
    std::string error;
};

std::string own_directory() {
    Dl_info info;
    if (dladdr((void*) &own_directory, &info) && info.dli_fname) {
        std::string path = info.dli_fname;
        size_t slash = path.rfind('/');
        if (slash != std::string::npos) return path.substr(0, slash);
    }
    return ".";
}

const KernelModule& kernel_module() {
    static KernelModule m = [] {
        KernelModule k;
        const char* env = getenv("SPECTRALPEFT_EMU_KERNELS");
        std::string path = env && *env ? env : own_directory() + "/libspectralpeft-kernels.so";
        k.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!k.handle) {
            k.error = "cannot load the kernel module " + path + ": " + dlerror();
            return k;
        }
        k.count = (int (*)()) dlsym(k.handle, "emu_kernel_count");
        k.info = (const EmuKernelInfo* (*)(int)) dlsym(k.handle, "emu_kernel_info");
        k.run = (int (*)(const EmuKernelInfo*, const EmuLaunch*, void**, void (*)(const char*))) dlsym(k.handle,
                                                                                                 "emu_run_grid");
        if (!k.count || !k.info || !k.run) k.error = path + " is not a kernel module (emu_* functions missing)";
        return k;
    }();
    return m;
}

struct Function;

struct Module {
    std::string kind;
    std::vector<std::unique_ptr<Function>> functions;
};

struct Function {
    Module* module = nullptr;
    ModuleEntry entry;
    const EmuKernelInfo* kernel = nullptr;
    int max_dynamic_shared = (int) (kSharedPerBlock);  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
};

std::unordered_map<Function*, bool>& live_functions() {
    static auto* m = new std::unordered_map<Function*, bool>();
    return *m;
}

void report_from_kernel(const char* message) { error("%s", message); }

unsigned threads_of(const Function& f) { return f.entry.max_threads ? f.entry.max_threads : kMaxThreadsPerBlock; }

CUresult load(CUmodule* out, const void* image) {
    if (CUresult pending = take_pending_error()) return pending;
    if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
    if (!has_current_context()) return CUDA_ERROR_INVALID_CONTEXT;
    const KernelModule& km = kernel_module();
    if (!km.error.empty()) {
        error("cuModuleLoadData: %s", km.error.c_str());
        return failed(CUDA_ERROR_INVALID_IMAGE);
    }
    std::vector<ModuleEntry> entries;
    std::string kind, why;
    if (!parse_module_image(image, &entries, &kind, &why)) {
        note("cuModuleLoadData: the image is not loadable: %s", why.c_str());
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (kind.find("cubin") != std::string::npos && kind.find("sm_90") == std::string::npos) {
        note("cuModuleLoadData: %s does not run on sm_90", kind.c_str());
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    auto module = std::make_unique<Module>();
    module->kind = kind;
    for (ModuleEntry& e : entries) {
        const EmuKernelInfo* k = nullptr;
        for (int i = 0; i < km.count() && !k; ++i)
            if (strcmp(km.info(i)->name, e.name.c_str()) == 0) k = km.info(i);
        if (!k) {
            error("cuModuleLoadData: entry %s of the %s image has no CPU build in the kernel module (was it built "
                  "from other sources?)", e.name.c_str(), kind.c_str());
            return failed(CUDA_ERROR_INVALID_IMAGE);
        }
        bool same = (int) e.param_sizes.size() == k->param_count;
        for (int i = 0; same && i < k->param_count; ++i) same = e.param_sizes[i] == k->param_sizes[i];
        if (!same) {
            std::string a, b;
            for (size_t s : e.param_sizes) a += std::to_string(s) + " ";
            for (int i = 0; i < k->param_count; ++i) b += std::to_string(k->param_sizes[i]) + " ";
            error("cuModuleLoadData: %s takes parameters of %sbytes in the %s image but %sbytes in the kernel "
                  "module: the image and the sources differ", e.name.c_str(), a.c_str(), kind.c_str(), b.c_str());
            return failed(CUDA_ERROR_INVALID_IMAGE);
        }
        auto f = std::make_unique<Function>();
        f->module = module.get();
        f->entry = std::move(e);
        f->kernel = k;
        module->functions.push_back(std::move(f));
    }
    std::lock_guard<std::recursive_mutex> guard(lock());
    for (auto& f : module->functions) live_functions()[f.get()] = true;
    *out = (CUmodule) module.release();
    return CUDA_SUCCESS;
}

Function* function_of(CUfunction f) {
    std::lock_guard<std::recursive_mutex> guard(lock());
    Function* fn = (Function*) f;
    return live_functions().count(fn) ? fn : nullptr;
}

}  // namespace

extern "C" {

CUresult cuModuleLoadData(CUmodule* module, const void* image) { return load(module, image); }

CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int n, CUjit_option* options,
                            void** values) {
    (void) n;
    (void) options;
    (void) values;
    return load(module, image);
}

CUresult cuModuleLoadFatBinary(CUmodule* module, const void* image) { return load(module, image); }

CUresult cuModuleUnload(CUmodule handle) {
    if (CUresult pending = take_pending_error()) return pending;
    if (!handle) return CUDA_ERROR_INVALID_HANDLE;
    Module* m = (Module*) handle;
    // Queued launches hold their own copy of what they need (the kernel module stays loaded).
    std::lock_guard<std::recursive_mutex> guard(lock());
    for (auto& f : m->functions) live_functions().erase(f.get());
    delete m;
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* out, CUmodule handle, const char* name) {
    if (CUresult pending = take_pending_error()) return pending;
    if (!out || !handle || !name) return CUDA_ERROR_INVALID_VALUE;
    Module* m = (Module*) handle;
    for (auto& f : m->functions) {
        if (f->entry.name == name) {
            *out = (CUfunction) f.get();
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

CUresult cuFuncGetAttribute(int* value, CUfunction_attribute attr, CUfunction handle) {
    if (CUresult pending = take_pending_error()) return pending;
    Function* f = function_of(handle);
    if (!f || !value) return CUDA_ERROR_INVALID_HANDLE;
    switch (attr) {
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = (int) threads_of(*f); break;
        case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *value = (int) f->entry.static_shared_bytes; break;
        case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = 32; break;
        case CU_FUNC_ATTRIBUTE_PTX_VERSION: *value = 90; break;
        case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = 90; break;
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *value = f->max_dynamic_shared; break;
        default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction handle, CUfunction_attribute attr, int value) {
    if (CUresult pending = take_pending_error()) return pending;
    Function* f = function_of(handle);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (attr == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        if (value < 0 || (size_t) value + f->entry.static_shared_bytes > kSharedPerBlockOptin) return CUDA_ERROR_INVALID_VALUE;
        f->max_dynamic_shared = value;
        return CUDA_SUCCESS;
    }
    if (attr == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT) return CUDA_SUCCESS;
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuFuncSetCacheConfig(CUfunction handle, CUfunc_cache config) {
    (void) config;
    return function_of(handle) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuLaunchKernel(CUfunction handle, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, CUstream stream, void** params, void** extra) {
    if (CUresult pending = take_pending_error()) return pending;
    if (!has_current_context()) return CUDA_ERROR_INVALID_CONTEXT;
    Function* f = function_of(handle);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    const char* name = f->entry.name.c_str();
    Stream* s = stream_of(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    if (extra != nullptr) {
        error("cuLaunchKernel(%s): parameters passed through `extra` are not emulated", name);
        return failed(CUDA_ERROR_NOT_SUPPORTED);
    }
    unsigned long long threads = (unsigned long long) bx * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gx > kMaxGridX || gy > kMaxGridYZ ||
        gz > kMaxGridYZ || bx > 1024 || by > 1024 || bz > 64) {
        error("cuLaunchKernel(%s): grid (%u, %u, %u) × block (%u, %u, %u) exceeds sm_90's limits", name, gx, gy, gz,
              bx, by, bz);
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    if (threads > (unsigned long long) threads_of(*f)) {
        error("cuLaunchKernel(%s): %llu threads per block, more than the %u it allows%s", name, threads,
              threads_of(*f), f->entry.max_threads ? " (.maxntid)" : "");
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    size_t static_shared = f->entry.static_shared_bytes;
    size_t dynamic_limit = std::min((size_t) f->max_dynamic_shared,
                                    static_shared > kSharedPerBlock ? 0 : kSharedPerBlock - static_shared);
    if (f->max_dynamic_shared > (int) kSharedPerBlock) dynamic_limit = f->max_dynamic_shared;
    if (static_shared > kSharedPerBlock || shared > dynamic_limit ||
        static_shared + shared > kSharedPerBlockOptin) {
        error("cuLaunchKernel(%s): %zu bytes of static and %u of dynamic shared memory exceed the %zu allowed "
              "(above 48 KiB only after CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)", name, static_shared,
              shared, dynamic_limit);
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    const EmuKernelInfo* k = f->kernel;
    if (k->param_count > 0 && params == nullptr) {
        error("cuLaunchKernel(%s): kernelParams is NULL but the kernel takes %d parameters", name, k->param_count);
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    // Copy the parameter values now: the caller may reuse its buffers as soon as the launch returns.
    size_t total = 0;
    std::vector<size_t> offsets;
    for (int i = 0; i < k->param_count; ++i) {
        offsets.push_back(total);
        total += (k->param_sizes[i] + 15) / 16 * 16;
    }
    auto storage = std::make_shared<std::vector<unsigned char>>(total + 16);
    std::vector<Access> accesses;
    for (int i = 0; i < k->param_count; ++i) {
        if (params[i] == nullptr) {
            error("cuLaunchKernel(%s): kernelParams[%d] is NULL", name, i);
            return failed(CUDA_ERROR_INVALID_VALUE);
        }
        memcpy(storage->data() + offsets[i], params[i], k->param_sizes[i]);
        if (k->param_kinds[i] == EMU_PARAM_VALUE) continue;
        uintptr_t p;
        memcpy(&p, params[i], sizeof p);
        if (p == 0) continue;
        std::lock_guard<std::recursive_mutex> guard(lock());
        Allocation* a = find_allocation(p, true);
        std::string what = "parameter " + std::to_string(i);
        if (!a) {
            error("cuLaunchKernel(%s): pointer parameter %d (%#lx) is %s", name, i, (unsigned long) p,
                  describe_address(p).c_str());
            return failed(CUDA_ERROR_INVALID_VALUE);
        }
        // A kernel may touch anything from its pointer to the end of the allocation.
        accesses.push_back(Access{(void*) p, a->size - (p - a->base), k->param_kinds[i] == EMU_PARAM_POINTER, what});
    }
    EmuLaunch launch{{gx, gy, gz}, {bx, by, bz}, shared};
    auto run = kernel_module().run;
    std::string label = std::string("kernel ") + name;
    int count = k->param_count;
    std::vector<size_t> offs = offsets;
    if (!enqueue_op(s, label, std::move(accesses), [=] {
            std::vector<void*> args(count);
            for (int i = 0; i < count; ++i) args[i] = storage->data() + offs[i];
            run(k, &launch, args.data(), report_from_kernel);
        }, {}, nullptr)) {
        return failed(CUDA_ERROR_INVALID_VALUE);
    }
    return CUDA_SUCCESS;
}

}  // extern "C"
