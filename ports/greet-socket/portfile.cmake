# Overlay port: builds the checkout this file sits in (ports/greet-socket/ -> repo root).
# For the curated registry this line becomes vcpkg_from_github(... REF "v${VERSION}" ...).
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

set(VCPKG_BUILD_TYPE release) # header only: one configuration is enough

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        openssl GREET_SOCKET_OPENSSL
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DBUILD_TESTING=OFF
        -DGREET_SOCKET_BUILD_TESTS=OFF
        -DGREET_SOCKET_BUILD_EXAMPLES=OFF
        -DGREET_SOCKET_INSTALL=ON
)

vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME greet_socket CONFIG_PATH share/cmake/greet_socket)
vcpkg_fixup_pkgconfig()

# The license goes to share/greet-socket/copyright, not also to share/doc.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
# The port is greet-socket, the CMake package greet_socket: the usage says so.
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
