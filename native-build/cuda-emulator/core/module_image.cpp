// Module images as cuModuleLoadData / cuModuleLoadFatBinary receive them: PTX text, an sm_XX cubin
// (ELF), or a fatbin with or without its wrapper struct. Only the kernel entries' interfaces are read
// (names, parameter sizes, launch bounds, static shared memory): the kernels themselves run from the
// kernel module, so the image is checked against it rather than executed.
//
// The image comes without a size. PTX is NUL-terminated; a cubin's extent follows from its ELF headers;
// a fatbin states its size in its header.

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../emu.h"

namespace emu {
namespace {

// ================================================================ little-endian reads

uint16_t rd16(const unsigned char* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t rd32(const unsigned char* p) { return uint32_t(rd16(p)) | (uint32_t(rd16(p + 2)) << 16); }
uint64_t rd64(const unsigned char* p) { return uint64_t(rd32(p)) | (uint64_t(rd32(p + 4)) << 32); }

std::string hex_bytes(const unsigned char* p, size_t n) {
    std::string s;
    char buf[4];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, "%s%02x", i ? " " : "", p[i]);
        s += buf;
    }
    return s;
}

// Whether the image starts with `magic`, compared byte by byte so that a short NUL-terminated text is
// never read past its terminator (none of the magics contain a zero byte).
bool starts_with(const unsigned char* p, const unsigned char* magic, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (p[i] != magic[i]) return false;
    return true;
}

// ================================================================ PTX

// Comments become spaces (so token positions stay separated); quoted strings are kept as they are,
// since `.file` paths may contain "//".
std::string strip_comments(const char* text) {
    std::string out(text);
    size_t n = out.size();
    for (size_t i = 0; i < n;) {
        char c = out[i];
        if (c == '"') {
            for (++i; i < n && out[i] != '"'; ++i)
                if (out[i] == '\\' && i + 1 < n) ++i;
            ++i;
        } else if (c == '/' && i + 1 < n && out[i + 1] == '/') {
            for (; i < n && out[i] != '\n'; ++i) out[i] = ' ';
        } else if (c == '/' && i + 1 < n && out[i + 1] == '*') {
            size_t end = out.find("*/", i + 2);
            end = end == std::string::npos ? n : end + 2;
            for (; i < end; ++i)
                if (out[i] != '\n') out[i] = ' ';
        } else {
            ++i;
        }
    }
    return out;
}

bool word_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '%' || c == '.' || c == ':';
}

// Words (identifiers, directives, opcodes such as "ld.shared.u32", numbers), quoted strings, and single
// punctuation characters.
std::vector<std::string> tokenize(const std::string& s) {
    std::vector<std::string> tokens;
    size_t n = s.size();
    for (size_t i = 0; i < n;) {
        char c = s[i];
        if (std::isspace(static_cast<unsigned char>(c))) {
            ++i;
        } else if (c == '"') {
            size_t j = i + 1;
            for (; j < n && s[j] != '"'; ++j)
                if (s[j] == '\\' && j + 1 < n) ++j;
            j = std::min(n, j + 1);
            tokens.push_back(s.substr(i, j - i));
            i = j;
        } else if (word_char(c)) {
            size_t j = i;
            while (j < n && word_char(s[j])) ++j;
            tokens.push_back(s.substr(i, j - i));
            i = j;
        } else {
            tokens.push_back(std::string(1, c));
            ++i;
        }
    }
    return tokens;
}

/** Bytes of a PTX fundamental type directive (".u32" → 4), 0 if `t` is not one. */
size_t type_size(const std::string& t) {
    static const std::map<std::string, size_t> sizes = {
        {".b8", 1},      {".u8", 1},      {".s8", 1},      {".pred", 1},    {".b16", 2},     {".u16", 2},
        {".s16", 2},     {".f16", 2},     {".bf16", 2},    {".b32", 4},     {".u32", 4},     {".s32", 4},
        {".f32", 4},     {".f16x2", 4},   {".bf16x2", 4},  {".tf32", 4},    {".b64", 8},     {".u64", 8},
        {".s64", 8},     {".f64", 8},     {".b128", 16},   {".texref", 8},  {".samplerref", 8},
        {".surfref", 8},
    };
    auto it = sizes.find(t);
    return it == sizes.end() ? 0 : it->second;
}

