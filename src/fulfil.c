/*-------------------------------------------------------------------------
 * fulfil.c
 *	  Claiming work, calling the provider and recording its answers: the
 *	  steps the worker (worker.c) and gifq_process_orders share.
 *
 * The order of things is what makes delivery exactly-once: an order is
 * claimed (status submitted, leased to the caller) and that is committed
 * before the call; the answer is recorded in a later transaction, through
 * gifq.record_outcome, which makes every decision (deliver, fail, retry,
 * look up).  Whatever happens between the two (a crash, a timeout), the
 * order is still submitted when its lease ends, and whoever finds it then
 * asks the provider about it by reference before anything is sent again.
 *
 * A turn's answers are recorded in one transaction, in one subtransaction;
 * should that fail (a bug, a constraint a DBA added), each answer is
 * recorded in one of its own, so one bad answer holds up no other: its
 * order stays submitted and is looked up again later.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/fulfil.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fulfil.h"
#include "gifq.h"
#include "ledger.h"
#include "webhooks.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

static SPIPlanPtr plan_claim = NULL;
static SPIPlanPtr plan_claim_events = NULL;
static SPIPlanPtr plan_outcome = NULL;
static SPIPlanPtr plan_event_sent = NULL;
static SPIPlanPtr plan_log = NULL;
static SPIPlanPtr plan_alert = NULL;
static SPIPlanPtr plan_catalog = NULL;
static SPIPlanPtr plan_release = NULL;

/*
 * fulfil_lease_ms
 *		How long a claim lasts: long enough for a call that uses its whole
 *		timeout, with room for recording the answer.
 */
int
fulfil_lease_ms(void)
{
	return gifq_request_timeout_ms + gifq_connect_timeout_ms + 10000;
}

/*
 * fulfil_ready
 *		Is there a provider to send to and a key to seal cards with?  With
 *		raise, say what is missing as an error.
 */
bool
fulfil_ready(bool raise)
{
	if (gifq_provider_url == NULL || gifq_provider_url[0] == '\0')
	{
		if (raise)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_PROVIDER_NOT_SET),
					 errmsg("gifq.provider_url is not set"),
					 errhint("Set gifq.provider_url (and gifq.provider_api_key) in postgresql.conf and reload.")));
		return false;
	}
	if (gifq_card_key == NULL || gifq_card_key[0] == '\0')
	{
		if (raise)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_CARD_KEY_MISSING),
					 errmsg("gifq.card_key is not set"),
					 errhint("A superuser sets gifq.card_key (a long random string) in postgresql.conf; gifq sends no order whose card it could not store.")));
		return false;
	}
	return true;
}

/*
 * fulfil_interval_ms
 *		An interval Datum of ms milliseconds, for the SQL the worker runs.
 */
Datum
fulfil_interval_ms(int64 ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = ms * 1000;
	return IntervalPGetDatum(iv);
}

Fulfilment *
fulfil_begin(const char *caller, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "gifq fulfilment",
											  ALLOCSET_DEFAULT_SIZES);
	Fulfilment *f = MemoryContextAllocZero(cxt, sizeof(Fulfilment));

	f->cxt = cxt;
	f->caller = MemoryContextStrdup(cxt, caller);
	f->ps = provider_open();
	return f;
}

void
fulfil_end(Fulfilment *f)
{
	provider_close(f->ps);
	MemoryContextDelete(f->cxt);
}

/* a request in a memory context of its own, freed once it is recorded */
static ProviderRequest *
new_request(Fulfilment *f, const char *call)
{
	MemoryContext cxt = AllocSetContextCreate(f->cxt, "gifq call",
											  ALLOCSET_SMALL_SIZES);
	ProviderRequest *req = MemoryContextAllocZero(cxt, sizeof(ProviderRequest));

	req->call = call;
	return req;
}

