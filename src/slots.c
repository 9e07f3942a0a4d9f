/*-------------------------------------------------------------------------
 * slots.c
 *	  Change one balance slot and append its history entry.
 *
 * Every transfer, hold, post and void changes two balance slots, so this
 * is the ledger's innermost step.  Written as an UPDATE ... RETURNING that
 * feeds an INSERT and run through SPI, it spent most of its time starting
 * and ending the executor for a single row.  Here the slot is found through
 * its primary key, checked and rewritten with the table access method, and
 * its entry inserted with ExecSimpleRelationInsert, the way logical
 * replication applies a row: same tuples, same WAL, same locks.
 *
 * Concurrency follows UPDATE's rules.  The version of the slot that this
 * command's snapshot sees is checked and replaced.  If another transaction
 * replaced it first, we wait for that one to end; then, under read
 * committed, the newest version is locked, checked again and replaced (what
 * UPDATE's EvalPlanQual does), and under repeatable read or serializable
 * the transaction fails to serialise (40001).  A newest version that fails
 * the check stays locked, as a re-checked UPDATE leaves it; callers that
 * must not keep it run in a subtransaction (ledger.c, apply_or_release).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/slots.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "counters.h"
#include "gifq.h"
#include "ledger.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

LedgerThresholdFilter ledger_threshold_filter = NULL;
void	   *ledger_threshold_filter_arg = NULL;

/* gifq.account_slots, in column order */
enum
{
	SLOT_ACCOUNT_ID,
	SLOT_SLOT,
	SLOT_DEBITS_POSTED,
	SLOT_CREDITS_POSTED,
	SLOT_DEBITS_PENDING,
	SLOT_CREDITS_PENDING,
	SLOT_VERSION,
	SLOT_UPDATED_AT,
	SLOT_NATTS
};

/* gifq.entries, in column order */
enum
{
	ENTRY_ACCOUNT_ID,
	ENTRY_SLOT,
	ENTRY_VERSION,
	ENTRY_AT,
	ENTRY_TRANSFER_ID,
	ENTRY_DEBITS_POSTED,
	ENTRY_CREDITS_POSTED,
	ENTRY_DEBITS_PENDING,
	ENTRY_CREDITS_PENDING,
	ENTRY_NATTS
};

typedef struct ColumnSpec
{
	const char *name;
	Oid			type;
} ColumnSpec;

static const ColumnSpec slot_columns[SLOT_NATTS] = {
	{"account_id", INT8OID}, {"slot", INT4OID},
	{"debits_posted", INT8OID}, {"credits_posted", INT8OID},
	{"debits_pending", INT8OID}, {"credits_pending", INT8OID},
	{"version", INT8OID}, {"updated_at", TIMESTAMPTZOID},
};

static const ColumnSpec entry_columns[ENTRY_NATTS] = {
	{"account_id", INT8OID}, {"slot", INT4OID}, {"version", INT8OID},
	{"at", TIMESTAMPTZOID}, {"transfer_id", INT8OID},
	{"debits_posted", INT8OID}, {"credits_posted", INT8OID},
	{"debits_pending", INT8OID}, {"credits_pending", INT8OID},
};

/* The four balances of a slot, in column order from SLOT_DEBITS_POSTED. */
typedef struct SlotBalances
{
	int64		v[4];
} SlotBalances;

/*
 * The relations one change writes, opened for this backend.  The column
 * layout is checked once per relation OID: the code below addresses
 * columns by position.
 */
typedef struct SlotTables
{
	Relation	slots;
	Relation	slots_pkey;
	Relation	entries;
} SlotTables;

/*
 * check_layout
 *		Refuse to write a table whose columns are not the ones this code was
 *		written for (a half-applied upgrade, a hand-made change).
 */
