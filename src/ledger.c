/*-------------------------------------------------------------------------
 * ledger.c
 *	  Double-entry transfers: gifq_transfer, gifq_transfers and the
 *	  machinery holds.c shares (account look-up, slot updates).
 *
 * A transfer debits one account and credits another in one currency.  Its
 * row in gifq.transfers is written first, so an idempotency key is claimed
 * before any balance moves (a concurrent twin waits on the unique index,
 * then finds the first and returns it).  Balances change in
 * gifq.account_slots, accounts taken in ascending id order so that two
 * transfers never wait on each other in opposite orders.
 *
 * A hot system account has several slots; each backend starts at its own,
 * so program funding and points issuance do not serialise all traffic.  A
 * limit (debits_must_not_exceed_credits or its mirror) is checked per
 * slot on the very row version that is replaced (slots.c, which re-checks
 * the newest version after a concurrent update, as UPDATE does), so no
 * interleaving can overdraw a slot, and so none the account.  A slot short
 * of room is topped up from its siblings by gifq.rebalance().
 *
 * Every function here runs inside SPI and throws on error; the caller's
 * transaction rolls everything back.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/ledger.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "arrays.h"
#include "gifq.h"
#include "ledger.h"
#include "money.h"
#include "scope.h"
#include "statistics.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/resowner.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

static SPIPlanPtr plan_account;
static SPIPlanPtr plan_insert;
static SPIPlanPtr plan_insert_keyed;
static SPIPlanPtr plan_by_key;
static SPIPlanPtr plan_hold;
static SPIPlanPtr plan_hold_keyed;
static SPIPlanPtr plan_rebalance;
static SPIPlanPtr plan_low_balance;
static SPIPlanPtr plan_slot_totals;


/* ----------------------------------------------------------------------
 * SPI plumbing
 * ----------------------------------------------------------------------
 */

/*
 * ledger_plan
 *		Prepare sql once per backend and keep the plan.  The plan cache
 *		revalidates it after DDL on the tables it reads.
 */
SPIPlanPtr
ledger_plan(SPIPlanPtr *cache, const char *sql, int nargs, const Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/*
 * ledger_plan_generic
 *		ledger_plan for a statement that takes an array ("= ANY ($1)"):
 *		its custom plans cost no less than the generic one, so the plan
 *		cache would plan it afresh on every call (a fifth of the worker's
 *		time once); force the generic plan.
 */
SPIPlanPtr
ledger_plan_generic(SPIPlanPtr *cache, const char *sql, int nargs, const Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, (Oid *) argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare_cursor failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/*
 * ledger_run
 *		Execute a kept plan; throw unless SPI answers "expected".
 */
void
ledger_run(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_plan returned %s",
			 SPI_result_code_string(rc));
}

/*
 * ledger_datum
 *		Column n of the first result row, which must not be NULL.
 */
Datum
ledger_datum(int n)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
								  SPI_tuptable->tupdesc, n, &isnull);

	if (isnull)
		elog(ERROR, "unexpected NULL in ledger query result column %d", n);
	return d;
}


/*
 * ledger_text
 *		Column n of the first result row as a C string, NULL for SQL NULL.
 */
char *
ledger_text(int n)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
								  SPI_tuptable->tupdesc, n, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}


/* ----------------------------------------------------------------------
 * Accounts and slots
 * ----------------------------------------------------------------------
 */

/*
 * fill_account
 *		*account from row "row" of a query over gifq.accounts selecting
 *		id, program_id, currency, the two flags, slots, whether it has a
 *		low-balance level and whether it may cross a threshold.
 */
static void
fill_account(int row, LedgerAccount *account)
{
	HeapTuple	tuple = SPI_tuptable->vals[row];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;

	account->id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	account->program_id = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
	currency_from_text(DatumGetTextPP(SPI_getbinval(tuple, desc, 3, &isnull)),
					   account->currency);
	account->debits_must_not_exceed_credits =
		DatumGetBool(SPI_getbinval(tuple, desc, 4, &isnull));
	account->credits_must_not_exceed_debits =
		DatumGetBool(SPI_getbinval(tuple, desc, 5, &isnull));
	account->slots = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));
	account->has_low_balance = DatumGetBool(SPI_getbinval(tuple, desc, 7, &isnull));
	account->watch_thresholds = DatumGetBool(SPI_getbinval(tuple, desc, 8, &isnull));
}