/* queue req; the lists live as long as f, not in SPI's or a turn's memory */
static void
enqueue(Fulfilment *f, ProviderRequest *req)
{
	MemoryContext old = MemoryContextSwitchTo(f->cxt);

	f->waiting = lappend(f->waiting, req);
	MemoryContextSwitchTo(old);
}

/*
 * fulfil_add_finished
 *		Take calls provider_wait returned, for the next fulfil_record.
 */
void
fulfil_add_finished(Fulfilment *f, List *done)
{
	MemoryContext old = MemoryContextSwitchTo(f->cxt);
	ListCell   *lc;

	foreach(lc, done)
		f->finished = lappend(f->finished, lfirst(lc));
	MemoryContextSwitchTo(old);
	list_free(done);
}

static void
free_request(ProviderRequest *req)
{
	MemoryContextDelete(GetMemoryChunkContext(req));
}

static char *
request_strdup(ProviderRequest *req, const char *s)
{
	return s ? MemoryContextStrdup(GetMemoryChunkContext(req), s) : NULL;
}

static char *
column_text(HeapTuple row, TupleDesc desc, int n)
{
	bool		isnull;
	Datum		d = SPI_getbinval(row, desc, n, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * fulfil_claim_orders
 *		Claim up to batch orders due for a send or a look-up, queue their
 *		calls.  Inside a transaction, SPI connected; the caller commits
 *		before starting the calls (the worker does; gifq_process_orders
 *		runs inside its caller's transaction).
 */
int
fulfil_claim_orders(Fulfilment *f, int batch, int lease_ms)
{
	static const Oid argtypes[] = {INT4OID, INTERVALOID, TEXTOID};
	Datum		values[3];

	if (batch <= 0)
		return 0;
	values[0] = Int32GetDatum(batch);
	values[1] = fulfil_interval_ms(lease_ms);
	values[2] = CStringGetTextDatum(f->caller);
	ledger_run(ledger_plan(&plan_claim,
						   "SELECT order_id, call, reference, provider_order_id, body, attempt"
						   " FROM gifq.claim_work($1, $2, $3)", 3, argtypes),
			   values, NULL, SPI_OK_SELECT);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *call = column_text(row, desc, 2);
		char	   *reference = column_text(row, desc, 3);
		ProviderRequest *req = new_request(f, strcmp(call, "order") == 0 ? "order" : "lookup");
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(req));

		req->id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		req->attempt = DatumGetInt32(SPI_getbinval(row, desc, 6, &isnull));
		req->authorize = true;
		if (strcmp(req->call, "order") == 0)
		{
			req->url = provider_url("/api/v1/orders");
			req->body = column_text(row, desc, 5);
			req->idempotency_key = pstrdup(reference);
		}
		else
			req->url = provider_url(psprintf("/api/v1/orders?reference_id=%s", reference));
		MemoryContextSwitchTo(old);
		enqueue(f, req);
	}
	return (int) SPI_processed;
}

/*
 * fulfil_claim_events
 *		Claim up to batch outbox events for gifq.events_url and queue their
 *		POSTs, each signed with gifq.events_secret (and, during a rotation,
 *		gifq.events_secret_previous too).
 */
int
fulfil_claim_events(Fulfilment *f, int batch, int lease_ms)
{
	static const Oid argtypes[] = {INT4OID, INTERVALOID};
	Datum		values[2];
	int64		now = (int64) time(NULL);

	if (batch <= 0)
		return 0;
	values[0] = Int32GetDatum(batch);
	values[1] = fulfil_interval_ms(lease_ms);
	ledger_run(ledger_plan(&plan_claim_events,
						   "SELECT event_id, body FROM gifq.claim_events($1, $2)", 2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		bool		isnull;
		ProviderRequest *req = new_request(f, "event");
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(req));

		req->id = DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull));
		req->body = column_text(row, SPI_tuptable->tupdesc, 2);
		req->url = pstrdup(gifq_events_url);
		req->signature = webhook_signature(gifq_events_secret,
										   gifq_events_secret_previous, now,
										   req->body, strlen(req->body));
		MemoryContextSwitchTo(old);
		enqueue(f, req);
	}
	return (int) SPI_processed;
}

