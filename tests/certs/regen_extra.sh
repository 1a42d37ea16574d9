#!/usr/bin/env bash
# regen_extra.sh — recreates the extra certificates of the TLS hardening
# tests (tests/h2/tls_hardening.c); see README. Leaves ca.pem, server.pem and
# server.key (regen.sh) alone. Everything is valid for a century.
#
#   ca2.pem                 "Parley Test CA 2" (its key is thrown away)
#   server2.pem/.key        a second server certificate from ca2, for the
#                           SIGHUP reload test: same names as server.pem,
#                           subject O=Parley Reload Test, CN=localhost
#   client_ca.pem           "Parley Test Client CA": what --tls_client_ca_file trusts
#   client.pem/.key         a client certificate from client_ca (CN=parley-test-client)
#   rogue_client.pem/.key   a client certificate from an untrusted CA (must be refused)
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

new_ca() { # name subject -> $tmp/name.key, name.pem (here or in $tmp)
  openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/$1.key"
  openssl req -x509 -new -key "$tmp/$1.key" -sha256 -days 36500 -subj "$2" -out "$3"
}

sign() { # key csr-subject ca-pem ca-key ext-file out
  openssl ecparam -name prime256v1 -genkey -noout -out "$1"
  openssl req -new -key "$1" -subj "$2" -out "$tmp/req.csr"
  openssl x509 -req -in "$tmp/req.csr" -CA "$3" -CAkey "$4" -CAcreateserial -CAserial "$tmp/serial" \
    -days 36500 -sha256 -extfile "$5" -out "$6"
}

cat > "$tmp/server.cnf" <<'EXT'
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:*.test.google.fr,IP:127.0.0.1,IP:::1
EXT
cat > "$tmp/client.cnf" <<'EXT'
basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=clientAuth
EXT

new_ca ca2 "/CN=Parley Test CA 2" ca2.pem
sign server2.key "/O=Parley Reload Test/CN=localhost" ca2.pem "$tmp/ca2.key" "$tmp/server.cnf" server2.pem

new_ca client_ca "/CN=Parley Test Client CA" client_ca.pem
sign client.key "/CN=parley-test-client" client_ca.pem "$tmp/client_ca.key" "$tmp/client.cnf" client.pem

new_ca rogue "/CN=Parley Rogue CA" "$tmp/rogue_ca.pem"
sign rogue_client.key "/CN=parley-rogue-client" "$tmp/rogue_ca.pem" "$tmp/rogue.key" "$tmp/client.cnf" \
  rogue_client.pem

echo "regen_extra.sh: wrote ca2.pem server2.pem server2.key client_ca.pem client.pem client.key" \
  "rogue_client.pem rogue_client.key"
