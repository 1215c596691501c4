#!/bin/sh
# Check the deployment files with the real tools, no Docker engine needed:
#   compose.yml  -> `docker compose config` (or Debian's docker-compose) with sample secrets
#   nginx        -> the template rendered as compose renders it, then `nginx -t` (which also
#                   loads the TLS certificate: a throwaway one from deploy/tls/dev-cert.sh)
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deploy/tls/dev-cert.sh "$work/tls" >/dev/null

export JWT_SECRET=validate-only-secret-validate-only-secret POSTGRES_PASSWORD=x REPLICATION_PASSWORD=y
export TLS_CERT_DIR="$work/tls"
if docker compose version >/dev/null 2>&1; then
  docker compose -f compose.yml config -q
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose -f compose.yml config -q
else
  echo "no docker compose / docker-compose: cannot check compose.yml (apt-get install docker-compose)" >&2
  exit 2
fi
echo "compose.yml: ok"

nginx=$(command -v nginx || echo /usr/sbin/nginx)
mkdir -p "$work/temp"
# compose maps api-1/api-2 to containers; here any resolvable address stands in for them.
sed -e 's/${API_1}/127.0.0.1:3001/g' -e 's/${API_2}/127.0.0.1:3002/g' \
  -e 's/${HTTP_LISTEN}/127.0.0.1:8099/g' -e 's/${HTTPS_LISTEN}/127.0.0.1:8443/g' \
  -e 's/${PUBLIC_HTTPS_PORT}/8443/g' -e "s|\${TLS_DIR}|$work/tls|g" \
  deploy/nginx/leaderboard.conf.template > "$work/leaderboard.conf"
if grep -n '\${[A-Z_0-9]*}' "$work/leaderboard.conf"; then
  echo "nginx template: a variable above is not filled in by this script" >&2
  exit 1
fi
cat > "$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log stderr;
events {}
http {
  client_body_temp_path $work/temp; proxy_temp_path $work/temp; fastcgi_temp_path $work/temp;
  uwsgi_temp_path $work/temp; scgi_temp_path $work/temp;
  include $work/leaderboard.conf;
}
CONF
"$nginx" -t -q -c "$work/nginx.conf" -p "$work"
echo "nginx config: ok"
