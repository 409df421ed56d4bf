#!/usr/bin/env bash
# Throwaway certificates for the TLS tests and examples, made fresh in DIR (never commit them):
#   ca.pem ca.key                          a test CA
#   server.pem server.key                  CN=localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1, signed by the CA
#   client.pem client.key                  CN=alice, signed by the CA (mutual TLS)
#   expired.pem expired.key                localhost, signed by the CA, valid only in 2020
#   self-signed.pem self-signed.key        localhost, signed by itself
#   other-ca.pem other-ca.key              an unrelated CA
#   wrong-ca-server.pem wrong-ca-server.key  localhost, signed by the unrelated CA
# Usage: scripts/make-tls-certs.sh DIR [--expired]   (--expired: also make the expired pair,
# which needs `openssl ca` and so costs a little more). EC P-256 keys: quick to make and use.
# Running it again replaces every file.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [--expired]" >&2; exit 2; }
dir=$1
expired=${2:-}
mkdir -p "$dir"
cd "$dir"
umask 077 # the keys are readable by this user only

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
# A CA: self-signed, allowed to sign (req -x509 marks it CA:TRUE by its default extensions).
ca() { key "$1" && openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -out "$1.pem"; }
# A leaf for NAME's subject, signed by CA, with the extensions EXT (x509 -req keeps none of the request's).
leaf() { # leaf NAME CA SUBJECT EXT
    key "$1"
    openssl req -new -key "$1.key" -subj "$3" |
        openssl x509 -req -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" -days 2 \
            -extfile <(printf '%s\n' "$4") -out "$1.pem" 2>/dev/null
}
server_ext='subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
basicConstraints=critical,CA:FALSE
extendedKeyUsage=serverAuth'

ca ca "greet_socket test CA"
ca other-ca "unrelated test CA"
leaf server ca "/CN=localhost" "$server_ext"
leaf client ca "/CN=alice" $'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth'
leaf wrong-ca-server other-ca "/CN=localhost" "$server_ext"
key self-signed
openssl req -x509 -new -key self-signed.key -subj "/CN=localhost" -days 2 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -out self-signed.pem

if [ "$expired" = "--expired" ]; then
    # OpenSSL 3.0's `x509 -req` has no -not_before/-not_after (3.4 added them); `openssl ca`
    # takes -startdate and -enddate, with a throwaway database beside it.
    key expired
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    : >"$work/index.txt"
    openssl rand -hex 8 >"$work/serial"
    cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
database = $work/index.txt
serial = $work/serial
new_certs_dir = $work
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = anything
x509_extensions = leaf
unique_subject = no
[anything]
commonName = supplied
[leaf]
$server_ext
EOF
    openssl req -new -key expired.key -subj "/CN=localhost" -out "$work/expired.csr"
    openssl ca -batch -config "$work/ca.cnf" -notext -startdate 20200101000000Z -enddate 20200102000000Z \
        -in "$work/expired.csr" -out expired.pem 2>/dev/null
fi
