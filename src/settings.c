/*-------------------------------------------------------------------------
 * settings.c
 *	  A backend's cache of what a redemption or an event reads besides the
 *	  member.  A redemption: the program, its points rate and limits, the
 *	  brand, and the program's accounts in the card's currency.  An event:
 *	  the program, its issuance account and thresholds, and the event
 *	  type's rule and challenges.
 *
 * These change rarely (an admin call, a catalog sync every few minutes)
 * while a platform redeems or records events many times a second, and
 * reading them every time was a fifth of a redemption's work and a
 * quarter of an event's.  Every change to them bumps the
 * one-row table gifq.settings_version in the changing transaction
 * (triggers, gifq--0.2.0--0.3.0.sql), and the statement that locks the
 * member reads that row too.  An entry here was read in a snapshot showing
 * some version; a later snapshot showing the same version of the same
 * table (the extension may have been dropped and created again), written
 * by the same transaction, has seen no committed change since, so the
 * entry is exactly what that snapshot holds.  (The version alone is not
 * enough: a transaction that bumped it and read settings can abort, and
 * another commit the same version number with other settings.)  On any other version the cache is emptied and the entry read
 * again, in one statement.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/settings.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "events.h"
#include "gifq.h"
#include "ledger.h"
#include "money.h"
#include "orders.h"
#include "periods.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * Entries a backend keeps of each kind (one per program, brand and card
 * currency, or per program and event type, about a kilobyte each); a full
 * cache is emptied rather than pruned, so its memory stays bounded.
 */
#define SETTINGS_CACHE_SIZE 128

typedef struct SettingsEntry
{
	int64		program_id;
	char	   *brand;
	char		currency[GIFQ_CURRENCY_LEN];
	RedeemSettings settings;
} SettingsEntry;

typedef struct EventEntry
{
	int64		program_id;
	char	   *event_type;
	EventSettings settings;
} EventEntry;

/*
 * An event's challenges are cached if they end after this long before the
 * entry was read; an event that occurred before that reads them anew.
 */
#define EVENT_CHALLENGE_HORIZON (31 * USECS_PER_DAY)

static MemoryContext settings_cxt = NULL;
static SettingsEntry cache[SETTINGS_CACHE_SIZE];
static int	cache_used = 0;
static EventEntry event_cache[SETTINGS_CACHE_SIZE];
static int	event_cache_used = 0;
static SettingsVersion cache_seen;

static SPIPlanPtr plan_settings;
static SPIPlanPtr plan_event_settings;

/*
 * What redeem_settings reads: program, rate, limits, brand and the three
 * system accounts, with the version it saw.
 */
#define SETTINGS_READ \
	"SELECT " SETTINGS_VERSION_COLUMNS "," \
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
	s->limits.has_count = !column_is_null(9);
	if (s->limits.has_count)
		s->limits.max_count = DatumGetInt32(ledger_datum(9));
	s->limits.max_day = limit_points(s, 10, 0);
	s->limits.max_single = limit_points(s, 11, 1);
	s->limits.verify_above = limit_points(s, 12, 2);
	s->limits.yearly_flag = limit_points(s, 13, 3);
}

static void
read_brand(RedeemSettings *s)
{
	s->brand_found = DatumGetBool(ledger_datum(14));
	if (!s->brand_found)
		return;
	s->brand_country = ledger_text(15);
	currency_from_text(DatumGetTextPP(ledger_datum(16)), s->brand_currency);
	s->discount_pct = cached_numeric(17);
	s->in_stock = DatumGetBool(ledger_datum(18));
	s->discontinued = DatumGetBool(ledger_datum(19));
	if (!column_is_null(20))
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(DatumGetArrayTypeP(ledger_datum(20)), INT8OID,
						  sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &s->ndenominations);
		s->denominations = palloc(Max(s->ndenominations, 1) * sizeof(int64));
		for (int i = 0; i < s->ndenominations; i++)
			s->denominations[i] = nulls[i] ? -1 : DatumGetInt64(elems[i]);
	}
	s->min_value = column_is_null(21) ? -1 : DatumGetInt64(ledger_datum(21));
	s->max_value = column_is_null(22) ? -1 : DatumGetInt64(ledger_datum(22));
}

/*
 * run_read
 *		Run a settings read (three parameters) for a program: one row.
 */
