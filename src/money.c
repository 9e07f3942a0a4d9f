/*-------------------------------------------------------------------------
 * money.c
 *	  The gifq_money type: I/O, comparison, sorting and arithmetic.
 *
 * An amount is an int64 count of the currency's minor units plus the
 * currency code (see money.h).  Nothing here rounds silently: text input
 * with more decimal places than the currency has, arithmetic across
 * currencies and int64 overflow are all errors.  Multiplying or dividing
 * by a numeric is the one place a result is rounded, half to even, to the
 * currency's minor unit.
 *
 * Text I/O reads no setting and no table, so it is IMMUTABLE and
 * locale-free.  One three-way compare, money_cmp_internal(), orders every
 * operator, the btree opclass, sorting and min/max (money_agg.c): by
 * currency code, then by amount.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/money.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "money.h"

#include "common/hashfn.h"
#include "common/int.h"
#include "libpq/pqformat.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/sortsupport.h"

/* longest output: sign, 19 digits, point, leading zero, space, code, NUL */
#define MONEY_OUTPUT_MAX	(1 + 20 + 1 + 1 + 1 + GIFQ_CURRENCY_LEN + 1)

/* 10^exponent for every exponent currency_exponent() can return */
static const int64 pow10[] = {1, 10, 100, 1000, 10000};

static inline bool money_isspace(char c);
static void currency_cstring(const GifqMoney *m, char *buf);
static char *format_units(int64 units, const char *currency);
static bool money_parse(const char *str, GifqMoney *result,
						Node *escontext);
static bool accumulate_units(const char *int_digits, int int_len,
							 const char *frac_digits, int frac_len,
							 int exponent, bool negative, int64 *result);
static void check_same_currency(const GifqMoney *a, const GifqMoney *b,
								bool subtracting);
static void report_out_of_range(const GifqMoney *a, const char *op,
								const char *b) pg_attribute_noreturn();
static Numeric numeric_check_finite(Numeric factor, const GifqMoney *m);

static GifqMoney *money_scale(const GifqMoney *m, Numeric num, Numeric den,
							  const char *op, Numeric operand);


/* ----------------------------------------------------------------------
 * Private routines
 * ----------------------------------------------------------------------
 */

/* White space as the C locale sees it, whatever the server's locale. */
static inline bool
money_isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\f' || c == '\v';
}

/*
 * currency_cstring
 *		Copy a value's currency code into buf[GIFQ_CURRENCY_LEN + 1] as a
 *		NUL-terminated string (an 8-letter code fills the field unpadded).
 */
static void
currency_cstring(const GifqMoney *m, char *buf)
{
	memcpy(buf, m->currency, GIFQ_CURRENCY_LEN);
	buf[GIFQ_CURRENCY_LEN] = '\0';
}

/*
 * format_units
 *		Canonical text of an amount: optional minus sign, at least one
 *		integer digit, the currency's exact number of decimal places, one
 *		space, the code.  Returns a palloc'd string; never throws except
 *		on out-of-memory.
 */
static char *
format_units(int64 units, const char *currency)
{
	char		digits[24];
	char	   *out = palloc(MONEY_OUTPUT_MAX);
	char	   *p = out;
	int			exponent = currency_exponent(currency);
	uint64		mag;
	int			ndigits = 0;

	/* magnitude without negating INT64_MIN */
	mag = units < 0 ? (uint64) (-(units + 1)) + 1 : (uint64) units;
	do
	{
		digits[ndigits++] = (char) ('0' + mag % 10);
		mag /= 10;
	} while (mag > 0 || ndigits <= exponent);

	if (units < 0)
		*p++ = '-';
	while (ndigits > 0)
	{
		if (ndigits == exponent)
			*p++ = '.';
		*p++ = digits[--ndigits];
	}
	*p++ = ' ';
	memcpy(p, currency, GIFQ_CURRENCY_LEN);
	p[GIFQ_CURRENCY_LEN] = '\0';
	return out;
}

/*
 * money_parse
 *		Parse "<amount> <code>" into *result (which must be zeroed).
 *
 * The amount is an optional sign, digits, and optionally a point followed
 * by digits; white space may surround the amount and the code and must
 * separate them.  Decimal places beyond the currency's exponent are
 * accepted only when they are zeros, so no input is ever rounded.
 *
 * Reports a soft error through escontext where the server supports it
 * and returns false; otherwise throws.
 */
