// Self-test of emu::parse_module_image (run by module_image_selftest.sh, which builds the inputs).
//
//   module_image_selftest --write-snippet FILE   writes the handwritten PTX module (for ptxas)
//   module_image_selftest --write-cuda FILE      writes the CUDA C snippet with __shared__ (for nvcc)
//   module_image_selftest DIR                    checks the images in DIR
//   module_image_selftest --dump FILE            lists what FILE's image holds
//
// Every image is read into a heap buffer of exactly its size, so AddressSanitizer catches a read past
// its end.

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../emu.h"

#include "../selftest_check.h"

namespace {

// A handwritten module: launch bounds (.maxntid, .reqntid), a static .shared array in an entry, module-level
// .shared variables used directly and through a called function (and one nobody uses), dynamic shared
// memory, array, struct and large parameters, a mangled name, a .func prototype and a braced initializer.
const char kSnippet[] = R"PTX(//
// handwritten module for the module image self-test
//
.version 8.1
.target sm_90
.address_size 64

.global .align 4 .b8 table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
.shared .align 8 .b8 gshared[100];
.shared .align 4 .u32 gcount;
.shared .align 16 .b8 unused_shared[4096];
.extern .shared .align 16 .b8 dyn[];

.func (.param .b32 r) helper(.param .b32 a);

.func (.param .b32 r) helper(.param .b32 a)
{
	.reg .b32 %r<3>;
	.reg .b64 %rd<2>;
	ld.param.b32 %r1, [a];
	mov.u64 %rd1, gcount;
	st.shared.u32 [%rd1], %r1;
	st.param.b32 [r], %r1;
	ret;
}

.visible .entry _Z6kernelPf4PairA4_fsh(
	.param .u64 .ptr .global .align 1 _Z6kernelPf4PairA4_fsh_param_0,
	.param .align 8 .b8 _Z6kernelPf4PairA4_fsh_param_1[24],
	.param .b8 _Z6kernelPf4PairA4_fsh_param_2[16],
	.param .f32 _Z6kernelPf4PairA4_fsh_param_3,
	.param .u16 _Z6kernelPf4PairA4_fsh_param_4
)
.maxntid 32, 4, 2
{
	.reg .b32 %r<9>;
	.reg .b64 %rd<9>;
	/* the entry's own static shared array; "ld.shared" below is an opcode, not a declaration */
	.shared .align 4 .b8 tile[1024];
	mov.u64 %rd1, tile;
	mov.u64 %rd2, gshared;
	mov.u64 %rd3, dyn;
	ld.param.u32 %r1, [_Z6kernelPf4PairA4_fsh_param_1+4];
	ld.shared.u32 %r2, [%rd1];
	st.shared.u32 [%rd1], %r1;
	st.shared.u32 [%rd2], %r2;
	st.shared.u32 [%rd3], %r1;
	{
	.param .b32 pa;
	.param .b32 pr;
	st.param.b32 [pa], %r1;
	call.uni (pr), helper, (pa);
	}
	ret;
}

.entry plain_large(
	.param .u32 plain_large_param_0,
	.param .b8 plain_large_param_1[5000],
	.param .u64 plain_large_param_2,
	.param .align 8 .b8 plain_large_param_3[24]
)
.reqntid 64, 2
{
	.reg .b32 %r<3>;
	ld.param.u32 %r1, [plain_large_param_1+4996];
	ret;
}

.visible .entry no_params()
{
	ret;
}
)PTX";