bool is_identifier(const std::string& t) {
    if (t.empty() || t[0] == '.' || t[0] == '"') return false;
    char c = t[0];
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '%';
}

bool parse_number(const std::string& t, unsigned long long* value) {
    if (t.empty() || !std::isdigit(static_cast<unsigned char>(t[0]))) return false;
    std::string s = t;
    if (!s.empty() && (s.back() == 'U' || s.back() == 'u')) s.pop_back();
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 0);
    if (errno || *end) return false;
    *value = v;
    return true;
}

/** A variable declaration's shape: `.align N`, `.vN`, type, then name and array dimensions. */
struct Declarator {
    std::string name;
    size_t bytes = 0;
    size_t align = 1;
    bool sized = true;    // false for `name[]`
    bool dynamic = false; // .extern .shared: the launch's dynamic shared memory
};

class PtxParser {
public:
    PtxParser(const char* text, std::string* error) : t_(tokenize(strip_comments(text))), error_(error) {}

    bool parse(std::vector<ModuleEntry>* entries) {
        size_t i = 0;
        std::vector<std::string> statement;  // directives of the current top-level statement
        while (i < t_.size()) {
            const std::string& tok = t_[i];
            if (tok == ".entry" || tok == ".func") {
                if (!parse_function(&i, tok == ".entry")) return false;
                statement.clear();
            } else if (tok == ";") {
                statement.clear();
                ++i;
            } else if (tok == "{") {  // an initializer or a .section block
                i = skip_block(i);
            } else if (is_shared_space(tok)) {
                bool external = std::find(statement.begin(), statement.end(), ".extern") != statement.end();
                if (!parse_shared(&i, external, &module_shared_)) return false;
                statement.clear();
            } else {
                statement.push_back(tok);
                ++i;
            }
        }
        for (Function& f : functions_) {
            if (!f.is_entry) continue;
            ModuleEntry e;
            e.name = f.name;
            e.param_sizes = f.param_sizes;
            e.max_threads = f.max_threads;
            e.static_shared_bytes = layout(f);
            entries->push_back(std::move(e));
        }
        return true;
    }

private:
    struct Function {
        std::string name;
        bool is_entry = false;
        std::vector<size_t> param_sizes;
        unsigned max_threads = 0;
        std::vector<Declarator> local_shared;
        std::set<std::string> identifiers;  // every identifier its body names
    };

    static bool is_shared_space(const std::string& t) { return t == ".shared" || t.rfind(".shared::", 0) == 0; }

    bool fail(const std::string& message) {
        *error_ = "PTX: " + message;
        return false;
    }

    size_t skip_block(size_t i) const {  // t_[i] == "{": returns the index after the matching "}"
        int depth = 0;
        for (; i < t_.size(); ++i) {
            if (t_[i] == "{") ++depth;
            if (t_[i] == "}" && --depth == 0) return i + 1;
        }
        return i;
    }

    size_t skip_parens(size_t i) const {  // t_[i] == "(": returns the index after the matching ")"
        int depth = 0;
        for (; i < t_.size(); ++i) {
            if (t_[i] == "(") ++depth;
            if (t_[i] == ")" && --depth == 0) return i + 1;
        }
        return i;
    }

