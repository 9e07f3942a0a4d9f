/*-------------------------------------------------------------------------
 * statistics.c
 *	  gifq's tables' statistics refreshed within a transaction that has
 *	  outgrown them.
 *
 * A statement's plan is made at its first use in a session and kept until
 * the statistics of a table it reads change.  Autovacuum keeps them
 * current, but it sees only committed rows.  So a go-live loaded in one
 * transaction into a new installation, whose tables were analyzed while
 * empty, keeps the plans made for empty tables: a key lookup planned as a
 * sequential scan reads the whole table on every call, and each call costs
 * more than the one before (0.10.0 imported 2,000 members in 0.25 s at
 * first and in 1.9 s after 14,000; docs/operations.md).
 *
 * The calls that fill tables (members, transfers, events) therefore look,
 * now and then, at the tables they read by key.  One whose size is past
 * four times what its statistics say is analyzed in the transaction:
 * ANALYZE counts the transaction's own rows, and the new statistics make
 * every plan that reads the table be made again.  Each table is analyzed at
 * most about log4 of its growth times, and not at all once autovacuum
 * keeps up with it.  A table another session is analyzing (or vacuuming)
 * is left to it; so is one the caller may not analyze, and every table in
 * a read-only transaction.  The ANALYZE's lock (SHARE UPDATE EXCLUSIVE)
 * stays until the transaction ends, as any ANALYZE's in a transaction
 * does: it keeps out VACUUM, other ANALYZEs and schema changes of that
 * table, not readers or writers.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/statistics.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "statistics.h"

#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/*
 * The tables API calls read by key through planned statements.  Tables
 * found through their keys without the planner (account_slots, the
 * boards' rows and counts: slots.c, counters.c) need no statistics.
 */
static const char *const keyed_tables[] = {
	"members", "accounts", "transfers", "entries", "holds", "events",
	"challenge_completions", "streaks", "streak_periods", "threshold_hits",
	"point_lots", "orders", "rewards", "peer_gifts",
};

/* a table smaller than this is read whole about as fast as by its key */
#define STATISTICS_MIN_PAGES	8

/* how much bigger than its statistics say a table may grow */
#define STATISTICS_GROWTH	4

/*
 * Calls between two looks: a look opens every table above and asks each
 * its size, too much for every single event; a transaction adds only 64
 * calls' rows between two looks.
 */
#define STATISTICS_LOOK_EVERY	64

/*
 * outgrown
 *		Whether relid has STATISTICS_GROWTH times the pages its statistics
 *		counted, and at least STATISTICS_MIN_PAGES.  A table never analyzed
 *		nor vacuumed (reltuples -1) is planned from its actual size and
 *		needs nothing.
 */
static bool
outgrown(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	BlockNumber pages = RelationGetNumberOfBlocks(rel);
	bool		result;

	result = rel->rd_rel->reltuples >= 0 &&
		pages >= STATISTICS_MIN_PAGES &&
		pages / STATISTICS_GROWTH > (BlockNumber) rel->rd_rel->relpages;
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * analyze
 *		ANALYZE gifq.name in this transaction, unless another session holds
 *		a lock that ANALYZE would wait for, or the current user does not
 *		own the table (ANALYZE would only warn).
 */
static void
analyze(Oid relid, const char *name)
{
	char		sql[NAMEDATALEN + 32];

	if (!ConditionalLockRelationOid(relid, ShareUpdateExclusiveLock))
		return;
	if (!pg_class_ownercheck(relid, GetUserId()))
	{
		UnlockRelationOid(relid, ShareUpdateExclusiveLock);
		return;
	}
	snprintf(sql, sizeof(sql), "ANALYZE gifq.%s", quote_identifier(name));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute failed: %s", sql);
	SPI_finish();
}

/*
 * statistics_keep_current
 *		Analyze each of gifq's keyed tables that has outgrown its
 *		statistics.  The look is made on every 64th call in a backend, or
 *		now when the caller adds many rows in one call.
 */
void
statistics_keep_current(bool now)
{
	static uint32 calls = 0;
	Oid			nsp;

	if (!now && calls++ % STATISTICS_LOOK_EVERY != 0)
		return;
	if (XactReadOnly || RecoveryInProgress() || IsInParallelMode())
		return;
	nsp = get_namespace_oid("gifq", false);
	for (int i = 0; i < (int) lengthof(keyed_tables); i++)
	{
		Oid			relid = get_relname_relid(keyed_tables[i], nsp);

		if (OidIsValid(relid) && outgrown(relid))
			analyze(relid, keyed_tables[i]);
	}
}

PG_FUNCTION_INFO_V1(gifq_keep_statistics);

/*
 * gifq_keep_statistics
 *		gifq.keep_statistics(), AFTER INSERT FOR EACH STATEMENT on
 *		gifq.members: statistics_keep_current for gifq_upsert_member, which
 *		is written in PL/pgSQL and reads members and accounts by key.
 */
Datum
gifq_keep_statistics(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "gifq.keep_statistics() must be called as a trigger");
	statistics_keep_current(false);
	return PointerGetDatum(NULL);
}
