/*-------------------------------------------------------------------------
 * holds.c
 *	  Two-phase transfers: gifq_post, gifq_void and gifq_expire_holds.
 *
 * A pending transfer (a hold) reserves value: pending debits on one
 * account, pending credits on the other.  It ends exactly once, by a new
 * transfer that names it: a post (in full or in part; the rest is
 * released), a void, or an expiry after its timeout.  The hold's row in
 * gifq.holds is locked first, so a post racing a void finds the hold
 * already resolved and is refused.  The unique index on
 * gifq.transfers(pending_id) backs this up: no hold can be resolved twice.
 *
 * A hold past its timeout can no longer be posted or voided, and keeps
 * its reservation until gifq_expire_holds() releases it.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/holds.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "arrays.h"
#include "gifq.h"
#include "ledger.h"
#include "money.h"
#include "scope.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* what ends a hold */
typedef enum HoldEnd
{
	HOLD_POST,
	HOLD_VOID,
	HOLD_EXPIRE
} HoldEnd;

/* A hold as gifq.holds and its transfer describe it. */
typedef struct Hold
{
	int64		id;
	char	   *status;
	bool		expired;
	int			debit_slot;
	int			credit_slot;
	int64		debit_account;
	int64		credit_account;
	GifqMoney	amount;
} Hold;

static SPIPlanPtr plan_lock_hold;
static SPIPlanPtr plan_end_hold;
static SPIPlanPtr plan_due_holds;

/*
 * lock_hold
 *		Lock the hold's row and read it; throw QG110 if id is not a hold
 *		(or, with check_scope, is one of a program the caller may not act on:
 *		the API's post and void check, the internal ends of holds do not).
 */
static void
lock_hold(int64 id, Hold *hold, bool check_scope)
{
	static const Oid argtypes[] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	bool		isnull;
	Datum		expired;

	ledger_run(ledger_plan(&plan_lock_hold,
									  "SELECT h.status,"
									  " h.expires_at OPERATOR(pg_catalog.<) pg_catalog.clock_timestamp(),"
									  " h.debit_slot, h.credit_slot, t.debit_account_id,"
									  " t.credit_account_id, t.amount, t.currency, t.program_id"
									  " FROM gifq.holds h JOIN gifq.transfers t"
									  " ON t.id OPERATOR(pg_catalog.=) h.transfer_id"
									  " WHERE h.transfer_id OPERATOR(pg_catalog.=) $1"
									  " FOR UPDATE OF h",
									  1, argtypes),
			   values, NULL, SPI_OK_SELECT);
	/* a scoped caller is told the same of another program's holds */
	if (SPI_processed != 1 ||
		(check_scope && !scope_program_visible(DatumGetInt64(ledger_datum(9)))))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_UNKNOWN_PENDING),
				 errmsg("transfer %lld is not a pending transfer", (long long) id),
				 errhint("Only a transfer made with pending => true can be posted or voided.")));
	hold->id = id;
	hold->status = TextDatumGetCString(ledger_datum(1));
	expired = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
							&isnull);
	hold->expired = !isnull && DatumGetBool(expired);
	hold->debit_slot = DatumGetInt32(ledger_datum(3));
	hold->credit_slot = DatumGetInt32(ledger_datum(4));
	hold->debit_account = DatumGetInt64(ledger_datum(5));
	hold->credit_account = DatumGetInt64(ledger_datum(6));
	memset(&hold->amount, 0, sizeof(GifqMoney));
	hold->amount.units = DatumGetInt64(ledger_datum(7));
	currency_from_text(DatumGetTextPP(ledger_datum(8)), hold->amount.currency);
}

/*
 * check_hold_open
 *		Refuse to end a hold that has ended (QG111, QG112, QG113) or whose
 *		timeout has passed (QG113), unless the expiry itself ends it.
 */
static void
check_hold_open(const Hold *hold, HoldEnd end)
{
	if (strcmp(hold->status, "posted") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_PENDING_POSTED),
				 errmsg("pending transfer %lld has already been posted",
						(long long) hold->id),
				 errhint("A hold is posted or voided once.")));
	if (strcmp(hold->status, "voided") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_PENDING_VOIDED),
				 errmsg("pending transfer %lld has already been voided",
						(long long) hold->id),
				 errhint("A hold is posted or voided once.")));
	if (strcmp(hold->status, "expired") == 0 ||
		(hold->expired && end != HOLD_EXPIRE))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_PENDING_EXPIRED),
				 errmsg("pending transfer %lld has expired", (long long) hold->id),
				 errhint("Its timeout has passed; its value is released by gifq_expire_holds().")));
}

