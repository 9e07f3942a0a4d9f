/*-------------------------------------------------------------------------
 * places.c
 *	  Where a backend last found rows it writes often, to look there first.
 *
 * The leaderboards' rows and counts and the members' streaks (counters.c)
 * are found through their primary keys and replaced, a dozen rows an
 * event.  Finding a row through its primary key is a descent
 * of the index from its root: at that many rows, a tenth of an event's
 * CPU.  So each backend remembers where it last found each row (the place
 * its index entry points to: the start of the row's chain of versions,
 * which stays while the row is updated in place) and looks there first.
 *
 * A place proves nothing.  What is found there is used only if the
 * caller's snapshot sees it and its key is the one wanted; the primary key
 * allows one such row, so it is the row.  Anything else (a row moved by an
 * update that was not in place, a place VACUUM freed and reused, a table
 * rewritten) falls back to the index, and the caller remembers the new
 * place.  A place at or past the table's end when the caller opened it is
 * not read: VACUUM may have truncated the table since, and cannot while the
 * caller holds its lock.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/places.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "places.h"

#include "access/tableam.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/rel.h"

/*
 * Places remembered per backend, forgotten all at once when full.  One
 * takes about 90 bytes: at most about 6 MB.  A backend recording events of
 * members at random keeps two per member (board row and streak) and a few
 * thousand for counts: at 16,384, the limit up to 0.9.0, a program of
 * 10,000 members emptied the table every few seconds, and events cost 5 to
 * 15% more CPU (bench/events' program, measured at 8 and 1 clients).
 */
#define PLACES_MAX 65536

typedef struct Place
{
	PlaceKey	key;			/* hash key: must be first */
	ItemPointerData tid;
} Place;

static HTAB *places = NULL;

/*
 * places_key
 *		The key of a row as bytes (zero-padded, so that keys hash and compare
 *		whole); false for a key that does not fit or has a compressed or
 *		external value.
 */
bool
places_key(Relation rel, int nkeys, const Datum *key, PlaceKey *pk)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			len = 0;

	memset(pk, 0, sizeof(PlaceKey));
	pk->relid = RelationGetRelid(rel);
	for (int c = 0; c < nkeys; c++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, c);
		const char *data = (const char *) &key[c];
		int			size = sizeof(Datum);

		if (!att->attbyval)
		{
			struct varlena *v = (struct varlena *) DatumGetPointer(key[c]);

			if (att->attlen != -1 || VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
				return false;
			data = VARDATA_ANY(v);
			size = VARSIZE_ANY_EXHDR(v);
			if (len + 1 + size > PLACE_KEY_BYTES)
				return false;
			pk->bytes[len++] = (char) size;
		}
		if (len + size > PLACE_KEY_BYTES)
			return false;
		memcpy(pk->bytes + len, data, size);
		len += size;
	}
	pk->len = len;
	return true;
}

/*
 * places_remember
 *		The row of pk is at tid now.
 */
void
places_remember(const PlaceKey *pk, ItemPointer tid)
{
	Place	   *p;

	if (places == NULL || hash_get_num_entries(places) >= PLACES_MAX)
	{
		HASHCTL		ctl;

		if (places != NULL)
			hash_destroy(places);
		ctl.keysize = sizeof(PlaceKey);
		ctl.entrysize = sizeof(Place);
		places = hash_create("gifq places", 1024, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	p = hash_search(places, pk, HASH_ENTER, NULL);
	p->tid = *tid;
}

/*
 * places_find
 *		Fill found with the row at the remembered place of pk, if snapshot
 *		sees one there and it has key (the table's first nkeys columns).
 *		fetch is the caller's, begun on rel; nblocks rel's size when the
 *		caller locked it.
 */
bool
places_find(Relation rel, IndexFetchTableData *fetch, BlockNumber nblocks,
			Snapshot snapshot, const PlaceKey *pk, const Datum *key, int nkeys,
			TupleTableSlot *found)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Place	   *p = places ? hash_search(places, pk, HASH_FIND, NULL) : NULL;
	ItemPointerData tid;
	bool		call_again = false;
	bool		all_dead = false;

	if (p == NULL || ItemPointerGetBlockNumber(&p->tid) >= nblocks)
		return false;
	tid = p->tid;
	if (!table_index_fetch_tuple(fetch, &tid, snapshot, found, &call_again, &all_dead))
		return false;
	slot_getallattrs(found);
	for (int c = 0; c < nkeys; c++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, c);

		if (found->tts_isnull[c] ||
			!datum_image_eq(found->tts_values[c], key[c], att->attbyval, att->attlen))
			return false;
	}
	return true;
}
