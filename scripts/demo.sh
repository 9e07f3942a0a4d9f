#!/usr/bin/env bash
# demo.sh: `make demo`.  Sets up what is missing, builds and installs gifq,
# starts the sandbox provider and a throwaway cluster with gifq preloaded,
# walks through what gifq does in psql (scripts/demo.sql), and cleans up.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"

gifq_prepare

# the sandbox provider, on a free loopback port, stopped on exit
as_pg python3 "$GIFQ_WORK/test/sandbox/sandbox.py" --port 0 --quiet \
	--port-file "$GIFQ_WORK/sandbox.port" >/dev/null 2>&1 &
# (as_pg runs it through runuser: stop the python process itself)
trap 'pkill -f "$GIFQ_WORK/test/sandbox/sandbox.py" || true; gifq_cleanup' EXIT
for _ in $(seq 100); do [ -s "$GIFQ_WORK/sandbox.port" ] && break; sleep 0.1; done
provider_url="http://127.0.0.1:$(cat "$GIFQ_WORK/sandbox.port")"

# the worker serves "postgres" and waits for a provider URL (part 5 sets it)
gifq_cluster_start "gifq.database = 'postgres'" "gifq.provider_api_key = 'sandbox-key'" \
	"gifq.card_key = 'demo-card-key-$(date +%s)'" "gifq.catalog_refresh_interval = 0" >/dev/null

as_pg psql -X -q -v ON_ERROR_STOP=1 -v provider_url="$provider_url" --echo-all -P footer=off \
	-f "$GIFQ_WORK/scripts/demo.sql" 2>&1 | sed -E 's/^psql:[^ ]+:[0-9]+: //'
echo
echo "demo finished; the cluster is being removed."