/*
 * fulfil_call
 *		Queue a GET of the provider's path ("catalog" or "balance").
 */
void
fulfil_call(Fulfilment *f, const char *call, const char *path, char *if_none_match)
{
	ProviderRequest *req = new_request(f, call);
	MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(req));

	req->url = provider_url(path);
	req->authorize = true;
	req->if_none_match = request_strdup(req, if_none_match);
	MemoryContextSwitchTo(old);
	enqueue(f, req);
}

/*
 * fulfil_start
 *		Start queued calls, as many as gifq.max_concurrent_requests and
 *		gifq.provider_rate_limit allow now.  While sending is paused only
 *		the calls that do not send orders start.
 */
void
fulfil_start(Fulfilment *f)
{
	ListCell   *lc;
	List	   *kept = NIL;
	MemoryContext old = MemoryContextSwitchTo(f->cxt);

	foreach(lc, f->waiting)
	{
		ProviderRequest *req = lfirst(lc);
		bool		held = f->paused && strcmp(req->call, "order") == 0;

		if (held || provider_in_flight(f->ps) >= gifq_max_concurrent_requests ||
			(req->authorize && provider_rate_delay_ms(f->ps) > 0))
		{
			kept = lappend(kept, req);
			continue;
		}
		provider_start(f->ps, req);
		f->calls++;
	}
	list_free(f->waiting);
	f->waiting = kept;
	MemoryContextSwitchTo(old);
}

