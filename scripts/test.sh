#!/usr/bin/env bash
# test.sh: `make test`.  Sets up what is missing, builds and installs gifq,
# starts a throwaway cluster with gifq and pg_cron preloaded, runs every
# suite (pg_regress, isolation, pgTAP, TAP), and ends with the line
# "N passed, N failed", one count per test file.  Exits non-zero on any
# failure.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"

gifq_prepare
# The worker serves only "postgres", where no suite installs gifq; the
# provider URL is a closed port, so gifq_process_orders in the pgTAP suite
# meets "no answer" deterministically (the TAP tests run the sandbox).
gifq_cluster_start "fsync = off" "gifq.database = 'postgres'" \
	"gifq.provider_url = 'http://127.0.0.1:9'" "gifq.provider_api_key = 'test-key'" \
	"gifq.card_key = 'test-card-key'" "gifq.webhook_secret = 'whsec-test'" \
	"gifq.webhook_secret_previous = 'whsec-old'" "gifq.connect_timeout_ms = 1000"

passed=0
failed=0
failures=()
logs="$GIFQ_WORK/logs"
as_pg mkdir -p "$logs"

# tally FILE-OF-PG_REGRESS-OUTPUT: count "... ok" and "... FAILED" lines
# (and the TAP-style lines of newer pg_regress).
tally_regress() {
	local out=$1 name ok
	while read -r name ok; do
		if [ "$ok" = ok ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			failures+=("$name")
		fi
	done < <(sed -nE \
		-e 's/^(test| ) *([A-Za-z0-9_-]+) +\.\.\. +(ok|FAILED|failed).*/\2 \3/p' \
		-e 's/^ok +[0-9]+ +[-+] +([A-Za-z0-9_-]+).*/\1 ok/p' \
		-e 's/^not ok +[0-9]+ +[-+] +([A-Za-z0-9_-]+).*/\1 FAILED/p' "$out")
}

# names FILE...: the files' base names without extension
names() {
	local f
	for f in "$@"; do
		[ -e "$f" ] && basename "${f%.*}"
	done
	return 0
}

# run_suite NAME DRIVER INPUTDIR TEST...: one pg_regress-style suite (the
# driver is pg_regress or pg_isolation_regress), its output and diffs
# shown and its tests tallied.
run_suite() {
	local name=$1 driver=$2 inputdir=$3
	shift 3
	[ $# -gt 0 ] || return 0
	local status=0 failed_before=$failed
	echo "== $name: $*"
	(cd "$GIFQ_WORK" && as_pg "$driver" \
		--bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" \
		--inputdir="$inputdir" --outputdir="$logs/$name" --dbname="gifq_$name" \
		--load-extension=gifq "$@") >"$logs/$name.txt" 2>&1 || status=$?
	cat "$logs/$name.txt"
	tally_regress "$logs/$name.txt"
	# a driver that stopped early (a missing expected file, a crash) may
	# not have reported its failure on a test line
	if [ "$status" -ne 0 ] && [ "$failed" -eq "$failed_before" ]; then
		failed=$((failed + 1))
		failures+=("$name (pg_regress exit $status)")
	fi
	if [ -f "$logs/$name/regression.diffs" ]; then cat "$logs/$name/regression.diffs"; fi
}

# pg_regress: sql/<name>.sql against expected/<name>.out
run_suite regress "$PGXS_DIR/src/test/regress/pg_regress" . \
	${REGRESS:-$(names "$GIFQ_WORK"/sql/*.sql | grep -v '^gifq--' || true)}
# isolation: test/specs/<name>.spec against test/expected/<name>.out
run_suite isolation "$PGXS_DIR/src/test/isolation/pg_isolation_regress" test \
	${ISOLATION:-$(names "$GIFQ_WORK"/test/specs/*.spec)}

# pgTAP: test/*.sql, each file one BEGIN..ROLLBACK suite
shopt -s nullglob
pgtap=("$GIFQ_WORK"/test/*.sql)
if [ ${#pgtap[@]} -gt 0 ]; then
	echo "== pgTAP"
	as_pg createdb gifq_tap
	as_pg psql -X -q -d gifq_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION gifq' >/dev/null
	for f in "${pgtap[@]}"; do
		if (cd "$GIFQ_WORK" && as_pg pg_prove -d gifq_tap "test/$(basename "$f")"); then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			failures+=("test/$(basename "$f")")
		fi
	done
fi

# the sandbox provider's own tests (the TAP tests below rely on it)
echo "== sandbox"
if (cd "$GIFQ_WORK" && as_pg python3 test/sandbox/test_sandbox.py); then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	failures+=("test/sandbox/test_sandbox.py")
fi

# TAP: test/t/*.pl, each with clusters of its own
tap=("$GIFQ_WORK"/test/t/*.pl)
if [ ${#tap[@]} -gt 0 ]; then
	echo "== TAP"
	for f in "${tap[@]}"; do
		if (cd "$GIFQ_WORK" && as_pg env PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
			TESTDIR="$GIFQ_WORK" GIFQ_ROOT="$GIFQ_WORK" \
			prove -I "$PGXS_DIR/src/test/perl" -I "$GIFQ_WORK/test/perl" \
			"test/t/$(basename "$f")"); then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			failures+=("test/t/$(basename "$f")")
			for log in "$GIFQ_WORK"/tmp_check/log/*; do
				echo "--- $log"; tail -n 40 "$log"
			done
		fi
	done
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