static bool
money_parse(const char *str, GifqMoney *result, Node *escontext)
{
	const char *p = str;
	const char *amount;
	const char *int_start;
	const char *frac_start = NULL;
	const char *code;
	int			amount_len;
	int			int_len;
	int			frac_len = 0;
	int			code_len;
	int			exponent;
	bool		negative = false;

	while (money_isspace(*p))
		p++;
	amount = p;
	if (*p == '+' || *p == '-')
		negative = (*p++ == '-');
	int_start = p;
	while (isdigit((unsigned char) *p))
		p++;
	int_len = p - int_start;
	if (*p == '.' && int_len > 0)
	{
		frac_start = ++p;
		while (isdigit((unsigned char) *p))
			p++;
		frac_len = p - frac_start;
	}
	amount_len = p - amount;
	if (int_len == 0 || (frac_start != NULL && frac_len == 0) ||
		!money_isspace(*p))
		GIFQ_ERETURN(escontext, false,
					 (errcode(ERRCODE_GIFQ_INVALID_MONEY),
					  errmsg("invalid input syntax for type %s: \"%s\"",
							 "gifq_money", str),
					  errhint("Write an amount followed by a currency code, such as '12.50 USD' or '-3 PTS'.")));

	while (money_isspace(*p))
		p++;
	code = p;
	while (*p != '\0' && !money_isspace(*p))
		p++;
	code_len = p - code;
	while (money_isspace(*p))
		p++;
	if (code_len == 0 || *p != '\0')
		GIFQ_ERETURN(escontext, false,
					 (errcode(ERRCODE_GIFQ_INVALID_MONEY),
					  errmsg("invalid input syntax for type %s: \"%s\"",
							 "gifq_money", str),
					  errhint("Write an amount followed by a currency code, such as '12.50 USD' or '-3 PTS'.")));
	if (!currency_code_is_valid(code, code_len))
		GIFQ_ERETURN(escontext, false,
					 (errcode(ERRCODE_GIFQ_INVALID_CURRENCY),
					  errmsg("invalid currency code \"%.*s\"", code_len, code),
					  errhint("A currency code is 3 to 8 upper-case letters or digits, starting with a letter: an ISO 4217 code such as USD, or a points code such as PTS.")));
	memcpy(result->currency, code, code_len);
	exponent = currency_exponent(result->currency);

	for (int i = exponent; i < frac_len; i++)
	{
		if (frac_start[i] != '0')
			GIFQ_ERETURN(escontext, false,
						 (errcode(ERRCODE_GIFQ_EXCESS_PRECISION),
						  errmsg("amount \"%.*s\" has more decimal places than currency \"%.*s\" allows",
								 amount_len, amount, code_len, code),
						  errdetail("Currency \"%.*s\" has %d decimal places.",
									code_len, code, exponent),
						  errhint("Round the amount to %d decimal places first; gifq never rounds an amount silently.",
								  exponent)));
	}

	if (!accumulate_units(int_start, int_len, frac_start, frac_len, exponent,
						  negative, &result->units))
		GIFQ_ERETURN(escontext, false,
					 (errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
					  errmsg("amount \"%.*s\" is out of range for type %s",
							 amount_len, amount, "gifq_money"),
					  errhint("An amount in %.*s lies between %s and %s.",
							  code_len, code,
							  format_units(PG_INT64_MIN, result->currency),
							  format_units(PG_INT64_MAX, result->currency))));
	return true;
}

/*
 * accumulate_units
 *		Minor units from the integer and fractional digits of an amount,
 *		taking exactly "exponent" fractional digits (padding with zeros).
 *
 * Accumulates as a negative number, as cash_in() does, so that the most
 * negative int64 is reachable.  Returns false on overflow.
 */
static bool
accumulate_units(const char *int_digits, int int_len, const char *frac_digits,
				 int frac_len, int exponent, bool negative, int64 *result)
{
	int64		units = 0;

	for (int i = 0; i < int_len + exponent; i++)
	{
		int			digit = 0;

		if (i < int_len)
			digit = int_digits[i] - '0';
		else if (i - int_len < frac_len)
			digit = frac_digits[i - int_len] - '0';
		if (pg_mul_s64_overflow(units, 10, &units) ||
			pg_sub_s64_overflow(units, digit, &units))
			return false;
	}
	if (!negative && pg_sub_s64_overflow(0, units, &units))
		return false;
	*result = units;
	return true;
}