/*
 * ledger_read_account
 *		*account from the LEDGER_ACCOUNT_COLUMNS starting at column n of the
 *		first result row (a LEFT JOIN's, so id 0 when there is none); the
 *		caller knows its program and currency.
 */
void
ledger_read_account(int n, int64 program_id, const char *currency,
					LedgerAccount *account)
{
	HeapTuple	tuple = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	Datum		id = SPI_getbinval(tuple, desc, n, &isnull);

	memset(account, 0, sizeof(LedgerAccount));
	if (isnull)
		return;
	account->id = DatumGetInt64(id);
	account->program_id = program_id;
	memcpy(account->currency, currency, GIFQ_CURRENCY_LEN);
	account->debits_must_not_exceed_credits =
		DatumGetBool(SPI_getbinval(tuple, desc, n + 1, &isnull));
	account->credits_must_not_exceed_debits =
		DatumGetBool(SPI_getbinval(tuple, desc, n + 2, &isnull));
	account->slots = DatumGetInt32(SPI_getbinval(tuple, desc, n + 3, &isnull));
	account->has_low_balance = DatumGetBool(SPI_getbinval(tuple, desc, n + 4, &isnull));
	account->watch_thresholds = DatumGetBool(SPI_getbinval(tuple, desc, n + 5, &isnull));
}

/*
 * ledger_load_accounts
 *		Fill accounts[i] for ids[i], i < n, in one query (ids may repeat);
 *		throw QG103 naming the first id that is not an account.
 */
void
ledger_load_accounts(const int64 *ids, int n, LedgerAccount *accounts)
{
	static const Oid argtypes[] = {INT8ARRAYOID};
	Datum		values[1];

	values[0] = int8_array(ids, n);
	ledger_run(ledger_plan_generic(&plan_account,
						   "SELECT id, program_id, currency, debits_must_not_exceed_credits,"
						   " credits_must_not_exceed_debits, slots,"
						   " low_balance IS NOT NULL, " LEDGER_WATCH_THRESHOLDS
						   " FROM gifq.accounts a WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
						   1, argtypes),
			   values, NULL, SPI_OK_SELECT);
	for (int i = 0; i < n; i++)
	{
		uint64		row;

		for (row = 0; row < SPI_processed; row++)
		{
			bool		isnull;

			if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row],
											SPI_tuptable->tupdesc, 1,
											&isnull)) == ids[i])
				break;
		}
		if (row == SPI_processed)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_UNKNOWN_ACCOUNT),
					 errmsg("unknown account %lld", (long long) ids[i]),
					 errhint("Find account ids with gifq_account().")));
		fill_account(row, &accounts[i]);
	}
}

/*
 * ledger_load_account
 *		Fill *account from gifq.accounts; throw QG103 if there is none.
 */
void
ledger_load_account(int64 id, LedgerAccount *account)
{
	ledger_load_accounts(&id, 1, account);
}

/*
 * ledger_available
 *		The room the account's limit leaves over all its slots, for
 *		messages; gifq.slot_room() holds the formula.
 */
