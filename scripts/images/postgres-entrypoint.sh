#!/bin/sh
# The entrypoint of the locally built Postgres image, doing what docker-library's
# docker-entrypoint.sh does for the Postgres construct's case: as root, own PGDATA and the socket
# directory and drop to the postgres user; on an empty PGDATA, initdb with POSTGRES_USER and
# POSTGRES_PASSWORD (required), create POSTGRES_DB (default: the user), let every host in with
# scram-sha-256 and listen on all addresses; then run the server. Arguments that start with '-' are
# postgres's own (the construct passes `-p PORT` for a non-default port).
set -eu
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  # busybox su parses options anywhere on its command line (`-p PORT` would be taken as its own -p),
  # so the command goes in -c, each word single-quoted.
  cmd="exec '$0'"
  for a in "$@"; do cmd="$cmd '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"; done
  exec su -p -s /bin/sh postgres -c "$cmd"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo >&2 'Error: the database is not initialized and POSTGRES_PASSWORD is not set'
    exit 1
  fi
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$user" --pwfile="$pwfile" -E UTF8 --locale=C -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  printf "\nhost all all all scram-sha-256\n" >> "$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    # A server on the unix socket only, as docker-library's does, to create the database.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres -q -c "CREATE DATABASE \"$db\""
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo 'PostgreSQL init process complete; ready for start up.'
fi
exec "$@"
