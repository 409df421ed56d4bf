#!/usr/bin/env bash
# Makes the release archive of a tag (or any commit) and prints the hashes the vcpkg port
# and FetchContent take.
#
#   scripts/release-archive.sh v1.1.0            -> build/release/greet_socket-1.1.0.tar.gz
#   scripts/release-archive.sh HEAD [out-dir]    -> greet_socket-<version>-g<commit>.tar.gz
#
# The archive is `git archive` of the commit with the prefix greet_socket-<version>/,
# compressed with `gzip -n`: the same commit gives the same bytes on any machine and with
# any git (git's own gzip, its default since 2.38, compresses differently). A tag must be
# v<version> of the header, and the commit must name that version everywhere (vcpkg.json,
# CHANGELOG.md). Needs git, gzip, sha256sum and sha512sum.
set -euo pipefail

ref=${1:?usage: scripts/release-archive.sh <tag or commit> [out-dir]}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/build/release}
git=(git -C "$root")

commit=$("${git[@]}" rev-parse --verify --quiet "$ref^{commit}") ||
  { echo "release-archive: $ref is not a commit of $root" >&2; exit 1; }

# The version, read from the header at that commit, and where else it must stand.
header=$("${git[@]}" show "$commit:greet_socket.hpp")
part() { sed -n "s/^#define GREET_SOCKET_VERSION_$1 \([0-9]*\)\$/\1/p" <<<"$header"; }
version=$(part MAJOR).$(part MINOR).$(part PATCH)
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "release-archive: no version in greet_socket.hpp at $ref" >&2; exit 1; }
grep -q "^#define GREET_SOCKET_VERSION \"$version\"\$" <<<"$header" ||
  { echo "release-archive: GREET_SOCKET_VERSION differs from $version at $ref" >&2; exit 1; }
"${git[@]}" show "$commit:ports/greet-socket/vcpkg.json" 2>/dev/null | grep -q "\"version\": \"$version\"" ||
  { echo "release-archive: ports/greet-socket/vcpkg.json does not say $version at $ref" >&2; exit 1; }
"${git[@]}" show "$commit:CHANGELOG.md" 2>/dev/null | grep -q "^## $version\\b" ||
  { echo "release-archive: CHANGELOG.md has no section for $version at $ref" >&2; exit 1; }

# A release tag names the header's version; anything else gets the commit in its name.
if [[ $ref == v[0-9]* ]] && "${git[@]}" show-ref --verify --quiet "refs/tags/$ref"; then
  [ "$ref" = "v$version" ] || { echo "release-archive: the tag $ref is not v$version, the header's version" >&2; exit 1; }
  name=greet_socket-$version
else
  name=greet_socket-$version-g${commit:0:12}
fi

mkdir -p "$out"
archive=$out/$name.tar.gz
# The prefix is the one GitHub gives the archive of the tag v<version>.
"${git[@]}" -c tar.umask=0022 archive --format=tar --prefix="greet_socket-$version/" "$commit" |
  gzip -n >"$archive.tmp"
mv "$archive.tmp" "$archive"

sha512=$(sha512sum "$archive" | cut -d' ' -f1)
sha256=$(sha256sum "$archive" | cut -d' ' -f1)
cat <<REPORT
$archive
  commit  $commit ($ref)
  version $version
  SHA512  $sha512
  SHA256  $sha256
vcpkg:        vcpkg_from_github(... REF "v\${VERSION}" SHA512 $sha512 ...)
              (GitHub makes its own archive of the tag; if vcpkg reports another hash, upload
              this file as a release asset and use vcpkg_download_distfile with this hash)
FetchContent: FetchContent_Declare(greet_socket URL <this file's URL> URL_HASH SHA256=$sha256)
REPORT
