/*-------------------------------------------------------------------------
 * worker.c
 *	  The fulfilment worker: one background worker per database named in
 *	  gifq.database, registered when gifq is preloaded.
 *
 * The worker sleeps on its latch.  A transaction that creates an order
 * sets that latch when it commits (worker_wake_on_commit), so an order is
 * on its way within milliseconds; without a wake-up the worker still looks
 * every gifq.poll_interval, and sleeps exactly until the next retry or
 * poll is due.  Each turn of its loop is one transaction that records the
 * answers that came in and claims new work, committed before the calls
 * start (fulfil.c says why that ordering is the whole of exactly-once).
 * Calls run concurrently in a libcurl multi handle that the latch wait
 * also watches (provider.c).
 *
 * What the worker holds in memory is only what is in flight; a crash loses
 * no order: on start it looks up at once every order a previous run had
 * claimed, and never sends one again without asking the provider first.
 * A 401 or 402 from the provider pauses sending (with a provider.alert
 * event) rather than burning every order's attempts; a balance probe or a
 * reload of the settings resumes it.  DROP DATABASE is never blocked: the
 * statement asks the database's worker to leave first.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/worker.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fulfil.h"
#include "gifq.h"
#include "ledger.h"
#include "worker.h"

#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#define MAX_WORKERS		16
#define PRUNE_EVERY_MS	(3600 * 1000)
#define PROBE_EVERY_MS	(30 * 1000)	/* while paused: at most an alert per 30 s */
#define CATALOG_RETRY_MS (60 * 1000)

/* what one worker shows of itself (gifq.worker) */
typedef struct WorkerSlot
{
	slock_t		mutex;
	char		database[NAMEDATALEN];
	Oid			database_id;
	pid_t		pid;
	Latch	   *latch;
	bool		leave;			/* DROP DATABASE asked it to go */
	bool		catalog_requested;	/* a catalog.updated webhook came */
	TimestampTz started_at;
	TimestampTz last_wake;
	TimestampTz last_error_at;
	TimestampTz paused_since;
	TimestampTz catalog_synced_at;
	int			in_flight;
	int64		calls;
	int64		delivered;
	int64		failed;
	char		paused_reason[128];
	char		last_error[256];
} WorkerSlot;

typedef struct WorkerShared
{
	int			nslots;
	WorkerSlot	slots[MAX_WORKERS];
} WorkerShared;

static WorkerShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;
static volatile sig_atomic_t got_sigterm = false;
static bool wake_at_commit = false;
static bool xact_callback_registered = false;

PGDLLEXPORT void gifq_worker_main(Datum arg);

/* the databases in gifq.database, in order */
static List *
worker_databases(void)
{
	char	   *raw = pstrdup(gifq_database ? gifq_database : "");
	List	   *names = NIL;

	if (!SplitIdentifierString(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gifq.database \"%s\" is not a list of database names", gifq_database)));
	return names;
}

PG_FUNCTION_INFO_V1(gifq_worker_serves);

/*
 * gifq_worker_serves
 *		gifq.worker_serves(): whether a preloaded gifq runs a worker for this
 *		database (it is named in gifq.database, which exists only when gifq
 *		is preloaded), read as the worker reads the list.  Then the worker
 *		sends orders and refreshes the catalog, and pg_cron need not.
 */
Datum
gifq_worker_serves(PG_FUNCTION_ARGS)
{
	char	   *here;
	ListCell   *lc;

	if (gifq_database == NULL)
		PG_RETURN_BOOL(false);
	here = get_database_name(MyDatabaseId);
	foreach(lc, worker_databases())
	{
		if (here != NULL && strcmp((char *) lfirst(lc), here) == 0)
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
}

static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("gifq worker", sizeof(WorkerShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(WorkerShared));
		for (int i = 0; i < MAX_WORKERS; i++)
			SpinLockInit(&shared->slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
register_worker(int index, const char *database, bool dynamic)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 5;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "gifq");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "gifq_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "gifq worker for database %s", database);
	snprintf(w.bgw_type, BGW_MAXLEN, "gifq worker");
	w.bgw_main_arg = Int32GetDatum(index);
	if (!dynamic)
		RegisterBackgroundWorker(&w);
	else
	{
		w.bgw_notify_pid = 0;
		if (!RegisterDynamicBackgroundWorker(&w, NULL))
			ereport(WARNING,
					(errmsg("gifq: could not start the worker for database \"%s\" again", database),
					 errhint("Raise max_worker_processes, or restart the server.")));
	}
}

static void drop_database_hook(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc);

/*
 * worker_init
 *		From _PG_init while shared_preload_libraries is processed: shared
 *		memory, one worker per database, and the DROP DATABASE hook.
 */
void
worker_init(void)
{
	List	   *names;
	ListCell   *lc;
	int			i = 0;

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = drop_database_hook;

	names = worker_databases();
	if (list_length(names) > MAX_WORKERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gifq.database names %d databases; at most %d are served",
						list_length(names), MAX_WORKERS)));
	foreach(lc, names)
	{
		for (ListCell *other = list_head(names); other != lc; other = lnext(names, other))
			if (strcmp(lfirst(other), lfirst(lc)) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("gifq.database names database \"%s\" twice", (char *) lfirst(lc)),
						 errhint("One worker serves a database; list each once.")));
		register_worker(i++, lfirst(lc), false);
	}
}