static void
run_read(SPIPlanPtr *plan, const char *sql, const Oid *argtypes, Datum *values,
		 int64 program_id)
{
	ledger_run(ledger_plan(plan, sql, 3, argtypes), values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "program %lld has no settings", (long long) program_id);
}

/*
 * read_settings
 *		Read the settings for (program_id, brand, currency) into *s, in the
 *		cache's memory; *seen is the version the read saw.
 */
static void
read_settings(int64 program_id, const char *brand, const char *currency,
			  RedeemSettings *s, SettingsVersion *seen)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	MemoryContext old;

	values[0] = Int64GetDatum(program_id);
	values[1] = PointerGetDatum(cstring_to_text_with_len(currency,
														 strnlen(currency, GIFQ_CURRENCY_LEN)));
	values[2] = CStringGetTextDatum(brand);
	run_read(&plan_settings, SETTINGS_READ, argtypes, values, program_id);

	/* SPI left us in its procedure context, which SPI_finish frees */
	old = MemoryContextSwitchTo(settings_cxt);
	memset(s, 0, sizeof(RedeemSettings));
	s->program_id = program_id;
	currency_from_text(DatumGetTextPP(ledger_datum(4)), s->program_currency);
	currency_from_text(DatumGetTextPP(ledger_datum(5)), s->points_code);
	s->points_per_unit = cached_numeric(6);
	s->rate = cached_numeric(7);
	s->timezone = ledger_text(8);
	read_limits(s);
	read_brand(s);
	ledger_read_account(23, program_id, s->points_code, &s->issuance_account);
	ledger_read_account(23 + LEDGER_ACCOUNT_NCOLUMNS, program_id, currency,
						&s->funding_account);
	ledger_read_account(23 + 2 * LEDGER_ACCOUNT_NCOLUMNS, program_id, currency,
						&s->payable_account);
	MemoryContextSwitchTo(old);
	settings_version_read(1, seen);
}

/*
 * settings_version_read
 *		*seen from the SETTINGS_VERSION_COLUMNS starting at column n of the
 *		first result row.
 */
void
settings_version_read(int n, SettingsVersion *seen)
{
	seen->version = DatumGetInt64(ledger_datum(n));
	seen->xmin = DatumGetTransactionId(ledger_datum(n + 1));
	seen->table = DatumGetObjectId(ledger_datum(n + 2));
}

static bool
same_version(const SettingsVersion *a, const SettingsVersion *b)
{
	return a->version == b->version && a->xmin == b->xmin && a->table == b->table;
}

/*
 * forget_entries
 *		Drop every entry and trust the cache at *seen from now on.  Their
 *		memory stays until empty_cache: a read just made may live there.
 */
static void
forget_entries(const SettingsVersion *seen)
{
	cache_used = 0;
	event_cache_used = 0;
	cache_seen = *seen;
}

