/*-------------------------------------------------------------------------
 * event_details.c
 *	  An event's details: {"rule", "challenges", "skipped_challenges",
 *	  "transfer_id"}, as gifq_record_event returns them and gifq.events
 *	  keeps them.
 *
 * The recording code writes the rule's part and the two challenge lists
 * as JSON text (events.c, events_batch.c); the details are that text,
 * with the transfer, made jsonb.  In a batch the text is the same for
 * event after event of a type: the rule's points and cap, the challenges'
 * names, multipliers and bonuses change only with a cap or a limit; only
 * the transfer differs.  So a batch keeps the tree of the last text it
 * parsed and sets the transfer in it, parsing again only when the text
 * changes (parsing was about 4% of a batch's time).  The jsonb is byte
 * for byte what jsonb_in gives for the whole text, since a tree's object
 * keys are already in jsonb's order and a value's change does not move
 * them.  A single event parses its text: a cache kept across calls
 * measured no gain there, and would cost more than parsing whenever
 * a backend's events alternate between types.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/event_details.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "events.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"

/*
 * details_text
 *		The details as JSON text; transfer_id 0: null.
 */
static char *
details_text(const char *rule, const char *applied, const char *skipped,
			 int64 transfer_id)
{
	char		transfer[MAXINT8LEN + 1] = "null";

	if (transfer_id != 0)
		pg_lltoa(transfer_id, transfer);
	return psprintf("{\"rule\": %s, \"challenges\": %s, \"skipped_challenges\": %s,"
					" \"transfer_id\": %s}", rule, applied, skipped, transfer);
}

/*
 * events_details
 *		The details of an event whose rule part, applied and skipped
 *		challenge lists are the JSON texts rule, applied and skipped, and
 *		whose transfer is transfer_id (0: none).
 */
Jsonb *
events_details(const char *rule, const char *applied, const char *skipped,
			   int64 transfer_id)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(details_text(rule, applied, skipped,
																		   transfer_id))));
}

/*
 * parse_tree
 *		The jsonb of text as a tree in memory, every container unpacked (so
 *		that a value in it can be set in place); *transfer_id its
 *		"transfer_id" value.
 */
static JsonbValue *
parse_tree(const char *text, JsonbValue **transfer_id)
{
	Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbParseState *state = NULL;
	JsonbValue *tree = NULL;
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		tree = pushJsonbValue(&state, tok, tok < WJB_BEGIN_ARRAY ? &v : NULL);
	*transfer_id = NULL;
	for (int k = 0; k < tree->val.object.nPairs && *transfer_id == NULL; k++)
	{
		JsonbPair  *pair = &tree->val.object.pairs[k];

		if (pair->key.val.string.len == strlen("transfer_id") &&
			memcmp(pair->key.val.string.val, "transfer_id", pair->key.val.string.len) == 0)
			*transfer_id = &pair->value;
	}
	if (*transfer_id == NULL)
		elog(ERROR, "an event's details have no transfer_id");
	return tree;
}

/*
 * events_details_cached
 *		events_details for the events of a batch, through cache: zeroed
 *		before its first use, its memory a child of the caller's context
 *		(free it with events_details_forget).
 */
Jsonb *
events_details_cached(EventDetailsCache *cache, const char *rule, const char *applied,
					  const char *skipped, int64 transfer_id)
{
	if (cache->cxt == NULL)
		cache->cxt = AllocSetContextCreate(CurrentMemoryContext, "gifq event details",
										   ALLOCSET_SMALL_SIZES);
	if (cache->tree == NULL || strcmp(cache->rule, rule) != 0 ||
		strcmp(cache->applied, applied) != 0 || strcmp(cache->skipped, skipped) != 0)
	{
		MemoryContext old;

		cache->tree = NULL;
		MemoryContextReset(cache->cxt);
		old = MemoryContextSwitchTo(cache->cxt);
		cache->rule = pstrdup(rule);
		cache->applied = pstrdup(applied);
		cache->skipped = pstrdup(skipped);
		cache->tree = parse_tree(details_text(rule, applied, skipped, 0), &cache->transfer_id);
		MemoryContextSwitchTo(old);
	}
	if (transfer_id != 0)
	{
		cache->transfer_id->type = jbvNumeric;
		cache->transfer_id->val.numeric = int64_to_numeric(transfer_id);
	}
	else
		cache->transfer_id->type = jbvNull;
	return JsonbValueToJsonb(cache->tree);
}

/*
 * events_details_forget
 *		Free what cache holds.
 */
void
events_details_forget(EventDetailsCache *cache)
{
	if (cache->cxt != NULL)
		MemoryContextDelete(cache->cxt);
	memset(cache, 0, sizeof(*cache));
}
