// The benchmarks' clock, shared by bench.cpp and tls_bench.cpp: wall-clock time, and the
// CPU time of the whole process (client and server threads) over the same interval: on a
// busy machine the CPU time is the steadier measure of cost.
#pragma once
#include <sys/resource.h>

#include <chrono>

namespace timing {
using Clock = std::chrono::steady_clock;
inline double cpu_now() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}
inline double cpu_start = 0, wall_seconds = 0, cpu_seconds = 0;
inline Clock::time_point begin() {
    cpu_start = cpu_now();
    return Clock::now();
}
inline double seconds_since(Clock::time_point start) {
    wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    cpu_seconds = cpu_now() - cpu_start;
    return wall_seconds;
}
} // namespace timing
