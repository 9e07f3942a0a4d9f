/*-------------------------------------------------------------------------
 * audit.c
 *	  The audit trail: a row in gifq.audit for every change of an audited
 *	  table, and for the calls that change nothing but must be traced (code
 *	  reveals, erasures of personal data).
 *
 * One C trigger function serves every audited table, so that the cost of
 * auditing an order's status change in the redemption and worker paths is
 * building one jsonb and appending one row, with no PL/pgSQL and no
 * executor start-up: the row is inserted with ExecSimpleRelationInsert, as
 * src/slots.c appends ledger history.  The trigger's arguments say which
 * column is the row's key, which names its program, and which columns hold
 * personal data: those are written as the string "redacted" (or null),
 * never their value; and in any other text, a word with an "@" in it (an
 * address a provider's error message echoed) is written as "redacted" too,
 * so erasing a member never needs to touch the audit.
 *
 * An UPDATE records only the columns that changed, before and after; an
 * UPDATE that changed nothing but updated_at records nothing.  INSERT
 * records the new row as "after", DELETE the old one as "before", both
 * without their NULL columns (a new order has a dozen, and every byte is
 * written to the WAL), and TRUNCATE (a statement trigger) only that it
 * happened.
 *
 * Who: the session user, the role the caller acts as outside any SECURITY
 * DEFINER function (GetOuterUserId: SET ROLE counts, the definer does not)
 * and application_name (a background worker's type when it has none).
 * When: the clock at the change and the top transaction's full id.
 *
 * gifq.audit is append-only: BEFORE triggers refuse UPDATE, DELETE and
 * TRUNCATE (QG120), as for gifq.transfers.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/audit.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "counters.h"
#include "gifq.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

/* gifq.audit, in column order */
enum
{
	AUDIT_ID,
	AUDIT_AT,
	AUDIT_XID,
	AUDIT_SESSION_ROLE,
	AUDIT_ROLE,
	AUDIT_APPLICATION,
	AUDIT_TABLE,
	AUDIT_OPERATION,
	AUDIT_PROGRAM_ID,
	AUDIT_OBJECT_ID,
	AUDIT_BEFORE,
	AUDIT_AFTER,
	AUDIT_NATTS
};

static const struct
{
	const char *name;
	Oid			type;
}			audit_columns[AUDIT_NATTS] =
{
	{"id", INT8OID},
	{"at", TIMESTAMPTZOID},
	{"xid", XID8OID},
	{"session_role", TEXTOID},
	{"acting_role", TEXTOID},
	{"application", TEXTOID},
	{"table_name", TEXTOID},
	{"operation", TEXTOID},
	{"program_id", INT8OID},
	{"object_id", TEXTOID},
	{"before", JSONBOID},
	{"after", JSONBOID},
};

#define REDACTED "redacted"

/* what one call writes, besides who and when */
typedef struct AuditRecord
{
	const char *table;
	const char *operation;
	bool		has_program;
	int64		program_id;
	char	   *object_id;		/* NULL: none */
	Jsonb	   *before;			/* NULL: none */
	Jsonb	   *after;
} AuditRecord;

/*
 * audit_relation
 *		Open gifq.audit for one insert and return it with its id sequence.
 *		The layout is checked once per table (by oid): the row is built by
 *		position.  Throws when the table is missing or not as expected.
 */
static Relation
audit_relation(Oid *sequence)
{
	static Oid	checked = InvalidOid;
	static Oid	checked_sequence = InvalidOid;
	Oid			nsp = get_namespace_oid("gifq", false);
	Oid			relid = get_relname_relid("audit", nsp);
	Relation	rel;

	if (!OidIsValid(relid))
		elog(ERROR, "table gifq.audit does not exist");
	rel = table_open(relid, RowExclusiveLock);
	if (relid != checked)
	{
		TupleDesc	desc = RelationGetDescr(rel);

		if (desc->natts != AUDIT_NATTS)
			elog(ERROR, "table gifq.audit has %d columns, not %d",
				 desc->natts, AUDIT_NATTS);
		for (int i = 0; i < AUDIT_NATTS; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped || att->atttypid != audit_columns[i].type ||
				strcmp(NameStr(att->attname), audit_columns[i].name) != 0)
				elog(ERROR, "column %d of table gifq.audit is not %s",
					 i + 1, audit_columns[i].name);
		}
		checked_sequence = getIdentitySequence(relid, AUDIT_ID + 1, false);
		checked = relid;
	}
	*sequence = checked_sequence;
	return rel;
}