    // Reads `.align N`, `.vN`, type directives and the declarators up to the statement's ';' (or, for a
    // parameter, up to `stop`). Other directives (.ptr, state spaces) are skipped.
    bool parse_declarators(size_t* pos, const char* stop, std::vector<Declarator>* out) {
        size_t i = *pos;
        size_t elem = 0, vec = 1, align = 0;
        Declarator cur;
        bool have = false;
        auto finish = [&]() -> bool {
            if (!have) return true;
            if (elem == 0) return fail("no type for '" + cur.name + "'");
            cur.bytes *= elem * vec;
            cur.align = align ? align : elem * vec;
            out->push_back(cur);
            cur = Declarator();
            have = false;
            return true;
        };
        for (; i < t_.size(); ++i) {
            const std::string& tok = t_[i];
            if (tok == ";" || tok == stop) break;
            if (tok == ".align") {
                unsigned long long a = 0;
                if (i + 1 >= t_.size() || !parse_number(t_[i + 1], &a)) return fail("bad .align");
                align = size_t(a);
                ++i;
            } else if (tok == ".v2" || tok == ".v4" || tok == ".v8") {
                vec = size_t(tok[2] - '0');
            } else if (type_size(tok)) {
                elem = type_size(tok);
            } else if (tok == "[") {
                if (!have) return fail("array bounds without a name");
                if (i + 1 < t_.size() && t_[i + 1] == "]") {
                    cur.sized = false;
                    cur.bytes = 0;
                    ++i;
                    continue;
                }
                unsigned long long n = 0;
                if (i + 2 >= t_.size() || !parse_number(t_[i + 1], &n) || t_[i + 2] != "]")
                    return fail("bad array bound for '" + cur.name + "'");
                cur.bytes *= size_t(n);
                i += 2;
            } else if (tok == ",") {
                if (!finish()) return false;
            } else if (tok == "=") {  // initializer (not allowed for .shared, tolerated): skip to ';'
                while (i + 1 < t_.size() && t_[i + 1] != ";" && t_[i + 1] != stop) {
                    if (t_[i + 1] == "{") {
                        i = skip_block(i + 1) - 1;
                    } else {
                        ++i;
                    }
                }
            } else if (is_identifier(tok) && !have) {
                cur.name = tok;
                cur.bytes = 1;
                have = true;
            }
        }
        if (!finish()) return false;
        *pos = i;
        return true;
    }

    // t_[*pos] is a .shared state space; declarations of dynamic (.extern or unsized) shared memory
    // count 0.
    bool parse_shared(size_t* pos, bool external, std::vector<Declarator>* out) {
        size_t i = *pos + 1;
        std::vector<Declarator> decls;
        if (!parse_declarators(&i, ";", &decls)) return false;
        for (Declarator& d : decls) {
            if (external || !d.sized) {
                d.bytes = 0;
                d.dynamic = true;
            }
            out->push_back(d);
        }
        *pos = i + 1;
        return true;
    }

    // Parses "( .param ..., .param ... )" starting at t_[*pos] == "(".
    bool parse_params(size_t* pos, const std::string& fname, std::vector<size_t>* sizes) {
        size_t i = *pos + 1;
        while (i < t_.size() && t_[i] != ")") {
            size_t start = i;
            int depth = 0;
            while (i < t_.size() && !(depth == 0 && (t_[i] == "," || t_[i] == ")"))) {
                if (t_[i] == "(" || t_[i] == "[") ++depth;
                if (t_[i] == ")" || t_[i] == "]") --depth;
                ++i;
            }
            size_t j = start;
            std::vector<Declarator> decls;
            if (!parse_declarators(&j, i < t_.size() ? t_[i].c_str() : ")", &decls)) return false;
            if (decls.size() != 1)
                return fail("cannot read parameter " + std::to_string(sizes->size()) + " of " + fname);
            sizes->push_back(decls[0].bytes);
            if (i < t_.size() && t_[i] == ",") ++i;
        }
        if (i >= t_.size()) return fail("unterminated parameter list of " + fname);
        *pos = i + 1;
        return true;
    }

    // Reads "N[, N[, N]]" and returns the product.
    unsigned read_dims(size_t* pos) {
        size_t i = *pos + 1;
        unsigned long long product = 1, v = 0;
        while (i < t_.size() && parse_number(t_[i], &v)) {
            product *= v;
            ++i;
            if (i < t_.size() && t_[i] == ",") {
                ++i;
            } else {
                break;
            }
        }
        *pos = i;
        return product > 0xffffffffull ? 0xffffffffu : unsigned(product);
    }

