#!/usr/bin/env bash
# regen.sh — recreates the test CA and server certificate used by the TLS
# tests (valid for a century, so they never expire under CI). The server
# certificate names localhost, 127.0.0.1, ::1 and *.test.google.fr, the name
# the gRPC interop clients use with --server_host_override.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 36500 -subj "/CN=Parley Test CA" -out ca.pem
openssl ecparam -name prime256v1 -genkey -noout -out server.key
openssl req -new -key server.key -subj "/CN=localhost" -out "$tmp/server.csr"
cat > "$tmp/ext.cnf" <<'EXT'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:*.test.google.fr,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey "$tmp/ca.key" -CAcreateserial -days 36500 -sha256 \
  -extfile "$tmp/ext.cnf" -out server.pem
rm -f ca.srl
echo "regen.sh: wrote ca.pem, server.pem, server.key"
