#!/bin/sh
# A development certificate authority and a server certificate it signs, for the local cluster,
# the tests and a compose stack on a laptop. Never for production: there, mount the certificate
# your CA or ACME client issues (same file names: tls.crt with its chain, tls.key).
#
#   deploy/tls/dev-cert.sh DIR [NAME ...]      names default to: localhost 127.0.0.1 ::1
#
# Writes DIR/ca.crt (what clients trust), DIR/ca.key, DIR/tls.crt and DIR/tls.key (what nginx
# serves; the file names of a Kubernetes TLS secret). Keeps an existing pair: delete DIR to renew.
# Needs only the openssl command (Debian: apt-get install openssl).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [NAME ...]" >&2; exit 2; }
dir=$1
shift
[ $# -gt 0 ] || set -- localhost 127.0.0.1 ::1
command -v openssl >/dev/null 2>&1 || { echo "openssl not found: apt-get install openssl" >&2; exit 2; }
if [ -s "$dir/tls.crt" ] && [ -s "$dir/tls.key" ] && [ -s "$dir/ca.crt" ]; then
  echo "$dir: keeping the existing certificate"
  exit 0
fi
umask 077
mkdir -p "$dir"

# Names that look like addresses go in as IP entries, the rest as DNS names.
san=""
for name in "$@"; do
  case "$name" in
    *:* | *[!0-9.]*) case "$name" in *:*) kind=IP ;; *) kind=DNS ;; esac ;;
    *) kind=IP ;;
  esac
  san="${san:+$san,}$kind:$name"
done

# ECDSA P-256 keys: small, fast handshakes, accepted by every current client.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 825 -subj "/CN=Leaderboard development CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
  -keyout "$dir/tls.key" -out "$dir/tls.csr" -subj "/CN=$1" 2>/dev/null
cat > "$dir/tls.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EXT
# 397 days: the longest validity browsers accept for a server certificate.
openssl x509 -req -sha256 -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -CAcreateserial -out "$dir/tls.crt" -days 397 -extfile "$dir/tls.ext" 2>/dev/null
rm -f "$dir/tls.csr" "$dir/tls.ext" "$dir/ca.srl"
chmod 644 "$dir/ca.crt" "$dir/tls.crt"
echo "$dir: CA ca.crt, certificate tls.crt for $san"