    // t_[*pos] is .entry or .func: [ (return params) ] name [ (params) ] directives ( ';' | body ).
    bool parse_function(size_t* pos, bool is_entry) {
        size_t i = *pos + 1;
        Function f;
        f.is_entry = is_entry;
        // Only entries' parameters matter; a .func's lists are skipped, whatever types they use.
        if (!is_entry && i < t_.size() && t_[i] == "(") i = skip_parens(i);
        if (i >= t_.size() || !is_identifier(t_[i])) return fail("no name after " + t_[*pos]);
        f.name = t_[i++];
        if (i < t_.size() && t_[i] == "(") {
            if (!is_entry) {
                i = skip_parens(i);
            } else if (!parse_params(&i, f.name, &f.param_sizes)) {
                return false;
            }
        }
        unsigned maxntid = 0, reqntid = 0;
        while (i < t_.size() && t_[i] != "{" && t_[i] != ";") {
            if (t_[i] == ".maxntid") {
                maxntid = read_dims(&i);
            } else if (t_[i] == ".reqntid") {
                reqntid = read_dims(&i);
            } else {
                ++i;
            }
        }
        if (i >= t_.size()) return fail("unterminated declaration of " + f.name);
        f.max_threads = reqntid && (!maxntid || reqntid < maxntid) ? reqntid : maxntid;
        if (t_[i] == ";") {  // a prototype: the definition, if any, comes elsewhere
            *pos = i + 1;
            return true;
        }
        size_t end = skip_block(i);
        for (size_t k = i + 1; k + 1 < end;) {
            const std::string& tok = t_[k];
            if (is_shared_space(tok)) {
                bool external = k > 0 && t_[k - 1] == ".extern";
                if (!parse_shared(&k, external, &f.local_shared)) return false;
                continue;
            }
            if (is_identifier(tok)) f.identifiers.insert(tok);
            ++k;
        }
        *pos = end;
        functions_.push_back(std::move(f));
        return true;
    }

    // The functions the entry calls, directly or not (the compiler may move a __shared__ variable into the
    // one function that uses it), in declaration order, and the identifiers all of them name.
    std::vector<const Function*> reachable(const Function& entry, std::set<std::string>* names) const {
        std::map<std::string, const Function*> by_name;
        for (const Function& f : functions_)
            if (!f.is_entry) by_name[f.name] = &f;
        std::set<std::string> seen_funcs;
        std::vector<const Function*> work{&entry};
        while (!work.empty()) {
            const Function* f = work.back();
            work.pop_back();
            for (const std::string& id : f->identifiers) {
                names->insert(id);
                auto it = by_name.find(id);
                if (it != by_name.end() && seen_funcs.insert(id).second) work.push_back(it->second);
            }
        }
        std::vector<const Function*> called;
        for (const Function& f : functions_)
            if (!f.is_entry && seen_funcs.count(f.name)) called.push_back(&f);
        return called;
    }

    // Static shared bytes, laid out as the assembler does: the entry's own variables, the module-level
    // ones it or its callees name, then those of the functions it calls, each in declaration order at its
    // alignment. Dynamic shared memory starts after them at the largest alignment any .extern .shared of
    // the module declares (used by the entry or not), and that padding counts as static.
    size_t layout(const Function& entry) const {
        std::set<std::string> names;
        std::vector<const Function*> called = reachable(entry, &names);
        std::vector<Declarator> module_used;
        for (const Declarator& d : module_shared_)
            if (names.count(d.name)) module_used.push_back(d);
        std::vector<const std::vector<Declarator>*> groups{&entry.local_shared, &module_used};
        for (const Function* f : called) groups.push_back(&f->local_shared);
        size_t offset = 0, dynamic_align = 1;
        for (const Declarator& d : module_shared_)
            if (d.dynamic) dynamic_align = std::max(dynamic_align, d.align ? d.align : 1);
        for (const std::vector<Declarator>* vars : groups) {
            for (const Declarator& d : *vars) {
                if (d.bytes == 0) continue;
                size_t a = d.align ? d.align : 1;
                offset = (offset + a - 1) / a * a + d.bytes;
            }
        }
        return (offset + dynamic_align - 1) / dynamic_align * dynamic_align;
    }

    std::vector<std::string> t_;
    std::string* error_;
    std::vector<Function> functions_;
    std::vector<Declarator> module_shared_;
};

// PTX starts, after white space and comments, with its .version directive.
bool looks_like_ptx(const char* p) {
    for (;;) {
        while (*p && std::isspace(static_cast<unsigned char>(*p))) ++p;
        if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n') ++p;
        } else if (p[0] == '/' && p[1] == '*') {
            const char* end = std::strstr(p + 2, "*/");
            if (!end) return false;
            p = end + 2;
        } else {
            return std::strncmp(p, ".version", 8) == 0;
        }
    }
}

bool parse_ptx(const char* text, std::vector<ModuleEntry>* entries, std::string* error) {
    PtxParser parser(text, error);
    return parser.parse(entries);
}

// ================================================================ cubin (ELF64, EM_CUDA)

