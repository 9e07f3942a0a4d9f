/*-------------------------------------------------------------------------
 * event_details.c
 *	  An event's details: {"rule", "challenges", "skipped_challenges",
 *	  "transfer_id"}, as gifq_record_event returns them and gifq.events
 *	  keeps them.
 *
 * The recording code writes the rule's part and the two challenge lists
 * as JSON text (events.c).  Parsing that text is what the details cost,
 * and it is the same text for event after event of a type: the rule's
 * points and cap, the challenges' names, multipliers and bonuses change
 * only with the settings, a cap or a limit.  Only the transfer differs.
 * So a cache keeps the tree of the last text it parsed and sets the
 * transfer in it; the text is parsed again only when it changes.  The
 * jsonb is byte for byte what jsonb_in gives for the whole text, since a
 * tree's object keys are already in jsonb's order and a value's change
 * does not move them.
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
	for (int k = 0; k < tree->val.object.nPairs; k++)
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
 * events_details
 *		The details of an event whose rule part, applied and skipped
 *		challenge lists are the JSON texts rule, applied and skipped, and
 *		whose transfer is transfer_id (0: none, null), in the caller's
 *		memory context.  cache is the caller's: zeroed before its first
 *		use, its memory under parent.
 */
Jsonb *
events_details(EventDetailsCache *cache, MemoryContext parent, const char *rule,
			   const char *applied, const char *skipped, int64 transfer_id)
{
	if (cache->cxt == NULL)
		cache->cxt = AllocSetContextCreate(parent, "gifq event details",
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
		cache->tree = parse_tree(psprintf("{\"rule\": %s, \"challenges\": %s,"
										  " \"skipped_challenges\": %s,"
										  " \"transfer_id\": null}",
										  rule, applied, skipped),
								 &cache->transfer_id);
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