static void
check_layout(Relation rel, const ColumnSpec *spec, int natts, Oid *checked)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (*checked == RelationGetRelid(rel))
		return;
	if (desc->natts != natts)
		elog(ERROR, "table gifq.%s has %d columns, expected %d",
			 RelationGetRelationName(rel), desc->natts, natts);
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != spec[i].type ||
			strcmp(NameStr(att->attname), spec[i].name) != 0)
			elog(ERROR, "column %d of table gifq.%s is not %s",
				 i + 1, RelationGetRelationName(rel), spec[i].name);
	}
	*checked = RelationGetRelid(rel);
}

static Relation
open_gifq_table(const char *name, Oid nsp)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "table gifq.%s does not exist", name);
	return table_open(relid, RowExclusiveLock);
}

static void
open_tables(SlotTables *t)
{
	static Oid	checked_slots = InvalidOid;
	static Oid	checked_entries = InvalidOid;
	Oid			nsp = get_namespace_oid("gifq", false);
	Oid			pkey;

	t->slots = open_gifq_table("account_slots", nsp);
	t->entries = open_gifq_table("entries", nsp);
	check_layout(t->slots, slot_columns, SLOT_NATTS, &checked_slots);
	check_layout(t->entries, entry_columns, ENTRY_NATTS, &checked_entries);
	pkey = RelationGetPrimaryKeyIndex(t->slots);
	if (!OidIsValid(pkey))
		elog(ERROR, "table gifq.account_slots has no primary key");
	t->slots_pkey = index_open(pkey, RowExclusiveLock);
}

static void
close_tables(SlotTables *t)
{
	index_close(t->slots_pkey, NoLock);
	table_close(t->entries, NoLock);
	table_close(t->slots, NoLock);
}

/*
 * Where this transaction last wrote a slot.  Each change of a slot adds a
 * version, and none that a running transaction made can be pruned, so
 * within one transaction a slot's key leads to every version it made, and
 * finding the visible one walks them all: a go-live that posted many
 * transfers from one account in one transaction took the square of their
 * number (the 5,000 transfers after the first 15,000 took 2.8 times as
 * long as the first 5,000).  So find_slot looks first where ledger_apply
 * last put the slot in this transaction.  A version found there is used
 * only if the snapshot sees it and it is the slot's: a snapshot sees one
 * version of a row at most, so it is the one the key would give.  Anything
 * else (an aborted subtransaction's version, a slot last written by
 * another transaction, a table rewritten since) goes through the key.
 * Direct-mapped: a slot that takes another's place only costs that one a
 * walk through the key.
 */
#define OWN_VERSIONS 1024

typedef struct OwnVersion
{
	LocalTransactionId lxid;	/* the transaction that wrote it */
	RelFileNode node;			/* of gifq.account_slots then */
	int64		account_id;
	int32		slot;
	ItemPointerData tid;
} OwnVersion;

static OwnVersion own_versions[OWN_VERSIONS];

static OwnVersion *
own_version(int64 account_id, int slot)
{
	uint64		h = ((uint64) account_id * 16 + (uint32) slot) * UINT64CONST(0x9E3779B97F4A7C15);

	return &own_versions[(h >> 32) % OWN_VERSIONS];
}

/* the slot's version just written by this transaction is at tid */
static void
remember_own_version(Relation slots, int64 account_id, int slot, ItemPointer tid)
{
	OwnVersion *own = own_version(account_id, slot);

	own->lxid = MyProc->lxid;
	own->node = slots->rd_node;
	own->account_id = account_id;
	own->slot = slot;
	own->tid = *tid;
}

/* the slot's version this transaction last wrote, if snapshot sees it */
static bool
find_own_version(Relation slots, Snapshot snapshot, int64 account_id, int slot,
				 TupleTableSlot *found)
{
	OwnVersion *own = own_version(account_id, slot);
	ItemPointerData tid = own->tid;

	if (own->lxid != MyProc->lxid || own->account_id != account_id ||
		own->slot != slot || !RelFileNodeEquals(own->node, slots->rd_node) ||
		!table_tuple_fetch_row_version(slots, &tid, snapshot, found))
		return false;
	slot_getallattrs(found);
	return DatumGetInt64(found->tts_values[SLOT_ACCOUNT_ID]) == account_id &&
		DatumGetInt32(found->tts_values[SLOT_SLOT]) == slot;
}

