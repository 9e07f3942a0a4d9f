# cluster.sh: sourced by test.sh, demo.sh and bench/run.  Builds and installs
# gifq, then runs a throwaway PostgreSQL cluster as the postgres OS user in
# a temporary folder it owns, listening on 127.0.0.1 and a Unix socket only.
#
# After gifq_cluster_start, PGHOST/PGPORT/PGUSER point at the cluster and
# $GIFQ_WORK holds a copy of the tree that the postgres user can read.

GIFQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BINDIR=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
PGXS_DIR=/usr/lib/postgresql/15/lib/pgxs
export PATH="$PG_BINDIR:$PATH"

as_pg() { runuser -u postgres -- env PATH="$PATH" "$@"; }

# gifq_build: compile (warnings are errors when CI is set) and install.
gifq_build() {
	make -s -C "$GIFQ_ROOT" >/dev/null
	make -s -C "$GIFQ_ROOT" install >/dev/null
	PG_BINDIR=$(pg_config --bindir)
	PGXS_DIR=$(cd "$(dirname "$(pg_config --pgxs)")/../.." && pwd)
	export PATH="$PG_BINDIR:$PATH"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# gifq_workdir: a temporary copy of the tree owned by postgres.
gifq_workdir() {
	GIFQ_WORK=$(mktemp -d /tmp/gifq.XXXXXX)
	tar -C "$GIFQ_ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' -cf - . | tar -C "$GIFQ_WORK" -xf -
	chown -R postgres:postgres "$GIFQ_WORK"
	export GIFQ_WORK
}

# gifq_prepare: what comes before a cluster: the packages, the build and
# install (skipped when GIFQ_SKIP_BUILD is set, to use the installed gifq),
# and a work folder that is removed on exit.
gifq_prepare() {
	"$GIFQ_ROOT/scripts/setup.sh"
	[ -n "${GIFQ_SKIP_BUILD:-}" ] || gifq_build
	gifq_workdir
	trap gifq_cleanup EXIT
}

# gifq_cluster_start [extra postgresql.conf lines...]
gifq_cluster_start() {
	local data="$GIFQ_WORK/data" line
	PGPORT=$(free_port)
	export PGHOST="$GIFQ_WORK" PGPORT PGUSER=postgres PGDATABASE=postgres
	as_pg initdb -D "$data" -A trust -U postgres --no-instructions \
		--locale=C.UTF-8 --encoding=UTF8 >"$GIFQ_WORK/initdb.log" 2>&1
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $PGPORT"
		echo "unix_socket_directories = '$GIFQ_WORK'"
		echo "shared_preload_libraries = 'gifq,pg_cron'"
		echo "cron.database_name = 'postgres'"
		echo "max_connections = 100"
		echo "logging_collector = off"
		echo "max_prepared_transactions = 10"
		for line in "$@"; do echo "$line"; done
	} >>"$data/postgresql.conf"
	chown postgres:postgres "$data/postgresql.conf"
	if ! as_pg pg_ctl -D "$data" -l "$GIFQ_WORK/server.log" -w -t 60 start >/dev/null; then
		echo "cluster failed to start:" >&2
		tail -n 30 "$GIFQ_WORK/server.log" >&2
		return 1
	fi
}

gifq_cluster_stop() {
	if [ -n "${GIFQ_WORK:-}" ] && [ -f "$GIFQ_WORK/data/postmaster.pid" ]; then
		as_pg pg_ctl -D "$GIFQ_WORK/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
}

# gifq_cleanup: stop the cluster and remove the work folder (unless
# GIFQ_KEEP is set, for debugging).
gifq_cleanup() {
	gifq_cluster_stop
	if [ -n "${GIFQ_WORK:-}" ] && [ -z "${GIFQ_KEEP:-}" ]; then
		rm -rf "$GIFQ_WORK"
	elif [ -n "${GIFQ_WORK:-}" ]; then
		echo "kept $GIFQ_WORK" >&2
	fi
}