/*
 * posted_amount
 *		The minor units a post moves: the whole hold when amount is NULL,
 *		else amount, which must be positive, in the hold's currency and no
 *		more than the hold (QG104, QG106, QG114).
 */
static int64
posted_amount(const Hold *hold, const GifqMoney *amount)
{
	if (amount == NULL)
		return hold->amount.units;
	if (memcmp(amount->currency, hold->amount.currency, GIFQ_CURRENCY_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_ACCOUNT_CURRENCY),
				 errmsg("cannot post %s against pending transfer %lld of %s",
						money_to_cstring(amount), (long long) hold->id,
						money_to_cstring(&hold->amount)),
				 errhint("Post an amount in the hold's currency.")));
	if (amount->units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_AMOUNT),
				 errmsg("posted amount %s is not positive", money_to_cstring(amount)),
				 errhint("To release the whole hold, use gifq_void().")));
	if (amount->units > hold->amount.units)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_EXCEEDS_PENDING),
				 errmsg("cannot post %s against pending transfer %lld of %s",
						money_to_cstring(amount), (long long) hold->id,
						money_to_cstring(&hold->amount)),
				 errhint("Post at most the held amount; the rest of a partial post is released.")));
	return amount->units;
}

/*
 * check_hold_unowned
 *		Throw QG740 (hold_owned) if the hold belongs to an order or a
 *		reward.  Those holds end with their order (delivered, failed,
 *		canceled) or reward (claimed, expired); a post or void by hand
 *		would leave the order or reward pointing at an ended hold, which
 *		gifq_ledger_verify() reports.  The transfer's metadata names the
 *		owner ({"order_id": n} or {"reward_id": n}); the owner's row must
 *		name the hold back, so metadata a caller wrote on a hold of its own
 *		cannot make it look owned.  Must be called inside SPI.
 */
static void
check_hold_unowned(int64 id)
{
	static SPIPlanPtr plan;
	static const Oid argtypes[] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};

	ledger_run(ledger_plan(&plan,
						   "SELECT 'order', o.id FROM gifq.transfers t"
						   " JOIN gifq.orders o ON o.id OPERATOR(pg_catalog.=) ("
						   "  CASE WHEN (t.metadata OPERATOR(pg_catalog.->>) 'order_id')"
						   "   OPERATOR(pg_catalog.~) '^[0-9]{1,18}$'"
						   "  THEN (t.metadata OPERATOR(pg_catalog.->>) 'order_id')::pg_catalog.int8 END)"
						   " WHERE t.id OPERATOR(pg_catalog.=) $1"
						   " AND $1 OPERATOR(pg_catalog.=) ANY (ARRAY[o.points_hold, o.funding_hold])"
						   " UNION ALL"
						   " SELECT 'reward', r.id FROM gifq.transfers t"
						   " JOIN gifq.rewards r ON r.id OPERATOR(pg_catalog.=) ("
						   "  CASE WHEN (t.metadata OPERATOR(pg_catalog.->>) 'reward_id')"
						   "   OPERATOR(pg_catalog.~) '^[0-9]{1,18}$'"
						   "  THEN (t.metadata OPERATOR(pg_catalog.->>) 'reward_id')::pg_catalog.int8 END)"
						   " WHERE t.id OPERATOR(pg_catalog.=) $1"
						   " AND r.hold_id OPERATOR(pg_catalog.=) $1"
						   " LIMIT 1",
						   1, argtypes),
			   values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return;
	if (strcmp(ledger_text(1), "order") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_HOLD_OWNED),
				 errmsg("pending transfer %lld belongs to order %lld",
						(long long) id,
						(long long) DatumGetInt64(ledger_datum(2))),
				 errhint("An order's holds end with the order; cancel it with gifq_cancel_order().")));
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_HOLD_OWNED),
			 errmsg("pending transfer %lld belongs to reward %lld",
					(long long) id,
					(long long) DatumGetInt64(ledger_datum(2))),
			 errhint("A reward's hold ends when the reward is claimed or expires.")));
}

/*
 * hold_end
 *		End a hold by a post (of amount, NULL for all), a void or an
 *		expiry; returns the new transfer's id.  Must be called inside SPI.
 *		named: the caller named the hold (gifq_post, gifq_void), so a hold of
 *		a program it may not act on is unknown to it, and one that belongs
 *		to an order or a reward is refused (QG740).
 */