/*
 * find_slot
 *		Fill "found" with the version of the slot that snapshot sees.
 */
static void
find_slot(SlotTables *t, Snapshot snapshot, int64 account_id, int slot,
		  TupleTableSlot *found)
{
	ScanKeyData key[2];
	IndexScanDesc scan;
	bool		ok;

	if (find_own_version(t->slots, snapshot, account_id, slot, found))
		return;
	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(account_id));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(slot));
	scan = index_beginscan(t->slots, t->slots_pkey, snapshot, 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	ok = index_getnext_slot(scan, ForwardScanDirection, found);
	index_endscan(scan);
	if (!ok)
		elog(ERROR, "balance slot %d of account %lld does not exist",
			 slot, (long long) account_id);
	slot_getallattrs(found);
}

/*
 * add_or_overflow
 *		a + b, or QG002 naming the account when a total of its slot would
 *		leave 64-bit minor units (a balance gifq_money could not hold).
 */
static int64
add_or_overflow(int64 a, int64 b, int64 account_id)
{
	int64		sum;

	if (pg_add_s64_overflow(a, b, &sum))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
				 errmsg("the totals of account %lld would be out of range",
						(long long) account_id),
				 errdetail("An account's total debits and total credits are kept in 64-bit minor units."),
				 errhint("Each total stays within 9223372036854775807 minor units over the account's life; use another account for more.")));
	return sum;
}

/*
 * new_balances
 *		The slot's balances after delta, or false when the change would take
 *		one below zero or break the account's limit flag.
 */
static bool
new_balances(const LedgerAccount *account, TupleTableSlot *old,
			 const SlotDelta *delta, SlotBalances *out)
{
	const int64 d[4] = {delta->debits_posted, delta->credits_posted,
	delta->debits_pending, delta->credits_pending};

	for (int i = 0; i < 4; i++)
	{
		out->v[i] = add_or_overflow(DatumGetInt64(old->tts_values[SLOT_DEBITS_POSTED + i]),
									d[i], account->id);
		if (out->v[i] < 0)
			return false;
	}
	if (account->debits_must_not_exceed_credits &&
		add_or_overflow(out->v[0], out->v[2], account->id) > out->v[1])
		return false;
	if (account->credits_must_not_exceed_debits &&
		add_or_overflow(out->v[1], out->v[3], account->id) > out->v[0])
		return false;
	return true;
}

/*
 * fill_new_version
 *		The slot's next version: new balances, version + 1, and a time that
 *		never goes backwards (the history is ordered by it).
 */
static void
fill_new_version(TupleTableSlot *old, const SlotBalances *b,
				 TupleTableSlot *next)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz before = DatumGetTimestampTz(old->tts_values[SLOT_UPDATED_AT]);

	ExecClearTuple(next);
	memcpy(next->tts_values, old->tts_values, SLOT_NATTS * sizeof(Datum));
	memset(next->tts_isnull, false, SLOT_NATTS * sizeof(bool));
	for (int i = 0; i < 4; i++)
		next->tts_values[SLOT_DEBITS_POSTED + i] = Int64GetDatum(b->v[i]);
	next->tts_values[SLOT_VERSION] =
		Int64GetDatum(add_or_overflow(DatumGetInt64(old->tts_values[SLOT_VERSION]), 1,
									  DatumGetInt64(old->tts_values[SLOT_ACCOUNT_ID])));
	next->tts_values[SLOT_UPDATED_AT] = TimestampTzGetDatum(Max(now, before));
	ExecStoreVirtualTuple(next);
}

/*
 * replace_slot
 *		Check and replace the slot version in "old", following concurrent
 *		updates as described at the top of the file.  Returns false when the
 *		(newest) version fails the check.
 */