int64
ledger_available(const LedgerAccount *account)
{
	static const Oid argtypes[] = {INT8OID, BOOLOID};
	Datum		values[2];

	values[0] = Int64GetDatum(account->id);
	values[1] = BoolGetDatum(account->debits_must_not_exceed_credits);
	ledger_run(ledger_plan(&plan_slot_totals,
						   "SELECT gifq.slot_room($1, NULL, $2)", 2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	return DatumGetInt64(ledger_datum(1));
}

/*
 * delta_need
 *		The room a change takes under the account's limit: the debits it
 *		adds beyond the credits (debits_must_not_exceed_credits), or the
 *		mirror.  Zero or less when the account has no limit or the change
 *		takes no room, and then nothing can refuse it.
 */
static int64
delta_need(const LedgerAccount *account, const SlotDelta *delta)
{
	if (account->debits_must_not_exceed_credits)
		return delta->debits_posted + delta->debits_pending - delta->credits_posted;
	if (account->credits_must_not_exceed_debits)
		return delta->credits_posted + delta->credits_pending - delta->debits_posted;
	return 0;
}

/*
 * rebalance
 *		Let gifq.rebalance() gather "need" more room into one slot of a
 *		multi-slot account.  False when the whole account lacks it.
 */
static bool
rebalance(const LedgerAccount *account, int slot, int64 need)
{
	static const Oid argtypes[] = {INT8OID, INT4OID, INT8OID, BOOLOID};
	Datum		values[4];

	values[0] = Int64GetDatum(account->id);
	values[1] = Int32GetDatum(slot);
	values[2] = Int64GetDatum(need);
	values[3] = BoolGetDatum(account->debits_must_not_exceed_credits);
	ledger_run(ledger_plan(&plan_rebalance,
						   "SELECT gifq.rebalance($1, $2, $3, $4)", 4, argtypes),
			   values, NULL, SPI_OK_SELECT);
	return DatumGetBool(ledger_datum(1));
}

/*
 * apply_or_release
 *		ledger_apply() on a multi-slot account, in a subtransaction that is
 *		rolled back when the limit refuses the change.
 *
 * A change that waited for a concurrent writer locks the newest row
 * version before it re-checks it (slots.c), and keeps that lock when the
 * check fails.  Holding the slot while gifq.rebalance() then waits
 * for its siblings could deadlock with another session doing the same;
 * rolling the subtransaction back releases the lock first.
 */
static bool
apply_or_release(const LedgerAccount *account, int slot,
				 const SlotDelta *delta, int64 transfer_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		applied;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	applied = ledger_apply(account, slot, delta, transfer_id) == 1;
	if (applied)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return applied;
}

/*
 * One side of a transfer as it is applied: which slot of which account
 * changes by how much, and the request it comes from (for the refusal).
 */
typedef struct LedgerSide
{
	const LedgerAccount *account;
	int			slot;
	SlotDelta	delta;
	int64		transfer_id;
	const TransferRequest *request; /* NULL: a hold's end */
	const GifqMoney *amount;
} LedgerSide;

/*
 * refuse
 *		Throw the error for a side the account's limit refused: the
 *		request's own (redemption says "insufficient points"), or QG107 /
 *		QG108.
 */
static void
refuse(const LedgerSide *side)
{
	const LedgerAccount *account = side->account;
	int64		available = ledger_available(account);

	if (side->request != NULL && side->request->refused != NULL)
	{
		side->request->refused(side->request, account, available);
		elog(ERROR, "refusal callback returned");
	}
	if (account->debits_must_not_exceed_credits)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_EXCEEDS_CREDITS),
				 errmsg("debit of %s exceeds the credits of account %lld",
						money_to_cstring(side->amount), (long long) account->id),
				 errdetail("The account has %s available.",
						   money_to_cstring(money_make(available, account->currency))),
				 errhint("The account may not be debited beyond its credits (debits_must_not_exceed_credits).")));
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_EXCEEDS_DEBITS),
			 errmsg("credit of %s exceeds the debits of account %lld",
					money_to_cstring(side->amount), (long long) account->id),
			 errdetail("The account can take %s more.",
					   money_to_cstring(money_make(available, account->currency))),
			 errhint("The account may not be credited beyond its debits (credits_must_not_exceed_debits).")));
}

/*
 * apply_or_refuse
 *		ledger_apply() one side, topping the slot up from its siblings if
 *		need be; throws when the account's limit refuses the change.
 */
static void
apply_or_refuse(const LedgerSide *side)
{
	const LedgerAccount *account = side->account;
	int64		need = delta_need(account, &side->delta);

	if (need <= 0 || account->slots == 1)
	{
		if (ledger_apply(account, side->slot, &side->delta, side->transfer_id) == 1)
			return;
		if (need <= 0)
			elog(ERROR, "balance slot %d of account %lld refused a change that takes no room",
				 side->slot, (long long) account->id);
	}
	else
	{
		if (apply_or_release(account, side->slot, &side->delta, side->transfer_id))
			return;
		if (rebalance(account, side->slot, need) &&
			ledger_apply(account, side->slot, &side->delta, side->transfer_id) == 1)
			return;
	}
	refuse(side);
}

static int
side_cmp(const void *a, const void *b)
{
	const LedgerSide *x = a;
	const LedgerSide *y = b;

	if (x->account->id != y->account->id)
		return x->account->id < y->account->id ? -1 : 1;
	return x->slot - y->slot;
}