static int64
hold_end(int64 pending_id, HoldEnd end, const GifqMoney *amount,
		 bool named)
{
	static const char *kinds[] = {"post", "void", "expire"};
	static const char *statuses[] = {"posted", "voided", "expired"};
	static const Oid argtypes[] = {INT8OID, TEXTOID, INT8OID};
	Hold		hold;
	LedgerAccount debit;
	LedgerAccount credit;
	SlotDelta	debit_delta = {0};
	SlotDelta	credit_delta = {0};
	int64		posted = 0;
	int64		id;
	Datum		values[3];

	lock_hold(pending_id, &hold, named);
	if (named)
		check_hold_unowned(pending_id);
	check_hold_open(&hold, end);
	if (end == HOLD_POST)
		posted = posted_amount(&hold, amount);

	ledger_load_account(hold.debit_account, &debit);
	ledger_load_account(hold.credit_account, &credit);
	id = ledger_insert_transfer(debit.program_id, kinds[end], debit.id,
								credit.id, posted, hold.amount.currency,
								pending_id, NULL, NULL, NULL);

	debit_delta.debits_pending = -hold.amount.units;
	debit_delta.debits_posted = posted;
	credit_delta.credits_pending = -hold.amount.units;
	credit_delta.credits_posted = posted;

	/* posting or releasing what is held takes no room: never refused */
	ledger_apply_both(&debit, hold.debit_slot, &debit_delta,
					  &credit, hold.credit_slot, &credit_delta, id,
					  &hold.amount, NULL);

	values[0] = Int64GetDatum(pending_id);
	values[1] = CStringGetTextDatum(statuses[end]);
	values[2] = Int64GetDatum(id);
	ledger_run(ledger_plan(&plan_end_hold,
						   "UPDATE gifq.holds SET status = $2, resolved_by = $3"
						   " WHERE transfer_id OPERATOR(pg_catalog.=) $1",
						   3, argtypes),
			   values, NULL, SPI_OK_UPDATE);

	ledger_after_change(&debit);
	ledger_after_change(&credit);
	return id;
}

PG_FUNCTION_INFO_V1(gifq_post);

/*
 * gifq_post
 *		gifq_post(pending_id, amount DEFAULT NULL): post a hold in full or
 *		in part; returns the posting transfer's id.
 */
Datum
gifq_post(PG_FUNCTION_ARGS)
{
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("pending_id must not be NULL")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	id = hold_end(PG_GETARG_INT64(0), HOLD_POST,
				  PG_ARGISNULL(1) ? NULL : PG_GETARG_GIFQ_MONEY_P(1), true);
	SPI_finish();
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(gifq_void);

/*
 * gifq_void
 *		gifq_void(pending_id): release a hold; returns the voiding
 *		transfer's id.
 */
Datum
gifq_void(PG_FUNCTION_ARGS)
{
	int64		id;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	id = hold_end(PG_GETARG_INT64(0), HOLD_VOID, NULL, true);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/*
 * result_ids
 *		The first column of the last query's rows, hold ids, in order.
 */
static int64 *
result_ids(int *n)
{
	int64	   *ids = palloc((SPI_processed + 1) * sizeof(int64));

	*n = (int) SPI_processed;
	for (int i = 0; i < *n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
											 SPI_tuptable->tupdesc, 1, &isnull));
	}
	return ids;
}

/*
 * lock_slots_of
 *		Lock the balance slots that the given holds reserved, in (account,
 *		slot) order: the order every transfer takes them in, so expiring a
 *		batch of holds never deadlocks with concurrent transfers.
 */
static void
lock_slots_of(int64 *holds, int nholds)
{
	static SPIPlanPtr plan;
	static const Oid argtypes[] = {INT8ARRAYOID};
	Datum		values[1];

	values[0] = int8_array(holds, nholds);
	ledger_run(ledger_plan_generic(&plan,
						   "SELECT 1 FROM gifq.account_slots s JOIN ("
						   " SELECT t.debit_account_id AS account_id, h.debit_slot AS slot"
						   "  FROM gifq.holds h JOIN gifq.transfers t ON t.id = h.transfer_id"
						   "  WHERE h.transfer_id = ANY ($1)"
						   " UNION"
						   " SELECT t.credit_account_id, h.credit_slot"
						   "  FROM gifq.holds h JOIN gifq.transfers t ON t.id = h.transfer_id"
						   "  WHERE h.transfer_id = ANY ($1)) x"
						   " ON s.account_id = x.account_id AND s.slot = x.slot"
						   " ORDER BY s.account_id, s.slot FOR UPDATE OF s",
						   1, argtypes),
			   values, NULL, SPI_OK_SELECT);
}

