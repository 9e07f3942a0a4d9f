#!/usr/bin/env bash
# demo.sh: `make demo`.  Sets up what is missing, builds and installs gifq,
# starts a throwaway cluster with gifq preloaded, walks through what gifq
# does in psql (scripts/demo.sql), and cleans up.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"

gifq_prepare
gifq_cluster_start >/dev/null

as_pg psql -X -q -v ON_ERROR_STOP=1 --echo-all -P footer=off \
	-f "$GIFQ_WORK/scripts/demo.sql" 2>&1 | sed -E 's/^psql:[^ ]+:[0-9]+: //'
echo
echo "demo finished; the cluster is being removed."
