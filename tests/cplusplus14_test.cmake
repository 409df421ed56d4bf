# A C++14 compile of the header must stop at the header's one #error that names C++17
# (and the missing header GCC and Clang stop at), not at hundreds of errors after it.
#   cmake -DCXX=<compiler> -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch> -P cplusplus14_test.cmake
file(MAKE_DIRECTORY "${WORK_DIR}")
file(WRITE "${WORK_DIR}/cplusplus14.cpp" "#include \"greet_socket.hpp\"\nint main() { return 0; }\n")
execute_process(COMMAND "${CXX}" -std=c++14 -fsyntax-only "-I${SOURCE_DIR}" "${WORK_DIR}/cplusplus14.cpp"
  RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
string(REGEX MATCHALL "[^\n]*: (fatal )?error:[^\n]*" errors "${output}")
list(LENGTH errors count)
set(first "")
if(count GREATER 0)
  list(GET errors 0 first)
endif()
if(status EQUAL 0 OR NOT first MATCHES "greet_socket.hpp needs C\\+\\+17" OR count GREATER 2)
  message(FATAL_ERROR "-std=c++14: exit ${status}, ${count} errors, the first: ${first}\n${output}")
endif()
message(STATUS "-std=c++14 stops at: ${first} (${count} error lines)")