static void
empty_cache(const SettingsVersion *seen)
{
	if (settings_cxt == NULL)
		settings_cxt = AllocSetContextCreate(TopMemoryContext,
											 "gifq settings",
											 ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(settings_cxt);
	forget_entries(seen);
}

/*
 * check_version
 *		Before a look-up at *seen: another version, or a full cache of the
 *		kind looked up (used entries), starts afresh.
 */
static void
check_version(const SettingsVersion *seen, int used)
{
	if (settings_cxt == NULL || !same_version(seen, &cache_seen) ||
		used == SETTINGS_CACHE_SIZE)
		empty_cache(seen);
}

/*
 * check_read_version
 *		After reading an entry: a change committed after the member was
 *		locked (read committed) makes the read newer than the entries, which
 *		go; the cache goes on at the read's version.
 */
static void
check_read_version(const SettingsVersion *read)
{
	if (!same_version(read, &cache_seen))
		forget_entries(read);
}

/*
 * redeem_settings
 *		The settings for (program_id, brand, currency) as of a snapshot that
 *		saw *seen of gifq.settings_version.  Must be called inside SPI.
 */
const RedeemSettings *
redeem_settings(int64 program_id, const char *brand, const char *currency,
				const SettingsVersion *seen)
{
	SettingsEntry *e;
	RedeemSettings s;
	SettingsVersion read;

	check_version(seen, cache_used);
	for (int i = 0; i < cache_used; i++)
	{
		e = &cache[i];
		if (e->program_id == program_id && strcmp(e->brand, brand) == 0 &&
			memcmp(e->currency, currency, GIFQ_CURRENCY_LEN) == 0)
			return &e->settings;
	}

	read_settings(program_id, brand, currency, &s, &read);
	check_read_version(&read);
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

/* ----------------------------------------------------------------------
 * An event's settings
 * ----------------------------------------------------------------------
 */

/*
 * What event_settings reads: the program, its thresholds, the type's rule,
 * its challenges that end after $3 (as arrays in id order: id, name,
 * multiplier, limited, per-member limit, start and end), the streak types
 * counting it (arrays in name order: name, period, grace) and the issuance
 * account, with the version it saw.
 */
#define EVENT_SETTINGS_READ \
	"SELECT " SETTINGS_VERSION_COLUMNS ", p.timezone, p.points_code," \
	"  " EVENT_THRESHOLD_COLUMNS ", r.points, r.daily_cap, ch.*, st.*, ia.*" \
	" FROM gifq.programs p CROSS JOIN gifq.settings_version v" \
	" LEFT JOIN gifq.rules r ON r.program_id = p.id AND r.event_type = $2" \
	" CROSS JOIN LATERAL (SELECT pg_catalog.array_agg(c.id ORDER BY c.id)," \
	"  pg_catalog.array_agg(c.name ORDER BY c.id)," \
	"  pg_catalog.array_agg(c.multiplier ORDER BY c.id)," \
	"  pg_catalog.array_agg(c.max_completions IS NOT NULL ORDER BY c.id)," \
	"  pg_catalog.array_agg(c.per_member_limit ORDER BY c.id)," \
	"  pg_catalog.array_agg(c.starts_at ORDER BY c.id)," \
	"  pg_catalog.array_agg(c.ends_at ORDER BY c.id)" \
	"  FROM gifq.challenges c WHERE c.program_id = p.id AND c.event_type = $2" \
	"  AND c.ends_at > $3) ch" \
	" CROSS JOIN LATERAL (SELECT" \
	"  pg_catalog.array_agg(s.streak_type ORDER BY s.streak_type)," \
	"  pg_catalog.array_agg(s.period ORDER BY s.streak_type)," \
	"  pg_catalog.array_agg(s.grace_periods ORDER BY s.streak_type)" \
	"  FROM gifq.streak_types s WHERE s.program_id = p.id AND s.event_type = $2) st" \
	" LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS " FROM gifq.accounts a" \
	"  WHERE a.program_id = p.id AND a.member_id IS NULL AND a.code = 'issuance'" \
	"  AND a.currency = p.points_code) ia ON true" \
	" WHERE p.id = $1"
#define EVENT_SETTINGS_CHALLENGES 10
#define EVENT_SETTINGS_STREAKS 17
#define EVENT_SETTINGS_ISSUANCE 20

/*
 * read_arrays
 *		The ncols arrays of the same length from column first on of the
 *		result's row (an aggregate's: NULL when it had no rows), element
 *		types types, into elems and nulls; returns their length.
 */
static int
read_arrays(int first, int ncols, const Oid *types, Datum **elems, bool **nulls)
{
	int			n = 0;

	if (column_is_null(first))
		return 0;
	for (int k = 0; k < ncols; k++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			count;

		get_typlenbyvalalign(types[k], &typlen, &typbyval, &typalign);
		deconstruct_array(DatumGetArrayTypeP(ledger_datum(first + k)), types[k], typlen,
						  typbyval, typalign, &elems[k], &nulls[k], &count);
		if (k > 0 && count != n)
			elog(ERROR, "settings arrays of different lengths");
		n = count;
	}
	return n;
}

/*
 * read_challenges
 *		The challenge arrays of EVENT_SETTINGS_READ's row into s.
 */
static void
read_challenges(EventSettings *s)
{
	static const Oid types[7] = {INT8OID, TEXTOID, NUMERICOID, BOOLOID, INT4OID,
	TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum	   *elems[7];
	bool	   *nulls[7];

	s->nchallenges = read_arrays(EVENT_SETTINGS_CHALLENGES, 7, types, elems, nulls);
	s->challenges = palloc0(Max(s->nchallenges, 1) * sizeof(Challenge));
	for (int i = 0; i < s->nchallenges; i++)
	{
		Challenge  *c = &s->challenges[i];

		c->id = DatumGetInt64(elems[0][i]);
		c->name = TextDatumGetCString(elems[1][i]);
		c->multiplier = DatumGetNumeric(datumCopy(elems[2][i], false, -1));
		c->limited = DatumGetBool(elems[3][i]);
		c->per_member = !nulls[4][i];
		if (c->per_member)
			c->per_member_limit = DatumGetInt32(elems[4][i]);
		c->starts_at = DatumGetTimestampTz(elems[5][i]);
		c->ends_at = DatumGetTimestampTz(elems[6][i]);
	}
}

/*
 * read_streaks
 *		The streak type arrays of EVENT_SETTINGS_READ's row into s.
 */
static void
read_streaks(EventSettings *s)
{
	static const Oid types[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum	   *elems[3];
	bool	   *nulls[3];

	s->nstreaks = read_arrays(EVENT_SETTINGS_STREAKS, 3, types, elems, nulls);
	s->streaks = palloc(Max(s->nstreaks, 1) * sizeof(StreakRule));
	for (int i = 0; i < s->nstreaks; i++)
	{
		s->streaks[i].streak_type = TextDatumGetCString(elems[0][i]);
		s->streaks[i].period = period_code(TextDatumGetCString(elems[1][i]));
		s->streaks[i].grace = DatumGetInt32(elems[2][i]);
	}
}

/*
 * read_event_settings
 *		Read the settings of (program_id, event_type), with the challenges
 *		that end after horizon, into *s in the current memory context (SPI
 *		leaves us in its own); *seen is the version the read saw.
 */
static void
read_event_settings(int64 program_id, const char *event_type, TimestampTz horizon,
					EventSettings *s, SettingsVersion *seen, MemoryContext cxt)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	MemoryContext old;

	values[0] = Int64GetDatum(program_id);
	values[1] = CStringGetTextDatum(event_type);
	values[2] = TimestampTzGetDatum(horizon);
	run_read(&plan_event_settings, EVENT_SETTINGS_READ, argtypes, values, program_id);

	old = MemoryContextSwitchTo(cxt);
	memset(s, 0, sizeof(EventSettings));
	s->timezone = ledger_text(4);
	currency_from_text(DatumGetTextPP(ledger_datum(5)), s->points_code);
	events_read_thresholds(ledger_datum(6), ledger_datum(7), &s->thresholds);
	s->rule_exists = !column_is_null(8);
	if (s->rule_exists)
		s->rule_points = DatumGetInt64(ledger_datum(8));
	s->has_cap = !column_is_null(9);
	if (s->has_cap)
		s->daily_cap = DatumGetInt32(ledger_datum(9));
	s->horizon = horizon;
	read_challenges(s);
	read_streaks(s);
	ledger_read_account(EVENT_SETTINGS_ISSUANCE, program_id, s->points_code,
						&s->issuance_account);
	MemoryContextSwitchTo(old);
	settings_version_read(1, seen);
}

/*
 * event_settings
 *		The settings of an event of (program_id, event_type) that occurred
 *		at, as of a snapshot that saw *seen of gifq.settings_version.  An
 *		event older than the cached challenges reads them anew, in the
 *		current memory context.  Must be called inside SPI.
 */
const EventSettings *
event_settings(int64 program_id, const char *event_type, TimestampTz at,
			   const SettingsVersion *seen)
{
	EventEntry *e = NULL;
	EventSettings s;
	SettingsVersion read;

	check_version(seen, event_cache_used);
	for (int i = 0; i < event_cache_used && e == NULL; i++)
		if (event_cache[i].program_id == program_id &&
			strcmp(event_cache[i].event_type, event_type) == 0)
			e = &event_cache[i];
	if (e == NULL)
	{
		TimestampTz horizon = GetCurrentTransactionStartTimestamp() -
			EVENT_CHALLENGE_HORIZON;

		read_event_settings(program_id, event_type, horizon, &s, &read, settings_cxt);
		check_read_version(&read);
		e = &event_cache[event_cache_used++];
		e->program_id = program_id;
		e->event_type = MemoryContextStrdup(settings_cxt, event_type);
		e->settings = s;
	}
	if (at >= e->settings.horizon)
		return &e->settings;

	/* a late event: the challenges that ran when it occurred, not cached */
	{
		EventSettings *late = palloc(sizeof(EventSettings));

		read_event_settings(program_id, event_type, at, late, &read,
							CurrentMemoryContext);
		return late;
	}
}
