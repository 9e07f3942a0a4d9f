/*-------------------------------------------------------------------------
 * fuzz_money_in.c
 *	  libFuzzer target: gifq_money text input (gifq_money_in).
 *
 * Each input, up to its first NUL (a cstring can hold no NUL), is given to
 * the real gifq_money_in.  A small reference parser, written apart from
 * money.c's and computing in 128-bit integers, decides what the answer
 * must be: the value, or which SQLSTATE refuses it (QG005 syntax, QG004
 * currency code, QG003 excess precision, QG002 range, in that order).
 * Any other code, any disagreement with the reference, or a failed round
 * trip (check_round_trips) aborts the run.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  fuzz/fuzz_money_in.c
 *-------------------------------------------------------------------------
 */
#include "money_calls.h"

#include <stdint.h>
#include <stdlib.h>

#include "gifq.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef __int128 int128_t;

static bool
ref_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
		c == '\v';
}

static bool
ref_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * reference
 *		The expected outcome for str: 0 and *units when accepted, else the
 *		SQLSTATE that must refuse it.
 */
static int
reference(const char *s, int64 *units)
{
	const char *p = s;
	const char *ip,
			   *fp = NULL,
			   *cp;
	int			ilen,
				flen = 0,
				clen,
				exponent;
	bool		neg = false;
	char		code[GIFQ_CURRENCY_LEN];
	int128_t	v = 0;
	bool		big = false;

	while (ref_space(*p))
		p++;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	for (ip = p; ref_digit(*p); p++)
		;
	ilen = p - ip;
	if (ilen == 0)
		return ERRCODE_GIFQ_INVALID_MONEY;
	if (*p == '.')
	{
		for (fp = ++p; ref_digit(*p); p++)
			;
		flen = p - fp;
		if (flen == 0)
			return ERRCODE_GIFQ_INVALID_MONEY;
	}
	if (!ref_space(*p))
		return ERRCODE_GIFQ_INVALID_MONEY;
	while (ref_space(*p))
		p++;
	for (cp = p; *p && !ref_space(*p); p++)
		;
	clen = p - cp;
	while (ref_space(*p))
		p++;
	if (clen == 0 || *p != '\0')
		return ERRCODE_GIFQ_INVALID_MONEY;
	if (clen < 3 || clen > 8 || !(cp[0] >= 'A' && cp[0] <= 'Z'))
		return ERRCODE_GIFQ_INVALID_CURRENCY;
	for (int i = 1; i < clen; i++)
		if (!((cp[i] >= 'A' && cp[i] <= 'Z') || ref_digit(cp[i])))
			return ERRCODE_GIFQ_INVALID_CURRENCY;
	memset(code, 0, sizeof(code));
	memcpy(code, cp, clen);
	exponent = currency_exponent(code);
	if (exponent < 0 || exponent > 4)
		fuzz_fail("currency_exponent(%.8s) = %d", code, exponent);
	for (int i = exponent; i < flen; i++)
		if (fp[i] != '0')
			return ERRCODE_GIFQ_EXCESS_PRECISION;

	/* value in minor units; anything past 2^100 is simply "too big" */
	for (int i = 0; i < ilen + exponent; i++)
	{
		int			d = i < ilen ? ip[i] - '0' :
			(i - ilen < flen ? fp[i - ilen] - '0' : 0);

		v = v * 10 + d;
		if (v > ((int128_t) 1 << 100))
			big = true;
		if (big)
			v = (int128_t) 1 << 100;
	}
	if (neg)
		v = -v;
	if (big || v > PG_INT64_MAX || v < PG_INT64_MIN)
		return ERRCODE_GIFQ_MONEY_OUT_OF_RANGE;
	*units = (int64) v;
	return 0;
}

static void
check_accepted(GifqMoney *v, const char *str)
{
	int64		want = 0;
	int			expected = reference(str, &want);
	char		code[6];

	if (expected != 0)
	{
		fuzz_sqlstate_text(expected, code);
		fuzz_fail("accepted \"%s\", reference refuses it with %s", str, code);
	}
	if (v->units != want)
		fuzz_fail("\"%s\" read as %lld minor units, reference says %lld",
				  str, (long long) v->units, (long long) want);
	check_round_trips(v);
}

static void
check_refused(const char *str)
{
	int64		want = 0;
	int			expected = reference(str, &want);
	char		got[6],
				exp[6];

	fuzz_sqlstate_text(fuzz_error_sqlstate, got);
	if (expected == 0)
		fuzz_fail("refused \"%s\" with %s (%s), reference accepts it as %lld",
				  str, got, fuzz_error_message, (long long) want);
	fuzz_sqlstate_text(expected, exp);
	if (fuzz_error_sqlstate != expected)
		fuzz_fail("refused \"%s\" with %s (%s), reference says %s", str,
				  got, fuzz_error_message, exp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sigjmp_buf	jb;
	char	   *str = malloc(size + 1);
	volatile int stage = 0;

	memcpy(str, data, size);
	str[size] = '\0';
	fuzz_error_jmp = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		GifqMoney  *v = money_in(str);

		stage = 1;				/* from here on an ERROR is a bug */
		check_accepted(v, str);
	}
	else if (stage == 0)
		check_refused(str);
	else
		fuzz_fail("ERROR while checking accepted \"%s\": %s", str,
				  fuzz_error_message);
	fuzz_error_jmp = NULL;
	fuzz_reset_memory();
	free(str);
	return 0;
}