constexpr uint16_t kEmCuda = 190;
constexpr uint32_t kShtNobits = 8;
constexpr unsigned char kStoCudaEntry = 0x10;
constexpr unsigned kSttFunc = 2;
// Cubins with a .nv.shared.reserved.N section (sm_90 and later) start each kernel's .nv.shared.NAME
// section with a 1 KiB system area that is not the kernel's static shared memory (ptxas -v leaves it out).
constexpr size_t kReservedSharedBytes = 1024;

// .nv.info record formats: {u8 format, u8 attribute, u16 value-or-size}, payload only for kSval.
constexpr unsigned char kEifmtNval = 1, kEifmtBval = 2, kEifmtHval = 3, kEifmtSval = 4;
// Attributes read here (the payloads checked against ptxas output for the same PTX).
constexpr unsigned char kEiattrMaxThreads = 0x05;    // u32 x, y, z (.maxntid)
constexpr unsigned char kEiattrReqntid = 0x10;       // u32 x, y, z (.reqntid)
constexpr unsigned char kEiattrKparamInfo = 0x17;    // u32 index, u16 ordinal, u16 offset, u32 (size << 18 | flags)
constexpr unsigned char kEiattrKparamInfoV2 = 0x45;  // u32 index, u16 ordinal, u16 offset, u32 size (large params)

struct Section {
    std::string name;
    uint32_t type = 0;
    uint64_t offset = 0, size = 0;
    uint32_t link = 0, info = 0;
    uint64_t entsize = 0;
};

class CubinParser {
public:
    // `limit`: bytes known to be readable at `p` (SIZE_MAX when unknown: the ELF headers then say).
    CubinParser(const unsigned char* p, size_t limit, std::string* error) : p_(p), limit_(limit), error_(error) {}

    bool parse(std::vector<ModuleEntry>* entries, unsigned* arch) {
        if (limit_ < 64) return fail("shorter than an ELF header");
        if (p_[4] != 2 || p_[5] != 1) return fail("not a little-endian ELF64 file");
        if (rd16(p_ + 18) != kEmCuda)
            return fail("ELF machine " + std::to_string(rd16(p_ + 18)) + ", not EM_CUDA (190)");
        // e_flags: ABI version 8 and later keep the SM number in bits 8..15, earlier ones in bits 0..7.
        // (sm_90 and sm_90a cubins carry the same e_flags.)
        uint32_t flags = rd32(p_ + 48);
        *arch = p_[8] >= 8 ? (flags >> 8) & 0xff : flags & 0xff;
        if (!read_sections()) return false;

        const Section* symtab = nullptr;
        for (const Section& s : sections_)
            if (s.type == 2 /* SHT_SYMTAB */) symtab = &s;
        if (!symtab) return fail("no symbol table");
        if (symtab->link >= sections_.size()) return fail("bad symbol string table index");
        const Section& strtab = sections_[symtab->link];
        bool reserved_shared = false;
        for (const Section& s : sections_)
            if (s.name.rfind(".nv.shared.reserved.", 0) == 0) reserved_shared = true;

        // Entries: STT_FUNC symbols marked STO_CUDA_ENTRY (visible or not).
        size_t count = symtab->entsize == 24 ? symtab->size / 24 : 0;
        for (size_t k = 1; k < count; ++k) {
            const unsigned char* sym = p_ + symtab->offset + k * 24;
            if ((sym[4] & 0xf) != kSttFunc || !(sym[5] & kStoCudaEntry)) continue;
            ModuleEntry e;
            if (!string_at(strtab, rd32(sym), &e.name)) return false;
            uint16_t text_index = rd16(sym + 6);
            if (!read_info(e.name, text_index, &e)) return false;
            for (size_t s = 0; s < sections_.size(); ++s) {
                const Section& sec = sections_[s];
                if (sec.name == ".nv.shared." + e.name ||
                    (sec.info == text_index && sec.type == kShtNobits && sec.name.rfind(".nv.shared.", 0) == 0 &&
                     sec.name.rfind(".nv.shared.reserved.", 0) != 0)) {
                    size_t bytes = size_t(sec.size);
                    if (reserved_shared) bytes = bytes > kReservedSharedBytes ? bytes - kReservedSharedBytes : 0;
                    e.static_shared_bytes = bytes;
                    break;
                }
            }
            entries->push_back(std::move(e));
        }
        return true;
    }

private:
    bool fail(const std::string& message) {
        *error_ = "cubin: " + message;
        return false;
    }

    bool in_bounds(uint64_t offset, uint64_t size) const {
        return offset <= limit_ && size <= limit_ - offset;
    }

