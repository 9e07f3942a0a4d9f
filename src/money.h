/*-------------------------------------------------------------------------
 * money.h
 *	  The gifq_money type: an amount in minor units with its currency.
 *
 * Storage: 16 bytes, fixed length, passed by reference, double-aligned.
 *
 *	  int64 units		amount in the currency's minor units (cents for USD,
 *						yen for JPY, whole points for PTS)
 *	  char  currency[8]	upper-case code, NUL-padded to 8 bytes
 *
 * Every value is built zeroed, so two equal values are equal byte for
 * byte: hashing and byte-wise comparison agree with the "=" operator.
 *
 * Binary format (send/recv), a fixed contract never to be changed:
 *	  int64, network byte order: units
 *	  8 bytes: the currency code, NUL-padded
 * recv refuses a code that is not 3 to 8 upper-case letters or digits
 * followed only by NULs.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/money.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_MONEY_H
#define GIFQ_MONEY_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/numeric.h"

#define GIFQ_CURRENCY_LEN		8
#define GIFQ_CURRENCY_MINLEN	3

typedef struct GifqMoney
{
	int64		units;
	char		currency[GIFQ_CURRENCY_LEN];
} GifqMoney;

StaticAssertDecl(sizeof(GifqMoney) == 16, "gifq_money must be 16 bytes");

#define DatumGetGifqMoneyP(X)		((GifqMoney *) DatumGetPointer(X))
#define GifqMoneyPGetDatum(X)		PointerGetDatum(X)
#define PG_GETARG_GIFQ_MONEY_P(n)	DatumGetGifqMoneyP(PG_GETARG_DATUM(n))
#define PG_RETURN_GIFQ_MONEY_P(x)	return GifqMoneyPGetDatum(x)

/* currency.c */
extern bool currency_code_is_valid(const char *code, int len);
extern int	currency_exponent(const char *currency);
extern void currency_from_text(text *code, char *currency);

/* money.c */
extern GifqMoney *money_make(int64 units, const char *currency);
extern int	money_cmp_internal(const GifqMoney *a, const GifqMoney *b);
extern char *money_to_cstring(const GifqMoney *m);
extern void money_add_into(GifqMoney *result, const GifqMoney *a,
						   const GifqMoney *b);
extern bool money_div_half_even(Numeric num, Numeric den, int64 *result);

#endif							/* GIFQ_MONEY_H */