/*
 * apply_sides
 *		Apply sides in ascending (account, slot) order: the one fixed order
 *		every transaction locks balances in, so no two wait on each other
 *		in a cycle.  Sorts the array in place.
 */
static void
apply_sides(LedgerSide *sides, int n)
{
	qsort(sides, n, sizeof(LedgerSide), side_cmp);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		apply_or_refuse(&sides[i]);
	}
}

/*
 * ledger_apply_both
 *		Apply a transfer's two sides in the global lock order.  A refusal
 *		calls request's callback (its own error) when there is a request
 *		with one, and otherwise throws QG107 or QG108; amount names the
 *		change in that message (the request's amount when request is given).
 */
void
ledger_apply_both(const LedgerAccount *debit, int debit_slot,
				  const SlotDelta *debit_delta,
				  const LedgerAccount *credit, int credit_slot,
				  const SlotDelta *credit_delta,
				  int64 transfer_id, const GifqMoney *amount,
				  const TransferRequest *request)
{
	const GifqMoney *named = request != NULL ? &request->amount : amount;
	LedgerSide	sides[2] = {
		{debit, debit_slot, *debit_delta, transfer_id, request, named},
		{credit, credit_slot, *credit_delta, transfer_id, request, named},
	};

	apply_sides(sides, 2);
}

/*
 * ledger_after_change
 *		Raise or re-arm the account's low-balance event if it has a level.
 */
void
ledger_after_change(const LedgerAccount *account)
{
	static const Oid argtypes[] = {INT8OID};
	Datum		values[1];

	if (!account->has_low_balance)
		return;
	values[0] = Int64GetDatum(account->id);
	ledger_run(ledger_plan(&plan_low_balance,
						   "SELECT gifq.check_low_balance($1)", 1, argtypes),
			   values, NULL, SPI_OK_SELECT);
}


/* ----------------------------------------------------------------------
 * Transfers
 * ----------------------------------------------------------------------
 */

/* a transfer's row; on_conflict for a keyed one */
#define TRANSFER_INSERT(on_conflict) \
	"INSERT INTO gifq.transfers (program_id, kind, debit_account_id," \
	" credit_account_id, amount, currency, pending_id, timeout," \
	" idempotency_key, metadata)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, '{}'))" \
	on_conflict \
	" RETURNING id"

/*
 * ledger_insert_transfer
 *		Append a transfer row (NULL metadata is stored as {}).  Returns its
 *		id, or 0 when idempotency_key is already taken in the program (the
 *		row is then not written).
 */
int64
ledger_insert_transfer(int64 program_id, const char *kind, int64 debit,
					   int64 credit, int64 amount, const char *currency,
					   int64 pending_id, Interval *timeout, const char *key,
					   Jsonb *metadata)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID,
	TEXTOID, INT8OID, INTERVALOID, TEXTOID, JSONBOID};
	Datum		values[10];
	char		nulls[10] = "          ";
	SPIPlanPtr	plan;

	values[0] = Int64GetDatum(program_id);
	values[1] = CStringGetTextDatum(kind);
	values[2] = Int64GetDatum(debit);
	values[3] = Int64GetDatum(credit);
	values[4] = Int64GetDatum(amount);
	values[5] = PointerGetDatum(cstring_to_text_with_len(currency,
														 strnlen(currency, GIFQ_CURRENCY_LEN)));
	values[6] = Int64GetDatum(pending_id);
	values[7] = PointerGetDatum(timeout);
	values[8] = key ? CStringGetTextDatum(key) : (Datum) 0;
	values[9] = metadata ? JsonbPGetDatum(metadata) : (Datum) 0;
	if (metadata == NULL)
		nulls[9] = 'n';
	if (pending_id == 0)
		nulls[6] = 'n';
	if (timeout == NULL)
		nulls[7] = 'n';
	if (key == NULL)
		nulls[8] = 'n';

	/*
	 * ON CONFLICT makes every insert speculative (an extra index probe and
	 * WAL record), so a transfer without a key is inserted plainly.
	 */
	if (key != NULL)
		plan = ledger_plan(&plan_insert_keyed,
						   TRANSFER_INSERT(" ON CONFLICT (program_id, idempotency_key)"
										   " WHERE idempotency_key IS NOT NULL DO NOTHING"),
						   10, argtypes);
	else
		plan = ledger_plan(&plan_insert, TRANSFER_INSERT(""), 10, argtypes);
	ledger_run(plan, values, nulls, SPI_OK_INSERT_RETURNING);
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt64(ledger_datum(1));
}

