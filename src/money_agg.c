/*-------------------------------------------------------------------------
 * money_agg.c
 *	  Aggregates over gifq_money: sum(), min() and max().
 *
 * sum() accumulates in a 128-bit integer, so a running total may pass
 * beyond the range of gifq_money on the way and only the final sum must
 * fit: the result never depends on the order of the rows, and a parallel
 * plan agrees with a serial one.  The state also counts its inputs so that
 * a window frame can remove rows again (the moving-aggregate inverse).
 *
 * min() and max() follow the type's total order (currency code, then
 * amount) and return one of their inputs.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/money_agg.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "money.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"

#ifndef HAVE_INT128
#error "sum(gifq_money) needs a 128-bit integer type"
#endif

typedef struct MoneySumState
{
	int128		sum;			/* of the inputs' minor units */
	int64		count;			/* non-NULL inputs now in the sum */
	char		currency[GIFQ_CURRENCY_LEN];
} MoneySumState;

/*
 * sum_state
 *		The state argument, or NULL.  Throws if called outside an aggregate;
 *		*aggcxt receives the aggregate's memory context.
 */
static MoneySumState *
sum_state(FunctionCallInfo fcinfo, int argno, MemoryContext *aggcxt)
{
	if (!AggCheckCallContext(fcinfo, aggcxt))
		elog(ERROR, "aggregate function called in non-aggregate context");
	return PG_ARGISNULL(argno) ? NULL :
		(MoneySumState *) PG_GETARG_POINTER(argno);
}

/*
 * sum_check_currency
 *		Throw QG001 (currency_mismatch) unless the sum and the new input or
 *		partial sum share a currency.
 */
static void
sum_check_currency(const MoneySumState *state, const char *currency,
				   const char *what)
{
	char		code[GIFQ_CURRENCY_LEN + 1];
	char		other[GIFQ_CURRENCY_LEN + 1];

	if (memcmp(state->currency, currency, GIFQ_CURRENCY_LEN) == 0)
		return;
	memcpy(code, state->currency, GIFQ_CURRENCY_LEN);
	code[GIFQ_CURRENCY_LEN] = '\0';
	memcpy(other, currency, GIFQ_CURRENCY_LEN);
	other[GIFQ_CURRENCY_LEN] = '\0';
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_CURRENCY_MISMATCH),
			 errmsg("cannot add %s in \"%s\" to a sum in \"%s\"",
					what, other, code),
			 errhint("Sum one currency at a time, for example with GROUP BY gifq_currency(amount).")));
}

PG_FUNCTION_INFO_V1(gifq_money_sum_accum);

/*
 * gifq_money_sum_accum
 *		sum()'s transition function (also its moving-aggregate one).  The
 *		state lives in the aggregate's memory context.
 */
Datum
gifq_money_sum_accum(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MoneySumState *state = sum_state(fcinfo, 0, &aggcxt);
	GifqMoney  *value;

	if (PG_ARGISNULL(1))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	value = PG_GETARG_GIFQ_MONEY_P(1);
	if (state == NULL)
	{
		state = MemoryContextAllocZero(aggcxt, sizeof(MoneySumState));
		memcpy(state->currency, value->currency, GIFQ_CURRENCY_LEN);
	}
	else if (memcmp(state->currency, value->currency, GIFQ_CURRENCY_LEN) != 0)
	{
		if (state->count == 0)
			memcpy(state->currency, value->currency, GIFQ_CURRENCY_LEN);
		else
			sum_check_currency(state, value->currency, "an amount");
	}
	state->sum += value->units;
	state->count++;
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(gifq_money_sum_inv);

/*
 * gifq_money_sum_inv
 *		Moving-aggregate inverse: remove an input a window frame has left.
 *		Only inputs earlier added come back, so their currency matches.
 */
Datum
gifq_money_sum_inv(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MoneySumState *state = sum_state(fcinfo, 0, &aggcxt);

	if (state == NULL)
		elog(ERROR, "sum(gifq_money) inverse called without a state");
	if (!PG_ARGISNULL(1))
	{
		state->sum -= PG_GETARG_GIFQ_MONEY_P(1)->units;
		state->count--;
	}
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(gifq_money_sum_combine);

/*
 * gifq_money_sum_combine
 *		Merge two partial sums (parallel aggregation).
 */
Datum
gifq_money_sum_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MoneySumState *a = sum_state(fcinfo, 0, &aggcxt);
	MoneySumState *b = PG_ARGISNULL(1) ? NULL :
		(MoneySumState *) PG_GETARG_POINTER(1);

	if (b == NULL || b->count == 0)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL || a->count == 0)
	{
		MoneySumState *copy = MemoryContextAlloc(aggcxt, sizeof(MoneySumState));

		memcpy(copy, b, sizeof(MoneySumState));
		PG_RETURN_POINTER(copy);
	}
	sum_check_currency(a, b->currency, "a partial sum");
	a->sum += b->sum;
	a->count += b->count;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(gifq_money_sum_serialize);

/*
 * gifq_money_sum_serialize
 *		State to bytea, to pass partial sums between parallel workers.
 */
Datum
gifq_money_sum_serialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MoneySumState *state = sum_state(fcinfo, 0, &aggcxt);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, (int64) (state->sum >> 64));
	pq_sendint64(&buf, (int64) (uint64) state->sum);
	pq_sendint64(&buf, state->count);
	pq_sendbytes(&buf, state->currency, GIFQ_CURRENCY_LEN);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(gifq_money_sum_deserialize);

