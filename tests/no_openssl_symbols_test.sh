#!/bin/sh
# The default build names no OpenSSL symbol: the objects given (built without
# GREET_SOCKET_OPENSSL) have none, so they link without -lssl -lcrypto.
#     no_openssl_symbols_test.sh none|some <object>...   (or one ';'-separated list, as CMake gives it)
# "some" is the check's own check: objects built with the macro must show the symbols.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 none|some <object>..." >&2; exit 2; }
command -v nm >/dev/null || { echo "SKIP: nm not found (Debian: apt-get install binutils)"; exit 77; }
expect=$1
shift
objects=$(printf '%s\n' "$@" | tr ';' '\n')
pattern='SSL_|OPENSSL|X509|EVP_|BIO_|greet::detail::OpenSsl'
found=0 count=0 greet=0
IFS='
' # one path a line
for object in $objects; do
    count=$((count + 1))
    symbols=$(nm -C "$object")
    if echo "$symbols" | grep -q 'greet::'; then greet=$((greet + 1)); fi
    if echo "$symbols" | grep -E "$pattern" >/dev/null; then
        found=$((found + 1))
        [ "$expect" = none ] && { echo "FAIL: $object names OpenSSL:"; echo "$symbols" | grep -E "$pattern" | head -20; exit 1; }
    fi
done
[ "$greet" -gt 0 ] || { echo "FAIL: no object names a greet symbol: are these objects nm reads?"; exit 1; }
if [ "$expect" = some ] && [ "$found" -eq 0 ]; then echo "FAIL: no object names OpenSSL: the check sees nothing"; exit 1; fi
echo "PASS: $count objects, $found naming OpenSSL (expected: $expect)"
