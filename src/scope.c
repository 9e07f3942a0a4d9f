/*-------------------------------------------------------------------------
 * scope.c
 *	  Program scoping: a role in gifq_app acts only on the programs granted
 *	  to it with gifq_grant_program().
 *
 * The caller is the session's role as SET ROLE left it (GetOuterUserId()),
 * not the current user: inside gifq's SECURITY DEFINER functions the
 * current user is the extension owner.  A caller is scoped when it is a
 * member of gifq_app and neither a superuser, nor a member of gifq_admin,
 * nor a member of the owner of schema gifq (the extension owner).  Roles
 * outside gifq_app are not scoped: they were given EXECUTE by hand and
 * their grants, not gifq's, say what they may do.
 *
 * Every API function checks the program of the object it names, so the
 * check is kept cheap with a per-backend cache of the answer for one
 * caller: whether it is scoped and, if so, the ids of the programs granted
 * to it or to a role it is a member of.  An unscoped caller pays one
 * comparison once the cache is filled; a scoped one a search of a short
 * sorted array.  The cache is dropped when a role, a role membership or
 * schema gifq changes (syscache callbacks) and when gifq.program_grants
 * changes: its statement trigger (gifq.program_grants_changed) sends a
 * relcache invalidation for the table, which every backend receives at its
 * next transaction start (and this one at its next command).
 *
 * gifq.program_grants is read directly, not through SPI, so a check can
 * run in the middle of another SPI query's result without disturbing it;
 * that is allowed for read-mostly tables gifq owns (STYLE.md section 3).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/scope.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "scope.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* gifq.program_grants' columns */
#define Anum_program_grants_role		1
#define Anum_program_grants_program_id	2

/* the cached answer for one caller */
static bool scope_valid = false;
static Oid	scope_user = InvalidOid;
static bool scope_scoped = false;
static int	scope_nprograms = 0;
static int64 *scope_programs = NULL;	/* sorted, in TopMemoryContext */
static Oid	scope_grants_relid = InvalidOid;
static bool scope_callbacks = false;

/*
 * scope_syscache_changed
 *		A role, a membership or a schema changed: forget the answer.
 */
static void
scope_syscache_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	scope_valid = false;
}

/*
 * scope_relcache_changed
 *		gifq.program_grants changed (or every relation did): forget the
 *		answer, and the table's oid, which a DROP EXTENSION changes.
 */
static void
scope_relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == scope_grants_relid)
	{
		scope_valid = false;
		scope_grants_relid = InvalidOid;
	}
}

/*
 * compare_int64
 *		qsort and bsearch order for program ids.
 */
static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * is_scoped
 *		Whether user is a scoped caller (see the file header).  Reads only
 *		syscaches.
 */
static bool
is_scoped(Oid user)
{
	Oid			app;
	Oid			admin;
	Oid			schema;
	HeapTuple	tuple;

	if (superuser_arg(user))
		return false;
	app = get_role_oid("gifq_app", true);
	if (!OidIsValid(app) || !is_member_of_role(user, app))
		return false;
	admin = get_role_oid("gifq_admin", true);
	if (OidIsValid(admin) && is_member_of_role(user, admin))
		return false;
	schema = get_namespace_oid("gifq", true);
	if (OidIsValid(schema))
	{
		tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema));
		if (HeapTupleIsValid(tuple))
		{
			Oid			owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;

			ReleaseSysCache(tuple);
			if (is_member_of_role(user, owner))
				return false;
		}
	}
	return true;
}

/*
 * load_grants
 *		Read the programs granted to user, or to a role it is a member of,
 *		into scope_programs.  Scans gifq.program_grants (a few rows per app
 *		role) with the latest snapshot, so a grant made earlier in this
 *		transaction counts.  Returns false if there is no such table: this
 *		database's gifq predates 0.8.0 (the library is newer than its
 *		schema until ALTER EXTENSION gifq UPDATE), and nothing is scoped.
 */