/*
 * gifq_money_sum_deserialize
 *		bytea to state, in the aggregate's memory context.
 */
Datum
gifq_money_sum_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	bytea	   *bytes;
	StringInfoData buf;
	MoneySumState *state;
	uint64		high;
	uint64		low;

	(void) sum_state(fcinfo, 1, &aggcxt);
	bytes = PG_GETARG_BYTEA_PP(0);
	/* read in place; PostgreSQL 17's initReadOnlyStringInfo() does this */
	buf.data = VARDATA_ANY(bytes);
	buf.len = VARSIZE_ANY_EXHDR(bytes);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	state = MemoryContextAllocZero(aggcxt, sizeof(MoneySumState));
	high = (uint64) pq_getmsgint64(&buf);
	low = (uint64) pq_getmsgint64(&buf);
	state->sum = (int128) (((uint128) high << 64) | low);
	state->count = pq_getmsgint64(&buf);
	memcpy(state->currency, pq_getmsgbytes(&buf, GIFQ_CURRENCY_LEN),
		   GIFQ_CURRENCY_LEN);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(gifq_money_sum_final);

/*
 * gifq_money_sum_final
 *		The sum as gifq_money; NULL when no non-NULL input.  Throws QG002
 *		when the exact sum does not fit.
 */
Datum
gifq_money_sum_final(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MoneySumState *state = sum_state(fcinfo, 0, &aggcxt);

	if (state == NULL || state->count == 0)
		PG_RETURN_NULL();
	if (state->sum > PG_INT64_MAX || state->sum < PG_INT64_MIN)
	{
		GifqMoney  *bound = money_make(state->sum > 0 ? PG_INT64_MAX : PG_INT64_MIN,
									   state->currency);
		char		code[GIFQ_CURRENCY_LEN + 1];

		memcpy(code, state->currency, GIFQ_CURRENCY_LEN);
		code[GIFQ_CURRENCY_LEN] = '\0';
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
				 errmsg("sum of %lld amounts in \"%s\" is out of range for type %s",
						(long long) state->count, code, "gifq_money"),
				 errdetail("The sum lies %s %s.",
						   state->sum > 0 ? "above" : "below",
						   money_to_cstring(bound))));
	}
	PG_RETURN_GIFQ_MONEY_P(money_make((int64) state->sum, state->currency));
}

PG_FUNCTION_INFO_V1(gifq_money_larger);

/*
 * gifq_money_larger
 *		The greater of two values, by the total order; max()'s transition.
 */
Datum
gifq_money_larger(PG_FUNCTION_ARGS)
{
	GifqMoney  *a = PG_GETARG_GIFQ_MONEY_P(0);
	GifqMoney  *b = PG_GETARG_GIFQ_MONEY_P(1);

	PG_RETURN_GIFQ_MONEY_P(money_cmp_internal(a, b) >= 0 ? a : b);
}

PG_FUNCTION_INFO_V1(gifq_money_smaller);

/*
 * gifq_money_smaller
 *		The lesser of two values, by the total order; min()'s transition.
 */
Datum
gifq_money_smaller(PG_FUNCTION_ARGS)
{
	GifqMoney  *a = PG_GETARG_GIFQ_MONEY_P(0);
	GifqMoney  *b = PG_GETARG_GIFQ_MONEY_P(1);

	PG_RETURN_GIFQ_MONEY_P(money_cmp_internal(a, b) <= 0 ? a : b);
}