static void
log_call(ProviderRequest *req, const char *caller)
{
	static const Oid argtypes[] = {TEXTOID, INT8OID, INT4OID, INT4OID, TEXTOID, FLOAT8OID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', 'n', 'n', ' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(req->call);
	values[3] = Int32GetDatum(req->http_status);
	if (req->http_status == 0)
		nulls[3] = 'n';
	values[4] = req->error ? CStringGetTextDatum(req->error) : (Datum) 0;
	if (req->error == NULL)
		nulls[4] = 'n';
	values[5] = Float8GetDatum(req->latency_ms);
	values[6] = CStringGetTextDatum(caller);
	ledger_run(ledger_plan(&plan_log,
						   "SELECT gifq.log_call($1, $2, $3, $4, $5, $6, $7)", 7, argtypes),
			   values, nulls, SPI_OK_SELECT);
}

/* the start of a body that is not JSON, printable, for an error message */
static char *
answer_excerpt(const ProviderRequest *req)
{
	char	   *s = pnstrdup(req->response, Min(req->response_len, 60));

	for (char *p = s; *p; p++)
		if (*p < 32 || *p > 126)
			*p = '?';
	return s;
}

/* the answer as text for SQL, or NULL with *error set when it is not JSON */
static char *
answer_json(ProviderRequest *req, char **error)
{
	if (req->response_json)
		return req->response;
	if (req->response != NULL && req->http_status >= 200 && req->http_status < 300 &&
		*error == NULL)
		*error = psprintf("malformed answer: %s", answer_excerpt(req));
	return NULL;
}

static void
pause_sending(Fulfilment *f, ProviderRequest *req)
{
	static const Oid argtypes[] = {TEXTOID, INT4OID};
	Datum		values[2];
	char	   *reason;

	if (f->paused)
		return;
	reason = psprintf("the provider answered %d %s", req->http_status,
					  req->http_status == 401 ? "(API key refused)" : "(prepaid balance too low)");
	f->paused = MemoryContextStrdup(f->cxt, reason);
	f->paused_status = req->http_status;
	values[0] = CStringGetTextDatum(reason);
	values[1] = Int32GetDatum(req->http_status);
	ledger_run(ledger_plan(&plan_alert,
						   "SELECT gifq.emit(NULL, 'provider.alert', jsonb_build_object("
						   "'reason', $1::text, 'http_status', $2::int, 'sending', 'paused'))",
						   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	ereport(WARNING,
			(errmsg("gifq: sending orders paused: %s", reason),
			 errhint("Fix the provider API key or fund the provider account; sending resumes when the provider answers again or the settings are reloaded.")));
}

static void
record_order(Fulfilment *f, ProviderRequest *req)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID,
	FLOAT8OID, INT4OID, INT4OID, INT4OID, INT4OID};
	Datum		values[11];
	char		nulls[11];
	char	   *error = req->error;
	char	   *body = answer_json(req, &error);
	char	   *done;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(req->id);
	values[1] = CStringGetTextDatum(req->call);
	values[2] = CStringGetTextDatum(f->caller);
	values[3] = Int32GetDatum(req->http_status);
	nulls[3] = req->http_status ? ' ' : 'n';
	values[4] = body ? CStringGetTextDatum(body) : (Datum) 0;
	nulls[4] = body ? ' ' : 'n';
	values[5] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[5] = error ? ' ' : 'n';
	values[6] = Float8GetDatum(req->latency_ms);
	values[7] = Int32GetDatum(req->retry_after);
	nulls[7] = req->retry_after >= 0 ? ' ' : 'n';
	values[8] = Int32GetDatum(gifq_max_attempts);
	values[9] = Int32GetDatum(gifq_retry_base_ms);
	values[10] = Int32GetDatum(gifq_retry_max_ms);
	ledger_run(ledger_plan(&plan_outcome,
						   "SELECT gifq.record_outcome($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
						   11, argtypes),
			   values, nulls, SPI_OK_SELECT);
	done = ledger_text(1);
	if (strcmp(done, "delivered") == 0)
		f->delivered++;
	else if (strcmp(done, "failed") == 0)
		f->failed++;
	else if (strcmp(done, "paused") == 0)
		pause_sending(f, req);
}

static void
record_event(Fulfilment *f, ProviderRequest *req)
{
	static const Oid argtypes[] = {INT8OID, INT4OID, TEXTOID, FLOAT8OID, TEXTOID,
	INT4OID, INT4OID, INT4OID};
	Datum		values[8];
	char		nulls[8];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(req->id);
	values[1] = Int32GetDatum(req->http_status);
	nulls[1] = req->http_status ? ' ' : 'n';
	values[2] = req->error ? CStringGetTextDatum(req->error) : (Datum) 0;
	nulls[2] = req->error ? ' ' : 'n';
	values[3] = Float8GetDatum(req->latency_ms);
	values[4] = CStringGetTextDatum(f->caller);
	values[5] = Int32GetDatum(gifq_max_attempts * 4);
	values[6] = Int32GetDatum(gifq_retry_base_ms);
	values[7] = Int32GetDatum(gifq_retry_max_ms);
	ledger_run(ledger_plan(&plan_event_sent,
						   "SELECT gifq.record_event_sent($1, $2, $3, $4, $5, $6, $7, $8)",
						   8, argtypes),
			   values, nulls, SPI_OK_SELECT);
}

/*
 * record_catalog
 *		A new catalog goes through gifq_catalog_load, which checks it whole
 *		and refuses it whole; a 304 means the one loaded is current.
 */
static void
record_catalog(Fulfilment *f, ProviderRequest *req)
{
	static const Oid argtypes[] = {TEXTOID};
	Datum		values[1];

	log_call(req, f->caller);
	if (req->http_status != 200)
	{
		if (req->http_status != 304)
			ereport(WARNING,
					(errmsg("gifq: catalog not refreshed: %s",
							req->error ? req->error : psprintf("the provider answered %d", req->http_status))));
		return;
	}
	if (!req->response_json)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_CATALOG),
				 errmsg("the provider's catalog is not JSON")));
	values[0] = CStringGetTextDatum(req->response);
	ledger_run(ledger_plan(&plan_catalog,
						   "SELECT gifq.load_catalog($1::jsonb)", 1, argtypes),
			   values, NULL, SPI_OK_SELECT);
}

