/*-------------------------------------------------------------------------
 * probe.c
 *	  Whether a row with a key exists, looked up in a unique index without
 *	  running a statement.
 *
 * gifq_record_event reads the event that holds its idempotency key, to
 * replay it; nearly every call brings a new key and finds none.  Running
 * that statement through SPI (plan checks, executor start and end, a
 * snapshot) was a twentieth of an event's CPU for nothing.  A probe of
 * the key's unique index says whether there is anything to read, and the
 * caller runs the statement only then.
 *
 * The probe sees what a statement starting at that moment would see: it
 * makes the transaction's earlier commands visible and takes the snapshot
 * a statement would take (a new one under READ COMMITTED, the
 * transaction's under REPEATABLE READ and SERIALIZABLE), as SPI does for
 * each statement of a function that is not read-only.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/probe.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "probe.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/*
 * probe_unique
 *		Whether gifq.<index>, a unique index on gifq.<table> whose columns
 *		are nkeys plain columns, holds a row with key that a statement run
 *		now would see.
 */
bool
probe_unique(const char *table, const char *index, int nkeys, const Datum *key)
{
	Oid			nsp = get_namespace_oid("gifq", false);
	Oid			relid = get_relname_relid(table, nsp);
	Oid			indexid = get_relname_relid(index, nsp);
	ScanKeyData keys[INDEX_MAX_KEYS];
	Relation	rel;
	Relation	idx;
	Snapshot	snapshot;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	bool		found;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "gifq.%s or its index gifq.%s does not exist", table, index);
	rel = table_open(relid, AccessShareLock);
	idx = index_open(indexid, AccessShareLock);
	if (idx->rd_index->indrelid != relid || !idx->rd_index->indisunique ||
		idx->rd_index->indnkeyatts != nkeys || idx->rd_indexprs != NIL)
		elog(ERROR, "gifq.%s is not a unique index of %d columns on gifq.%s",
			 index, nkeys, table);
	for (int i = 0; i < nkeys; i++)
	{
		Oid			type = idx->rd_opcintype[i];
		Oid			eq = get_opfamily_member(idx->rd_opfamily[i], type, type,
											 BTEqualStrategyNumber);

		if (!OidIsValid(eq))
			elog(ERROR, "no equality operator for column %d of gifq.%s", i + 1, index);
		ScanKeyEntryInitialize(&keys[i], 0, i + 1, BTEqualStrategyNumber,
							   InvalidOid, idx->rd_indcollation[i],
							   get_opcode(eq), key[i]);
	}

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}
