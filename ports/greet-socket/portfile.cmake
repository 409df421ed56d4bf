# Overlay port: builds the checkout this file sits in (ports/greet-socket/ -> repo root).
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

set(VCPKG_BUILD_TYPE release) # header only: one configuration is enough

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DGREET_SOCKET_BUILD_TESTS=OFF
        -DGREET_SOCKET_BUILD_EXAMPLES=OFF
        -DGREET_SOCKET_INSTALL=ON
)

vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME greet_socket CONFIG_PATH share/cmake/greet_socket)
vcpkg_fixup_pkgconfig()

vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
