/*-------------------------------------------------------------------------
 * dropping.c
 *	  gifq.drop_started: before a command drops gifq, deal with what gifq
 *	  left outside the extension (pg_cron's jobs).
 *
 * DROP EXTENSION removes every object of the extension, but pg_cron's
 * jobs are rows of cron.job that name gifq's functions in their command
 * text: no dependency ties them to gifq, and left behind they would fail
 * every minute.  An event trigger of gifq's on ddl_command_start runs
 * before a DROP EXTENSION, DROP SCHEMA ... CASCADE or DROP OWNED that
 * removes gifq; it must be ddl_command_start because gifq's own sql_drop
 * trigger is gone by the time sql_drop fires for the extension's drop.
 * At ddl_command_start only the statement says what will be dropped, so
 * this is C: it reads the parse tree, and calls gifq.drop_jobs() (SQL,
 * in the 0.8.0 script) only when gifq is among what goes.  The jobs are
 * removed in the dropping transaction, so a drop that fails keeps them.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/dropping.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"

/*
 * extension_of_gifq
 *		The schema gifq was installed in and its owner; false if gifq is
 *		not installed in this database.  Reads pg_extension; can throw
 *		only on catalog trouble.
 */
static bool
extension_of_gifq(Oid *schema, Oid *owner)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("gifq"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tuple);

		*schema = ext->extnamespace;
		*owner = ext->extowner;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * drops_gifq
 *		Does this statement drop gifq: DROP EXTENSION naming it, DROP
 *		SCHEMA ... CASCADE of the schema it was installed in, or DROP
 *		OWNED BY its owner?  (Only those three commands reach here: the
 *		trigger's WHEN TAG.)
 */
static bool
drops_gifq(Node *parsetree)
{
	Oid			schema;
	Oid			owner;
	ListCell   *lc;

	if (!extension_of_gifq(&schema, &owner))
		return false;
	if (IsA(parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) parsetree;

		if (stmt->removeType == OBJECT_EXTENSION)
		{
			foreach(lc, stmt->objects)
			{
				if (strcmp(strVal(lfirst(lc)), "gifq") == 0)
					return true;
			}
		}
		else if (stmt->removeType == OBJECT_SCHEMA &&
				 stmt->behavior == DROP_CASCADE)
		{
			foreach(lc, stmt->objects)
			{
				if (get_namespace_oid(strVal(lfirst(lc)), true) == schema)
					return true;
			}
		}
	}
	else if (IsA(parsetree, DropOwnedStmt))
	{
		DropOwnedStmt *stmt = (DropOwnedStmt *) parsetree;

		foreach(lc, stmt->roles)
		{
			if (get_rolespec_oid(lfirst(lc), true) == owner)
				return true;
		}
	}
	return false;
}

PG_FUNCTION_INFO_V1(gifq_drop_started);

/*
 * gifq_drop_started
 *		The event trigger gifq_drop (ddl_command_start, WHEN TAG IN
 *		('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')).  When the
 *		command drops gifq, runs gifq.drop_jobs(), which removes gifq's
 *		pg_cron jobs of this database and says, in NOTICEs, what it
 *		removed and which jobs that call gifq remain.
 */
Datum
gifq_drop_started(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "gifq.drop_started must be called as an event trigger");
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!drops_gifq(trigdata->parsetree))
		PG_RETURN_NULL();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT gifq.drop_jobs()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: gifq.drop_jobs()");
	SPI_finish();
	PG_RETURN_NULL();
}
