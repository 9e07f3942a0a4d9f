/*-------------------------------------------------------------------------
 * settings.c
 *	  A backend's cache of what a redemption reads besides the member: the
 *	  program, its points rate and limits, the brand, and the program's
 *	  accounts in the card's currency.
 *
 * These change rarely (an admin call, a catalog sync every few minutes)
 * while a platform redeems many times a second, and reading them every
 * time was a fifth of a redemption's work.  Every change to them bumps the
 * one-row table gifq.settings_version in the changing transaction
 * (triggers, gifq--0.2.0--0.3.0.sql), and the statement that locks the
 * member reads that row too.  An entry here was read in a snapshot showing
 * some version; a later snapshot showing the same version of the same
 * table (the extension may have been dropped and created again) has seen
 * no committed change since, so the entry is exactly what that snapshot
 * holds.  On any other version the cache is emptied and the entry read
 * again, in one statement.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/settings.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "ledger.h"
#include "money.h"
#include "orders.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"

/*
 * Entries a backend keeps (one per program, brand and card currency, about
 * a kilobyte each); a full cache is emptied rather than pruned, so its
 * memory stays bounded.
 */
#define SETTINGS_CACHE_SIZE 128

typedef struct SettingsEntry
{
	int64		program_id;
	char	   *brand;
	char		currency[GIFQ_CURRENCY_LEN];
	RedeemSettings settings;
} SettingsEntry;

static MemoryContext settings_cxt = NULL;
static SettingsEntry cache[SETTINGS_CACHE_SIZE];
static int	cache_used = 0;
static int64 cache_version = 0;
static Oid	cache_table = InvalidOid;

static SPIPlanPtr plan_settings;

/*
 * What redeem_settings reads: program, rate, limits, brand and the three
 * system accounts, with the version it saw.
 */
#define SETTINGS_READ \
	"SELECT v.version, v.tableoid," \
	"  p.currency, p.points_code, p.points_per_unit, r.points_per_unit, p.timezone," \
	"  l.max_redemptions_per_day, l.max_value_per_day, l.max_single_value," \
	"  l.verification_above, l.recipient_yearly_flag," \
	"  b.id IS NOT NULL, b.country, b.currency, b.discount_pct, b.in_stock," \
	"  b.discontinued_at IS NOT NULL, b.denominations, b.min_value, b.max_value," \
	"  ia.*, fa.*, ya.*" \
	" FROM gifq.programs p CROSS JOIN gifq.settings_version v" \
	" LEFT JOIN gifq.rates r ON r.program_id = p.id AND r.currency = $2" \
	" LEFT JOIN gifq.limits l ON l.program_id = p.id" \
	" LEFT JOIN gifq.brands b ON b.id = $3" \
	" LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS " FROM gifq.accounts a" \
	"  WHERE a.program_id = p.id AND a.member_id IS NULL" \
	"  AND a.code = 'issuance' AND a.currency = p.points_code) ia ON true" \
	" LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS " FROM gifq.accounts a" \
	"  WHERE a.program_id = p.id AND a.member_id IS NULL" \
	"  AND a.code = 'funding' AND a.currency = $2) fa ON true" \
	" LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS " FROM gifq.accounts a" \
	"  WHERE a.program_id = p.id AND a.member_id IS NULL" \
	"  AND a.code = 'payable' AND a.currency = $2) ya ON true" \
	" WHERE p.id = $1"

static bool
column_is_null(int n)
{
	bool		isnull;

	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, n,
						 &isnull);
	return isnull;
}

/* column n copied into the cache's memory (NULL for SQL NULL) */
static Numeric
cached_numeric(int n)
{
	if (column_is_null(n))
		return NULL;
	return DatumGetNumeric(datumCopy(ledger_datum(n), false, -1));
}


/*
 * limit_points
 *		A limit set as gifq_money (in the program's currency or points) in
 *		points; -1 when not set.
 */
static int64
limit_points(RedeemSettings *s, int n, int shown)
{
	GifqMoney  *m;
	bool		overflow;

	if (column_is_null(n))
		return -1;
	m = DatumGetGifqMoneyP(ledger_datum(n));
	s->limits.shown[shown] = *m;
	if (memcmp(m->currency, s->points_code, GIFQ_CURRENCY_LEN) == 0)
		return m->units;
	return orders_to_points(m->units, m->currency, s->points_per_unit,
							s->points_code, &overflow);
}

static void
read_limits(RedeemSettings *s)
{
	s->limits.has_count = !column_is_null(8);
	if (s->limits.has_count)
		s->limits.max_count = DatumGetInt32(ledger_datum(8));
	s->limits.max_day = limit_points(s, 9, 0);
	s->limits.max_single = limit_points(s, 10, 1);
	s->limits.verify_above = limit_points(s, 11, 2);
	s->limits.yearly_flag = limit_points(s, 12, 3);
}