static bool
replace_slot(SlotTables *t, Snapshot snapshot, const LedgerAccount *account,
			 const SlotDelta *delta, TupleTableSlot *old,
			 TupleTableSlot *next, bool *update_indexes)
{
	for (;;)
	{
		SlotBalances b;
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TM_Result	result;

		CHECK_FOR_INTERRUPTS();
		if (!new_balances(account, old, delta, &b))
			return false;
		fill_new_version(old, &b, next);
		result = table_tuple_update(t->slots, &old->tts_tid, next,
									GetCurrentCommandId(true), snapshot,
									InvalidSnapshot, true, &tmfd, &lockmode,
									update_indexes);
		if (result == TM_Ok)
			return true;
		if (result != TM_Updated)
			elog(ERROR, "could not update balance slot of account %lld: result %d",
				 (long long) account->id, (int) result);
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
		result = table_tuple_lock(t->slots, &tmfd.ctid, snapshot, old,
								  GetCurrentCommandId(true), lockmode,
								  LockWaitBlock,
								  TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		if (result != TM_Ok)
			elog(ERROR, "could not lock balance slot of account %lld: result %d",
				 (long long) account->id, (int) result);
		slot_getallattrs(old);
	}
}

/*
 * index_new_version
 *		A replaced slot that could not stay on its page (not a HOT update)
 *		needs its index entries.
 */
static void
index_new_version(Relation rel, TupleTableSlot *next)
{
	ResultRelInfo *rri;
	EState	   *estate = estate_for_table(rel, &rri, false);

	ExecInsertIndexTuples(rri, next, estate, false, false, NULL, NIL);
	estate_free(estate, rri);
}

/*
 * append_entry
 *		Insert the slot's new balances into gifq.entries, with indexes,
 *		constraints and any triggers a DBA may have added.
 */
static void
append_entry(Relation entries, TupleTableSlot *next, int64 transfer_id)
{
	ResultRelInfo *rri;
	EState	   *estate = estate_for_table(entries, &rri, false);
	TupleTableSlot *entry = ExecInitExtraTupleSlot(estate,
												   RelationGetDescr(entries),
												   &TTSOpsVirtual);

	ExecClearTuple(entry);
	memset(entry->tts_isnull, false, ENTRY_NATTS * sizeof(bool));
	entry->tts_values[ENTRY_ACCOUNT_ID] = next->tts_values[SLOT_ACCOUNT_ID];
	entry->tts_values[ENTRY_SLOT] = next->tts_values[SLOT_SLOT];
	entry->tts_values[ENTRY_VERSION] = next->tts_values[SLOT_VERSION];
	entry->tts_values[ENTRY_AT] = next->tts_values[SLOT_UPDATED_AT];
	entry->tts_values[ENTRY_TRANSFER_ID] = Int64GetDatum(transfer_id);
	entry->tts_isnull[ENTRY_TRANSFER_ID] = transfer_id == 0;
	for (int i = 0; i < 4; i++)
		entry->tts_values[ENTRY_DEBITS_POSTED + i] =
			next->tts_values[SLOT_DEBITS_POSTED + i];
	ExecStoreVirtualTuple(entry);

	AfterTriggerBeginQuery();
	ExecSimpleRelationInsert(rri, estate, entry);
	AfterTriggerEndQuery(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	estate_free(estate, rri);
}

static int64
available(TupleTableSlot *slot)
{
	return DatumGetInt64(slot->tts_values[SLOT_CREDITS_POSTED]) -
		DatumGetInt64(slot->tts_values[SLOT_DEBITS_POSTED]) -
		DatumGetInt64(slot->tts_values[SLOT_DEBITS_PENDING]);
}

/*
 * expiry_set_anywhere
 *		Whether gifq.points_expiry (relid) has a page.  It has none until a
 *		program sets points expiry, and until then no member has lots, so a
 *		fall in a member's points (every redemption's hold) has nothing to
 *		keep and need not call into PL/pgSQL.  (A row that another
 *		transaction is adding gives the table a page: then the call is
 *		made, and finds what that transaction's snapshot rules.)
 */
static bool
expiry_set_anywhere(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	bool		set = RelationGetNumberOfBlocks(rel) > 0;

	table_close(rel, AccessShareLock);
	return set;
}

/*
 * points_changed
 *		A member's available points went from before to after by transfer
 *		transfer_id: keep the lots of expiring points and record the
 *		thresholds a rise crosses for the first time (gifq.points_changed;
 *		gifq.thresholds_crossed before 0.6.0, which had no expiry).  Done
 *		here rather than in a trigger on the balance rows, which this file
 *		writes without firing, so that every way points come and go is
 *		seen, and only members' accounts pay for it.
 */
static void
points_changed(const LedgerAccount *account, int64 transfer_id,
			   int64 before, int64 after)
{
	static SPIPlanPtr plan;
	static SPIPlanPtr plan_before_expiry;
	static const Oid argtypes[] = {INT8OID, INT8OID, INT8OID, INT8OID};
	Oid			nsp = get_namespace_oid("gifq", false);
	Oid			expiry = get_relname_relid("points_expiry", nsp);
	Datum		values[4];

	values[0] = Int64GetDatum(account->id);
	if (OidIsValid(expiry))
	{
		if (after < before && !expiry_set_anywhere(expiry))
			return;
		values[1] = Int64GetDatum(transfer_id);
		values[2] = Int64GetDatum(before);
		values[3] = Int64GetDatum(after);
		ledger_run(ledger_plan(&plan, "SELECT gifq.points_changed($1, $2, $3, $4)",
							   4, argtypes),
				   values, NULL, SPI_OK_SELECT);
	}
	else if (after > before &&
			 OidIsValid(get_relname_relid("thresholds", nsp)))
	{
		values[1] = Int64GetDatum(before);
		values[2] = Int64GetDatum(after);
		ledger_run(ledger_plan(&plan_before_expiry,
							   "SELECT gifq.thresholds_crossed($1, $2, $3)",
							   3, argtypes),
				   values, NULL, SPI_OK_SELECT);
	}
}

/*
 * ledger_apply
 *		Add delta to one slot of an account and append the slot's new
 *		balances to gifq.entries.  Returns 1, or 0 when the change would
 *		take a balance below zero or break the account's limit flag.
 *
 * The command counter is advanced first so that the snapshot sees what
 * this transaction wrote before, rebalances of the slot included.
 */
int
ledger_apply(const LedgerAccount *account, int slot, const SlotDelta *delta,
			 int64 transfer_id)
{
	SlotTables	t;
	TupleTableSlot *old;
	TupleTableSlot *next;
	bool		update_indexes = false;
	bool		applied;
	int64		before = 0;
	int64		after = 0;

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	open_tables(&t);
	old = table_slot_create(t.slots, NULL);
	next = MakeSingleTupleTableSlot(RelationGetDescr(t.slots), &TTSOpsVirtual);

	find_slot(&t, GetActiveSnapshot(), account->id, slot, old);
	applied = replace_slot(&t, GetActiveSnapshot(), account, delta, old, next,
						   &update_indexes);
	if (applied)
	{
		remember_own_version(t.slots, account->id, slot, &next->tts_tid);
		if (update_indexes)
			index_new_version(t.slots, next);
		append_entry(t.entries, next, transfer_id);
		before = available(old);
		after = available(next);
	}

	ExecDropSingleTupleTableSlot(next);
	ExecDropSingleTupleTableSlot(old);
	close_tables(&t);
	PopActiveSnapshot();
	if (applied && account->watch_thresholds && after != before &&
		(ledger_threshold_filter == NULL ||
		 ledger_threshold_filter(account, before, after, ledger_threshold_filter_arg)))
		points_changed(account, transfer_id, before, after);
	return applied ? 1 : 0;
}