/*
 * ledger_report_conflict
 *		Throw QG109 (idempotency_conflict): key was used for a different
 *		"what" (a transfer, a redemption); name the first differing field.
 */
void
ledger_report_conflict(const char *key, const char *what, const char *field,
					   const char *first, const char *now)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_IDEMPOTENCY_CONFLICT),
			 errmsg("idempotency key \"%s\" was used for a different %s",
					key, what),
			 errdetail("Field \"%s\" differs: %s the first time, %s now.",
					   field, first, now),
			 errhint("Repeat a request with exactly the same arguments, or use a new key.")));
}

/*
 * transfer_replay
 *		The id of the transfer that already holds req's key, if it matches
 *		req field by field; otherwise throw QG109.
 */
static int64
transfer_replay(const TransferRequest *req, int64 program_id)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	int64		id;
	int64		debit;
	int64		credit;
	GifqMoney  *amount;
	bool		pending;
	Datum		timeout;
	Jsonb	   *metadata;

	values[0] = Int64GetDatum(program_id);
	values[1] = CStringGetTextDatum(req->idempotency_key);
	ledger_run(ledger_plan(&plan_by_key,
						   "SELECT id, debit_account_id, credit_account_id, amount, currency,"
						   " kind OPERATOR(pg_catalog.=) 'pending', timeout, metadata"
						   " FROM gifq.transfers WHERE program_id = $1"
						   " AND idempotency_key = $2",
						   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "transfer with idempotency key \"%s\" vanished",
			 req->idempotency_key);

	id = DatumGetInt64(ledger_datum(1));
	debit = DatumGetInt64(ledger_datum(2));
	credit = DatumGetInt64(ledger_datum(3));
	amount = palloc0(sizeof(GifqMoney));
	amount->units = DatumGetInt64(ledger_datum(4));
	currency_from_text(DatumGetTextPP(ledger_datum(5)), amount->currency);
	pending = DatumGetBool(ledger_datum(6));
	timeout = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7,
							&isnull);
	metadata = DatumGetJsonbP(ledger_datum(8));

	if (debit != req->debit_account)
		ledger_report_conflict(req->idempotency_key, "transfer", "debit_account",
						psprintf("%lld", (long long) debit),
						psprintf("%lld", (long long) req->debit_account));
	if (credit != req->credit_account)
		ledger_report_conflict(req->idempotency_key, "transfer", "credit_account",
						psprintf("%lld", (long long) credit),
						psprintf("%lld", (long long) req->credit_account));
	if (money_cmp_internal(amount, &req->amount) != 0)
		ledger_report_conflict(req->idempotency_key, "transfer", "amount",
						money_to_cstring(amount),
						money_to_cstring(&req->amount));
	if (pending != req->pending)
		ledger_report_conflict(req->idempotency_key, "transfer", "pending",
						pending ? "true" : "false",
						req->pending ? "true" : "false");
	if (isnull != (req->timeout == NULL) ||
		(!isnull && DatumGetInt32(DirectFunctionCall2(interval_cmp, timeout,
													  PointerGetDatum(req->timeout))) != 0))
		ledger_report_conflict(req->idempotency_key, "transfer", "timeout",
						isnull ? "none" :
						DatumGetCString(DirectFunctionCall1(interval_out, timeout)),
						req->timeout == NULL ? "none" :
						DatumGetCString(DirectFunctionCall1(interval_out,
															PointerGetDatum(req->timeout))));
	if (compareJsonbContainers(&metadata->root, &req->metadata->root) != 0)
		ledger_report_conflict(req->idempotency_key, "transfer", "metadata",
						JsonbToCString(NULL, &metadata->root, VARSIZE(metadata)),
						JsonbToCString(NULL, &req->metadata->root,
									   VARSIZE(req->metadata)));
	return id;
}

/*
 * check_request
 *		Refuse a malformed request before anything is read or written.
 */
