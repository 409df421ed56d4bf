#!/usr/bin/env python3
"""Fails when the places that state greet_socket's version disagree.

The header's GREET_SOCKET_VERSION_MAJOR/MINOR/PATCH are the source; the header's
GREET_SOCKET_VERSION string, ports/greet-socket/vcpkg.json, CHANGELOG.md's newest
section, and what a build reports (--cmake-version, --meson-version, generated or installed .pc files,
an installed greet_socketConfigVersion.cmake) must all match them.
"""
import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def header_versions(text):
    parts = {}
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"^#define GREET_SOCKET_VERSION_{part} (\d+)\s*$", text, re.M)
        parts[part] = match.group(1) if match else None
    string = re.search(r'^#define GREET_SOCKET_VERSION "([^"]*)"\s*$', text, re.M)
    numbers = [parts[p] for p in ("MAJOR", "MINOR", "PATCH")]
    return (None if None in numbers else ".".join(numbers)), (string.group(1) if string else None)


def changelog_version(text):
    match = re.search(r"^## (\d+\.\d+\.\d+)\b", text, re.M)
    return match.group(1) if match else None


def pc_version(text):
    match = re.search(r"^Version:\s*(\S+)\s*$", text, re.M)
    return match.group(1) if match else None


def cmake_version_file(text):
    match = re.search(r'set\(PACKAGE_VERSION "([^"]*)"\)', text)
    return match.group(1) if match else None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cmake-version", help="PROJECT_VERSION as CMake computed it")
    parser.add_argument("--meson-version", help="meson.project_version()")
    parser.add_argument("--pc", action="append", default=[], help="a generated or installed greet_socket.pc")
    parser.add_argument("--config-version", action="append", default=[],
                        help="an installed greet_socketConfigVersion.cmake")
    args = parser.parse_args()

    header = (ROOT / "greet_socket.hpp").read_text(encoding="utf-8")
    expected, header_string = header_versions(header)
    if expected is None:
        print("FAIL: greet_socket.hpp lacks GREET_SOCKET_VERSION_MAJOR/MINOR/PATCH")
        return 1

    found = [("greet_socket.hpp GREET_SOCKET_VERSION", header_string),
             ("CHANGELOG.md", changelog_version((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))),
             ("ports/greet-socket/vcpkg.json",
              json.loads((ROOT / "ports/greet-socket/vcpkg.json").read_text(encoding="utf-8")).get("version"))]
    if args.cmake_version is not None:
        found.append(("CMake project version", args.cmake_version))
    if args.meson_version is not None:
        found.append(("meson project version", args.meson_version))
    for path in args.pc:
        found.append((path, pc_version(pathlib.Path(path).read_text(encoding="utf-8"))))
    for path in args.config_version:
        found.append((path, cmake_version_file(pathlib.Path(path).read_text(encoding="utf-8"))))

    failures = 0
    for where, version in found:
        ok = version == expected
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {where}: {version} (header: {expected})")
    print(f"{len(found) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
