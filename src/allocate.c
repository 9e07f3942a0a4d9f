/*-------------------------------------------------------------------------
 * allocate.c
 *	  gifq_allocate: split an amount by integer ratios without losing or
 *	  making up a minor unit.
 *
 * Largest-remainder method: each share is first rounded down, then the
 * minor units left over go one each to the shares with the largest
 * remainders, the earlier share winning a tie.  The shares always sum to
 * the total exactly, no share differs from its exact value by a whole
 * minor unit or more, and a negative total splits as the mirror image of
 * its magnitude.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/allocate.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "money.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#ifndef HAVE_INT128
#error "gifq_allocate needs a 128-bit integer type"
#endif

typedef struct AllocShare
{
	int			index;			/* position in the ratios array */
	uint64		remainder;		/* (|total| * ratio) mod sum of ratios */
} AllocShare;

static void report_bad_ratios(ArrayType *ratios, const char *detail)
			pg_attribute_noreturn();

/*
 * report_bad_ratios
 *		Throw QG007 (invalid_allocation_ratios) naming the array.
 */
static void
report_bad_ratios(ArrayType *ratios, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_INVALID_RATIOS),
			 errmsg("invalid allocation ratios \"%s\"",
					OidOutputFunctionCall(F_ARRAY_OUT,
										  PointerGetDatum(ratios))),
			 errdetail_internal("%s", detail),
			 errhint("Give one or more non-negative integer ratios with a positive sum, such as '{1,1,2}'.")));
}

/* larger remainder first, then earlier position */
static int
share_cmp(const void *a, const void *b)
{
	const AllocShare *x = a;
	const AllocShare *y = b;

	if (x->remainder != y->remainder)
		return x->remainder > y->remainder ? -1 : 1;
	return x->index - y->index;
}

/*
 * signed_units
 *		A magnitude of at most 2^63 with the total's sign, as int64.
 */
static int64
signed_units(uint64 magnitude, bool negative)
{
	if (!negative)
		return (int64) magnitude;
	if (magnitude == (uint64) PG_INT64_MAX + 1)
		return PG_INT64_MIN;
	return -(int64) magnitude;
}

PG_FUNCTION_INFO_V1(gifq_allocate);

/*
 * gifq_allocate
 *		gifq_allocate(total gifq_money, ratios int[]) returns gifq_money[],
 *		one share per ratio, summing exactly to total.
 */
Datum
gifq_allocate(PG_FUNCTION_ARGS)
{
	GifqMoney  *total = PG_GETARG_GIFQ_MONEY_P(0);
	ArrayType  *ratios = PG_GETARG_ARRAYTYPE_P(1);
	Oid			money_type = get_fn_expr_argtype(fcinfo->flinfo, 0);
	bool		negative = total->units < 0;
	uint64		magnitude;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int64		ratio_sum = 0;
	uint64		given = 0;
	uint64		leftover;
	uint64	   *shares;
	AllocShare *order;
	Datum	   *result;

	if (!OidIsValid(money_type))
		elog(ERROR, "gifq_allocate: could not determine the argument type");
	if (ARR_NDIM(ratios) != 1)
		report_bad_ratios(ratios, "The ratios must form a one-dimensional, non-empty array.");
	deconstruct_array(ratios, INT4OID, sizeof(int32), true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (nulls[i])
			report_bad_ratios(ratios, "A ratio is NULL.");
		if (DatumGetInt32(elems[i]) < 0)
			report_bad_ratios(ratios, psprintf("Ratio %d is negative.",
											   DatumGetInt32(elems[i])));
		ratio_sum += DatumGetInt32(elems[i]);
	}
	if (ratio_sum == 0)
		report_bad_ratios(ratios, "The ratios sum to zero.");

	magnitude = negative ? (uint64) (-(total->units + 1)) + 1 :
		(uint64) total->units;
	shares = palloc(n * sizeof(uint64));
	order = palloc(n * sizeof(AllocShare));
	for (int i = 0; i < n; i++)
	{
		uint128		exact = (uint128) magnitude * (uint64) DatumGetInt32(elems[i]);

		CHECK_FOR_INTERRUPTS();
		shares[i] = (uint64) (exact / (uint64) ratio_sum);
		order[i].index = i;
		order[i].remainder = (uint64) (exact % (uint64) ratio_sum);
		given += shares[i];
	}

	/* fewer than n units are left, each for a share with a remainder */
	leftover = magnitude - given;
	qsort(order, n, sizeof(AllocShare), share_cmp);
	for (uint64 k = 0; k < leftover; k++)
		shares[order[k].index]++;

	result = palloc(n * sizeof(Datum));
	for (int i = 0; i < n; i++)
		result[i] = GifqMoneyPGetDatum(money_make(signed_units(shares[i], negative),
												  total->currency));
	PG_RETURN_ARRAYTYPE_P(construct_array(result, n, money_type,
										  sizeof(GifqMoney), false,
										  TYPALIGN_DOUBLE));
}