/*
 * record_balance
 *		The probe made while sending is paused: an answer means the key
 *		works again; after a 402 the balance must be above zero too.
 */
static void
record_balance(Fulfilment *f, ProviderRequest *req)
{
	static SPIPlanPtr plan_funded = NULL;
	static const Oid argtypes[] = {TEXTOID};
	Datum		values[1];

	log_call(req, f->caller);
	if (!f->paused || req->http_status != 200 || !req->response_json)
		return;
	if (f->paused_status == 402)
	{
		values[0] = CStringGetTextDatum(req->response);
		ledger_run(ledger_plan(&plan_funded,
							   "SELECT CASE WHEN jsonb_typeof($1::jsonb -> 'available') = 'number'"
							   " THEN ($1::jsonb ->> 'available')::numeric > 0 ELSE false END",
							   1, argtypes),
				   values, NULL, SPI_OK_SELECT);
		if (!DatumGetBool(ledger_datum(1)))
			return;
	}
	ereport(LOG, (errmsg("gifq: the provider answers again; sending resumes")));
	pfree(f->paused);
	f->paused = NULL;
}

static void
record_one(Fulfilment *f, ProviderRequest *req)
{
	if (strcmp(req->call, "order") == 0 || strcmp(req->call, "lookup") == 0)
		record_order(f, req);
	else if (strcmp(req->call, "event") == 0)
		record_event(f, req);
	else if (strcmp(req->call, "catalog") == 0)
		record_catalog(f, req);
	else
		record_balance(f, req);
}

/* errors that pass: the same answer recorded a moment later succeeds */
static bool
is_transient(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}

/*
 * record_in_subtransaction
 *		record_one for each of reqs in one subtransaction; returns 0, or
 *		the SQLSTATE of the error that rolled it back (logged with report).
 */
static int
record_in_subtransaction(Fulfilment *f, List *reqs, bool report)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int sqlerrcode = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		ListCell   *lc;

		foreach(lc, reqs)
			record_one(f, lfirst(lc));
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *e;
		ProviderRequest *req = linitial(reqs);

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		sqlerrcode = e->sqlerrcode;
		if (report)
			ereport(is_transient(sqlerrcode) ? LOG : WARNING,
					(errmsg("gifq: could not record a provider answer: %s", e->message),
					 errdetail("%s " INT64_FORMAT "; %s.", req->call, req->id,
							   is_transient(sqlerrcode) && req->record_tries < 5
							   ? "it is recorded again at the next turn"
							   : "it is looked up again later")));
		FreeErrorData(e);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return sqlerrcode;
}

/*
 * fulfil_record
 *		Record every finished call.  All of them go in one subtransaction;
 *		if that fails, each goes in one of its own, so one answer that
 *		cannot be recorded holds up no other.  (A subtransaction for every
 *		answer from the start was measured at a third of the throughput:
 *		past 64 subtransactions with an XID, a transaction overflows its
 *		PGPROC cache and every snapshot check must read pg_subtrans.)  An
 *		answer that meets a deadlock or a lock timeout (the worker gives
 *		way: it waits less than applications do) is kept for the next call
 *		of this, a few times; any other is dropped, and its order looked
 *		up again when its lease ends.  Inside a transaction, SPI connected.
 *		Returns how many were recorded.
 */