static bool
load_grants(Oid user)
{
	Oid			schema = get_namespace_oid("gifq", true);
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	Snapshot	snapshot;
	int			allocated = 8;
	int			n = 0;
	int64	   *programs;

	scope_grants_relid = OidIsValid(schema) ?
		get_relname_relid("program_grants", schema) : InvalidOid;
	if (!OidIsValid(scope_grants_relid))
		return false;
	programs = MemoryContextAlloc(TopMemoryContext, allocated * sizeof(int64));
	rel = table_open(scope_grants_relid, AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Oid			role;
		int64		program;

		CHECK_FOR_INTERRUPTS();
		role = DatumGetObjectId(heap_getattr(tuple, Anum_program_grants_role,
											 RelationGetDescr(rel), &isnull));
		if (isnull || !is_member_of_role(user, role))
			continue;
		program = DatumGetInt64(heap_getattr(tuple, Anum_program_grants_program_id,
											 RelationGetDescr(rel), &isnull));
		if (isnull)
			continue;
		if (n == allocated)
		{
			allocated *= 2;
			programs = repalloc(programs, allocated * sizeof(int64));
		}
		programs[n++] = program;
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	qsort(programs, n, sizeof(int64), compare_int64);
	scope_programs = programs;
	scope_nprograms = n;
	return true;
}

/*
 * scope_fill
 *		Make the cache answer for the current caller.  May throw (a missing
 *		table); the cache then stays invalid.
 */
static void
scope_fill(void)
{
	Oid			user = GetOuterUserId();

	if (scope_valid && scope_user == user)
		return;
	if (!scope_callbacks)
	{
		CacheRegisterSyscacheCallback(AUTHOID, scope_syscache_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, scope_syscache_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, scope_syscache_changed, (Datum) 0);
		CacheRegisterRelcacheCallback(scope_relcache_changed, (Datum) 0);
		scope_callbacks = true;
	}
	scope_valid = false;
	if (scope_programs != NULL)
		pfree(scope_programs);
	scope_programs = NULL;
	scope_nprograms = 0;
	scope_user = user;
	scope_scoped = is_scoped(user) && load_grants(user);
	scope_valid = true;
}

/*
 * scope_caller_is_scoped
 *		Whether the caller acts only on granted programs.
 */
bool
scope_caller_is_scoped(void)
{
	scope_fill();
	return scope_scoped;
}

/*
 * scope_program_visible
 *		Whether the caller may act on the program with this id: always for
 *		an unscoped caller, else only for a granted program.  0 (no such
 *		program) is visible only to unscoped callers.
 */
bool
scope_program_visible(int64 program_id)
{
	scope_fill();
	if (!scope_scoped)
		return true;
	return scope_nprograms > 0 &&
		bsearch(&program_id, scope_programs, scope_nprograms, sizeof(int64),
				compare_int64) != NULL;
}

/*
 * scope_require_program
 *		Throw QG701 unless the caller may act on the program (id 0: the
 *		code named no program).  The message is the same whether or not the
 *		program exists, so a scoped role learns nothing of other programs.
 */
void
scope_require_program(int64 program_id, const char *program)
{
	if (scope_program_visible(program_id))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_PROGRAM_NOT_GRANTED),
			 errmsg("program \"%s\" is not granted to role \"%s\"",
					program ? program : "NULL",
					GetUserNameFromId(GetOuterUserId(), false)),
			 errhint("An administrator grants programs to app roles with gifq_grant_program().")));
}

PG_FUNCTION_INFO_V1(gifq_program_visible);

/*
 * gifq_program_visible
 *		gifq.program_visible(program_id) returns whether the caller may act
 *		on the program (NULL: no program, visible to unscoped callers only).
 *		Used by the PL/pgSQL API functions and the reporting views.
 */
Datum
gifq_program_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(scope_program_visible(PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0)));
}

PG_FUNCTION_INFO_V1(gifq_caller_scoped);

/*
 * gifq_caller_scoped
 *		gifq.caller_scoped() returns whether the caller acts only on
 *		granted programs.
 */
Datum
gifq_caller_scoped(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(scope_caller_is_scoped());
}

PG_FUNCTION_INFO_V1(gifq_require_program);

/*
 * gifq_require_program
 *		gifq.require_program(program_id, program) throws QG701 unless the
 *		caller may act on the program (see scope_require_program).
 */
Datum
gifq_require_program(PG_FUNCTION_ARGS)
{
	scope_require_program(PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0),
						  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gifq_program_grants_changed);

/*
 * gifq_program_grants_changed
 *		Statement trigger on gifq.program_grants: tell every backend
 *		(this one included) to drop its cached grants.
 */
Datum
gifq_program_grants_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "gifq.program_grants_changed: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}
