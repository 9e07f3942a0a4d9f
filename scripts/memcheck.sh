#!/usr/bin/env bash
# memcheck.sh: run the pg_regress and pgTAP suites against a server running
# under valgrind's memcheck, and report every error whose stack passes
# through gifq.  Slow (minutes); not part of `make test`.  Run it before
# resolving an issue that adds C.
#
# The server's own code is not built for valgrind, so memcheck reports a
# few known false positives in it (uninitialised padding written to WAL and
# statistics files); only reports that involve gifq.so count.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"

command -v valgrind >/dev/null ||
	{ apt-get update -qq && apt-get install -y -qq valgrind; } >/dev/null
gifq_prepare

PGPORT=$(free_port)
export PGHOST="$GIFQ_WORK" PGPORT PGUSER=postgres PGDATABASE=postgres
as_pg initdb -D "$GIFQ_WORK/data" -A trust -U postgres --no-instructions >/dev/null
cat >>"$GIFQ_WORK/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$GIFQ_WORK'
shared_preload_libraries = 'gifq'
fsync = off
max_parallel_workers_per_gather = 2
CONF
vglog="$GIFQ_WORK/valgrind.%p.log"
as_pg valgrind --quiet --tool=memcheck --trace-children=yes \
	--track-origins=yes --read-var-info=yes --num-callers=30 \
	--error-limit=no --log-file="$vglog" \
	"$PG_BINDIR/postgres" -D "$GIFQ_WORK/data" >"$GIFQ_WORK/server.log" 2>&1 &
for _ in $(seq 1 120); do
	pg_isready -q && break
	sleep 1
done
pg_isready -q || { echo "server under valgrind did not start" >&2; exit 1; }

status=0
regress=$(cd "$GIFQ_WORK/sql" && ls *.sql | grep -v '^gifq--' | sed 's/\.sql$//' | tr '\n' ' ')
(cd "$GIFQ_WORK" && as_pg "$PGXS_DIR/src/test/regress/pg_regress" \
	--bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" --inputdir=. \
	--outputdir="$GIFQ_WORK/regress" --dbname=gifq_vg --load-extension=gifq \
	$regress) || status=1
as_pg createdb gifq_vg_tap
as_pg psql -X -q -d gifq_vg_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION gifq'
for f in "$GIFQ_WORK"/test/*.sql; do
	[ -e "$f" ] || continue
	(cd "$GIFQ_WORK" && as_pg pg_prove -d gifq_vg_tap "test/$(basename "$f")") || status=1
done
as_pg pg_ctl -D "$GIFQ_WORK/data" -m fast -w stop >/dev/null

# An error block starts with "==PID== <description>" and ends at a blank
# "==PID== " line; keep the blocks that mention gifq.
reports=$(cat "$GIFQ_WORK"/valgrind.*.log | awk '
	/^==[0-9]+== [A-Z]/ { block = $0 "\n"; inblock = 1; next }
	inblock && /^==[0-9]+== *$/ { if (block ~ /gifq/) print block; inblock = 0; next }
	inblock { block = block $0 "\n" }')
total=$(grep -hcE '^==[0-9]+== [A-Z]' "$GIFQ_WORK"/valgrind.*.log | awk '{s+=$1} END {print s+0}')
if [ -n "$reports" ]; then
	echo "$reports"
	echo "memcheck: errors in gifq (see above); $total reports in all"
	exit 1
fi
echo "memcheck: no error involving gifq ($total reports elsewhere in the server, see $GIFQ_WORK if kept)"
exit $status