/*
 * lock_open_holds
 *		Lock the holds named in the array that are still pending, in id
 *		order, then every balance slot they reserved in the global order,
 *		before any is ended: ending them one by one would lock the second
 *		hold's slots after the first's, out of the order concurrent
 *		transfers take them in, and could deadlock.  Returns their ids.
 */
static int64 *
lock_open_holds(Datum holds, int *nopen)
{
	static SPIPlanPtr plan;
	static const Oid argtypes[] = {INT8ARRAYOID};
	int64	   *open;

	ledger_run(ledger_plan_generic(&plan,
						   "SELECT transfer_id FROM gifq.holds"
						   " WHERE transfer_id OPERATOR(pg_catalog.=) ANY ($1)"
						   " AND status = 'pending' ORDER BY transfer_id FOR UPDATE",
						   1, argtypes),
			   &holds, NULL, SPI_OK_SELECT);
	open = result_ids(nopen);
	if (*nopen > 0)
		lock_slots_of(open, *nopen);
	return open;
}

PG_FUNCTION_INFO_V1(gifq_end_holds);

/*
 * gifq_end_holds
 *		gifq.end_holds(holds bigint[], how text): post (in full) or void
 *		several holds together, as an order's two holds are on delivery or
 *		failure; returns how many were still pending and are now ended.
 */
Datum
gifq_end_holds(PG_FUNCTION_ARGS)
{
	char	   *how = text_to_cstring(PG_GETARG_TEXT_PP(1));
	HoldEnd		end;
	int64	   *open;
	int			nopen;

	if (strcmp(how, "post") == 0)
		end = HOLD_POST;
	else if (strcmp(how, "void") == 0)
		end = HOLD_VOID;
	else
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid way to end holds \"%s\"", how),
				 errhint("Use 'post' or 'void'.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	open = lock_open_holds(PG_GETARG_DATUM(0), &nopen);
	for (int i = 0; i < nopen; i++)
	{
		CHECK_FOR_INTERRUPTS();
		hold_end(open[i], end, NULL, false);
	}
	SPI_finish();
	PG_RETURN_INT32(nopen);
}

PG_FUNCTION_INFO_V1(gifq_expire_holds);

/*
 * gifq_expire_holds
 *		Release every hold past its timeout that no other session is
 *		ending right now; returns how many.  For the worker and pg_cron.
 *
 * All of them are taken in one statement and their balance slots locked
 * together, in the global order, before any is ended.  Taking them in
 * batches would lock a later batch's slots after the earlier one's, out
 * of that order, and deadlock with a transfer waiting on the first
 * batch; with short timeouts a loop also found new holds falling due
 * while it waited, and kept going.
 */
Datum
gifq_expire_holds(PG_FUNCTION_ARGS)
{
	int64	   *due;
	int			ndue;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ledger_run(ledger_plan(&plan_due_holds,
						   "SELECT transfer_id FROM gifq.holds"
						   " WHERE status = 'pending' AND expires_at IS NOT NULL"
						   " AND expires_at OPERATOR(pg_catalog.<) pg_catalog.clock_timestamp()"
						   " ORDER BY expires_at FOR UPDATE SKIP LOCKED",
						   0, NULL),
			   NULL, NULL, SPI_OK_SELECT);
	due = result_ids(&ndue);
	if (ndue > 0)
		lock_slots_of(due, ndue);
	for (int i = 0; i < ndue; i++)
	{
		CHECK_FOR_INTERRUPTS();
		hold_end(due[i], HOLD_EXPIRE, NULL, false);
	}
	SPI_finish();
	PG_RETURN_INT32(ndue);
}

PG_FUNCTION_INFO_V1(gifq_void_holds);

/*
 * gifq_void_holds
 *		gifq.void_holds(holds bigint[]) returns integer: void every hold
 *		named that is still pending, together (gifq_expire_rewards' reward
 *		holds); returns how many.  For holds without a timeout: unlike
 *		gifq_void it does not refuse one past its timeout.
 *
 * The holds and their slots are locked as gifq_end_holds locks them.  Then
 * one statement writes a void transfer per hold and marks the holds
 * voided, and each slot is changed once by the sum it releases (its
 * history entry names the void when it is the slot's only one): ending
 * them one by one changes a shared slot once per hold, and each change
 * walks the versions the transaction made before.  Releasing what is held
 * takes no room, so nothing is refused.  The slots and amounts are read
 * back through the voids' holds by their keys: joining the voids to the
 * first CTE ran as a nested loop over two CTE scans (the generic plan
 * expects a short array), quadratic in the holds.  STRICT.
 */
