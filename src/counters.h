/*-------------------------------------------------------------------------
 * counters.h
 *	  Rows that count something, found by their primary key and added to
 *	  without the executor (see counters.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/counters.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_COUNTERS_H
#define GIFQ_COUNTERS_H

#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "executor/executor.h"
#include "utils/relcache.h"

/*
 * A table of counters: its primary key is its first nkeys columns, in any
 * order (fixed-width columns first make its comparisons cheaper), and no
 * column may be null.  counters_add needs one more column, the bigint
 * count; counters_merge computes any others.  Open for one run of
 * additions (a trigger's statement, a commit's flush).
 */
typedef struct CounterTable
{
	Relation	rel;
	Relation	pkey;
	int			nkeys;
	bool		one_count;		/* the key and one bigint count, nothing else */
	int			key_columns[INDEX_MAX_KEYS];	/* table column of each key column */
	ScanKeyData keys[INDEX_MAX_KEYS];	/* arguments filled per row */
	EState	   *estate;
	ResultRelInfo *rri;
	List	   *arbiters;		/* the primary key, for ON CONFLICT's checks */
	TupleTableSlot *found;
	TupleTableSlot *next;
	Snapshot	snapshot;		/* the newest one taken, registered */
	IndexScanDesc scan;			/* of the primary key with it */
	IndexFetchTableData *fetch; /* rows at a remembered place (counters.c) */
	BlockNumber nblocks;		/* the table's size when opened */
} CounterTable;

extern EState *estate_for_table(Relation rel, ResultRelInfo **rri,
								bool speculative);
extern void estate_free(EState *estate, ResultRelInfo *rri);

/*
 * What a row becomes: old is the newest committed row's values (NULL when
 * there is none), next has the key filled; returns true with the other
 * columns of next filled, or false to leave the row as it is (or missing).
 * Called again if another transaction changes the row first.
 */
typedef bool (*CounterMerge) (const Datum *old, Datum *next, void *arg);

extern int	table_column(Relation rel, const char *name, Oid type);
extern bool counters_open(CounterTable *t, const char *name, bool missing_ok);
extern int64 counters_add(CounterTable *t, const Datum *key, int64 delta);
extern bool counters_merge(CounterTable *t, const Datum *key, CounterMerge merge,
						   void *arg);
extern void counters_close(CounterTable *t);

#endif							/* GIFQ_COUNTERS_H */
