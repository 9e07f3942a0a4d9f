/*-------------------------------------------------------------------------
 * arrays.c
 *	  SQL arrays from C arrays (int8[], int4[], text[], timestamptz[], or
 *	  Datums of any type), in the current memory context.  A batch passes
 *	  its rows to one statement as arrays: one plan and one execution for
 *	  the whole batch.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/arrays.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "arrays.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

Datum
datum_array(Datum *elems, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, n, type, typlen, typbyval,
										   typalign));
}

Datum
int8_array(const int64 *v, int n)
{
	Datum	   *d = palloc(Max(n, 1) * sizeof(Datum));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return datum_array(d, n, INT8OID);
}

Datum
int4_array(const int32 *v, int n)
{
	Datum	   *d = palloc(Max(n, 1) * sizeof(Datum));

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(v[i]);
	return datum_array(d, n, INT4OID);
}

Datum
text_array(const char *const *v, int n)
{
	Datum	   *d = palloc(Max(n, 1) * sizeof(Datum));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(v[i]);
	return datum_array(d, n, TEXTOID);
}

Datum
timestamptz_array(const TimestampTz *v, int n)
{
	Datum	   *d = palloc(Max(n, 1) * sizeof(Datum));

	for (int i = 0; i < n; i++)
		d[i] = TimestampTzGetDatum(v[i]);
	return datum_array(d, n, TIMESTAMPTZOID);
}