static void
check_request(const TransferRequest *req)
{
	Interval	zero = {0};

	if (req->amount.units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_AMOUNT),
				 errmsg("transfer amount %s is not positive",
						money_to_cstring(&req->amount)),
				 errhint("Transfer a positive amount; to move value back, swap the debit and credit accounts.")));
	if (req->debit_account == req->credit_account)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_SAME_ACCOUNT),
				 errmsg("transfer debits and credits the same account %lld",
						(long long) req->debit_account),
				 errhint("A transfer moves value between two different accounts.")));
	if (req->timeout != NULL && !req->pending)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_TIMEOUT),
				 errmsg("timeout %s given for a transfer that is not pending",
						DatumGetCString(DirectFunctionCall1(interval_out,
															PointerGetDatum(req->timeout)))),
				 errhint("Only a pending transfer (a hold) can time out.")));
	if (req->timeout != NULL &&
		DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  PointerGetDatum(req->timeout),
										  PointerGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_TIMEOUT),
				 errmsg("timeout %s is not positive",
						DatumGetCString(DirectFunctionCall1(interval_out,
															PointerGetDatum(req->timeout)))),
				 errhint("Give a positive interval, such as '15 minutes'.")));
	if (!JB_ROOT_IS_OBJECT(req->metadata) || JB_ROOT_IS_SCALAR(req->metadata))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("transfer metadata %s is not a JSON object",
						JsonbToCString(NULL, &req->metadata->root,
									   VARSIZE(req->metadata))),
				 errhint("Pass metadata as a JSON object, such as '{\"order\": 42}'.")));
	if (req->idempotency_key != NULL &&
		(strlen(req->idempotency_key) == 0 || strlen(req->idempotency_key) > 200))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid idempotency key \"%s\"", req->idempotency_key),
				 errhint("Use 1 to 200 characters, or NULL for no key.")));
}

/*
 * check_accounts
 *		Both accounts must be in the amount's currency and one program.
 */
static void
check_accounts(const TransferRequest *req, const LedgerAccount *debit,
			   const LedgerAccount *credit)
{
	const LedgerAccount *sides[2] = {debit, credit};

	for (int i = 0; i < 2; i++)
	{
		if (memcmp(sides[i]->currency, req->amount.currency,
				   GIFQ_CURRENCY_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_ACCOUNT_CURRENCY),
					 errmsg("cannot transfer %s %s account %lld, which holds %.*s",
							money_to_cstring(&req->amount),
							i == 0 ? "from" : "to", (long long) sides[i]->id,
							(int) strnlen(sides[i]->currency, GIFQ_CURRENCY_LEN),
							sides[i]->currency),
					 errhint("A transfer moves one currency between accounts in that currency.")));
	}
	if (debit->program_id != credit->program_id)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_CROSS_PROGRAM),
				 errmsg("accounts %lld and %lld belong to different programs",
						(long long) debit->id, (long long) credit->id),
				 errhint("Value moves only between accounts of one program.")));
}

/*
 * set_sides
 *		The two sides of a new transfer: this backend's slot of each
 *		account, posted or pending.
 */
static void
set_sides(const TransferRequest *req, int64 id, const LedgerAccount *debit,
		  const LedgerAccount *credit, LedgerSide *sides)
{
	memset(sides, 0, 2 * sizeof(LedgerSide));
	sides[0].account = debit;
	sides[1].account = credit;
	for (int i = 0; i < 2; i++)
	{
		sides[i].slot = MyProcPid % sides[i].account->slots;
		sides[i].transfer_id = id;
		sides[i].request = req;
		sides[i].amount = &req->amount;
	}
	if (req->pending)
	{
		sides[0].delta.debits_pending = req->amount.units;
		sides[1].delta.credits_pending = req->amount.units;
	}
	else
	{
		sides[0].delta.debits_posted = req->amount.units;
		sides[1].delta.credits_posted = req->amount.units;
	}
}

/* a hold's transfer and gifq.holds row; on_conflict for a keyed one */
#define HOLD_INSERT(on_conflict) \
	"WITH t AS (" \
	" INSERT INTO gifq.transfers (program_id, kind, debit_account_id," \
	"  credit_account_id, amount, currency, timeout, idempotency_key," \
	"  metadata)" \
	" VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, COALESCE($8, '{}'))" \
	on_conflict \
	" RETURNING id)" \
	" INSERT INTO gifq.holds (transfer_id, debit_slot, credit_slot," \
	"  expires_at)" \
	" SELECT id, $9, $10, pg_catalog.now() + $6 FROM t" \
	" RETURNING transfer_id"

