/*-------------------------------------------------------------------------
 * places.h
 *	  Where a backend last found rows it writes often (places.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/places.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_PLACES_H
#define GIFQ_PLACES_H

#include "postgres.h"

#include "access/relscan.h"
#include "executor/tuptable.h"
#include "storage/block.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* keys longer than this are not remembered */
#define PLACE_KEY_BYTES 48

/* A row's key as bytes: which table, and its key columns' values. */
typedef struct PlaceKey
{
	Oid			relid;
	uint16		len;
	char		bytes[PLACE_KEY_BYTES];
} PlaceKey;

/* key: the values of the table's first nkeys columns, its primary key */
extern bool places_key(Relation rel, int nkeys, const Datum *key, PlaceKey *pk);
extern bool places_find(Relation rel, IndexFetchTableData *fetch, BlockNumber nblocks,
						Snapshot snapshot, const PlaceKey *pk, const Datum *key,
						int nkeys, TupleTableSlot *found);
extern void places_remember(const PlaceKey *pk, ItemPointer tid);

#endif							/* GIFQ_PLACES_H */
