#!/bin/sh
# Backups, as SPEC §Backup asks: a pg_dump of the database every day, kept 30 days, and a copy
# of Redis's RDB snapshot (Redis writes one every 6 hours: `save 21600 1`) kept 7 days.
# Runs forever in the `backup` service of compose.yml; run once by hand with `backup.sh once`.
set -eu
BACKUP_DIR=${BACKUP_DIR:-/backups}
mkdir -p "$BACKUP_DIR/postgres" "$BACKUP_DIR/redis"

backup_once() {
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  # Custom format: compressed, and pg_restore can restore one table or the whole database.
  pg_dump --format=custom --file="$BACKUP_DIR/postgres/leaderboard-$stamp.dump.partial" "$DATABASE_URL"
  mv "$BACKUP_DIR/postgres/leaderboard-$stamp.dump.partial" "$BACKUP_DIR/postgres/leaderboard-$stamp.dump"
  if [ -f /redis-data/dump.rdb ]; then
    cp /redis-data/dump.rdb "$BACKUP_DIR/redis/dump-$stamp.rdb"
  fi
  find "$BACKUP_DIR/postgres" -name 'leaderboard-*.dump' -mtime +30 -delete
  find "$BACKUP_DIR/redis" -name 'dump-*.rdb' -mtime +7 -delete
  echo "backup $stamp done"
}

if [ "${1:-}" = "once" ]; then
  backup_once
  exit 0
fi
while true; do
  backup_once || echo "backup failed (see above); trying again next interval" >&2
  sleep "${BACKUP_INTERVAL_SECONDS:-86400}"
done