static void
read_brand(RedeemSettings *s)
{
	s->brand_found = DatumGetBool(ledger_datum(13));
	if (!s->brand_found)
		return;
	s->brand_country = ledger_text(14);
	currency_from_text(DatumGetTextPP(ledger_datum(15)), s->brand_currency);
	s->discount_pct = cached_numeric(16);
	s->in_stock = DatumGetBool(ledger_datum(17));
	s->discontinued = DatumGetBool(ledger_datum(18));
	if (!column_is_null(19))
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(DatumGetArrayTypeP(ledger_datum(19)), INT8OID,
						  sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &s->ndenominations);
		s->denominations = palloc(Max(s->ndenominations, 1) * sizeof(int64));
		for (int i = 0; i < s->ndenominations; i++)
			s->denominations[i] = nulls[i] ? -1 : DatumGetInt64(elems[i]);
	}
	s->min_value = column_is_null(20) ? -1 : DatumGetInt64(ledger_datum(20));
	s->max_value = column_is_null(21) ? -1 : DatumGetInt64(ledger_datum(21));
}

/*
 * read_settings
 *		Read the settings for (program_id, brand, currency) into *s, in the
 *		cache's memory; returns the version the read saw.
 */
static int64
read_settings(int64 program_id, const char *brand, const char *currency,
			  RedeemSettings *s, Oid *table)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	MemoryContext old;

	values[0] = Int64GetDatum(program_id);
	values[1] = PointerGetDatum(cstring_to_text_with_len(currency,
														 strnlen(currency, GIFQ_CURRENCY_LEN)));
	values[2] = CStringGetTextDatum(brand);
	ledger_run(ledger_plan(&plan_settings, SETTINGS_READ, 3, argtypes),
			   values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "program %lld has no settings", (long long) program_id);

	/* SPI left us in its procedure context, which SPI_finish frees */
	old = MemoryContextSwitchTo(settings_cxt);
	memset(s, 0, sizeof(RedeemSettings));
	s->program_id = program_id;
	currency_from_text(DatumGetTextPP(ledger_datum(3)), s->program_currency);
	currency_from_text(DatumGetTextPP(ledger_datum(4)), s->points_code);
	s->points_per_unit = cached_numeric(5);
	s->rate = cached_numeric(6);
	s->timezone = ledger_text(7);
	read_limits(s);
	read_brand(s);
	ledger_read_account(22, program_id, s->points_code, &s->issuance_account);
	ledger_read_account(22 + LEDGER_ACCOUNT_NCOLUMNS, program_id, currency,
						&s->funding_account);
	ledger_read_account(22 + 2 * LEDGER_ACCOUNT_NCOLUMNS, program_id, currency,
						&s->payable_account);
	MemoryContextSwitchTo(old);
	*table = DatumGetObjectId(ledger_datum(2));
	return DatumGetInt64(ledger_datum(1));
}

/*
 * forget_entries
 *		Drop every entry and trust the cache at version from now on.  Their
 *		memory stays until empty_cache: a read just made may live there.
 */
static void
forget_entries(int64 version, Oid table)
{
	cache_used = 0;
	cache_version = version;
	cache_table = table;
}

static void
empty_cache(int64 version, Oid table)
{
	if (settings_cxt == NULL)
		settings_cxt = AllocSetContextCreate(TopMemoryContext,
											 "gifq redemption settings",
											 ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(settings_cxt);
	forget_entries(version, table);
}

/*
 * redeem_settings
 *		The settings for (program_id, brand, currency) as of a snapshot in
 *		which gifq.settings_version (table OID version_table) holds version.
 *		Must be called inside SPI.
 */
const RedeemSettings *
redeem_settings(int64 program_id, const char *brand, const char *currency,
				int64 version, Oid version_table)
{
	SettingsEntry *e;
	RedeemSettings s;
	int64		read_version;
	Oid			read_table;

	/* another version, or full: start afresh */
	if (version != cache_version || version_table != cache_table ||
		settings_cxt == NULL || cache_used == SETTINGS_CACHE_SIZE)
		empty_cache(version, version_table);
	for (int i = 0; i < cache_used; i++)
	{
		e = &cache[i];
		if (e->program_id == program_id && strcmp(e->brand, brand) == 0 &&
			memcmp(e->currency, currency, GIFQ_CURRENCY_LEN) == 0)
			return &e->settings;
	}

	read_version = read_settings(program_id, brand, currency, &s, &read_table);
	/*
	 * A change committed after the member was locked (read committed): the
	 * read is newer than the entries, which go; the cache goes on at it.
	 */
	if (read_version != cache_version || read_table != cache_table)
		forget_entries(read_version, read_table);
	e = &cache[cache_used++];
	e->program_id = program_id;
	e->brand = MemoryContextStrdup(settings_cxt, brand);
	memcpy(e->currency, currency, GIFQ_CURRENCY_LEN);
	e->settings = s;
	return &e->settings;
}

/*
 * redeem_settings_offer
 *		Whether the brand sells a card of this face value (minor units):
 *		one of its denominations, or within its range.
 */
bool
redeem_settings_offer(const RedeemSettings *s, int64 units)
{
	if (s->denominations != NULL)
	{
		for (int i = 0; i < s->ndenominations; i++)
			if (s->denominations[i] == units)
				return true;
		return false;
	}
	return s->min_value >= 0 && units >= s->min_value && units <= s->max_value;
}
