# Runs ports/greet-socket/portfile.cmake as vcpkg would, for machines without vcpkg:
# the vcpkg helpers it calls are stood in for by the few steps they take for a
# header-only, release-only port, so the port's own options and calls are what runs.
#
#   cmake -DPORT_DIR=<repo>/ports/greet-socket -DWORK_DIR=<scratch> -P run-portfile.cmake
#
# Toolchain or other configure options of the triplet may come in -DTOOLCHAIN_ARGS=...,
# the port's features to install in -DFEATURES=<list> (greet-socket[openssl]: openssl).
#
# Leaves the package tree vcpkg would install in <scratch>/packages.
cmake_minimum_required(VERSION 3.19) # string(JSON), list(POP_FRONT)

foreach(required PORT_DIR WORK_DIR)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "pass -D${required}=...")
  endif()
endforeach()

file(READ "${PORT_DIR}/vcpkg.json" manifest)
string(JSON PORT GET "${manifest}" name)
string(JSON VERSION GET "${manifest}" version)
set(CURRENT_PACKAGES_DIR "${WORK_DIR}/packages")
set(CURRENT_BUILDTREES_DIR "${WORK_DIR}/buildtrees")
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}" "${CURRENT_BUILDTREES_DIR}")
set(build_dir "${CURRENT_BUILDTREES_DIR}/rel")

function(z_run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

# The features asked for give ON, the others OFF, as vcpkg_check_features does.
function(vcpkg_check_features)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "OUT_FEATURE_OPTIONS" "FEATURES")
  set(options)
  while(arg_FEATURES)
    list(POP_FRONT arg_FEATURES feature option)
    if(feature IN_LIST FEATURES)
      list(APPEND options "-D${option}=ON")
    else()
      list(APPEND options "-D${option}=OFF")
    endif()
  endwhile()
  set(${arg_OUT_FEATURE_OPTIONS} ${options} PARENT_SCOPE)
endfunction()

# Configure as vcpkg_cmake_configure does for the release build: its fixed options
# first, then the port's OPTIONS and OPTIONS_RELEASE.
function(vcpkg_cmake_configure)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "SOURCE_PATH" "OPTIONS;OPTIONS_RELEASE;OPTIONS_DEBUG")
  if(DEFINED arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "vcpkg_cmake_configure: unexpected arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT VCPKG_BUILD_TYPE STREQUAL "release")
    message(FATAL_ERROR "a header-only port sets VCPKG_BUILD_TYPE to release before configuring")
  endif()
  message(STATUS "port options: ${arg_OPTIONS} ${arg_OPTIONS_RELEASE}")
  set(generator)
  find_program(ninja NAMES ninja ninja-build)
  if(ninja)
    set(generator -G Ninja)
  endif()
  z_run("${CMAKE_COMMAND}" -S "${arg_SOURCE_PATH}" -B "${build_dir}" ${generator} ${TOOLCHAIN_ARGS}
    -DFETCHCONTENT_FULLY_DISCONNECTED=ON
    -DBUILD_SHARED_LIBS=OFF
    -DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON
    -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
    -DCMAKE_ERROR_ON_ABSOLUTE_INSTALL_DESTINATION=ON
    -DCMAKE_INSTALL_LIBDIR:STRING=lib
    -DCMAKE_INSTALL_BINDIR:STRING=bin
    -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}"
    ${arg_OPTIONS} ${arg_OPTIONS_RELEASE})
endfunction()

function(vcpkg_cmake_install)
  z_run("${CMAKE_COMMAND}" --build "${build_dir}" --target install)
endfunction()

# Moves the package's CMake files to share/<PACKAGE_NAME> and makes the prefix they
# compute two levels up from there, as vcpkg_cmake_config_fixup does.
function(vcpkg_cmake_config_fixup)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "PACKAGE_NAME;CONFIG_PATH" "")
  if(NOT arg_PACKAGE_NAME)
    set(arg_PACKAGE_NAME "${PORT}")
  endif()
  if(NOT arg_CONFIG_PATH)
    set(arg_CONFIG_PATH "share/${arg_PACKAGE_NAME}")
  endif()
  set(from "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}")
  set(to "${CURRENT_PACKAGES_DIR}/share/${arg_PACKAGE_NAME}")
  if(NOT EXISTS "${from}")
    message(FATAL_ERROR "vcpkg_cmake_config_fixup: ${from} does not exist")
  endif()
  if(NOT from STREQUAL to)
    file(GLOB files "${from}/*")
    file(COPY ${files} DESTINATION "${to}")
    file(REMOVE_RECURSE "${from}")
    get_filename_component(parent "${from}" DIRECTORY)
    get_filename_component(parent_name "${parent}" NAME)
    if(parent_name STREQUAL "cmake")
      file(REMOVE_RECURSE "${parent}")
    endif()
  endif()
  file(GLOB cmake_files "${to}/*.cmake")
  set(up_one [[get_filename_component(_IMPORT_PREFIX "${_IMPORT_PREFIX}" PATH)]])
  foreach(cmake_file IN LISTS cmake_files)
    file(READ "${cmake_file}" text)
    string(REGEX REPLACE
      "(get_filename_component\\(_IMPORT_PREFIX \"\\\${CMAKE_CURRENT_LIST_FILE}\" PATH\\)\n)(get_filename_component\\(_IMPORT_PREFIX \"\\\${_IMPORT_PREFIX}\" PATH\\)\n)*"
      "\\1${up_one}\n${up_one}\n" text "${text}")
    string(REGEX REPLACE
      "get_filename_component\\(PACKAGE_PREFIX_DIR \"\\\${CMAKE_CURRENT_LIST_DIR}/\\.\\./(\\.\\./)*\" ABSOLUTE\\)"
      "get_filename_component(PACKAGE_PREFIX_DIR \"\${CMAKE_CURRENT_LIST_DIR}/../../\" ABSOLUTE)" text "${text}")
    file(WRITE "${cmake_file}" "${text}")
  endforeach()
endfunction()

# vcpkg rewrites absolute package paths in .pc files relative to ${pcfiledir}.
function(vcpkg_fixup_pkgconfig)
  file(GLOB_RECURSE pc_files "${CURRENT_PACKAGES_DIR}/*.pc")
  foreach(pc_file IN LISTS pc_files)
    get_filename_component(pc_dir "${pc_file}" DIRECTORY)
    file(RELATIVE_PATH to_prefix "${pc_dir}" "${CURRENT_PACKAGES_DIR}")
    file(READ "${pc_file}" text)
    string(REPLACE "${CURRENT_PACKAGES_DIR}" "\${pcfiledir}/${to_prefix}" text "${text}")
    file(WRITE "${pc_file}" "${text}")
  endforeach()
endfunction()

function(vcpkg_install_copyright)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "" "FILE_LIST")
  set(text "")
  foreach(license IN LISTS arg_FILE_LIST)
    if(NOT EXISTS "${license}")
      message(FATAL_ERROR "vcpkg_install_copyright: ${license} does not exist")
    endif()
    file(READ "${license}" part)
    string(APPEND text "${part}")
  endforeach()
  file(WRITE "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright" "${text}")
endfunction()

include("${PORT_DIR}/portfile.cmake")
