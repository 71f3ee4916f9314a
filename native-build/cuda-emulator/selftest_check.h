// The tally every self-test program of the emulator keeps: check() counts a result and names each failure
// on stderr; the program prints passed/failed at the end and exits non-zero on any failure.
#pragma once

#include <cstdio>
#include <string>

namespace {

int passed = 0, failed = 0;

void check(bool ok, const std::string& what) {
    if (ok) {
        ++passed;
    } else {
        ++failed;
        std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    }
}

}  // namespace
