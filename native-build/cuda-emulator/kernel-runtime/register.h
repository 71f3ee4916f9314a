// Registration of kernels in the module: included by the generated registration file after a .cu, it
// describes each extern "C" kernel from its own signature (parameter sizes and kinds) and gives the
// runtime a trampoline that unpacks cuLaunchKernel's kernelParams into the typed arguments.
#pragma once

#include "../emu.h"

#include <cstring>
#include <type_traits>
#include <utility>

namespace spemu {

SPEMU_HIDDEN void register_kernel(const EmuKernelInfo& info);

template <class P>
constexpr int param_kind() {
    if constexpr (std::is_pointer<P>::value)
        return std::is_const<std::remove_pointer_t<P>>::value ? EMU_PARAM_CONST_POINTER : EMU_PARAM_POINTER;
    else return EMU_PARAM_VALUE;
}

template <class P>
inline P load_param(void* p) {
    P v;  // kernelParams[i] need not be aligned for P
    std::memcpy(static_cast<void*>(&v), p, sizeof(P));
    return v;
}

template <class F>
struct Signature;

template <class... P>
struct Signature<void (*)(P...)> {
    static constexpr int count = sizeof...(P);
    static constexpr size_t sizes[count ? count : 1] = {sizeof(P)...};
    static constexpr int kinds[count ? count : 1] = {param_kind<P>()...};

    template <auto Fn, size_t... I>
    static void call(void** params, std::index_sequence<I...>) {
        (void) params;
        Fn(load_param<P>(params[I])...);
    }
};

template <auto Fn>
void invoke(void** params) {
    using S = Signature<decltype(Fn)>;
    S::template call<Fn>(params, std::make_index_sequence<S::count>());
}

template <auto Fn>
EmuKernelInfo kernel_info(const char* name) {
    using S = Signature<decltype(Fn)>;
    return EmuKernelInfo{name, S::count, S::sizes, S::kinds, &invoke<Fn>};
}

struct Registrar {
    Registrar(std::initializer_list<EmuKernelInfo> kernels) {
        for (const EmuKernelInfo& k : kernels) register_kernel(k);
    }
};

}  // namespace spemu

#define SPEMU_KERNEL(fn) ::spemu::kernel_info<&fn>(#fn)
