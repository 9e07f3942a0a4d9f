/*-------------------------------------------------------------------------
 * counters.c
 *	  Add to a count kept in a row found by its primary key, or insert the
 *	  row, without the executor; or make such a row anew from its old one.
 *
 * The leaderboards keep counts as events are recorded: each member's
 * points on their boards (gifq.board_points) and how many members hold each
 * points value (gifq.board_counts).  Every event changes about a dozen of
 * them.  As an upsert statement per event (first in PL/pgSQL, then through
 * SPI) this was four tenths of an event's CPU, nearly all of it starting
 * and ending the executor for a handful of rows.  Here a count is found
 * where this backend last found it (places.c) or through the primary key,
 * replaced with the table access method and indexed, as src/slots.c does
 * for balance slots.
 *
 * A count is an addition that does not depend on what the transaction
 * read, so it is always applied to the newest committed version: rows are
 * looked up with a snapshot taken when the run starts, and if another
 * transaction has replaced one since, we wait for that one to end and look
 * again with a new snapshot, then add to its version, whatever the
 * isolation level (an UPSERT under repeatable read would fail instead, at
 * commit time for the board counts).  A row that is missing is inserted
 * the way INSERT ... ON CONFLICT inserts it (speculatively), so two sessions
 * that meet on a new key do not fail on the unique index: the second waits
 * for the first and then adds to its row.
 *
 * Counter tables are gifq's own: no triggers or CHECK constraints are run
 * on them (the callers only write keys and counts they have checked).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/counters.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "counters.h"
#include "places.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "storage/bufmgr.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/*
 * estate_for_table
 *		A minimal executor state with rel as its one result relation and its
 *		indexes open, for ExecInsertIndexTuples and ExecSimpleRelationInsert;
 *		speculative: ready for speculative insertion, as ON CONFLICT is.
 */
EState *
estate_for_table(Relation rel, ResultRelInfo **rri, bool speculative)
{
	EState	   *estate = CreateExecutorState();
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	*rri = makeNode(ResultRelInfo);
	InitResultRelInfo(*rri, rel, 1, NULL, 0);
	estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(*rri, speculative);
	return estate;
}