/*
 * restoring
 *		Whether the statement being run is a COPY.  A COPY into a gifq
 *		table is a restore of a dump, which carries gifq.audit itself:
 *		auditing its rows again (or the reveals a trigger on
 *		gifq.card_reveals copies) would add rows that did not happen, under
 *		ids the restored rows then collide with.  Only the tables' owner
 *		can COPY into them, and the owner can as well disable the triggers
 *		(see docs/audit.md).
 */
static bool
restoring(void)
{
	return ActivePortal != NULL && ActivePortal->commandTag == CMDTAG_COPY;
}

/*
 * role_name
 *		A role's name, or its oid in brackets if it was dropped meanwhile.
 */
static Datum
role_name(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	if (name == NULL)
		name = psprintf("(role %u)", role);
	return CStringGetTextDatum(name);
}

/*
 * audit_write
 *		Append one row to gifq.audit for rec, with who and when filled in.
 *		Runs AFTER-trigger queuing around the insert, so that a trigger a
 *		DBA adds to gifq.audit (say, to ship rows elsewhere) fires.
 */
static void
audit_write(const AuditRecord *rec)
{
	Oid			sequence;
	Relation	rel = audit_relation(&sequence);
	ResultRelInfo *rri;
	EState	   *estate = estate_for_table(rel, &rri, false);
	TupleTableSlot *slot = ExecInitExtraTupleSlot(estate,
												  RelationGetDescr(rel),
												  &TTSOpsVirtual);
	const char *app = application_name;

	if ((app == NULL || app[0] == '\0') && MyBgworkerEntry != NULL)
		app = MyBgworkerEntry->bgw_type;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, false, AUDIT_NATTS * sizeof(bool));
	slot->tts_values[AUDIT_ID] = Int64GetDatum(nextval_internal(sequence, false));
	slot->tts_values[AUDIT_AT] = TimestampTzGetDatum(GetCurrentTimestamp());
	slot->tts_values[AUDIT_XID] =
		FullTransactionIdGetDatum(GetTopFullTransactionId());
	slot->tts_values[AUDIT_SESSION_ROLE] = role_name(GetSessionUserId());
	slot->tts_values[AUDIT_ROLE] = role_name(GetOuterUserId());
	slot->tts_values[AUDIT_APPLICATION] = CStringGetTextDatum(app ? app : "");
	slot->tts_values[AUDIT_TABLE] = CStringGetTextDatum(rec->table);
	slot->tts_values[AUDIT_OPERATION] = CStringGetTextDatum(rec->operation);
	slot->tts_values[AUDIT_PROGRAM_ID] = Int64GetDatum(rec->program_id);
	slot->tts_isnull[AUDIT_PROGRAM_ID] = !rec->has_program;
	if (rec->object_id != NULL)
		slot->tts_values[AUDIT_OBJECT_ID] = CStringGetTextDatum(rec->object_id);
	slot->tts_isnull[AUDIT_OBJECT_ID] = rec->object_id == NULL;
	slot->tts_values[AUDIT_BEFORE] = PointerGetDatum(rec->before);
	slot->tts_isnull[AUDIT_BEFORE] = rec->before == NULL;
	slot->tts_values[AUDIT_AFTER] = PointerGetDatum(rec->after);
	slot->tts_isnull[AUDIT_AFTER] = rec->after == NULL;
	ExecStoreVirtualTuple(slot);

	AfterTriggerBeginQuery();
	ExecSimpleRelationInsert(rri, estate, slot);
	AfterTriggerEndQuery(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	estate_free(estate, rri);
	table_close(rel, NoLock);
}

/*
 * value_text
 *		A column's value as its type's text output.  Built-in types' output
 *		functions are kept per backend (they never change); others, such
 *		as gifq_money, are looked up on each call, since the extension can
 *		be dropped and created again under new oids.
 */
static char *
value_text(Datum value, Oid type)
{
	static struct
	{
		Oid			type;
		FmgrInfo	out;
	}			cache[16];
	static int	ncached = 0;
	Oid			func;
	bool		varlena;

	for (int i = 0; i < ncached; i++)
	{
		if (cache[i].type == type)
			return OutputFunctionCall(&cache[i].out, value);
	}
	getTypeOutputInfo(type, &func, &varlena);
	if (type < FirstNormalObjectId && ncached < (int) lengthof(cache))
	{
		fmgr_info_cxt(func, &cache[ncached].out, TopMemoryContext);
		cache[ncached].type = type;
		return OutputFunctionCall(&cache[ncached++].out, value);
	}
	return OidOutputFunctionCall(func, value);
}