Datum
gifq_void_holds(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_void;
	static const Oid argtypes[] = {INT8ARRAYOID};
	Datum		values[1];
	int64	   *open;
	int			nopen;
	int			nslots;
	int64	   *account_ids;
	int		   *slots;
	SlotDelta  *deltas;
	int64	   *transfer_ids;
	LedgerAccount *accounts;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	open = lock_open_holds(PG_GETARG_DATUM(0), &nopen);
	if (nopen == 0)
	{
		SPI_finish();
		PG_RETURN_INT32(0);
	}
	values[0] = int8_array(open, nopen);

	/*
	 * The voids, the holds' new status, and what each slot releases: its
	 * pending debits (the hold's debit side) or credits (its credit side).
	 */
	ledger_run(ledger_plan_generic(&plan_void,
								   "WITH h AS ("
								   " SELECT h.transfer_id, t.program_id, t.debit_account_id,"
								   "  t.credit_account_id, t.currency"
								   " FROM gifq.holds h JOIN gifq.transfers t ON t.id OPERATOR(pg_catalog.=) h.transfer_id"
								   " WHERE h.transfer_id OPERATOR(pg_catalog.=) ANY ($1)"
								   " AND h.status OPERATOR(pg_catalog.=) 'pending'),"
								   " v AS (INSERT INTO gifq.transfers (program_id, kind, debit_account_id,"
								   "  credit_account_id, amount, currency, pending_id)"
								   " SELECT program_id, 'void', debit_account_id, credit_account_id, 0,"
								   "  currency, transfer_id FROM h ORDER BY transfer_id"
								   " RETURNING id, pending_id),"
								   " u AS (UPDATE gifq.holds x SET status = 'voided', resolved_by = v.id"
								   "  FROM v WHERE x.transfer_id OPERATOR(pg_catalog.=) v.pending_id),"
								   " e AS (SELECT v.id, t.debit_account_id, t.credit_account_id,"
								   "  x.debit_slot, x.credit_slot, t.amount"
								   "  FROM v JOIN gifq.holds x ON x.transfer_id OPERATOR(pg_catalog.=) v.pending_id"
								   "  JOIN gifq.transfers t ON t.id OPERATOR(pg_catalog.=) v.pending_id)"
								   " SELECT s.account_id, s.slot, sum(s.debits)::bigint, sum(s.credits)::bigint,"
								   "  CASE WHEN count(*) OPERATOR(pg_catalog.=) 1 THEN max(s.id) ELSE 0 END"
								   " FROM (SELECT e.debit_account_id AS account_id, e.debit_slot AS slot,"
								   "   e.amount AS debits, 0::bigint AS credits, e.id FROM e"
								   "  UNION ALL"
								   "  SELECT e.credit_account_id, e.credit_slot, 0::bigint, e.amount, e.id FROM e) s"
								   " GROUP BY s.account_id, s.slot ORDER BY s.account_id, s.slot",
								   1, argtypes),
			   values, NULL, SPI_OK_SELECT);
	nslots = (int) SPI_processed;
	account_ids = palloc(sizeof(int64) * nslots);
	slots = palloc(sizeof(int) * nslots);
	deltas = palloc0(sizeof(SlotDelta) * nslots);
	transfer_ids = palloc(sizeof(int64) * nslots);
	accounts = palloc(sizeof(LedgerAccount) * nslots);
	for (int i = 0; i < nslots; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		account_ids[i] = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		slots[i] = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
		deltas[i].debits_pending = -DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		deltas[i].credits_pending = -DatumGetInt64(SPI_getbinval(tuple, desc, 4, &isnull));
		transfer_ids[i] = DatumGetInt64(SPI_getbinval(tuple, desc, 5, &isnull));
	}
	ledger_load_accounts(account_ids, nslots, accounts);
	for (int i = 0; i < nslots; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (accounts[i].id != account_ids[i])
			elog(ERROR, "account %lld loaded for account %lld",
				 (long long) accounts[i].id, (long long) account_ids[i]);
		if (ledger_apply(&accounts[i], slots[i], &deltas[i], transfer_ids[i]) != 1)
			elog(ERROR, "balance slot %d of account %lld refused a release",
				 slots[i], (long long) account_ids[i]);
	}
	for (int i = 0; i < nslots; i++)
		if (i == 0 || account_ids[i] != account_ids[i - 1])
			ledger_after_change(&accounts[i]);
	SPI_finish();
	PG_RETURN_INT32(nopen);
}