/*
 * insert_hold
 *		Write a new hold: its pending transfer and, in the same statement,
 *		its gifq.holds row (the slots it reserves on this backend, and its
 *		expiry).  Returns the id, or 0 when the idempotency key is taken
 *		(nothing is then written).
 */
static int64
insert_hold(const TransferRequest *req, const LedgerAccount *debit,
			const LedgerAccount *credit)
{
	static const Oid argtypes[] = {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID,
	INTERVALOID, TEXTOID, JSONBOID, INT4OID, INT4OID};
	Datum		values[10];
	char		nulls[10] = "          ";
	SPIPlanPtr	plan;

	values[0] = Int64GetDatum(debit->program_id);
	values[1] = Int64GetDatum(debit->id);
	values[2] = Int64GetDatum(credit->id);
	values[3] = Int64GetDatum(req->amount.units);
	values[4] = PointerGetDatum(cstring_to_text_with_len(req->amount.currency,
														 strnlen(req->amount.currency, GIFQ_CURRENCY_LEN)));
	values[5] = PointerGetDatum(req->timeout);
	values[6] = req->idempotency_key ? CStringGetTextDatum(req->idempotency_key) : (Datum) 0;
	values[7] = JsonbPGetDatum(req->metadata);
	values[8] = Int32GetDatum(MyProcPid % debit->slots);
	values[9] = Int32GetDatum(MyProcPid % credit->slots);
	if (req->timeout == NULL)
		nulls[5] = 'n';
	if (req->idempotency_key == NULL)
		nulls[6] = 'n';

	if (req->idempotency_key != NULL)
		plan = ledger_plan(&plan_hold_keyed,
						   HOLD_INSERT(" ON CONFLICT (program_id, idempotency_key)"
									   " WHERE idempotency_key IS NOT NULL DO NOTHING"),
						   10, argtypes);
	else
		plan = ledger_plan(&plan_hold, HOLD_INSERT(""), 10, argtypes);
	ledger_run(plan,
			   values, nulls, SPI_OK_INSERT_RETURNING);
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt64(ledger_datum(1));
}

/*
 * new_transfer
 *		Check a request against its (loaded) accounts and write its row (and
 *		a hold's gifq.holds row).  Returns the new id, or 0 when its
 *		idempotency key is taken.
 */
static int64
new_transfer(const TransferRequest *req, LedgerAccount *debit,
			 LedgerAccount *credit)
{
	check_accounts(req, debit, credit);
	if (req->pending)
		return insert_hold(req, debit, credit);
	return ledger_insert_transfer(debit->program_id, "posted",
								  debit->id, credit->id, req->amount.units,
								  req->amount.currency, 0, NULL,
								  req->idempotency_key, req->metadata);
}

/*
 * ledger_transfer
 *		Create a transfer, or return the one that holds its idempotency key.
 *		Must be called inside SPI.
 */
int64
ledger_transfer(const TransferRequest *req)
{
	int64		ids[1];

	ledger_transfer_set(req, 1, NULL, ids);
	return ids[0];
}

/*
 * ledger_transfer_set
 *		Create n transfers together, all or none (the caller's transaction
 *		rolls back on error): every row written first, then every balance
 *		change applied in the global (account, slot) order, so transfers
 *		that share accounts, as a redemption's two holds may, never lock
 *		out of order.  A request whose key is taken is replayed instead
 *		(ids[i] is the first transfer's id) and moves nothing.
 *
 *		loaded, if not NULL, holds the accounts of every request (debit,
 *		credit, debit, ...) as the caller read them from gifq.accounts in
 *		this transaction; otherwise they are read here.
 */