static WorkerSlot *
slot_of_database(Oid database_id)
{
	if (shared == NULL)
		return NULL;
	for (int i = 0; i < MAX_WORKERS; i++)
		if (shared->slots[i].database_id == database_id && shared->slots[i].pid != 0)
			return &shared->slots[i];
	return NULL;
}

/*
 * wake_worker
 *		Set the latch of this database's worker, if it runs; with catalog,
 *		ask it for a catalog refresh too.
 */
static void
wake_worker(bool catalog)
{
	WorkerSlot *slot = slot_of_database(MyDatabaseId);
	Latch	   *latch;

	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	if (catalog)
		slot->catalog_requested = true;
	latch = slot->latch;
	SpinLockRelease(&slot->mutex);
	if (latch)
		SetLatch(latch);
}

static void
wake_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_at_commit)
		wake_worker(false);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		wake_at_commit = false;
}

/*
 * worker_wake_on_commit
 *		The current transaction made work for the worker: wake it when (and
 *		only if) the transaction commits, so it never looks for an order it
 *		cannot see yet.
 */
void
worker_wake_on_commit(void)
{
	if (shared == NULL)
		return;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(wake_callback, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit = true;
}

static bool
database_owner(Oid id)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(DatabaseRelationId, id, GetUserId());
#else
	return pg_database_ownercheck(id, GetUserId());
#endif
}

/*
 * drop_database_hook
 *		Before DROP DATABASE, ask that database's worker to leave and wait
 *		for it (PostgreSQL refuses to drop a database someone is connected
 *		to).  If the drop then fails, the worker is started again.
 */
