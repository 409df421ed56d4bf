// Catch2 v2 builds its main here; v3 links Catch2::Catch2WithMain instead.
#ifndef GREET_TEST_CATCH3
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif
