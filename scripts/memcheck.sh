#!/usr/bin/env bash
# memcheck.sh: run the pg_regress and pgTAP suites, and a run of the
# fulfilment worker against the sandbox provider, on a server running under
# valgrind's memcheck, and report every error whose stack passes through
# gifq.  Slow (minutes); not part of `make test`.  Run it before
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
shared_preload_libraries = 'gifq,pg_cron'
cron.database_name = 'postgres'
fsync = off
max_parallel_workers_per_gather = 2
gifq.database = 'gifq_vg_worker'
gifq.provider_url = 'http://127.0.0.1:9'
gifq.provider_api_key = 'sandbox-key'
gifq.card_key = 'test-card-key'
gifq.webhook_secret = 'whsec-test'
gifq.webhook_secret_previous = 'whsec-old'
gifq.connect_timeout_ms = 1000
gifq.request_timeout_ms = 3000
gifq.retry_base_ms = 100
gifq.retry_max_ms = 1000
gifq.poll_interval = 500
CONF
vglog="$GIFQ_WORK/valgrind.%p.log"
as_pg valgrind --quiet --tool=memcheck --trace-children=yes \
	--suppressions="$GIFQ_WORK/scripts/valgrind.supp" \
	--track-origins=yes --read-var-info=yes --num-callers=30 \
	--error-limit=no --log-file="$vglog" \
	"$PG_BINDIR/postgres" -D "$GIFQ_WORK/data" >"$GIFQ_WORK/server.log" 2>&1 &
for _ in $(seq 1 120); do
	pg_isready -q && break
	sleep 1
done
pg_isready -q || { echo "server under valgrind did not start" >&2; exit 1; }

status=0
# GIFQ_MEMCHECK_PARTS: any of regress, isolation, pgtap, worker (default:
# all four).  The isolation specs commit (the pgTAP suites roll back), so
# they run what happens at commit: the leaderboard's counts, for one.
# GIFQ_MEMCHECK_PGTAP and GIFQ_MEMCHECK_SPECS: the pgTAP files and the
# isolation specs to run (base names; default: all).
parts=" ${GIFQ_MEMCHECK_PARTS:-regress isolation pgtap worker} "
pgtap_only=" ${GIFQ_MEMCHECK_PGTAP:-} "
part() { [[ $parts == *" $1 "* ]]; }
if part regress; then
	regress=$(cd "$GIFQ_WORK/sql" && ls *.sql | grep -v '^gifq--' | sed 's/\.sql$//' | tr '\n' ' ')
	(cd "$GIFQ_WORK" && as_pg "$PGXS_DIR/src/test/regress/pg_regress" \
		--bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" --inputdir=. \
		--outputdir="$GIFQ_WORK/regress" --dbname=gifq_vg --load-extension=gifq \
		$regress) || status=1
fi
if part isolation; then
	specs=${GIFQ_MEMCHECK_SPECS:-$(cd "$GIFQ_WORK/test/specs" && ls *.spec | sed 's/\.spec$//' | tr '\n' ' ')}
	(cd "$GIFQ_WORK" && as_pg "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
		--bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" --inputdir=test \
		--outputdir="$GIFQ_WORK/isolation" --dbname=gifq_vg_iso --load-extension=gifq \
		$specs) || status=1
fi
if part pgtap; then
	as_pg createdb gifq_vg_tap
	as_pg psql -X -q -d gifq_vg_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION gifq'
	for f in "$GIFQ_WORK"/test/*.sql; do
		[ -e "$f" ] || continue
		[ "$pgtap_only" = "  " ] || [[ $pgtap_only == *" $(basename "$f" .sql) "* ]] || continue
		(cd "$GIFQ_WORK" && as_pg pg_prove -d gifq_vg_tap "test/$(basename "$f")") || status=1
	done
fi

if part worker; then
	# the worker (and libcurl) under memcheck: orders through the sandbox with
	# faults of every kind, asynchronous orders, events sent out, a pause
	as_pg python3 "$GIFQ_WORK/test/sandbox/sandbox.py" --port 0 --quiet --seed 7 \
		--port-file "$GIFQ_WORK/sandbox.port" --webhook-secret whsec-test >/dev/null 2>&1 &
	for _ in $(seq 100); do [ -s "$GIFQ_WORK/sandbox.port" ] && break; sleep 0.1; done
	sandbox_url="http://127.0.0.1:$(cat "$GIFQ_WORK/sandbox.port")"
	control() { python3 -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], sys.argv[2].encode(), method="POST")).read()' "$sandbox_url/_sandbox/$1" "$2"; }
	as_pg createdb gifq_vg_worker
	as_pg psql -X -q -d gifq_vg_worker -v ON_ERROR_STOP=1 -v url="$sandbox_url" \
		-v sink="$sandbox_url/_sandbox/sink" <<-'SQL' || status=1
	CREATE EXTENSION gifq;
	SELECT gifq_create_program('vg', 'USD');
	SELECT gifq_upsert_member('vg', 'm', 'm@example.com', 'US');
	SELECT gifq_fund('vg', '100000.00 USD', 'wire');
	SELECT gifq_transfer(gifq_account('vg', NULL, 'issuance'), gifq_account('vg', 'm'), '10000000 PTS', idempotency_key => 'earn');
	ALTER SYSTEM SET gifq.provider_url = :'url';
	ALTER SYSTEM SET gifq.catalog_refresh_interval = 1;
	ALTER SYSTEM SET gifq.events_url = :'sink';
	ALTER SYSTEM SET gifq.events_secret = 'evsec';
	SELECT pg_reload_conf();
	SQL
	loaded=f
	for _ in $(seq 240); do
		loaded=$(as_pg psql -X -At -d gifq_vg_worker -c 'SELECT count(*) > 0 FROM gifq.brands')
		[ "$loaded" = t ] && break
		sleep 0.5
	done
	[ "$loaded" = t ] || { echo "memcheck: the worker did not load the catalog" >&2; status=1; }
	control faults '{"5xx": 0.1, "429": 0.1, "timeout": 0.05, "slow": 0.05, "malformed": 0.1, "reset": 0.1, "out_of_stock": 0.05, "timeout_ms": 4000, "slow_ms": 200}'
	control config '{"async_ratio": 0.3, "async_delay_ms": 200}'
	as_pg psql -X -q -d gifq_vg_worker -c "SELECT gifq_redeem('vg', 'm', 'amazon-us', '10.00 USD', 'vg-' || i) FROM generate_series(1, 60) i" >/dev/null || status=1
	sleep 20
	control faults '{"unauthorized": true}'
	as_pg psql -X -q -d gifq_vg_worker -c "SELECT gifq_redeem('vg', 'm', 'amazon-us', '10.00 USD', 'vg-paused')" >/dev/null || status=1
	sleep 5
	control faults '{}'
	for _ in $(seq 120); do
		left=$(as_pg psql -X -At -d gifq_vg_worker -c "SELECT count(*) FROM gifq.orders WHERE status NOT IN ('delivered', 'failed')")
		[ "$left" = 0 ] && break
		sleep 1
	done
	echo "memcheck: worker run left $left orders unfinished; $(as_pg psql -X -At -d gifq_vg_worker -c "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM gifq.orders GROUP BY 1) s")"
	[ "$left" = 0 ] || status=1
	pkill -f "$GIFQ_WORK/test/sandbox/sandbox.py" || true
fi
as_pg pg_ctl -D "$GIFQ_WORK/data" -m fast -w stop >/dev/null

# An error block starts with "==PID== <description>" and ends at a blank
# "==PID== " line; keep the blocks that mention gifq.
reports=$(cat "$GIFQ_WORK"/valgrind.*.log | awk '
	/^==[0-9]+== [A-Z]/ { block = $0 "\n"; inblock = 1; next }
	inblock && /^==[0-9]+== *$/ {
		# WAL pages written with uninitialised padding: the server'"'"'s own
		# false positive, whoever commits
		if (block ~ /gifq/ && !(block ~ /pwrite64\(buf\)/ && block ~ /XLog/)) print block
		inblock = 0; next
	}
	inblock { block = block $0 "\n" }')
total=$(grep -hcE '^==[0-9]+== [A-Z]' "$GIFQ_WORK"/valgrind.*.log | awk '{s+=$1} END {print s+0}')
if [ -n "$reports" ]; then
	echo "$reports"
	echo "memcheck: errors in gifq (see above); $total reports in all"
	exit 1
fi
echo "memcheck: no error involving gifq ($total reports elsewhere in the server, see $GIFQ_WORK if kept)"
exit $status