/*
 * check_same_currency
 *		Throw QG001 (currency_mismatch) unless a and b share a currency;
 *		the message names the operation, a + b or a - b.
 */
static void
check_same_currency(const GifqMoney *a, const GifqMoney *b, bool subtracting)
{
	if (memcmp(a->currency, b->currency, GIFQ_CURRENCY_LEN) == 0)
		return;
	if (subtracting)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_CURRENCY_MISMATCH),
				 errmsg("cannot subtract \"%s\" from \"%s\"",
						money_to_cstring(b), money_to_cstring(a)),
				 errhint("Amounts in different currencies cannot be combined; convert one of them first.")));
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_CURRENCY_MISMATCH),
			 errmsg("cannot add \"%s\" and \"%s\"",
					money_to_cstring(a), money_to_cstring(b)),
			 errhint("Amounts in different currencies cannot be combined; convert one of them first.")));
}

/*
 * report_out_of_range
 *		Throw QG002 (money_out_of_range) for "a op b".
 */
static void
report_out_of_range(const GifqMoney *a, const char *op, const char *b)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
			 errmsg("result of \"%s\" %s %s is out of range for type %s",
					money_to_cstring(a), op, b, "gifq_money"),
			 errhint("An amount in this currency lies between %s and %s.",
					 format_units(PG_INT64_MIN, a->currency),
					 format_units(PG_INT64_MAX, a->currency))));
}

/* numeric comparison and text, for the numeric arithmetic below */
static inline int
num_cmp(Datum a, Datum b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, a, b));
}

static inline char *
num_cstring(Numeric n)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   NumericGetDatum(n)));
}

/*
 * numeric_check_finite
 *		Return factor, or throw QG006 (money_not_finite) if it is NaN or
 *		an infinity.
 */
static Numeric
numeric_check_finite(Numeric factor, const GifqMoney *m)
{
	if (numeric_is_nan(factor) || numeric_is_inf(factor))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_MONEY_NOT_FINITE),
				 errmsg("cannot apply factor \"%s\" to \"%s\"",
						num_cstring(factor), money_to_cstring(m)),
				 errhint("Multiply or divide a gifq_money only by a finite number.")));
	return factor;
}

/*
 * money_div_half_even
 *		*result = num / den rounded half to even, exactly.
 *
 * Both inputs must be finite and den non-zero.  The quotient is truncated
 * and the exact remainder decides the rounding, so no intermediate scale
 * limit can bias the result.  Returns false if the result does not fit in
 * an int64.
 */
bool
money_div_half_even(Numeric num, Numeric den, int64 *result)
{
	Datum		n = NumericGetDatum(num);
	Datum		d = NumericGetDatum(den);
	Datum		zero = NumericGetDatum(int64_to_numeric(0));
	Datum		q = DirectFunctionCall2(numeric_div_trunc, n, d);
	Datum		r = DirectFunctionCall2(numeric_sub, n,
										DirectFunctionCall2(numeric_mul, q, d));
	Datum		abs_r = DirectFunctionCall1(numeric_abs, r);
	int			half = num_cmp(DirectFunctionCall2(numeric_add, abs_r, abs_r),
							   DirectFunctionCall1(numeric_abs, d));
	bool		q_odd;

	q_odd = num_cmp(DirectFunctionCall2(numeric_mod, q,
										NumericGetDatum(int64_to_numeric(2))),
					zero) != 0;
	if (half > 0 || (half == 0 && q_odd))
	{
		/* one unit away from zero, the way the exact quotient lies */
		bool		up = (num_cmp(r, zero) > 0) == (num_cmp(d, zero) > 0);

		q = DirectFunctionCall2(up ? numeric_add : numeric_sub, q,
								NumericGetDatum(int64_to_numeric(1)));
	}

	if (num_cmp(q, NumericGetDatum(int64_to_numeric(PG_INT64_MAX))) > 0 ||
		num_cmp(q, NumericGetDatum(int64_to_numeric(PG_INT64_MIN))) < 0)
		return false;
	*result = DatumGetInt64(DirectFunctionCall1(numeric_int8, q));
	return true;
}

/*
 * money_scale
 *		num / den in m's currency, rounded half to even; "op" and "operand"
 *		name the operation in an out-of-range error (QG002).
 */