void
estate_free(EState *estate, ResultRelInfo *rri)
{
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * table_column
 *		The number (from 1) of rel's column name, of type type unless that is
 *		InvalidOid; throws when there is none.  gifq's C code finds the
 *		columns it reads or writes by name, so that their order is free.
 */
int
table_column(Relation rel, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			att = SPI_fnumber(desc, name);

	if (att <= 0)
		elog(ERROR, "gifq.%s has no column \"%s\"", RelationGetRelationName(rel), name);
	if (OidIsValid(type) && TupleDescAttr(desc, att - 1)->atttypid != type)
		elog(ERROR, "column \"%s\" of gifq.%s is not of type %s",
			 name, RelationGetRelationName(rel), format_type_be(type));
	return att;
}

/*
 * check_counter_layout
 *		The primary key's columns must be the table's first ones, in any
 *		order, and no column dropped: the code addresses them by position.
 *		Fills t->key_columns (the table column of each of the key's columns)
 *		and t->one_count (the key and a bigint count, what counters_add
 *		needs).
 */
static void
check_counter_layout(CounterTable *t)
{
	TupleDesc	desc = RelationGetDescr(t->rel);
	Form_pg_index index = t->pkey->rd_index;
	bool		seen[INDEX_MAX_KEYS] = {false};

	t->nkeys = index->indnkeyatts;
	if (desc->natts <= t->nkeys)
		elog(ERROR, "table gifq.%s has only its primary key",
			 RelationGetRelationName(t->rel));
	t->one_count = desc->natts == t->nkeys + 1 &&
		TupleDescAttr(desc, t->nkeys)->atttypid == INT8OID;
	for (int i = 0; i < t->nkeys; i++)
	{
		int			column = index->indkey.values[i] - 1;

		if (column < 0 || column >= t->nkeys || seen[column])
			elog(ERROR, "the primary key of gifq.%s is not its first %d columns",
				 RelationGetRelationName(t->rel), t->nkeys);
		seen[column] = true;
		t->key_columns[i] = column;
	}
	for (int i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			elog(ERROR, "table gifq.%s has a dropped column",
				 RelationGetRelationName(t->rel));
	}
}

/*
 * counters_open
 *		Open gifq.<name> and its primary key for additions.  Returns false
 *		when the table does not exist and missing_ok (the extension was
 *		dropped or not yet updated); throws otherwise.
 */
bool
counters_open(CounterTable *t, const char *name, bool missing_ok)
{
	Oid			nsp = get_namespace_oid("gifq", missing_ok);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
	Oid			pkey;

	if (!OidIsValid(relid))
	{
		if (missing_ok)
			return false;
		elog(ERROR, "table gifq.%s does not exist", name);
	}
	t->rel = table_open(relid, RowExclusiveLock);
	pkey = RelationGetPrimaryKeyIndex(t->rel);
	if (!OidIsValid(pkey))
		elog(ERROR, "table gifq.%s has no primary key", name);
	t->pkey = index_open(pkey, RowExclusiveLock);
	check_counter_layout(t);
	for (int i = 0; i < t->nkeys; i++)
	{
		Oid			type = t->pkey->rd_opcintype[i];
		Oid			eq = get_opfamily_member(t->pkey->rd_opfamily[i], type, type,
											 BTEqualStrategyNumber);

		if (!OidIsValid(eq))
			elog(ERROR, "no equality operator for column %d of gifq.%s", i + 1, name);
		ScanKeyEntryInitialize(&t->keys[i], 0, i + 1, BTEqualStrategyNumber,
							   InvalidOid, t->pkey->rd_indcollation[i],
							   get_opcode(eq), (Datum) 0);
	}
	t->estate = estate_for_table(t->rel, &t->rri, true);
	t->arbiters = list_make1_oid(pkey);
	t->found = table_slot_create(t->rel, NULL);
	t->next = MakeSingleTupleTableSlot(RelationGetDescr(t->rel), &TTSOpsVirtual);
	t->scan = NULL;
	t->snapshot = NULL;
	t->fetch = table_index_fetch_begin(t->rel);
	t->nblocks = RelationGetNumberOfBlocks(t->rel);
	return true;
}

void
counters_close(CounterTable *t)
{
	if (t->scan != NULL)
	{
		index_endscan(t->scan);
		UnregisterSnapshot(t->snapshot);
	}
	table_index_fetch_end(t->fetch);
	ExecDropSingleTupleTableSlot(t->next);
	ExecDropSingleTupleTableSlot(t->found);
	estate_free(t->estate, t->rri);
	index_close(t->pkey, NoLock);
	table_close(t->rel, NoLock);
}

/*
 * refresh
 *		Start looking with a new snapshot: the run's first look, and after
 *		another transaction changed a row since the last snapshot.
 */
static void
refresh(CounterTable *t)
{
	if (t->scan != NULL)
	{
		index_endscan(t->scan);
		UnregisterSnapshot(t->snapshot);
	}
	t->snapshot = RegisterSnapshot(GetLatestSnapshot());
	t->scan = index_beginscan(t->rel, t->pkey, t->snapshot, t->nkeys, 0);
}

/*
 * fetch_by_key
 *		index_getnext_slot, keeping the place the index entry points to:
 *		the root of the row's chain of versions.  The fetch moves the scan's
 *		TID on to the version it finds, which after an update in place is
 *		one that no later look can start from (a chain is only followed from
 *		its root), so that TID is no place to remember.
 */
static bool
fetch_by_key(CounterTable *t, ItemPointer root)
{
	IndexScanDesc scan = t->scan;

	for (;;)
	{
		if (!scan->xs_heap_continue)
		{
			ItemPointer tid = index_getnext_tid(scan, ForwardScanDirection);

			if (tid == NULL)
				return false;
			*root = *tid;
		}
		if (index_fetch_heap(scan, t->found))
			return true;
	}
}

/*
 * find_counter
 *		Fill t->found with the row of key that the run's snapshot sees, if
 *		any: at its remembered place (places.c), or through the primary key.
 */
static bool
find_counter(CounterTable *t, const Datum *key)
{
	ScanKeyData keys[INDEX_MAX_KEYS];
	PlaceKey	pk;
	bool		placed = places_key(t->rel, t->nkeys, key, &pk);
	ItemPointerData root;
	bool		found;

	if (placed && places_find(t->rel, t->fetch, t->nblocks, t->snapshot, &pk, key,
							  t->nkeys, t->found))
		return true;
	memcpy(keys, t->keys, t->nkeys * sizeof(ScanKeyData));
	for (int i = 0; i < t->nkeys; i++)
		keys[i].sk_argument = key[t->key_columns[i]];
	index_rescan(t->scan, keys, t->nkeys, NULL, 0);
	found = fetch_by_key(t, &root);
	if (found)
	{
		slot_getallattrs(t->found);
		if (placed)
			places_remember(&pk, &root);
	}
	return found;
}

/* remember t->next's place: a row just inserted or moved */
static void
note_new_place(CounterTable *t, const Datum *key)
{
	PlaceKey	pk;

	if (places_key(t->rel, t->nkeys, key, &pk))
		places_remember(&pk, &t->next->tts_tid);
}

/* t->next: the key, and what merge makes of old; false if merge declines */
static bool
fill_next(CounterTable *t, const Datum *key, const Datum *old,
		  CounterMerge merge, void *arg)
{
	TupleTableSlot *next = t->next;

	ExecClearTuple(next);
	memcpy(next->tts_values, key, t->nkeys * sizeof(Datum));
	memset(next->tts_isnull, false, next->tts_tupleDescriptor->natts * sizeof(bool));
	if (!merge(old, next->tts_values, arg))
		return false;
	ExecStoreVirtualTuple(next);
	return true;
}

/*
 * insert_counter
 *		Insert t->next as ON CONFLICT inserts: wait for any transaction
 *		inserting its key, and give up if the key is taken; otherwise insert
 *		speculatively, so that a session that meets us on the primary key
 *		waits for our insert, and give up if it beat us to it.  Returns
 *		whether the row went in.
 */
static bool
insert_counter(CounterTable *t)
{
	ItemPointerData conflict_tid;
	bool		conflict = false;
	uint32		token;

	if (!ExecCheckIndexConstraints(t->rri, t->next, t->estate, &conflict_tid,
								   t->arbiters))
		return false;
	token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
	table_tuple_insert_speculative(t->rel, t->next, GetCurrentCommandId(true),
								   0, NULL, token);
	ExecInsertIndexTuples(t->rri, t->next, t->estate, false, true, &conflict,
						  t->arbiters);
	table_tuple_complete_speculative(t->rel, t->next, token, !conflict);
	SpeculativeInsertionLockRelease(GetCurrentTransactionId());
	return !conflict;
}

/*
 * replace_found
 *		Replace t->found with t->next.  False when another transaction
 *		replaced or removed it first (and has ended): look again.
 */
static bool
replace_found(CounterTable *t, const Datum *key)
{
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	TM_Result	result;
	bool		update_indexes;

	result = table_tuple_update(t->rel, &t->found->tts_tid, t->next,
								GetCurrentCommandId(true), t->snapshot,
								InvalidSnapshot, true, &tmfd, &lockmode,
								&update_indexes);
	if (result == TM_Ok)
	{
		if (update_indexes)
		{
			ExecInsertIndexTuples(t->rri, t->next, t->estate, true, false,
								  NULL, NIL);
			/* not updated in place: its index entries point here now */
			note_new_place(t, key);
		}
		return true;
	}
	if (result != TM_Updated && result != TM_Deleted)
		elog(ERROR, "could not update a row of gifq.%s: result %d",
			 RelationGetRelationName(t->rel), (int) result);
	refresh(t);
	return false;
}

/*
 * counters_merge
 *		Replace the newest committed row of key (t->nkeys datums, in the
 *		table's column order) with what merge makes of it, or insert what
 *		merge makes of nothing; unless merge declines, which leaves the row
 *		as it is (or missing).  Returns whether there was a row; its values
 *		are left in t->found, the new ones in t->next.
 */
bool
counters_merge(CounterTable *t, const Datum *key, CounterMerge merge, void *arg)
{
	if (t->scan == NULL)
		refresh(t);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (!find_counter(t, key))
		{
			if (!fill_next(t, key, NULL, merge, arg))
				return false;
			if (insert_counter(t))
			{
				note_new_place(t, key);
				return false;
			}
			/* another transaction inserted it first: merge with theirs */
			refresh(t);
			continue;
		}
		if (!fill_next(t, key, t->found->tts_values, merge, arg) ||
			replace_found(t, key))
			return true;
	}
}

/* counters_add's merge: the count plus delta */
typedef struct CountDelta
{
	int			column;
	int64		delta;
} CountDelta;

static bool
add_count(const Datum *old, Datum *next, void *arg)
{
	CountDelta *d = (CountDelta *) arg;
	int64		count = d->delta;

	if (old != NULL &&
		pg_add_s64_overflow(DatumGetInt64(old[d->column]), d->delta, &count))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	next[d->column] = Int64GetDatum(count);
	return true;
}

/*
 * counters_add
 *		Add delta to the count of key (t->nkeys datums, in the table's column
 *		order), or insert the row with count delta.  Returns the new count.
 *		Throws on overflow.
 */
int64
counters_add(CounterTable *t, const Datum *key, int64 delta)
{
	CountDelta	d = {t->nkeys, delta};

	if (!t->one_count)
		elog(ERROR, "table gifq.%s is not its primary key and a bigint count",
			 RelationGetRelationName(t->rel));
	(void) counters_merge(t, key, add_count, &d);
	return DatumGetInt64(t->next->tts_values[t->nkeys]);
}