void
ledger_transfer_set(const TransferRequest *reqs, int n,
					const LedgerAccount *loaded, int64 *ids)
{
	LedgerAccount *accounts = palloc(2 * n * sizeof(LedgerAccount));
	LedgerSide *sides = palloc(2 * n * sizeof(LedgerSide));
	int64	   *account_ids = palloc(2 * n * sizeof(int64));
	int			nsides = 0;

	for (int i = 0; i < n; i++)
	{
		check_request(&reqs[i]);
		account_ids[2 * i] = reqs[i].debit_account;
		account_ids[2 * i + 1] = reqs[i].credit_account;
	}
	if (loaded == NULL)
		ledger_load_accounts(account_ids, 2 * n, accounts);
	else
	{
		for (int i = 0; i < 2 * n; i++)
			if (loaded[i].id != account_ids[i])
				elog(ERROR, "account %lld given for account %lld",
					 (long long) loaded[i].id, (long long) account_ids[i]);
		memcpy(accounts, loaded, 2 * n * sizeof(LedgerAccount));
	}
	for (int i = 0; i < n; i++)
	{
		ids[i] = new_transfer(&reqs[i], &accounts[2 * i], &accounts[2 * i + 1]);
		if (ids[i] == 0)
		{
			ids[i] = transfer_replay(&reqs[i], accounts[2 * i].program_id);
			continue;
		}
		set_sides(&reqs[i], ids[i], &accounts[2 * i], &accounts[2 * i + 1],
				  &sides[nsides]);
		nsides += 2;
	}
	apply_sides(sides, nsides);
	for (int i = 0; i < nsides; i++)
		ledger_after_change(sides[i].account);
}


/* ----------------------------------------------------------------------
 * SQL-callable functions
 * ----------------------------------------------------------------------
 */

static Jsonb *
empty_object(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
}

PG_FUNCTION_INFO_V1(gifq_transfer);

/*
 * gifq_transfer
 *		gifq_transfer(debit_account, credit_account, amount,
 *		idempotency_key, pending, timeout, metadata) returns the transfer's
 *		id.  Not strict: only the first three arguments are required.
 */
Datum
gifq_transfer(PG_FUNCTION_ARGS)
{
	TransferRequest req;
	int64		id;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("debit_account, credit_account and amount must not be NULL"),
				 errhint("Give both account ids and an amount such as '10.00 USD'.")));
	memset(&req, 0, sizeof(req));
	req.debit_account = PG_GETARG_INT64(0);
	req.credit_account = PG_GETARG_INT64(1);
	memcpy(&req.amount, PG_GETARG_GIFQ_MONEY_P(2), sizeof(GifqMoney));
	req.idempotency_key = PG_ARGISNULL(3) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(3));
	req.pending = PG_ARGISNULL(4) ? false : PG_GETARG_BOOL(4);
	req.timeout = PG_ARGISNULL(5) ? NULL : PG_GETARG_INTERVAL_P(5);
	req.metadata = PG_ARGISNULL(6) ? empty_object() : PG_GETARG_JSONB_P(6);

	statistics_keep_current(false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* a scoped caller is told the same of another program's accounts */
	if (scope_caller_is_scoped())
	{
		int64		ids[2] = {req.debit_account, req.credit_account};
		LedgerAccount accounts[2];

		ledger_load_accounts(ids, 2, accounts);
		for (int i = 0; i < 2; i++)
			if (!scope_program_visible(accounts[i].program_id))
				ereport(ERROR,
						(errcode(ERRCODE_GIFQ_UNKNOWN_ACCOUNT),
						 errmsg("unknown account %lld", (long long) ids[i]),
						 errhint("Find account ids with gifq_account().")));
	}
	id = ledger_transfer(&req);
	SPI_finish();
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(gifq_row_is_mine);

/*
 * gifq_row_is_mine
 *		gifq.row_is_mine(xmin xid, xmax xid): whether the current
 *		transaction (or one of its live subtransactions) wrote or locked a
 *		row with these system columns.  gifq.rebalance uses it to know
 *		whether it already holds a slot.  A multixact xmax is compared as a
 *		plain id, which can only err towards "mine", the safe side there.
 */
Datum
gifq_row_is_mine(PG_FUNCTION_ARGS)
{
	TransactionId xmin = DatumGetTransactionId(PG_GETARG_DATUM(0));
	TransactionId xmax = DatumGetTransactionId(PG_GETARG_DATUM(1));

	PG_RETURN_BOOL(TransactionIdIsCurrentTransactionId(xmin) ||
				   (TransactionIdIsValid(xmax) &&
					TransactionIdIsCurrentTransactionId(xmax)));
}