static GifqMoney *
money_scale(const GifqMoney *m, Numeric num, Numeric den, const char *op,
			Numeric operand)
{
	int64		units;

	if (!money_div_half_even(num, den, &units))
		report_out_of_range(m, op, num_cstring(operand));
	return money_make(units, m->currency);
}


/* ----------------------------------------------------------------------
 * Functions for other gifq modules
 * ----------------------------------------------------------------------
 */

/*
 * money_make
 *		A new palloc'd value; currency is a NUL-padded 8-byte code.
 */
GifqMoney *
money_make(int64 units, const char *currency)
{
	GifqMoney  *m = palloc0(sizeof(GifqMoney));

	m->units = units;
	memcpy(m->currency, currency, GIFQ_CURRENCY_LEN);
	return m;
}

/*
 * currency_key
 *		The 8-byte code as an integer that orders like memcmp() of the
 *		bytes: one compare instead of a libc call per comparison.
 */
static inline uint64
currency_key(const GifqMoney *m)
{
	uint64		key;

	memcpy(&key, m->currency, sizeof(key));
	return pg_hton64(key);
}

/*
 * money_cmp_internal
 *		Three-way compare: by currency code, then by amount.  A total order
 *		over all values, so one btree can hold many currencies.
 */
int
money_cmp_internal(const GifqMoney *a, const GifqMoney *b)
{
	uint64		ca = currency_key(a);
	uint64		cb = currency_key(b);

	if (ca != cb)
		return ca < cb ? -1 : 1;
	if (a->units != b->units)
		return a->units < b->units ? -1 : 1;
	return 0;
}

/*
 * money_to_cstring
 *		The canonical text of a value, palloc'd.
 */
char *
money_to_cstring(const GifqMoney *m)
{
	return format_units(m->units, m->currency);
}

/*
 * money_add_into
 *		*result = a + b; result may be a or b.  Throws QG001 on mixed
 *		currencies and QG002 on overflow.
 */
void
money_add_into(GifqMoney *result, const GifqMoney *a, const GifqMoney *b)
{
	int64		sum;

	check_same_currency(a, b, false);
	if (pg_add_s64_overflow(a->units, b->units, &sum))
		report_out_of_range(a, "+", psprintf("\"%s\"", money_to_cstring(b)));
	if (result != a)
		memcpy(result->currency, a->currency, GIFQ_CURRENCY_LEN);
	result->units = sum;
}


/* ----------------------------------------------------------------------
 * Input and output
 * ----------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(gifq_money_in);

/*
 * gifq_money_in
 *		Text input: '12.50 USD', '-3 PTS'.
 */
Datum
gifq_money_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	GifqMoney  *result = palloc0(sizeof(GifqMoney));

	if (!money_parse(str, result, fcinfo->context))
		PG_RETURN_NULL();
	PG_RETURN_GIFQ_MONEY_P(result);
}

PG_FUNCTION_INFO_V1(gifq_money_out);

/*
 * gifq_money_out
 *		Canonical text output, always with the currency's decimal places.
 */
Datum
gifq_money_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(money_to_cstring(PG_GETARG_GIFQ_MONEY_P(0)));
}

PG_FUNCTION_INFO_V1(gifq_money_recv);

/*
 * gifq_money_recv
 *		Binary input (format in money.h).  Every field is checked before
 *		the value is built.
 */
Datum
gifq_money_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int64		units = pq_getmsgint64(buf);
	const char *code = pq_getmsgbytes(buf, GIFQ_CURRENCY_LEN);
	int			len = strnlen(code, GIFQ_CURRENCY_LEN);

	if (!currency_code_is_valid(code, len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid currency code in external \"%s\" value",
						"gifq_money")));
	for (int i = len; i < GIFQ_CURRENCY_LEN; i++)
	{
		if (code[i] != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid currency code padding in external \"%s\" value",
							"gifq_money")));
	}
	PG_RETURN_GIFQ_MONEY_P(money_make(units, code));
}

PG_FUNCTION_INFO_V1(gifq_money_send);

/*
 * gifq_money_send
 *		Binary output (format in money.h).
 */
Datum
gifq_money_send(PG_FUNCTION_ARGS)
{
	GifqMoney  *m = PG_GETARG_GIFQ_MONEY_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, m->units);
	pq_sendbytes(&buf, m->currency, GIFQ_CURRENCY_LEN);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}


/* ----------------------------------------------------------------------
 * Comparison, hashing and sorting
 * ----------------------------------------------------------------------
 */