/*
 * is_address_char
 *		Whether c can be part of an email address as free text writes one:
 *		anything but spaces, quotes, brackets and separators.
 */
static bool
is_address_char(char c)
{
	return c != '\0' && strchr(" \t\r\n\"'<>()[]{},;:|/\\", c) == NULL;
}

/*
 * mask_addresses
 *		s with every word that contains an "@" (an email address, in an
 *		error message a provider echoed, say) replaced by "redacted", so
 *		that free text never carries personal data into the audit.  Returns
 *		s itself when it has no "@" (the usual case, one strchr); otherwise
 *		a palloc'd copy.
 */
static char *
mask_addresses(char *s)
{
	StringInfoData out;
	char	   *p = s;
	char	   *at;

	if (strchr(s, '@') == NULL)
		return s;
	initStringInfo(&out);
	while ((at = strchr(p, '@')) != NULL)
	{
		char	   *start = at;
		char	   *end = at + 1;

		while (start > p && is_address_char(start[-1]))
			start--;
		while (is_address_char(*end))
			end++;
		appendBinaryStringInfo(&out, p, start - p);
		appendStringInfoString(&out, REDACTED);
		p = end;
	}
	appendStringInfoString(&out, p);
	return out.data;
}

/*
 * push_column
 *		Add "name": value to the object being built in *state, as to_jsonb
 *		would write it for booleans, numbers, jsonb and times, as text
 *		otherwise; a redacted column's value is the string "redacted"
 *		(null stays null, so an erasure shows as a change to null).
 */