// CUDA C with __shared__ in kernels, in a device function (which the compiler moves into that function's
// PTX body), dynamic shared memory, by-value structs and a template, built to PTX and to a cubin by nvcc.
const char kCudaSnippet[] = R"CU(
struct Pair { double a; int b; };
struct alignas(16) Big { float v[9]; };
__shared__ float module_buf[33];
__device__ __noinline__ float touch(int i, float v) {
    module_buf[i % 33] = v;
    __syncthreads();
    return module_buf[(i + 1) % 33];
}
extern "C" __global__ void __launch_bounds__(128) reduce_tile(const float* in, float* out, int n) {
    __shared__ float tile[128];
    __shared__ double extra[3];
    tile[threadIdx.x] = threadIdx.x < n ? in[threadIdx.x] : 0.f;
    extra[threadIdx.x % 3] = 1.0;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0;
        for (int i = 0; i < 128; ++i) s += tile[i];
        out[0] = s + extra[1];
    }
}
extern "C" __global__ void dyn_kernel(float* out, Pair p, Big b, char c, short s) {
    extern __shared__ float dyn[];
    dyn[threadIdx.x] = p.a + b.v[3] + c + s;
    __syncthreads();
    out[threadIdx.x] = dyn[(threadIdx.x + 1) % blockDim.x];
    out[threadIdx.x] += touch(threadIdx.x, out[0]);
}
template <typename T> __global__ void templ(T* x, T y, unsigned long long z) {
    __shared__ T buf[64];
    buf[threadIdx.x & 63] = y;
    __syncthreads();
    x[threadIdx.x] = buf[(threadIdx.x + 1) & 63] + (T) z;
}
template __global__ void templ<double>(double*, double, unsigned long long);
template __global__ void templ<char>(char*, char, unsigned long long);
)CU";

std::vector<unsigned char> read_file(const std::string& path, bool nul_terminate) {
    std::ifstream in(path, std::ios::binary);
    std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (nul_terminate) data.push_back(0);
    return data;
}

// A heap copy of exactly `data.size()` bytes (a vector may keep spare capacity that ASan would not flag).
std::unique_ptr<unsigned char[]> exact_copy(const std::vector<unsigned char>& data) {
    std::unique_ptr<unsigned char[]> copy(new unsigned char[data.size() ? data.size() : 1]);
    if (!data.empty()) std::memcpy(copy.get(), data.data(), data.size());
    return copy;
}

struct Parsed {
    bool ok = false;
    std::vector<emu::ModuleEntry> entries;
    std::string kind, error;
};

Parsed parse(const void* image) {
    Parsed p;
    p.ok = emu::parse_module_image(image, &p.entries, &p.kind, &p.error);
    return p;
}

Parsed parse_bytes(const std::vector<unsigned char>& data) {
    auto copy = exact_copy(data);
    return parse(copy.get());
}

Parsed parse_file(const std::string& path, bool text) {
    std::vector<unsigned char> data = read_file(path, text);
    if (data.size() <= (text ? 1u : 0u)) {
        Parsed p;
        p.error = "cannot read " + path;
        return p;
    }
    return parse_bytes(data);
}

std::string sizes_text(const std::vector<size_t>& sizes) {
    std::string s = "{";
    for (size_t i = 0; i < sizes.size(); ++i) s += (i ? "," : "") + std::to_string(sizes[i]);
    return s + "}";
}

std::string describe(const emu::ModuleEntry& e) {
    return e.name + sizes_text(e.param_sizes) + " threads " + std::to_string(e.max_threads) + " shared " +
           std::to_string(e.static_shared_bytes);
}

std::map<std::string, emu::ModuleEntry> by_name(const Parsed& p) {
    std::map<std::string, emu::ModuleEntry> m;
    for (const auto& e : p.entries) m[e.name] = e;
    return m;
}

// `image` must parse as `kind` and list the same entries as `reference`, with equal parameter sizes,
// launch bounds and static shared memory.
void expect_same(const std::string& label, const Parsed& image, const std::string& kind, const Parsed& reference) {
    check(image.ok, label + " parses (" + image.error + ")");
    if (!image.ok) return;
    check(image.kind == kind, label + " kind is '" + kind + "' (got '" + image.kind + "')");
    auto mine = by_name(image), ref = by_name(reference);
    check(image.entries.size() == mine.size(), label + ": entry names are unique");
    check(mine.size() == ref.size(), label + ": " + std::to_string(mine.size()) + " entries, reference has " +
                                         std::to_string(ref.size()));
    for (const auto& [name, r] : ref) {
        auto it = mine.find(name);
        if (it == mine.end()) {
            check(false, label + ": has entry " + name);
            continue;
        }
        const emu::ModuleEntry& e = it->second;
        check(e.param_sizes == r.param_sizes && e.max_threads == r.max_threads &&
                  e.static_shared_bytes == r.static_shared_bytes,
              label + ": " + describe(e) + " equals the reference " + describe(r));
    }
}

