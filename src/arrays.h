/*-------------------------------------------------------------------------
 * arrays.h
 *	  SQL arrays from C arrays, for statements that take a whole batch as
 *	  array parameters (unnest) instead of one row per call.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/arrays.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_ARRAYS_H
#define GIFQ_ARRAYS_H

#include "postgres.h"

#include "utils/timestamp.h"

extern Datum datum_array(Datum *elems, int n, Oid type);
extern Datum int8_array(const int64 *v, int n);
extern Datum int4_array(const int32 *v, int n);
extern Datum text_array(const char *const *v, int n);
extern Datum timestamptz_array(const TimestampTz *v, int n);

#endif							/* GIFQ_ARRAYS_H */