static void
push_column(JsonbParseState **state, const char *name, Datum value,
			bool isnull, Oid type, bool redact)
{
	JsonbValue	key;
	JsonbValue	v;

	key.type = jbvString;
	key.val.string.val = (char *) name;
	key.val.string.len = strlen(name);
	pushJsonbValue(state, WJB_KEY, &key);

	v.type = jbvString;
	if (isnull)
		v.type = jbvNull;
	else if (redact)
		v.val.string.val = REDACTED;
	else
	{
		switch (type)
		{
			case BOOLOID:
				v.type = jbvBool;
				v.val.boolean = DatumGetBool(value);
				break;
			case INT2OID:
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(DatumGetInt16(value));
				break;
			case INT4OID:
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(DatumGetInt32(value));
				break;
			case INT8OID:
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(DatumGetInt64(value));
				break;
			case NUMERICOID:
				/* jsonb has no NaN or infinity: those stay text */
				if (numeric_is_nan(DatumGetNumeric(value)) ||
					numeric_is_inf(DatumGetNumeric(value)))
					v.val.string.val = value_text(value, type);
				else
				{
					v.type = jbvNumeric;
					v.val.numeric = DatumGetNumeric(value);
				}
				break;
			case JSONBOID:
				{
					Jsonb	   *j = DatumGetJsonbP(value);

					v.type = jbvBinary;
					v.val.binary.data = &j->root;
					v.val.binary.len = VARSIZE(j) - VARHDRSZ;
				}
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				v.val.string.val = JsonEncodeDateTime(NULL, value, type, NULL);
				break;
			default:
				v.val.string.val = value_text(value, type);
				break;
		}
	}
	if (v.type == jbvString)
	{
		v.val.string.val = mask_addresses(v.val.string.val);
		v.val.string.len = strlen(v.val.string.val);
	}
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * is_redacted
 *		Whether column name is among the trigger's personal-data arguments
 *		(from the third on).
 */
static bool
is_redacted(const Trigger *trigger, const char *name)
{
	for (int i = 2; i < trigger->tgnargs; i++)
	{
		if (strcmp(trigger->tgargs[i], name) == 0)
			return true;
	}
	return false;
}

/*
 * row_json
 *		The columns of tuple as a jsonb object, NULL ones left out.  With
 *		other (an UPDATE's other version), only the columns whose values
 *		differ, NULL ones included; *changed then says whether any column
 *		but updated_at did.
 */
static Jsonb *
row_json(const Trigger *trigger, TupleDesc desc, HeapTuple tuple,
		 HeapTuple other, bool *changed)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;

	if (changed)
		*changed = false;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		isnull;
		Datum		value;

		if (att->attisdropped)
			continue;
		value = heap_getattr(tuple, i + 1, desc, &isnull);
		/* a whole row's image leaves out its NULL columns */
		if (other == NULL && isnull)
			continue;
		if (other != NULL)
		{
			bool		other_null;
			Datum		other_value = heap_getattr(other, i + 1, desc, &other_null);

			if (isnull == other_null &&
				(isnull || datum_image_eq(value, other_value, att->attbyval,
										  att->attlen)))
				continue;
			if (strcmp(NameStr(att->attname), "updated_at") != 0)
				*changed = true;
		}
		push_column(&state, NameStr(att->attname), value, isnull,
					att->atttypid, is_redacted(trigger, NameStr(att->attname)));
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/*
 * column_value
 *		The value of the column the trigger argument arg names ("" for
 *		none), or false when there is none or it is null.
 */
static bool
column_value(const Trigger *trigger, int arg, TupleDesc desc, HeapTuple tuple,
			 Datum *value, Oid *type)
{
	const char *name;
	int			column;
	bool		isnull;

	if (trigger->tgnargs <= arg || trigger->tgargs[arg][0] == '\0')
		return false;
	name = trigger->tgargs[arg];
	column = SPI_fnumber(desc, name);
	if (column <= 0)
		elog(ERROR, "trigger \"%s\": no column \"%s\"", trigger->tgname, name);
	*value = heap_getattr(tuple, column, desc, &isnull);
	*type = TupleDescAttr(desc, column - 1)->atttypid;
	return !isnull;
}

PG_FUNCTION_INFO_V1(gifq_audit_row);

/*
 * gifq_audit_row
 *		gifq.audit_row([key column, program column, personal columns...]):
 *		an AFTER trigger, FOR EACH ROW on INSERT, UPDATE and DELETE or FOR
 *		EACH STATEMENT on TRUNCATE, that appends the change to gifq.audit.
 *		The program column must be a bigint.  Throws only on a misuse of
 *		the trigger or a failure to write.
 */
Datum
gifq_audit_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	TupleDesc	desc;
	HeapTuple	tuple;
	AuditRecord rec = {0};
	Datum		value;
	Oid			type;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event))
		elog(ERROR, "gifq.audit_row() must be called as an AFTER trigger");
	trigger = td->tg_trigger;
	desc = RelationGetDescr(td->tg_relation);
	rec.table = RelationGetRelationName(td->tg_relation);

	if (restoring())
		return PointerGetDatum(NULL);

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		rec.operation = "TRUNCATE";
		audit_write(&rec);
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "gifq.audit_row() must be FOR EACH ROW, or FOR EACH STATEMENT on TRUNCATE");

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		rec.operation = "INSERT";
		tuple = td->tg_trigtuple;
		rec.after = row_json(trigger, desc, tuple, NULL, NULL);
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		rec.operation = "DELETE";
		tuple = td->tg_trigtuple;
		rec.before = row_json(trigger, desc, tuple, NULL, NULL);
	}
	else
	{
		bool		changed;

		rec.operation = "UPDATE";
		tuple = td->tg_newtuple;
		rec.after = row_json(trigger, desc, tuple, td->tg_trigtuple, &changed);
		if (!changed)
			return PointerGetDatum(NULL);
		rec.before = row_json(trigger, desc, td->tg_trigtuple, tuple, &changed);
	}

	if (column_value(trigger, 0, desc, tuple, &value, &type))
		rec.object_id = value_text(value, type);
	if (column_value(trigger, 1, desc, tuple, &value, &type))
	{
		if (type != INT8OID)
			elog(ERROR, "trigger \"%s\": the program column must be a bigint",
				 trigger->tgname);
		rec.has_program = true;
		rec.program_id = DatumGetInt64(value);
	}
	audit_write(&rec);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(gifq_audit_note);

/*
 * gifq_audit_note
 *		gifq.audit_note(table_name, operation, program_id, object_id,
 *		before, after): append an audit row for something that is not a
 *		row change (a code reveal, an erasure); nothing during a COPY (a
 *		restore).  Callers pass no personal data.  table_name and
 *		operation must not be NULL.
 */
Datum
gifq_audit_note(PG_FUNCTION_ARGS)
{
	AuditRecord rec = {0};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		elog(ERROR, "gifq.audit_note(): table_name and operation must not be NULL");
	if (restoring())
		PG_RETURN_VOID();
	rec.table = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rec.operation = text_to_cstring(PG_GETARG_TEXT_PP(1));
	rec.has_program = !PG_ARGISNULL(2);
	rec.program_id = rec.has_program ? PG_GETARG_INT64(2) : 0;
	rec.object_id = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	rec.before = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	rec.after = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);
	audit_write(&rec);
	PG_RETURN_VOID();
}
