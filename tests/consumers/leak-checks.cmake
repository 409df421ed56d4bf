# Nothing but the library may come in: no tests, examples or install rules. For the
# consumers that build greet_socket's CMake project inside their own (include it from one
# directory up); `how` names the call that brought it in.
function(check_no_leaked_targets how)
  foreach(target greet_tests server client)
    if(TARGET ${target})
      message(FATAL_ERROR "${how} leaked the target ${target}")
    endif()
  endforeach()
endfunction()