int
fulfil_record(Fulfilment *f)
{
	List	   *reqs = f->finished;
	List	   *again = NIL;
	ListCell   *lc;
	int			n = list_length(reqs);

	if (reqs == NIL)
		return 0;
	f->finished = NIL;
	if (record_in_subtransaction(f, reqs, false) != 0)
	{
		n = 0;
		foreach(lc, reqs)
		{
			ProviderRequest *req = lfirst(lc);
			int			code = record_in_subtransaction(f, list_make1(req), true);

			if (code == 0)
				n++;
			else if (is_transient(code) && req->record_tries++ < 5)
				again = lappend(again, req);
		}
	}
	foreach(lc, reqs)
		if (!list_member_ptr(again, lfirst(lc)))
			free_request(lfirst(lc));
	list_free(reqs);
	fulfil_add_finished(f, again);
	return n;
}

/*
 * fulfil_drop_finished
 *		Forget the answers not recorded (a turn failed): their orders are
 *		looked up when their leases end.
 */
void
fulfil_drop_finished(Fulfilment *f)
{
	ListCell   *lc;

	foreach(lc, f->finished)
		free_request(lfirst(lc));
	list_free(f->finished);
	f->finished = NIL;
}

/*
 * fulfil_release
 *		Give back the claims of order calls that were never started (with
 *		sends_only, only the sends: what a pause holds).  Other queued calls
 *		stay queued.  Inside a transaction, SPI connected.
 */
void
fulfil_release(Fulfilment *f, bool sends_only)
{
	static const Oid argtypes[] = {INT8ARRAYOID, INT8ARRAYOID, TEXTOID};
	ArrayBuildState *sends = initArrayResult(INT8OID, CurrentMemoryContext, true);
	ArrayBuildState *lookups = initArrayResult(INT8OID, CurrentMemoryContext, true);
	Datum		values[3];
	ListCell   *lc;
	List	   *kept = NIL;
	int			released = 0;
	MemoryContext old;

	foreach(lc, f->waiting)
	{
		ProviderRequest *req = lfirst(lc);

		if (strcmp(req->call, "order") == 0)
			accumArrayResult(sends, Int64GetDatum(req->id), false, INT8OID, CurrentMemoryContext);
		else if (strcmp(req->call, "lookup") == 0 && !sends_only)
			accumArrayResult(lookups, Int64GetDatum(req->id), false, INT8OID, CurrentMemoryContext);
		else
		{
			old = MemoryContextSwitchTo(f->cxt);
			kept = lappend(kept, req);
			MemoryContextSwitchTo(old);
			continue;
		}
		free_request(req);
		released++;
	}
	list_free(f->waiting);
	f->waiting = kept;
	if (released == 0)
		return;
	values[0] = makeArrayResult(sends, CurrentMemoryContext);
	values[1] = makeArrayResult(lookups, CurrentMemoryContext);
	values[2] = CStringGetTextDatum(f->caller);
	ledger_run(ledger_plan(&plan_release,
						   "SELECT gifq.release_claims($1, $2, $3)", 3, argtypes),
			   values, NULL, SPI_OK_SELECT);
}

PG_FUNCTION_INFO_V1(gifq_process_orders);

/*
 * gifq_process_orders
 *		gifq_process_orders(batch): the worker's job done once, in this
 *		session, for up to batch due orders (sends and look-ups): for a
 *		server without the preloaded worker, or from pg_cron.  It runs in
 *		the caller's transaction, so the claimed orders stay locked while
 *		the calls are made: call it on its own, not inside a long
 *		transaction.  Returns how many calls it made (sends and look-ups);
 *		after a 401 or 402 the orders not yet sent are given back.
 */