    bool read_sections() {
        uint64_t shoff = rd64(p_ + 40), phoff = rd64(p_ + 32);
        uint16_t shentsize = rd16(p_ + 58), phentsize = rd16(p_ + 54);
        uint32_t shnum = rd16(p_ + 60), phnum = rd16(p_ + 56);
        uint32_t shstrndx = rd16(p_ + 62);
        if (shoff == 0 || shentsize != 64) return fail("no section headers (e_shoff 0 or e_shentsize not 64)");
        constexpr uint64_t kMaxImage = uint64_t(1) << 32;  // sanity bound when the size is unknown
        if (shoff > kMaxImage) return fail("section header offset out of range");
        if (limit_ != SIZE_MAX && !in_bounds(shoff, 64)) return fail("section headers beyond the image");
        if (shnum == 0) shnum = uint32_t(rd64(p_ + shoff + 32));  // extended numbering: sh[0].sh_size
        if (shstrndx == 0xffff) shstrndx = rd32(p_ + shoff + 40);  // ... and sh[0].sh_link
        if (shnum == 0 || shnum > 1000000) return fail("bad section count");
        if (limit_ == SIZE_MAX) {
            // Unknown size: the image spans every header table and section the headers describe.
            uint64_t end = shoff + uint64_t(shnum) * 64;
            if (phoff && phnum) {
                if (phoff > kMaxImage || phentsize > 4096) return fail("program header table out of range");
                end = std::max(end, phoff + uint64_t(phnum) * phentsize);
            }
            for (uint32_t k = 0; k < shnum; ++k) {
                const unsigned char* sh = p_ + shoff + uint64_t(k) * 64;
                uint64_t off = rd64(sh + 24), size = rd64(sh + 32);
                if (rd32(sh + 4) == kShtNobits) continue;
                if (off > kMaxImage || size > kMaxImage) return fail("section " + std::to_string(k) + " out of range");
                end = std::max(end, off + size);
            }
            limit_ = size_t(end);
        }
        if (!in_bounds(shoff, uint64_t(shnum) * 64)) return fail("section headers beyond the image");
        sections_.resize(shnum);
        for (uint32_t k = 0; k < shnum; ++k) {
            const unsigned char* sh = p_ + shoff + uint64_t(k) * 64;
            Section& s = sections_[k];
            s.type = rd32(sh + 4);
            s.offset = rd64(sh + 24);
            s.size = rd64(sh + 32);
            s.link = rd32(sh + 40);
            s.info = rd32(sh + 44);
            s.entsize = rd64(sh + 56);
            if (s.type != kShtNobits && !in_bounds(s.offset, s.size))
                return fail("section " + std::to_string(k) + " beyond the image");
        }
        if (shstrndx >= shnum) return fail("bad section name table index");
        for (uint32_t k = 0; k < shnum; ++k) {
            const unsigned char* sh = p_ + shoff + uint64_t(k) * 64;
            if (!string_at(sections_[shstrndx], rd32(sh), &sections_[k].name)) return false;
        }
        return true;
    }

    bool string_at(const Section& table, uint64_t index, std::string* out) {
        if (table.type == kShtNobits || index >= table.size) return fail("string index out of range");
        const char* begin = reinterpret_cast<const char*>(p_ + table.offset + index);
        const void* nul = std::memchr(begin, 0, size_t(table.size - index));
        if (!nul) return fail("unterminated string");
        out->assign(begin, static_cast<const char*>(nul));
        return true;
    }

