#!/bin/sh
# Check the Prometheus files with promtool (Debian's `prometheus` package):
#   the scrape config and the rules it loads, then the rule unit tests (alerts_test.yml).
set -eu
cd "$(dirname "$0")"
command -v promtool >/dev/null 2>&1 || { echo "promtool not found: run deploy/install-tools.sh" >&2; exit 2; }
promtool check config prometheus.yml
promtool check rules alerts.yml
promtool test rules alerts_test.yml
echo "prometheus: config, rules and rule tests ok"