void expect_entry(const std::string& label, const Parsed& image, const std::string& name,
                  const std::vector<size_t>& sizes, unsigned max_threads, size_t shared) {
    auto m = by_name(image);
    auto it = m.find(name);
    if (it == m.end()) {
        check(false, label + ": has entry " + name);
        return;
    }
    const emu::ModuleEntry& e = it->second;
    check(e.param_sizes == sizes, label + ": " + name + " parameter sizes " + sizes_text(e.param_sizes) +
                                      ", expected " + sizes_text(sizes));
    check(e.max_threads == max_threads, label + ": " + name + " max threads " + std::to_string(e.max_threads) +
                                            ", expected " + std::to_string(max_threads));
    check(e.static_shared_bytes == shared, label + ": " + name + " static shared " +
                                               std::to_string(e.static_shared_bytes) + ", expected " +
                                               std::to_string(shared));
}

void expect_rejected(const std::string& label, const Parsed& p, const std::string& reason_part) {
    check(!p.ok, label + " is rejected");
    check(p.error.find(reason_part) != std::string::npos,
          label + ": reason mentions '" + reason_part + "' (got '" + p.error + "')");
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

void test_fourierft(const std::string& dir) {
    Parsed ptx75 = parse_file(dir + "/fourierft_75.ptx", true);
    check(ptx75.ok, "compute_75 PTX parses (" + ptx75.error + ")");
    check(ptx75.kind == "ptx", "compute_75 PTX kind is 'ptx' (got '" + ptx75.kind + "')");
    check(ptx75.entries.size() >= 7, "compute_75 PTX lists the 7 kernels or more (got " +
                                         std::to_string(ptx75.entries.size()) + ")");

    // Checked by hand against kernels/fourierft.cu.
    // fourierft_coeff_grad_reduce(const float*, int, int, float, float*)
    expect_entry("compute_75 PTX", ptx75, "fourierft_coeff_grad_reduce", {8, 4, 4, 4, 8}, 0, 0);
    // fourierft_gather_real(const float2*, long long, const int*, int, float, float*)
    expect_entry("compute_75 PTX", ptx75, "fourierft_gather_real", {8, 8, 8, 4, 4, 8}, 0, 0);
    // __launch_bounds__(256, 3) fourierft_column_synthesis(float2*, int x4, const float*, int, const int* x3,
    // const float* x2, float, int)
    expect_entry("compute_75 PTX", ptx75, "fourierft_column_synthesis",
                 {8, 4, 4, 4, 4, 8, 4, 8, 8, 8, 8, 8, 4, 4}, 256, 0);
    // __launch_bounds__(256) fourierft_column_analysis(const float2*, int x4, const int* x2, const float* x2,
    // int, float*)
    expect_entry("compute_75 PTX", ptx75, "fourierft_column_analysis", {8, 4, 4, 4, 4, 8, 8, 8, 8, 4, 8}, 256, 0);

    expect_same("compute_90 PTX", parse_file(dir + "/fourierft_90.ptx", true), "ptx", ptx75);
    expect_same("sm_90 cubin", parse_file(dir + "/fourierft.cubin", false), "cubin sm_90", ptx75);
    expect_same("fatbin (sm_90 + compute_90, uncompressed)", parse_file(dir + "/fourierft.fatbin", false),
                "fatbin: cubin sm_90", ptx75);
    expect_same("fatbin (compute_90 PTX only)", parse_file(dir + "/fourierft_ptx.fatbin", false), "fatbin: ptx",
                ptx75);

    // The wrapper struct cuModuleLoadFatBinary receives, around the fatbin.
    std::vector<unsigned char> fat = read_file(dir + "/fourierft.fatbin", false);
    auto fat_copy = exact_copy(fat);
    struct {
        int magic;
        int version;
        const void* data;
        void* filename_or_fatbins;
    } wrapper = {0x466243b1, 1, fat_copy.get(), nullptr};
    expect_same("fatbin wrapper", parse(&wrapper), "fatbin: cubin sm_90", ptx75);

    // nvcc's default fatbin: whatever it compresses must be named as such if it is all there is.
    if (exists(dir + "/fourierft_default.fatbin")) {
        Parsed p = parse_file(dir + "/fourierft_default.fatbin", false);
        if (p.ok) {
            expect_same("fatbin (nvcc default compression)", p, "fatbin: cubin sm_90", ptx75);
        } else {
            expect_rejected("fatbin (nvcc default compression)", p, "compressed");
        }
    }
    if (exists(dir + "/fourierft_compressed.fatbin"))
        expect_rejected("fully compressed fatbin", parse_file(dir + "/fourierft_compressed.fatbin", false),
                        "compressed");
}

void test_snippet(const std::string& dir) {
    std::vector<unsigned char> text(kSnippet, kSnippet + sizeof kSnippet);
    Parsed ptx = parse_bytes(text);
    check(ptx.ok, "handwritten PTX parses (" + ptx.error + ")");
    check(ptx.kind == "ptx", "handwritten PTX kind is 'ptx'");
    check(ptx.entries.size() == 3, "handwritten PTX has 3 entries (got " + std::to_string(ptx.entries.size()) + ")");
    // tile 1024 + gshared 100 + gcount 4 (through helper) = 1128, rounded to dyn's 16-byte alignment;
    // unused_shared is not counted, dyn is dynamic.
    expect_entry("handwritten PTX", ptx, "_Z6kernelPf4PairA4_fsh", {8, 24, 16, 4, 2}, 32 * 4 * 2, 1136);
    expect_entry("handwritten PTX", ptx, "plain_large", {4, 5000, 8, 24}, 128, 0);
    expect_entry("handwritten PTX", ptx, "no_params", {}, 0, 0);
    if (!ptx.entries.empty()) check(ptx.entries[0].name == "_Z6kernelPf4PairA4_fsh", "PTX entries in source order");
    if (exists(dir + "/snippet.cubin"))
        expect_same("handwritten PTX assembled by ptxas", parse_file(dir + "/snippet.cubin", false), "cubin sm_90",
                    ptx);

    Parsed cuda_ptx = parse_file(dir + "/shared.ptx", true);
    check(cuda_ptx.ok, "CUDA C snippet's PTX parses (" + cuda_ptx.error + ")");
    // tile 512 + extra 24, padded to the 16-byte alignment of the module's dynamic shared memory.
    expect_entry("CUDA C snippet PTX", cuda_ptx, "reduce_tile", {8, 8, 4}, 128, 544);
    // module_buf (132 bytes, used by touch), padded to 16; Pair is 16 bytes, Big 48.
    expect_entry("CUDA C snippet PTX", cuda_ptx, "dyn_kernel", {8, 16, 48, 1, 2}, 0, 144);
    expect_entry("CUDA C snippet PTX", cuda_ptx, "_Z5templIdEvPT_S0_y", {8, 8, 8}, 0, 512);
    expect_entry("CUDA C snippet PTX", cuda_ptx, "_Z5templIcEvPT_S0_y", {8, 1, 8}, 0, 64);
    expect_same("CUDA C snippet cubin", parse_file(dir + "/shared.cubin", false), "cubin sm_90", cuda_ptx);

    // Variations parsed from text only.
    const char* no_shared_use = R"(.version 7.5
.target sm_75
.address_size 64
.shared .align 4 .b8 s[64];
.entry k(.param .u32 a, .param .u64 b)
.maxntid 128
{
	ret;
}
.extern .func f(.param .u32 x);
)";
    Parsed p = parse_bytes(std::vector<unsigned char>(no_shared_use, no_shared_use + std::strlen(no_shared_use) + 1));
    check(p.ok, "PTX with an unused module-level .shared and an extern .func parses (" + p.error + ")");
    expect_entry("PTX variation", p, "k", {4, 8}, 128, 0);

    const char* bad_param = ".version 8.0\n.target sm_90\n.entry k(.param .foo a)\n{\nret;\n}\n";
    Parsed q = parse_bytes(std::vector<unsigned char>(bad_param, bad_param + std::strlen(bad_param) + 1));
    expect_rejected("PTX with an unknown parameter type", q, "PTX");
}