#define MONEY_CMP_FUNC(name, test) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	int			c = money_cmp_internal(PG_GETARG_GIFQ_MONEY_P(0), \
									   PG_GETARG_GIFQ_MONEY_P(1)); \
	PG_RETURN_BOOL(test); \
}

/* the six comparison operators, all through money_cmp_internal() */
MONEY_CMP_FUNC(gifq_money_eq, c == 0)
MONEY_CMP_FUNC(gifq_money_ne, c != 0)
MONEY_CMP_FUNC(gifq_money_lt, c < 0)
MONEY_CMP_FUNC(gifq_money_le, c <= 0)
MONEY_CMP_FUNC(gifq_money_gt, c > 0)
MONEY_CMP_FUNC(gifq_money_ge, c >= 0)

PG_FUNCTION_INFO_V1(gifq_money_cmp);

/*
 * gifq_money_cmp
 *		btree support function 1.
 */
Datum
gifq_money_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(money_cmp_internal(PG_GETARG_GIFQ_MONEY_P(0),
									   PG_GETARG_GIFQ_MONEY_P(1)));
}

/* sort comparator that skips the fmgr call per comparison */
static int
money_fastcmp(Datum x, Datum y, SortSupport ssup)
{
	return money_cmp_internal(DatumGetGifqMoneyP(x), DatumGetGifqMoneyP(y));
}

#if SIZEOF_DATUM == 8
/*
 * Abbreviated keys: a 64-bit integer that orders values as
 * money_cmp_internal() does wherever two keys differ, so most comparisons
 * of a sort are one integer compare with no pointer to follow.
 *
 *	  bits 63..48	the first three characters of the code, each ranked
 *					0 (end of code), 1..10 ('0'..'9') or 11..36 ('A'..'Z')
 *	  bit  47		set when the code is longer than three characters
 *	  bits 46..0	for a three-character code, units + 2^46 clamped to
 *					[0, 2^47 - 1]; zero for a longer code
 *
 * Longer codes that share a prefix, and amounts beyond +-2^46 minor units,
 * tie and are settled by the full comparison.
 */
#define ABBREV_UNIT_BITS	47
#define ABBREV_UNIT_BIAS	(INT64CONST(1) << (ABBREV_UNIT_BITS - 1))

/* rank of a code character in memcmp order, with 0 for the padding */
static inline uint64
abbrev_char_rank(char c)
{
	if (c == '\0')
		return 0;
	if (c <= '9')
		return 1 + (c - '0');
	return 11 + (c - 'A');
}

static Datum
money_abbrev_convert(Datum original, SortSupport ssup)
{
	GifqMoney  *m = DatumGetGifqMoneyP(original);
	uint64		prefix;
	uint64		units = 0;
	bool		longer = m->currency[3] != '\0';

	prefix = (abbrev_char_rank(m->currency[0]) * 37 +
			  abbrev_char_rank(m->currency[1])) * 37 +
		abbrev_char_rank(m->currency[2]);
	if (!longer)
	{
		int64		clamped = Min(Max(m->units, -ABBREV_UNIT_BIAS),
								  ABBREV_UNIT_BIAS - 1);

		units = (uint64) (clamped + ABBREV_UNIT_BIAS);
	}
	return (Datum) ((prefix << (ABBREV_UNIT_BITS + 1)) |
					((uint64) longer << ABBREV_UNIT_BITS) | units);
}

/* keys are cheap to make and never worse than the full compare: keep them */
static bool
money_abbrev_abort(int memtupcount, SortSupport ssup)
{
	return false;
}
#endif

PG_FUNCTION_INFO_V1(gifq_money_sortsupport);

/*
 * gifq_money_sortsupport
 *		btree support function 2: a direct comparator, and abbreviated keys
 *		where the sort asks for them.
 */
Datum
gifq_money_sortsupport(PG_FUNCTION_ARGS)
{
	SortSupport ssup = (SortSupport) PG_GETARG_POINTER(0);

	ssup->comparator = money_fastcmp;
#if SIZEOF_DATUM == 8
	if (ssup->abbreviate)
	{
		ssup->abbrev_converter = money_abbrev_convert;
		ssup->abbrev_abort = money_abbrev_abort;
		ssup->abbrev_full_comparator = money_fastcmp;
		ssup->comparator = ssup_datum_unsigned_cmp;
	}
#endif
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gifq_money_hash);

