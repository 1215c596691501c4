#!/bin/sh
# Check the deployment files with the real tools, no Docker engine needed:
#   compose.yml  -> `docker compose config` (or Debian's docker-compose) with sample secrets
#   nginx        -> the template rendered as compose renders it, then `nginx -t`
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export JWT_SECRET=validate-only-secret-validate-only-secret POSTGRES_PASSWORD=x REPLICATION_PASSWORD=y
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
sed -e 's/${API_1}/127.0.0.1:3001/' -e 's/${API_2}/127.0.0.1:3002/' -e 's/${LISTEN_PORT}/127.0.0.1:8099/' \
  deploy/nginx/leaderboard.conf.template > "$work/leaderboard.conf"
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
