/*-------------------------------------------------------------------------
 * money_calls.h
 *	  Calls into src/money.c's I/O functions through fmgr, as the server
 *	  makes them, and the round-trip properties both targets check.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  fuzz/money_calls.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_FUZZ_MONEY_CALLS_H
#define GIFQ_FUZZ_MONEY_CALLS_H

#include "stubs.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"

#include "money.h"

extern Datum gifq_money_in(PG_FUNCTION_ARGS);
extern Datum gifq_money_out(PG_FUNCTION_ARGS);
extern Datum gifq_money_recv(PG_FUNCTION_ARGS);
extern Datum gifq_money_send(PG_FUNCTION_ARGS);

/* one-argument fmgr call with no context, as InputFunctionCall makes */
static inline Datum
call1(PGFunction fn, Datum arg)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = arg;
	fcinfo->args[0].isnull = false;
	result = fn(fcinfo);
	if (fcinfo->isnull)
		fuzz_fail("I/O function returned NULL with no error");
	return result;
}

static inline GifqMoney *
money_in(const char *str)
{
	return DatumGetGifqMoneyP(call1(gifq_money_in, CStringGetDatum(str)));
}

static inline char *
money_out(const GifqMoney *m)
{
	return DatumGetCString(call1(gifq_money_out, PointerGetDatum(m)));
}

/* recv over buf: the caller checks buf->cursor afterwards */
static inline GifqMoney *
money_recv(StringInfo buf)
{
	return DatumGetGifqMoneyP(call1(gifq_money_recv, PointerGetDatum(buf)));
}

static inline bytea *
money_send(const GifqMoney *m)
{
	/* a freshly built bytea with a 4-byte header: nothing to detoast */
	return (bytea *) DatumGetPointer(call1(gifq_money_send,
										   PointerGetDatum(m)));
}

/*
 * check_value
 *		A value the type accepted is well formed: a valid code, NUL padding
 *		after it (so equal values are equal byte for byte).
 */
static inline void
check_value(const GifqMoney *m)
{
	int			len = strnlen(m->currency, GIFQ_CURRENCY_LEN);

	if (!currency_code_is_valid(m->currency, len))
		fuzz_fail("accepted value has an invalid currency code");
	for (int i = len; i < GIFQ_CURRENCY_LEN; i++)
		if (m->currency[i] != '\0')
			fuzz_fail("accepted value has non-zero padding");
}

/*
 * check_round_trips
 *		For an accepted value v: in(out(v)) == v byte for byte, out is
 *		canonical (out(in(out(v))) == out(v)) and fits the documented
 *		maximum, and recv(send(v)) == v, consuming exactly the 16 bytes
 *		send wrote.  Any ERROR here is a property violation: the caller
 *		sets fuzz_error_jmp so that it aborts.
 */
static inline void
check_round_trips(const GifqMoney *v)
{
	char	   *out = money_out(v);
	GifqMoney  *again;
	char	   *out2;
	bytea	   *sent;
	StringInfoData buf;
	GifqMoney  *back;

	check_value(v);
	/* sign, 19 digits, point, leading zero, space, 8-letter code */
	if (strlen(out) > 1 + 20 + 1 + 1 + 1 + GIFQ_CURRENCY_LEN)
		fuzz_fail("output \"%s\" longer than the documented maximum", out);
	again = money_in(out);
	if (memcmp(again, v, sizeof(GifqMoney)) != 0)
		fuzz_fail("in(out(v)) != v for \"%s\"", out);
	out2 = money_out(again);
	if (strcmp(out, out2) != 0)
		fuzz_fail("output not canonical: \"%s\" then \"%s\"", out, out2);

	sent = money_send(v);
	if (VARSIZE_ANY_EXHDR(sent) != sizeof(GifqMoney))
		fuzz_fail("send wrote %d bytes, not 16",
				  (int) VARSIZE_ANY_EXHDR(sent));
	buf.data = palloc(sizeof(GifqMoney) + 1);
	memcpy(buf.data, VARDATA_ANY(sent), sizeof(GifqMoney));
	buf.data[sizeof(GifqMoney)] = '\0';
	buf.len = sizeof(GifqMoney);
	buf.maxlen = buf.len + 1;
	buf.cursor = 0;
	back = money_recv(&buf);
	if (buf.cursor != buf.len)
		fuzz_fail("recv(send(v)) left %d bytes", buf.len - buf.cursor);
	if (memcmp(back, v, sizeof(GifqMoney)) != 0)
		fuzz_fail("recv(send(v)) != v for \"%s\"", out);
}

#endif							/* GIFQ_FUZZ_MONEY_CALLS_H */