void test_garbage() {
    auto text = [](const char* s) { return std::vector<unsigned char>(s, s + std::strlen(s) + 1); };
    expect_rejected("empty string", parse_bytes(text("")), "not PTX, cubin or fatbin");
    expect_rejected("plain text", parse_bytes(text("hello, world")), "first bytes 68 65 6c 6c 6f 2c 20 77");
    expect_rejected("binary bytes", parse_bytes({0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x00}),
                    "first bytes de ad be ef");
    Parsed null_image;
    null_image.ok = emu::parse_module_image(nullptr, &null_image.entries, &null_image.kind, &null_image.error);
    expect_rejected("null image", null_image, "null");

    std::vector<unsigned char> elf(64, 0);
    std::memcpy(elf.data(), "\x7f" "ELF", 4);
    elf[4] = 2;
    elf[5] = 1;
    elf[18] = 62;  // EM_X86_64
    expect_rejected("x86-64 ELF", parse_bytes(elf), "not EM_CUDA");
    elf[18] = 190;
    expect_rejected("CUDA ELF without section headers", parse_bytes(elf), "section headers");

    // A fatbin header whose stated size cannot hold an entry.
    std::vector<unsigned char> fat = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0, 8, 0, 0, 0, 0, 0, 0, 0,
                                      0,    0,    0,    0,    0, 0, 0,  0};
    expect_rejected("truncated fatbin", parse_bytes(fat), "fatbin");
    // An entry header claiming more bytes than the fatbin holds.
    std::vector<unsigned char> fat2(16 + 64, 0);
    std::memcpy(fat2.data(), fat.data(), 8);
    fat2[8] = 64;
    fat2[16] = 2;     // ELF
    fat2[20] = 64;    // header size
    fat2[24] = 0xff;  // payload size
    expect_rejected("fatbin entry beyond its end", parse_bytes(fat2), "exceeds the fatbin");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--write-snippet") == 0) {
        std::ofstream out(argv[2], std::ios::binary);
        out << kSnippet;
        return out.good() ? 0 : 1;
    }
    if (argc == 3 && std::strcmp(argv[1], "--write-cuda") == 0) {
        std::ofstream out(argv[2], std::ios::binary);
        out << kCudaSnippet;
        return out.good() ? 0 : 1;
    }
    if (argc == 3 && std::strcmp(argv[1], "--dump") == 0) {  // prints what an image file lists
        std::vector<unsigned char> data = read_file(argv[2], true);
        Parsed p = parse_bytes(data);
        if (!p.ok) {
            std::printf("error: %s\n", p.error.c_str());
            return 1;
        }
        std::printf("%s: %zu entries\n", p.kind.c_str(), p.entries.size());
        for (const auto& e : p.entries) std::printf("  %s\n", describe(e).c_str());
        return 0;
    }
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR | --write-snippet FILE | --write-cuda FILE | --dump FILE\n", argv[0]);
        return 2;
    }
    std::string dir = argv[1];
    test_fourierft(dir);
    test_snippet(dir);
    test_garbage();
    std::printf("module image self-test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
