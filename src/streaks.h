/*-------------------------------------------------------------------------
 * streaks.h
 *	  Keeping a batch's streaks at once (events_batch.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/streaks.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_STREAKS_H
#define GIFQ_STREAKS_H

#include "postgres.h"

#include "utils/timestamp.h"

extern void streaks_defer(bool on);
extern void streaks_record_batch(int64 program_id, int n, const int64 *member_ids,
								 char *const *event_types,
								 const TimestampTz *occurred_at);

#endif							/* GIFQ_STREAKS_H */