/*
 * gifq_money_hash
 *		hash support function 1.  Equal values are equal byte for byte
 *		(money.h), so the whole struct is hashed.
 */
Datum
gifq_money_hash(PG_FUNCTION_ARGS)
{
	return hash_any((unsigned char *) PG_GETARG_GIFQ_MONEY_P(0),
					sizeof(GifqMoney));
}

PG_FUNCTION_INFO_V1(gifq_money_hash_extended);

/*
 * gifq_money_hash_extended
 *		hash support function 2: the 64-bit seeded hash.
 */
Datum
gifq_money_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_any_extended((unsigned char *) PG_GETARG_GIFQ_MONEY_P(0),
							 sizeof(GifqMoney), PG_GETARG_INT64(1));
}


/* ----------------------------------------------------------------------
 * Arithmetic
 * ----------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(gifq_money_add);

/*
 * gifq_money_add
 *		a + b in one currency.
 */
Datum
gifq_money_add(PG_FUNCTION_ARGS)
{
	GifqMoney  *result = palloc0(sizeof(GifqMoney));

	money_add_into(result, PG_GETARG_GIFQ_MONEY_P(0),
				   PG_GETARG_GIFQ_MONEY_P(1));
	PG_RETURN_GIFQ_MONEY_P(result);
}

PG_FUNCTION_INFO_V1(gifq_money_sub);

/*
 * gifq_money_sub
 *		a - b in one currency.
 */
Datum
gifq_money_sub(PG_FUNCTION_ARGS)
{
	GifqMoney  *a = PG_GETARG_GIFQ_MONEY_P(0);
	GifqMoney  *b = PG_GETARG_GIFQ_MONEY_P(1);
	int64		diff;

	check_same_currency(a, b, true);
	if (pg_sub_s64_overflow(a->units, b->units, &diff))
		report_out_of_range(a, "-", psprintf("\"%s\"", money_to_cstring(b)));
	PG_RETURN_GIFQ_MONEY_P(money_make(diff, a->currency));
}

PG_FUNCTION_INFO_V1(gifq_money_neg);

/*
 * gifq_money_neg
 *		Unary minus.
 */
Datum
gifq_money_neg(PG_FUNCTION_ARGS)
{
	GifqMoney  *a = PG_GETARG_GIFQ_MONEY_P(0);
	int64		neg;

	if (pg_sub_s64_overflow(0, a->units, &neg))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
				 errmsg("result of -\"%s\" is out of range for type %s",
						money_to_cstring(a), "gifq_money"),
				 errhint("An amount in this currency lies between %s and %s.",
						 format_units(PG_INT64_MIN, a->currency),
						 format_units(PG_INT64_MAX, a->currency))));
	PG_RETURN_GIFQ_MONEY_P(money_make(neg, a->currency));
}

PG_FUNCTION_INFO_V1(gifq_money_mul);

/*
 * gifq_money_mul
 *		money * numeric, rounded half to even to the minor unit.
 */
Datum
gifq_money_mul(PG_FUNCTION_ARGS)
{
	GifqMoney  *m = PG_GETARG_GIFQ_MONEY_P(0);
	Numeric		factor = numeric_check_finite(PG_GETARG_NUMERIC(1), m);
	Datum		product = DirectFunctionCall2(numeric_mul,
											  NumericGetDatum(int64_to_numeric(m->units)),
											  NumericGetDatum(factor));

	PG_RETURN_GIFQ_MONEY_P(money_scale(m, DatumGetNumeric(product),
									   int64_to_numeric(1), "*", factor));
}

PG_FUNCTION_INFO_V1(gifq_numeric_mul_money);

/*
 * gifq_numeric_mul_money
 *		numeric * money, the commutator of gifq_money_mul.
 */
Datum
gifq_numeric_mul_money(PG_FUNCTION_ARGS)
{
	return DirectFunctionCall2(gifq_money_mul, PG_GETARG_DATUM(1),
							   PG_GETARG_DATUM(0));
}

PG_FUNCTION_INFO_V1(gifq_money_div);

/*
 * gifq_money_div
 *		money / numeric, rounded half to even to the minor unit.
 */