    // The entry's .nv.info.NAME records: parameter sizes and launch bounds.
    bool read_info(const std::string& name, uint16_t text_index, ModuleEntry* e) {
        const Section* info = nullptr;
        for (const Section& s : sections_)
            if (s.name == ".nv.info." + name) info = &s;
        if (!info)
            for (const Section& s : sections_)
                if (s.info == text_index && s.name.rfind(".nv.info.", 0) == 0) info = &s;
        if (!info) return true;  // nothing recorded: no parameters, no bounds
        std::map<unsigned, size_t> params;  // ordinal → size
        unsigned maxntid = 0, reqntid = 0;
        const unsigned char* p = p_ + info->offset;
        uint64_t n = info->size;
        for (uint64_t at = 0; at < n;) {
            if (n - at < 4) return fail(".nv.info." + name + ": truncated record");
            unsigned char format = p[at], attr = p[at + 1];
            uint16_t value = rd16(p + at + 2);
            if (format == kEifmtNval || format == kEifmtBval || format == kEifmtHval) {
                at += 4;
                continue;
            }
            if (format != kEifmtSval)
                return fail(".nv.info." + name + ": unknown record format " + std::to_string(format));
            if (n - at - 4 < value) return fail(".nv.info." + name + ": record beyond its section");
            const unsigned char* payload = p + at + 4;
            if ((attr == kEiattrKparamInfo || attr == kEiattrKparamInfoV2) && value >= 12) {
                unsigned ordinal = rd16(payload + 4);
                uint32_t word = rd32(payload + 8);
                size_t size = attr == kEiattrKparamInfo ? size_t(word >> 18) : size_t(word);
                if (!params.emplace(ordinal, size).second)
                    return fail(name + ": parameter " + std::to_string(ordinal) + " described twice");
            } else if ((attr == kEiattrMaxThreads || attr == kEiattrReqntid) && value >= 12) {
                uint64_t product = uint64_t(rd32(payload)) * rd32(payload + 4) * rd32(payload + 8);
                unsigned v = product > 0xffffffffull ? 0xffffffffu : unsigned(product);
                (attr == kEiattrMaxThreads ? maxntid : reqntid) = v;
            }
            at += 4 + value;
        }
        for (const auto& [ordinal, size] : params) {
            if (ordinal != e->param_sizes.size())
                return fail(name + ": parameter " + std::to_string(e->param_sizes.size()) + " not described");
            e->param_sizes.push_back(size);
        }
        e->max_threads = reqntid && (!maxntid || reqntid < maxntid) ? reqntid : maxntid;
        return true;
    }

    const unsigned char* p_;
    size_t limit_;
    std::string* error_;
    std::vector<Section> sections_;
};

std::string cubin_kind(unsigned arch) { return "cubin sm_" + std::to_string(arch); }

// ================================================================ fatbin

constexpr unsigned char kFatbinMagic[4] = {0x50, 0xed, 0x55, 0xba};   // 0xBA55ED50
constexpr unsigned char kWrapperMagic[4] = {0xb1, 0x43, 0x62, 0x46};  // 0x466243B1
constexpr unsigned char kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr unsigned kDeviceArch = 90;

// Entry header: u16 kind (1 PTX, 2 ELF), u16 version, u32 header size, u64 payload size, u32 compressed
// size (0: stored as is), ..., u32 arch at 0x1c, ..., u64 flags at 0x28 (0x2000 LZ4, 0x8000 Zstandard).
constexpr uint16_t kFatbinPtx = 1, kFatbinElf = 2;
constexpr uint64_t kFatbinCompressedFlags = 0x2000 | 0x8000;

