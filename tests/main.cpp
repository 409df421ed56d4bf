// Catch2 v2 builds its main here; v3 links Catch2::Catch2WithMain instead.
#ifndef GREET_TEST_CATCH3
#define CATCH_CONFIG_RUNNER
#include "support.hpp"

#include <cstdlib>

// ctest runs each test case alone with GREET_TEST_SKIP_CODE set (tests/CMakeLists.txt): a
// run in which a test called GREET_TEST_SKIP and none failed exits with that code, which
// ctest counts as skipped. Without it (the whole binary run directly, under valgrind say)
// a skip stays a warning and the exit code is Catch's own.
int main(int argc, char* argv[]) {
    const int failed = Catch::Session().run(argc, argv); // failed assertions, at most 255
    const char* skip_code = std::getenv("GREET_TEST_SKIP_CODE");
    if (skip_code == nullptr) return failed;
    const int skip = static_cast<int>(std::strtol(skip_code, nullptr, 10));
    if (failed != 0) return failed == skip ? 1 : failed; // a failure never reads as a skip
    return test::skipped > 0 ? skip : 0;
}
#endif
