/*-------------------------------------------------------------------------
 * currency.c
 *	  Currency codes: their syntax and the ISO 4217 minor-unit exponents.
 *
 * A currency code is 3 to 8 upper-case ASCII letters or digits, the first
 * a letter.  Codes in
 * ISO 4217 use the number of decimal places ISO assigns them (USD 2,
 * JPY 0, BHD 3, CLF 4); any other well-formed code, such as a program's
 * points code "PTS", counts whole units.  Codes ISO lists with no minor
 * unit (XAU, XDR, ...) count whole units too.  A few recently withdrawn
 * codes are kept with their last exponent, so stored amounts in them keep
 * their meaning.  The table is compiled in: lookups touch no catalog, so
 * the type's I/O stays IMMUTABLE.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/currency.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "money.h"

#include "utils/builtins.h"

typedef struct CurrencyExponent
{
	char		code[4];
	int8		exponent;
} CurrencyExponent;

/*
 * ISO 4217 codes whose exponent is not zero, sorted by code for binary
 * search.  Codes with exponent zero (JPY, KRW, XOF, ...) need no entry:
 * zero is what an unlisted code gets.  Kept in one table so that a reader
 * can check it against the standard line by line.
 */
static const CurrencyExponent iso4217[] = {
	{"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2},
	{"ARS", 2}, {"AUD", 2}, {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2},
	{"BDT", 2}, {"BGN", 2}, {"BHD", 3}, {"BMD", 2}, {"BND", 2}, {"BOB", 2},
	{"BOV", 2}, {"BRL", 2}, {"BSD", 2}, {"BTN", 2}, {"BWP", 2}, {"BYN", 2},
	{"BZD", 2}, {"CAD", 2}, {"CDF", 2}, {"CHE", 2}, {"CHF", 2}, {"CHW", 2},
	{"CLF", 4}, {"CNY", 2}, {"COP", 2}, {"COU", 2}, {"CRC", 2}, {"CUC", 2},
	{"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DKK", 2}, {"DOP", 2}, {"DZD", 2},
	{"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2}, {"FJD", 2}, {"FKP", 2},
	{"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2}, {"GMD", 2}, {"GTQ", 2},
	{"GYD", 2}, {"HKD", 2}, {"HNL", 2}, {"HRK", 2}, {"HTG", 2}, {"HUF", 2},
	{"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2}, {"JMD", 2},
	{"JOD", 3}, {"KES", 2}, {"KGS", 2}, {"KHR", 2}, {"KPW", 2}, {"KWD", 3},
	{"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2}, {"LKR", 2}, {"LRD", 2},
	{"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2}, {"MGA", 2}, {"MKD", 2},
	{"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2},
	{"MWK", 2}, {"MXN", 2}, {"MXV", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2},
	{"NGN", 2}, {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3},
	{"PAB", 2}, {"PEN", 2}, {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2},
	{"QAR", 2}, {"RON", 2}, {"RSD", 2}, {"RUB", 2}, {"SAR", 2}, {"SBD", 2},
	{"SCR", 2}, {"SDG", 2}, {"SEK", 2}, {"SGD", 2}, {"SHP", 2}, {"SLE", 2},
	{"SLL", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2}, {"STN", 2}, {"SVC", 2},
	{"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2}, {"TND", 3},
	{"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2}, {"TZS", 2}, {"UAH", 2},
	{"USD", 2}, {"USN", 2}, {"UYU", 2}, {"UYW", 4}, {"UZS", 2}, {"VED", 2},
	{"VES", 2}, {"WST", 2}, {"XCD", 2}, {"XCG", 2}, {"YER", 2}, {"ZAR", 2},
	{"ZMW", 2}, {"ZWG", 2}, {"ZWL", 2},
};

/*
 * currency_code_is_valid
 *		True if code[0..len) is 3 to 8 upper-case ASCII letters or digits,
 *		the first a letter.
 *
 * A leading letter keeps "1 000" from reading as one unit of currency
 * "000".
 */
bool
currency_code_is_valid(const char *code, int len)
{
	if (len < GIFQ_CURRENCY_MINLEN || len > GIFQ_CURRENCY_LEN)
		return false;
	for (int i = 0; i < len; i++)
	{
		char		c = code[i];

		if (!((c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/*
 * currency_exponent
 *		Decimal places of a currency, given its NUL-padded 8-byte code.
 *
 * Binary search over the ISO table; only three-letter codes can be in it.
 * Never throws.
 */
int
currency_exponent(const char *currency)
{
	int			lo = 0;
	int			hi = lengthof(iso4217) - 1;

	if (currency[3] != '\0')
		return 0;
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = memcmp(currency, iso4217[mid].code, 3);

		if (c == 0)
			return iso4217[mid].exponent;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return 0;
}

/*
 * currency_from_text
 *		Validate a currency code given as text and store it NUL-padded in
 *		currency[GIFQ_CURRENCY_LEN].
 *
 * Throws QG004 (invalid_currency_code) naming the code.
 */
void
currency_from_text(text *code, char *currency)
{
	int			len = VARSIZE_ANY_EXHDR(code);
	const char *str = VARDATA_ANY(code);

	if (!currency_code_is_valid(str, len))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_CURRENCY),
				 errmsg("invalid currency code \"%s\"", text_to_cstring(code)),
				 errhint("A currency code is 3 to 8 upper-case letters or digits, starting with a letter: an ISO 4217 code such as USD, or a points code such as PTS.")));
	memset(currency, 0, GIFQ_CURRENCY_LEN);
	memcpy(currency, str, len);
}