bool parse_fatbin(const unsigned char* p, std::vector<ModuleEntry>* entries, std::string* kind, std::string* error) {
    uint16_t header_size = rd16(p + 6);
    uint64_t body = rd64(p + 8);
    if (header_size < 16) {
        *error = "fatbin: bad header size " + std::to_string(header_size);
        return false;
    }
    if (body > (uint64_t(1) << 32)) {
        *error = "fatbin: implausible size " + std::to_string(body);
        return false;
    }
    const unsigned char* begin = p + header_size;
    struct Candidate {
        uint16_t type;
        unsigned arch;
        const unsigned char* payload;
        uint64_t size;
    };
    std::vector<Candidate> usable;
    std::string seen;  // what was found, for the error when nothing fits
    for (uint64_t at = 0; at < body;) {
        if (body - at < 0x40) {
            *error = "fatbin: truncated entry header at offset " + std::to_string(header_size + at);
            return false;
        }
        const unsigned char* h = begin + at;
        uint16_t type = rd16(h);
        uint32_t hsize = rd32(h + 4);
        uint64_t size = rd64(h + 8);
        uint32_t compressed_size = rd32(h + 0x10);
        unsigned arch = rd32(h + 0x1c);
        uint64_t flags = rd64(h + 0x28);
        if (hsize < 0x40 || hsize > body - at || size > body - at - hsize) {
            *error = "fatbin: entry at offset " + std::to_string(header_size + at) + " exceeds the fatbin";
            return false;
        }
        bool compressed = compressed_size != 0 || (flags & kFatbinCompressedFlags);
        std::string what = type == kFatbinPtx   ? "ptx compute_" + std::to_string(arch)
                           : type == kFatbinElf ? "cubin sm_" + std::to_string(arch)
                                                : "kind " + std::to_string(type);
        if (compressed) what += (flags & 0x8000) ? " (Zstandard-compressed)" : " (compressed)";
        seen += (seen.empty() ? "" : ", ") + what;
        if (!compressed && (type == kFatbinPtx || type == kFatbinElf)) usable.push_back({type, arch, h + hsize, size});
        at += hsize + size;
    }
    // An sm_90 cubin runs as is; otherwise PTX for compute_90 or lower is what a driver would compile.
    const Candidate* pick = nullptr;
    for (const Candidate& c : usable)
        if (c.type == kFatbinElf && c.arch == kDeviceArch) pick = &c;
    if (!pick)
        for (const Candidate& c : usable)
            if (c.type == kFatbinPtx && c.arch <= kDeviceArch && (!pick || c.arch > pick->arch)) pick = &c;
    if (!pick) {
        *error = "fatbin: no uncompressed sm_90 cubin or compute_90-or-lower PTX (entries: " +
                 (seen.empty() ? std::string("none") : seen) +
                 "; compressed entries are not read, build with nvcc --compress-mode=none)";
        return false;
    }
    if (pick->type == kFatbinElf) {
        if (pick->size < 4 || !starts_with(pick->payload, kElfMagic, 4)) {
            *error = "fatbin: sm_90 entry is not an ELF file";
            return false;
        }
        unsigned arch = 0;
        CubinParser cubin(pick->payload, size_t(pick->size), error);
        if (!cubin.parse(entries, &arch)) {
            *error = "fatbin: " + *error;
            return false;
        }
        *kind = "fatbin: " + cubin_kind(arch);
        return true;
    }
    const char* text = reinterpret_cast<const char*>(pick->payload);
    std::string ptx(text, strnlen(text, size_t(pick->size)));
    if (!looks_like_ptx(ptx.c_str())) {
        *error = "fatbin: PTX entry does not start with .version";
        return false;
    }
    if (!parse_ptx(ptx.c_str(), entries, error)) {
        *error = "fatbin: " + *error;
        return false;
    }
    *kind = "fatbin: ptx";
    return true;
}

}  // namespace

bool parse_module_image(const void* image, std::vector<ModuleEntry>* entries, std::string* kind, std::string* error) {
    std::string scratch_kind, scratch_error;
    if (!kind) kind = &scratch_kind;
    if (!error) error = &scratch_error;
    kind->clear();
    error->clear();
    if (!image) {
        *error = "null module image";
        return false;
    }
    std::vector<ModuleEntry> found;
    const unsigned char* p = static_cast<const unsigned char*>(image);
    bool ok;
    if (starts_with(p, kWrapperMagic, 4)) {
        // {int magic, int version, const void* data, void* filename_or_fatbins}
        const void* data = nullptr;
        std::memcpy(&data, p + 8, sizeof data);
        const unsigned char* fat = static_cast<const unsigned char*>(data);
        if (!fat || !starts_with(fat, kFatbinMagic, 4)) {
            *error = "fatbin wrapper: its data does not point at a fatbin";
            return false;
        }
        ok = parse_fatbin(fat, &found, kind, error);
    } else if (starts_with(p, kFatbinMagic, 4)) {
        ok = parse_fatbin(p, &found, kind, error);
    } else if (starts_with(p, kElfMagic, 4)) {
        unsigned arch = 0;
        CubinParser cubin(p, SIZE_MAX, error);
        ok = cubin.parse(&found, &arch);
        if (ok) *kind = cubin_kind(arch);
    } else if (looks_like_ptx(reinterpret_cast<const char*>(p))) {
        ok = parse_ptx(reinterpret_cast<const char*>(p), &found, error);
        if (ok) *kind = "ptx";
    } else {
        // Up to 8 bytes, stopping at a NUL so a short string is not read past its end.
        size_t n = 0;
        while (n < 8 && (n == 0 || p[n - 1] != 0)) ++n;
        *error = "not PTX, cubin or fatbin: first bytes " + hex_bytes(p, n);
        return false;
    }
    if (!ok) return false;
    if (entries) *entries = std::move(found);
    return true;
}

}  // namespace emu