Datum
gifq_money_div(PG_FUNCTION_ARGS)
{
	GifqMoney  *m = PG_GETARG_GIFQ_MONEY_P(0);
	Numeric		divisor = numeric_check_finite(PG_GETARG_NUMERIC(1), m);

	if (num_cmp(NumericGetDatum(divisor),
				NumericGetDatum(int64_to_numeric(0))) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DIVISION_BY_ZERO),
				 errmsg("cannot divide \"%s\" by zero", money_to_cstring(m))));
	PG_RETURN_GIFQ_MONEY_P(money_scale(m, int64_to_numeric(m->units), divisor,
									   "/", divisor));
}


/* ----------------------------------------------------------------------
 * Construction and accessors
 * ----------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(gifq_money);

/*
 * gifq_money
 *		gifq_money(amount numeric, currency text): exact, never rounded.
 */
Datum
gifq_money(PG_FUNCTION_ARGS)
{
	Numeric		amount = PG_GETARG_NUMERIC(0);
	GifqMoney  *result = palloc0(sizeof(GifqMoney));
	Datum		scaled;
	char	   *amount_text;
	char		code[GIFQ_CURRENCY_LEN + 1];
	int			exponent;

	currency_from_text(PG_GETARG_TEXT_PP(1), result->currency);
	amount_text = num_cstring(amount);
	if (numeric_is_nan(amount) || numeric_is_inf(amount))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_MONEY_NOT_FINITE),
				 errmsg("amount \"%s\" is not finite", amount_text),
				 errhint("A gifq_money amount must be a finite number.")));

	currency_cstring(result, code);
	exponent = currency_exponent(result->currency);
	scaled = DirectFunctionCall2(numeric_mul, NumericGetDatum(amount),
								 NumericGetDatum(int64_to_numeric(pow10[exponent])));
	if (num_cmp(scaled, DirectFunctionCall2(numeric_trunc, scaled,
											Int32GetDatum(0))) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_EXCESS_PRECISION),
				 errmsg("amount \"%s\" has more decimal places than currency \"%s\" allows",
						amount_text, code),
				 errdetail("Currency \"%s\" has %d decimal places.", code,
						   exponent),
				 errhint("Round the amount to %d decimal places first; gifq never rounds an amount silently.",
						 exponent)));
	if (!money_div_half_even(DatumGetNumeric(scaled), int64_to_numeric(1),
							   &result->units))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
				 errmsg("amount \"%s\" is out of range for type %s",
						amount_text, "gifq_money"),
				 errhint("An amount in %s lies between %s and %s.", code,
						 format_units(PG_INT64_MIN, result->currency),
						 format_units(PG_INT64_MAX, result->currency))));
	PG_RETURN_GIFQ_MONEY_P(result);
}

PG_FUNCTION_INFO_V1(gifq_amount);

/*
 * gifq_amount
 *		The amount as numeric, with the currency's scale ('12.50 USD' gives
 *		12.50).
 */
Datum
gifq_amount(PG_FUNCTION_ARGS)
{
	GifqMoney  *m = PG_GETARG_GIFQ_MONEY_P(0);

	int			exponent = currency_exponent(m->currency);

	if (exponent == 0)
		PG_RETURN_NUMERIC(int64_to_numeric(m->units));
	PG_RETURN_NUMERIC(int64_div_fast_to_numeric(m->units, exponent));
}

PG_FUNCTION_INFO_V1(gifq_currency);

/*
 * gifq_currency
 *		The currency code as text.
 */
Datum
gifq_currency(PG_FUNCTION_ARGS)
{
	GifqMoney  *m = PG_GETARG_GIFQ_MONEY_P(0);

	PG_RETURN_TEXT_P(cstring_to_text_with_len(m->currency,
											  strnlen(m->currency,
													  GIFQ_CURRENCY_LEN)));
}

PG_FUNCTION_INFO_V1(gifq_minor_units);

/*
 * gifq_minor_units
 *		The amount in minor units (cents for USD).
 */
Datum
gifq_minor_units(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(PG_GETARG_GIFQ_MONEY_P(0)->units);
}

PG_FUNCTION_INFO_V1(gifq_from_minor_units);

/*
 * gifq_from_minor_units
 *		gifq_from_minor_units(units bigint, currency text): the inverse of
 *		gifq_minor_units; exact for every bigint.
 */
Datum
gifq_from_minor_units(PG_FUNCTION_ARGS)
{
	GifqMoney  *result = palloc0(sizeof(GifqMoney));

	currency_from_text(PG_GETARG_TEXT_PP(1), result->currency);
	result->units = PG_GETARG_INT64(0);
	PG_RETURN_GIFQ_MONEY_P(result);
}
