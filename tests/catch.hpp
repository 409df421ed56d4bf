// Catch2 v3 where CMake found it, else Debian's v2 single header.
#pragma once
#ifdef GREET_TEST_CATCH3
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#else
#include <catch2/catch.hpp>
#endif