Datum
gifq_process_orders(PG_FUNCTION_ARGS)
{
	int			batch;
	volatile int calls = 0;
	Fulfilment *volatile f;

	if (PG_ARGISNULL(0) || PG_GETARG_INT32(0) < 1 || PG_GETARG_INT32(0) > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_BATCH),
				 errmsg("batch %s is out of range",
						PG_ARGISNULL(0) ? "NULL" : psprintf("%d", PG_GETARG_INT32(0))),
				 errhint("Process between 1 and 10000 orders per call.")));
	batch = PG_GETARG_INT32(0);
	fulfil_ready(true);

	f = fulfil_begin(psprintf("session %d", MyProcPid), CurrentMemoryContext);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		fulfil_claim_orders(f, batch, fulfil_lease_ms());
		for (;;)
		{
			bool		woken;
			long		delay;

			fulfil_start(f);
			if (provider_in_flight(f->ps) == 0 &&
				(f->waiting == NIL || f->paused))
				break;
			delay = provider_rate_delay_ms(f->ps);
			fulfil_add_finished(f, provider_wait(f->ps, delay > 0 ? delay : 1000, &woken));
			CHECK_FOR_INTERRUPTS();
			/* record as answers come, so a pause stops what follows */
			if (f->finished != NIL)
				fulfil_record(f);
		}
		fulfil_record(f);
		fulfil_release(f, false);
		calls = (int) f->calls;
		SPI_finish();
	}
	PG_FINALLY();
	{
		fulfil_end(f);
	}
	PG_END_TRY();
	PG_RETURN_INT32(calls);
}

PG_FUNCTION_INFO_V1(gifq_refresh_catalog);

/*
 * gifq_refresh_catalog
 *		gifq_refresh_catalog(): the worker's catalog refresh done once, in
 *		this session, for a database the worker does not serve (pg_cron's
 *		gifq-catalog job).  GET /api/v1/catalog with the etag of the last
 *		load; a 200 is loaded through gifq_catalog_load (all or nothing).
 *		Returns "loaded" or "unchanged" (304); any other answer raises
 *		QG603, so that a scheduled run is recorded as failed.  The call is
 *		made inside the caller's transaction, which holds no lock on the
 *		catalog until the answer is loaded.
 */
Datum
gifq_refresh_catalog(PG_FUNCTION_ARGS)
{
	Fulfilment *volatile f;
	volatile int status = 0;
	char	   *volatile why = NULL;
	MemoryContext outer = CurrentMemoryContext;

	if (gifq_provider_url == NULL || gifq_provider_url[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_PROVIDER_NOT_SET),
				 errmsg("gifq.provider_url is not set"),
				 errhint("Set gifq.provider_url (and gifq.provider_api_key) in postgresql.conf and reload.")));

	f = fulfil_begin(psprintf("session %d", MyProcPid), CurrentMemoryContext);
	PG_TRY();
	{
		char	   *etag = NULL;
		bool		isnull;
		ProviderRequest *req;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT etag FROM gifq.catalog_state", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute failed reading gifq.catalog_state");
		if (SPI_processed == 1)
		{
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
				etag = TextDatumGetCString(d);
		}
		fulfil_call(f, "catalog", "/api/v1/catalog", etag);
		for (;;)
		{
			bool		woken;
			long		delay;

			fulfil_start(f);
			if (provider_in_flight(f->ps) == 0 && f->waiting == NIL)
				break;
			delay = provider_rate_delay_ms(f->ps);
			fulfil_add_finished(f, provider_wait(f->ps, delay > 0 ? delay : 1000, &woken));
			CHECK_FOR_INTERRUPTS();
		}
		if (list_length(f->finished) != 1)
			elog(ERROR, "catalog call did not finish");
		req = linitial(f->finished);
		status = req->http_status;
		if (status == 200 || status == 304)
			record_catalog(f, req);
		else
			why = MemoryContextStrdup(outer, req->error ? req->error
									  : psprintf("the provider answered %d", status));
		SPI_finish();
	}
	PG_FINALLY();
	{
		fulfil_end(f);
	}
	PG_END_TRY();
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_CATALOG_NOT_REFRESHED),
				 errmsg("catalog not refreshed: %s", why),
				 errhint("The catalog loaded before stays; check gifq.provider_url and gifq.provider_api_key.")));
	PG_RETURN_TEXT_P(cstring_to_text(status == 200 ? "loaded" : "unchanged"));
}