static void
drop_database_hook(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	WorkerSlot *volatile slot = NULL;
	volatile int index = -1;
	char		database[NAMEDATALEN];

	if (IsA(pstmt->utilityStmt, DropdbStmt) && shared != NULL)
	{
		Oid			id = get_database_oid(((DropdbStmt *) pstmt->utilityStmt)->dbname, true);

		/* only for whoever may drop it: others get PostgreSQL's refusal */
		if (OidIsValid(id) && database_owner(id))
			slot = slot_of_database(id);
	}
	if (slot)
	{
		pid_t		pid;

		index = slot - shared->slots;
		SpinLockAcquire(&slot->mutex);
		slot->leave = true;
		pid = slot->pid;
		strlcpy(database, slot->database, NAMEDATALEN);
		SpinLockRelease(&slot->mutex);
		if (pid != 0)
			kill(pid, SIGTERM);
		for (int waited = 0; waited < 1000 && slot->pid != 0; waited++)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(10000L);
		}
	}
	PG_TRY();
	{
		if (prev_process_utility_hook)
			prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
									  params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		if (index >= 0)
		{
			bool		gone;

			SpinLockAcquire(&slot->mutex);
			slot->leave = false;
			gone = slot->pid == 0;
			SpinLockRelease(&slot->mutex);
			if (gone)
				register_worker(index, database, true);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* ---------------------------------------------------------------------
 * the worker
 * ---------------------------------------------------------------------
 */

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
note_error(WorkerSlot *slot, const char *message)
{
	SpinLockAcquire(&slot->mutex);
	strlcpy(slot->last_error, message, sizeof(slot->last_error));
	slot->last_error_at = GetCurrentTimestamp();
	SpinLockRelease(&slot->mutex);
}

static void
publish(WorkerSlot *slot, Fulfilment *f)
{
	SpinLockAcquire(&slot->mutex);
	slot->in_flight = provider_in_flight(f->ps);
	slot->calls = f->calls;
	slot->delivered = f->delivered;
	slot->failed = f->failed;
	if (f->paused && slot->paused_since == 0)
	{
		slot->paused_since = GetCurrentTimestamp();
		strlcpy(slot->paused_reason, f->paused, sizeof(slot->paused_reason));
	}
	else if (!f->paused)
	{
		slot->paused_since = 0;
		slot->paused_reason[0] = '\0';
	}
	SpinLockRelease(&slot->mutex);
}

/* what the worker keeps between turns */
typedef struct WorkerState
{
	WorkerSlot *slot;
	Fulfilment *f;
	bool		took_over;
	bool		catalog_in_flight;
	TimestampTz next_catalog;
	TimestampTz next_prune;
	TimestampTz next_probe;
	TimestampTz next_due;		/* of the orders: 0 unknown, DT_NOEND none */
	bool		can_claim;		/* a due order would be claimed now */
	bool		syncing;		/* catalog refreshes are due (installed, configured) */
	bool		installed;		/* gifq 0.5.0 was found here (again after an error) */
} WorkerState;

static bool
run_bool(const char *sql)
{
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "gifq worker query failed: %s", sql);
	return DatumGetBool(ledger_datum(1));
}

static TimestampTz
query_next_due(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute("SELECT gifq.next_due()", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "gifq worker could not read gifq.next_due()");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

static void
queue_catalog(WorkerState *ws)
{
	bool		isnull;
	char	   *etag = NULL;

	if (SPI_execute("SELECT etag FROM gifq.catalog_state", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			etag = TextDatumGetCString(d);
	}
	fulfil_call(ws->f, "catalog", "/api/v1/catalog", etag);
	ws->catalog_in_flight = true;
}

/* a catalog call came back: another may start; a good one is a sync */
static void
note_catalog(WorkerState *ws, List *done)
{
	ListCell   *lc;

	foreach(lc, done)
	{
		ProviderRequest *req = lfirst(lc);

		if (strcmp(req->call, "catalog") != 0)
			continue;
		ws->catalog_in_flight = false;
		if (req->http_status == 200 || req->http_status == 304)
		{
			SpinLockAcquire(&ws->slot->mutex);
			ws->slot->catalog_synced_at = GetCurrentTimestamp();
			SpinLockRelease(&ws->slot->mutex);
		}
		else
		{
			/* a failed refresh is tried again within a minute */
			TimestampTz soon = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   CATALOG_RETRY_MS);

			ws->next_catalog = Min(ws->next_catalog, soon);
		}
	}
}

/*
 * worker_turn
 *		One transaction: record what came back, then claim what is due.
 */
static void
worker_turn(WorkerState *ws)
{
	Fulfilment *f = ws->f;
	TimestampTz now = GetCurrentTimestamp();
	int			room;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "gifq worker: recording and claiming");

	if (!ws->installed)
		ws->installed = run_bool("SELECT to_regprocedure('gifq.claim_work(integer,interval,text)') IS NOT NULL");
	if (!ws->installed)
	{
		/* gifq not installed here, or not updated to this library's version */
		note_error(ws->slot, "gifq 0.5.0 is not installed in this database (CREATE EXTENSION gifq, or ALTER EXTENSION gifq UPDATE)");
		ws->can_claim = ws->syncing = false;
		ws->next_due = TimestampTzPlusMilliseconds(now, gifq_poll_interval_ms);
	}
	else
	{
		if (!ws->took_over)
		{
			int			n;

			SPI_execute_with_args("SELECT gifq.take_over($1)", 1, (Oid[]) {TEXTOID},
								  (Datum[]) {CStringGetTextDatum(f->caller)}, NULL, false, 1);
			n = DatumGetInt32(ledger_datum(1));
			if (n > 0)
				ereport(LOG, (errmsg("gifq worker: looking up %d orders a previous run left in flight", n)));
			ws->took_over = true;
		}
		fulfil_record(f);
		/* a pause holds the sends: give them back rather than let leases run */
		if (f->paused)
			fulfil_release(f, true);

		room = gifq_max_concurrent_requests - provider_in_flight(f->ps) - list_length(f->waiting);
		/* claim no more than the rate limit lets start within two seconds */
		if (gifq_provider_rate_limit > 0)
			room = Min(room, 2 * gifq_provider_rate_limit - list_length(f->waiting));
		ws->can_claim = false;
		ws->syncing = fulfil_ready(false) && gifq_catalog_refresh_interval > 0;
		if (fulfil_ready(false))
		{
			if (!f->paused && room > 0 && ws->next_due <= now)
				room -= fulfil_claim_orders(f, room, fulfil_lease_ms());
			ws->can_claim = !f->paused && room > 0;
			if (f->paused && now >= ws->next_probe)
			{
				fulfil_call(f, "balance", "/api/v1/balance", NULL);
				ws->next_probe = TimestampTzPlusMilliseconds(now, Max(gifq_poll_interval_ms, PROBE_EVERY_MS));
			}
			if (gifq_catalog_refresh_interval > 0 && !ws->catalog_in_flight &&
				(now >= ws->next_catalog || ws->slot->catalog_requested))
			{
				ws->slot->catalog_requested = false;
				queue_catalog(ws);
				ws->next_catalog = TimestampTzPlusMilliseconds(now,
															   (int64) gifq_catalog_refresh_interval * 1000);
			}
		}
		else
			note_error(ws->slot, gifq_provider_url[0] == '\0'
					   ? "gifq.provider_url is not set" : "gifq.card_key is not set");
		if (gifq_events_url[0] != '\0' && gifq_events_secret[0] != '\0' && room > 0)
			fulfil_claim_events(f, room, fulfil_lease_ms());
		if (now >= ws->next_prune)
		{
			SPI_execute_with_args("SELECT gifq.prune_provider_calls($1)", 1, (Oid[]) {INTERVALOID},
								  (Datum[]) {fulfil_interval_ms((int64) gifq_call_log_retention * 1000)},
								  NULL, false, 1);
			ws->next_prune = TimestampTzPlusMilliseconds(now, PRUNE_EVERY_MS);
		}
		ws->next_due = query_next_due();
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* a bgworker reports its table statistics itself: autovacuum needs them */
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	publish(ws->slot, f);
}

/* how long to sleep: until the next due order, poll, or rate-limit slot */
static long
worker_sleep_ms(WorkerState *ws)
{
	TimestampTz now = GetCurrentTimestamp();
	long		ms = gifq_poll_interval_ms;

	if (ws->f->waiting != NIL && !ws->f->paused)
		ms = Min(ms, Max(provider_rate_delay_ms(ws->f->ps), 1));
	if (ws->can_claim && ws->next_due != DT_NOEND)
	{
		/* due already but not claimed: rows another session holds */
		long		until = (long) ((ws->next_due - now) / 1000);

		ms = Min(ms, until > 0 ? until : 20);
	}
	if (ws->syncing && !ws->catalog_in_flight)
		ms = Min(ms, Max((ws->next_catalog - now) / 1000, 0));
	return ms;
}

static void
worker_leave(WorkerState *ws, int code)
{
	/* claims never started are given back; calls in flight are abandoned */
	if (ws->f->waiting != NIL && ws->took_over)
	{
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		fulfil_release(ws->f, false);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	fulfil_end(ws->f);
	ereport(LOG, (errmsg("gifq worker for database \"%s\" stopping", ws->slot->database)));
	proc_exit(code);
}

static void
clear_slot(int code, Datum arg)
{
	WorkerSlot *slot = (WorkerSlot *) DatumGetPointer(arg);

	SpinLockAcquire(&slot->mutex);
	slot->pid = 0;
	slot->latch = NULL;
	slot->in_flight = 0;
	SpinLockRelease(&slot->mutex);
}

static void
reload_settings(WorkerState *ws)
{
	char	   *url = pstrdup(gifq_provider_url);
	char	   *key = pstrdup(gifq_provider_api_key);
	bool		verified = gifq_tls_verify;

	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	/* provider_open warned at the start; a reload that turns it off too */
	if (verified && !gifq_tls_verify)
		provider_warn_insecure();
	if (ws->f->paused && (strcmp(url, gifq_provider_url) != 0 ||
						  strcmp(key, gifq_provider_api_key) != 0))
	{
		ereport(LOG, (errmsg("gifq worker: provider settings changed; sending resumes")));
		pfree(ws->f->paused);
		ws->f->paused = NULL;
	}
	explicit_bzero(key, strlen(key));
	/* look again now: the URL, the key or an interval may have changed */
	ws->next_due = 0;
	ws->next_catalog = 0;
}

/*
 * gifq_worker_main
 *		Entry point of a worker; arg is its index in gifq.database.
 */
void
gifq_worker_main(Datum arg)
{
	int			index = DatumGetInt32(arg);
	char	   *database = list_nth(worker_databases(), index);
	WorkerState ws;
	MemoryContext turn_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, handle_sigterm);
	BackgroundWorkerUnblockSignals();

	memset(&ws, 0, sizeof(ws));
	ws.slot = &shared->slots[index];
	BackgroundWorkerInitializeConnection(database, NULL, 0);
	pgstat_report_appname("gifq worker");
	/*
	 * Recording answers locks balance slots of many orders at once, which
	 * can close a cycle with an application transaction that redeems many
	 * times.  The worker looks for deadlocks sooner than anyone else, so it
	 * is the one that gives way (fulfil_record records again later).
	 */
	SetConfigOption("deadlock_timeout", "20ms", PGC_SUSET, PGC_S_OVERRIDE);

	SpinLockAcquire(&ws.slot->mutex);
	strlcpy(ws.slot->database, database, NAMEDATALEN);
	ws.slot->database_id = MyDatabaseId;
	ws.slot->pid = MyProcPid;
	ws.slot->latch = MyLatch;
	ws.slot->started_at = GetCurrentTimestamp();
	ws.slot->last_error[0] = '\0';
	ws.slot->last_error_at = 0;
	SpinLockRelease(&ws.slot->mutex);
	on_shmem_exit(clear_slot, PointerGetDatum(ws.slot));
	ereport(LOG, (errmsg("gifq worker for database \"%s\" started", database)));

	ws.f = fulfil_begin("worker", TopMemoryContext);
	turn_cxt = AllocSetContextCreate(TopMemoryContext, "gifq worker turn",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		bool		woken;
		List	   *done;
		MemoryContext old;

		if (got_sigterm || ws.slot->leave)
			worker_leave(&ws, ws.slot->leave ? 0 : 1);
		if (ConfigReloadPending)
			reload_settings(&ws);

		old = MemoryContextSwitchTo(turn_cxt);
		PG_TRY();
		{
			worker_turn(&ws);
		}
		PG_CATCH();
		{
			ErrorData  *e;

			MemoryContextSwitchTo(turn_cxt);
			e = CopyErrorData();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			note_error(ws.slot, e->message);
			/* the extension may have gone: look for it again */
			ws.installed = false;
			ereport(LOG, (errmsg("gifq worker: %s", e->message)));
			/* the answers are dropped: their orders are looked up later */
			fulfil_drop_finished(ws.f);
			ws.next_due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);
		}
		PG_END_TRY();

		/* committing left TopMemoryContext current: wait in the turn's */
		MemoryContextSwitchTo(turn_cxt);
		fulfil_start(ws.f);
		done = provider_wait(ws.f->ps, worker_sleep_ms(&ws), &woken);
		note_catalog(&ws, done);
		fulfil_add_finished(ws.f, done);
		SpinLockAcquire(&ws.slot->mutex);
		ws.slot->last_wake = GetCurrentTimestamp();
		SpinLockRelease(&ws.slot->mutex);
		MemoryContextSwitchTo(old);
		MemoryContextReset(turn_cxt);
		if (woken)
			ws.next_due = 0;
	}
}

PG_FUNCTION_INFO_V1(gifq_request_catalog_refresh);

/*
 * gifq_request_catalog_refresh
 *		gifq.request_catalog_refresh(): ask this database's worker to load
 *		the catalog now (a catalog.updated webhook).  Nothing without one.
 */
Datum
gifq_request_catalog_refresh(PG_FUNCTION_ARGS)
{
	wake_worker(true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gifq_worker_status);

/*
 * gifq_worker_status
 *		gifq.worker_status(): a row per running (or restarting) worker.
 */
Datum
gifq_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (shared == NULL)
		return (Datum) 0;
	for (int i = 0; i < MAX_WORKERS; i++)
	{
		WorkerSlot	s;
		Datum		values[13];
		bool		nulls[13];

		SpinLockAcquire(&shared->slots[i].mutex);
		memcpy(&s, &shared->slots[i], sizeof(s));
		SpinLockRelease(&shared->slots[i].mutex);
		if (s.database[0] == '\0')
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(s.database);
		values[1] = Int32GetDatum(s.pid);
		nulls[1] = s.pid == 0;
		values[2] = TimestampTzGetDatum(s.started_at);
		nulls[2] = s.started_at == 0;
		values[3] = TimestampTzGetDatum(s.last_wake);
		nulls[3] = s.last_wake == 0;
		values[4] = Int32GetDatum(s.in_flight);
		values[5] = Int64GetDatum(s.calls);
		values[6] = Int64GetDatum(s.delivered);
		values[7] = Int64GetDatum(s.failed);
		values[8] = CStringGetTextDatum(s.paused_reason);
		nulls[8] = s.paused_reason[0] == '\0';
		values[9] = TimestampTzGetDatum(s.paused_since);
		nulls[9] = s.paused_since == 0;
		values[10] = CStringGetTextDatum(s.last_error);
		nulls[10] = s.last_error[0] == '\0';
		values[11] = TimestampTzGetDatum(s.last_error_at);
		nulls[11] = s.last_error_at == 0;
		values[12] = TimestampTzGetDatum(s.catalog_synced_at);
		nulls[12] = s.catalog_synced_at == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
