/*-------------------------------------------------------------------------
 * redeem.c
 *	  gifq_redeem: turn a member's points into a gift-card order.
 *
 * One short transaction does everything: lock the member, replay an
 * earlier call with the same key, validate brand and member, convert the
 * face value to points, check the program's limits, hold the points and
 * the funding at cost, and insert the order and an order.created event.
 *
 * The member's row is the serialisation point of their redemptions: the
 * first statement locks it, so a second redemption of the same member
 * waits there until the first commits, and then (read committed) sees its
 * order, both for the idempotency key and for the daily limits.  Under
 * repeatable read the row is updated instead and the second fails to
 * serialise (40001); the caller retries.  Two
 * calls with one key for different members cannot both insert: the
 * order's unique key decides, and the loser reports the conflict.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/redeem.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "ledger.h"
#include "scope.h"
#include "money.h"
#include "orders.h"
#include "worker.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

static SPIPlanPtr plan_member_lock;
static SPIPlanPtr plan_member_update;
static SPIPlanPtr plan_by_key;
static SPIPlanPtr plan_usage;
static SPIPlanPtr plan_insert;
static SPIPlanPtr plan_flag;

/* A redemption: the call's arguments and what the database says. */
typedef struct Redemption
{
	/* arguments */
	char	   *program;
	char	   *member;
	char	   *brand;
	GifqMoney	amount;
	char	   *key;
	char	   *recipient;		/* NULL: the member's email */

	/* the member (first statement) */
	int64		member_id;
	bool		blocked;
	bool		verified;
	char	   *member_country;
	char	   *member_email;
	LedgerAccount points_account;

	/* the program, brand and accounts (settings.c) */
	int64		program_id;
	const RedeemSettings *s;
	bool		offered;		/* the brand sells a card of this amount */

	/* the new order's id, drawn by the first statement */
	int64		order_id;
} Redemption;

/* The first order made with a key, for a replay. */
typedef struct FirstOrder
{
	int64		id;
	char	   *status;
	int64		member_id;
	char	   *brand;
	GifqMoney	amount;
	char	   *recipient;
	bool		recipient_given;
	GifqMoney	points;
} FirstOrder;


/* ----------------------------------------------------------------------
 * Arguments
 * ----------------------------------------------------------------------
 */

static char *
text_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("%s must not be NULL", name),
				 errhint("gifq_redeem needs program, member, brand_id, amount and idempotency_key.")));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * email_is_valid
 *		The rule gifq_upsert_member applies: at most 320 characters, one
 *		"@" with something on each side, no spaces or control characters.
 */
static bool
email_is_valid(const char *email)
{
	const char *at = strchr(email, '@');

	if (at == NULL || at == email || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return false;
	if (pg_mbstrlen(email) > 320)
		return false;
	for (const unsigned char *c = (const unsigned char *) email; *c; c++)
		if (*c <= ' ' || *c == 0x7f)
			return false;
	return true;
}

/*
 * read_arguments
 *		Fill the call's half of *r and refuse malformed arguments.
 */
static void
read_arguments(FunctionCallInfo fcinfo, Redemption *r)
{
	r->program = text_arg(fcinfo, 0, "program");
	r->member = text_arg(fcinfo, 1, "member");
	r->brand = text_arg(fcinfo, 2, "brand_id");
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("amount must not be NULL"),
				 errhint("Give the card's face value, such as '25.00 USD'.")));
	memcpy(&r->amount, PG_GETARG_GIFQ_MONEY_P(3), sizeof(GifqMoney));
	r->key = text_arg(fcinfo, 4, "idempotency_key");
	r->recipient = PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5));

	if (r->amount.units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_AMOUNT),
				 errmsg("card amount %s is not positive", money_to_cstring(&r->amount)),
				 errhint("Give the card's face value, such as '25.00 USD'.")));
	if (strlen(r->key) == 0 || pg_mbstrlen(r->key) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid idempotency key \"%s\"", r->key),
				 errhint("Use 1 to 200 characters, unique to this redemption, such as the app's request id.")));
	if (r->recipient != NULL && !email_is_valid(r->recipient))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_PARAMETER),
				 errmsg("invalid recipient email \"%s\"", r->recipient),
				 errhint("Give an address such as 'ana@example.com', or NULL for the member's own.")));
}

/* ----------------------------------------------------------------------
 * Reading the member, program and brand
 * ----------------------------------------------------------------------
 */

/*
 * unknown_member_or_program
 *		The first statement found no member: say whether the program or
 *		the member is unknown.
 */
static void
unknown_member_or_program(const Redemption *r)
{
	Datum		value = CStringGetTextDatum(r->program);
	Oid			type = TEXTOID;

	if (SPI_execute_with_args("SELECT gifq.program_id($1)", 1, &type, &value,
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "program look-up failed");
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_UNKNOWN_MEMBER),
			 errmsg("unknown member \"%s\" in program \"%s\"", r->member,
					r->program),
			 errhint("Create the member first with gifq_upsert_member().")));
}

/*
 * What the first statement reads after locking the member: the member's
 * points account, the settings version (settings.c) and the order's id.
 */
#define MEMBER_READ \
	" SELECT m.id, m.program_id, m.blocked, m.verified, m.country, m.email," \
	"  " SETTINGS_VERSION_COLUMNS ", nextval('gifq.orders_id_seq'), pa.*" \
	" FROM m LEFT JOIN gifq.settings_version v ON true" \
	" LEFT JOIN LATERAL (SELECT " LEDGER_ACCOUNT_COLUMNS " FROM gifq.accounts a" \
	"  WHERE a.member_id = m.id AND a.code = 'points') pa ON true"

/*
 * use_settings
 *		Take the program's, brand's and accounts' settings for this
 *		redemption from settings.c.
 */
static void
use_settings(Redemption *r, const SettingsVersion *seen)
{
	r->s = redeem_settings(r->program_id, r->brand, r->amount.currency, seen);
	r->offered = r->s->brand_found && redeem_settings_offer(r->s, r->amount.units);
	memcpy(r->points_account.currency, r->s->points_code, GIFQ_CURRENCY_LEN);
}

/*
 * lock_member
 *		Lock the member (which serialises their redemptions) and read the
 *		member, their points account and the order's id in one statement,
 *		then the settings (usually from settings.c's cache).  A replay or a
 *		refusal leaves the order id unused.
 *
 * Under read committed a row lock is enough: once it is granted, the next
 * statements see what the member's previous redemption committed.  A
 * repeatable-read (or serializable) snapshot would not; there the member
 * row is updated instead, so a concurrent redemption fails to serialise
 * (40001) rather than miss the other's order.
 */
static void
lock_member(Redemption *r)
{
	static const Oid argtypes[] = {TEXTOID, TEXTOID};
	Datum		values[2];
	SPIPlanPtr	plan;
	SettingsVersion seen;
	static const char no_currency[GIFQ_CURRENCY_LEN];

	values[0] = CStringGetTextDatum(r->program);
	values[1] = CStringGetTextDatum(r->member);
	if (IsolationUsesXactSnapshot())
		plan = ledger_plan(&plan_member_update,
						   "WITH m AS ("
						   " UPDATE gifq.members m SET last_redeemed_at = now()"
						   " FROM gifq.programs p"
						   " WHERE p.code = $1 AND m.program_id = p.id AND m.external_id = $2"
						   " RETURNING m.id, m.program_id, m.blocked, m.verified, m.country, m.email)"
						   MEMBER_READ, 2, argtypes);
	else
		plan = ledger_plan(&plan_member_lock,
						   "WITH m AS ("
						   " SELECT m.id, m.program_id, m.blocked, m.verified, m.country, m.email"
						   " FROM gifq.members m JOIN gifq.programs p ON p.id = m.program_id"
						   " WHERE p.code = $1 AND m.external_id = $2 FOR NO KEY UPDATE OF m)"
						   MEMBER_READ, 2, argtypes);
	ledger_run(plan, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		unknown_member_or_program(r);

	r->member_id = DatumGetInt64(ledger_datum(1));
	r->program_id = DatumGetInt64(ledger_datum(2));
	/* a scoped caller is refused before anything is read for the program */
	scope_require_program(r->program_id, r->program);
	r->blocked = DatumGetBool(ledger_datum(3));
	r->verified = DatumGetBool(ledger_datum(4));
	r->member_country = ledger_text(5);
	r->member_email = ledger_text(6);
	settings_version_read(7, &seen);
	r->order_id = DatumGetInt64(ledger_datum(10));
	/* its currency, the points code, comes with the settings */
	ledger_read_account(11, r->program_id, no_currency, &r->points_account);
	if (r->points_account.id == 0)
		elog(ERROR, "member \"%s\" of program \"%s\" has no points account",
			 r->member, r->program);

	use_settings(r, &seen);
	if (r->s->issuance_account.id == 0)
		elog(ERROR, "program \"%s\" has no issuance account", r->program);
}


/* ----------------------------------------------------------------------
 * Idempotency
 * ----------------------------------------------------------------------
 */

/*
 * find_first
 *		The order that holds r's key in its program, if any.
 */
static bool
find_first(const Redemption *r, FirstOrder *first)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(r->program_id);
	values[1] = CStringGetTextDatum(r->key);
	ledger_run(ledger_plan(&plan_by_key,
						   "SELECT id, status, member_id, brand_id, amount, currency,"
						   " recipient_email, recipient_given, points, points_code"
						   " FROM gifq.orders WHERE program_id = $1 AND idempotency_key = $2",
						   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	first->id = DatumGetInt64(ledger_datum(1));
	first->status = TextDatumGetCString(ledger_datum(2));
	first->member_id = DatumGetInt64(ledger_datum(3));
	first->brand = TextDatumGetCString(ledger_datum(4));
	first->amount.units = DatumGetInt64(ledger_datum(5));
	currency_from_text(DatumGetTextPP(ledger_datum(6)), first->amount.currency);
	first->recipient = ledger_text(7);
	first->recipient_given = DatumGetBool(ledger_datum(8));
	first->points.units = DatumGetInt64(ledger_datum(9));
	currency_from_text(DatumGetTextPP(ledger_datum(10)), first->points.currency);
	return true;
}

/*
 * check_replay
 *		Throw QG109 unless the first order was made with r's arguments.
 */
static void
check_replay(const Redemption *r, const FirstOrder *first)
{
	if (first->member_id != r->member_id)
		ledger_report_conflict(r->key, "redemption", "member", "another member",
							   psprintf("\"%s\"", r->member));
	if (strcmp(first->brand, r->brand) != 0)
		ledger_report_conflict(r->key, "redemption", "brand_id", psprintf("\"%s\"", first->brand),
						psprintf("\"%s\"", r->brand));
	if (money_cmp_internal(&first->amount, &r->amount) != 0)
		ledger_report_conflict(r->key, "redemption", "amount", money_to_cstring(&first->amount),
						money_to_cstring(&r->amount));
	if (first->recipient_given != (r->recipient != NULL) ||
		(r->recipient != NULL && strcmp(first->recipient, r->recipient) != 0))
		ledger_report_conflict(r->key, "redemption", "recipient_email",
						first->recipient_given ? psprintf("\"%s\"", first->recipient) : "NULL",
						r->recipient ? psprintf("\"%s\"", r->recipient) : "NULL");
}


/* ----------------------------------------------------------------------
 * Validation and limits
 * ----------------------------------------------------------------------
 */

/*
 * check_member_and_brand
 *		Refuse a blocked member, or a brand that cannot sell this card to
 *		this member.
 */
static void
check_member_and_brand(const Redemption *r)
{
	const char *cur = pnstrdup(r->amount.currency, GIFQ_CURRENCY_LEN);

	if (r->blocked)
		orders_refuse_blocked(r->member);
	if (!r->s->brand_found)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_UNKNOWN_BRAND),
				 errmsg("unknown brand \"%s\"", r->brand),
				 errhint("List brands with gifq_catalog(); load the catalog with gifq_catalog_load().")));
	if (r->s->discontinued)
		orders_refuse_discontinued(r->brand);
	if (memcmp(r->s->brand_currency, r->amount.currency, GIFQ_CURRENCY_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_BRAND_CURRENCY),
				 errmsg("brand \"%s\" sells cards in %.*s, not %s", r->brand,
						(int) strnlen(r->s->brand_currency, GIFQ_CURRENCY_LEN),
						r->s->brand_currency, cur),
				 errhint("Give the amount in the brand's currency.")));
	if (!r->offered)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_INVALID_DENOMINATION),
				 errmsg("brand \"%s\" does not sell a %s card", r->brand,
						money_to_cstring(&r->amount)),
				 errhint("Pick an amount from the brand's denominations or range in gifq_catalog(); gifq_alternatives() lists the nearest.")));
	if (!r->s->in_stock)
		orders_refuse_out_of_stock(r->brand);
	if (r->member_country != NULL && strcmp(r->member_country, r->s->brand_country) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_COUNTRY_NOT_SERVED),
				 errmsg("brand \"%s\" is sold in %s, member \"%s\" is in %s",
						r->brand, r->s->brand_country, r->member, r->member_country),
				 errhint("Offer the member brands of their country: gifq_catalog(country => '%s').",
						 r->member_country)));
}

/*
 * card_points
 *		What the card costs the member in points, at the program's rate for
 *		the card's currency.
 */
static int64
card_points(const Redemption *r)
{
	bool		own = memcmp(r->amount.currency, r->s->program_currency,
							 GIFQ_CURRENCY_LEN) == 0;
	Numeric		rate = own ? r->s->points_per_unit : r->s->rate;
	bool		overflow;
	int64		points;

	if (rate == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_NO_RATE),
				 errmsg("program \"%s\" has no points rate for %s", r->program,
						pnstrdup(r->amount.currency, GIFQ_CURRENCY_LEN)),
				 errhint("Set one with gifq_set_rate(program, currency, points_per_unit).")));
	points = orders_to_points(r->amount.units, r->amount.currency, rate,
							  r->s->points_code, &overflow);
	if (overflow)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
				 errmsg("%s in points is out of range", money_to_cstring(&r->amount)),
				 errhint("Lower the program's points rate.")));
	return points;
}

static void
report_limit(int errcode_value, const char *what, const GifqMoney *limit,
			 const char *detail, const char *hint) pg_attribute_noreturn();

static void
report_limit(int errcode_value, const char *what, const GifqMoney *limit,
			 const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(errcode_value),
			 errmsg("redemption refused by limit %s %s", what,
					money_to_cstring(limit)),
			 errdetail_internal("%s", detail),
			 errhint("%s", hint)));
}

/*
 * member_usage
 *		The member's redemptions (count and points) over the last 24
 *		hours, and their points since the start of the year in the
 *		program's time zone.  Canceled and failed orders do not count.
 */
static void
member_usage(const Redemption *r, int64 *day_count, int64 *day_points,
			 int64 *year_points)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(r->member_id);
	values[1] = CStringGetTextDatum(r->s->timezone);
	ledger_run(ledger_plan(&plan_usage,
						   "SELECT count(*) FILTER (WHERE created_at > now() - interval '24 hours'),"
						   " coalesce(sum(points) FILTER (WHERE created_at > now() - interval '24 hours'), 0),"
						   " coalesce(sum(points) FILTER (WHERE created_at >="
						   "   (date_trunc('year', now() AT TIME ZONE $2) AT TIME ZONE $2)), 0)"
						   " FROM gifq.orders WHERE member_id = $1"
						   " AND created_at >= least(now() - interval '24 hours',"
						   "   date_trunc('year', now() AT TIME ZONE $2) AT TIME ZONE $2)"
						   " AND status NOT IN ('canceled', 'failed')",
						   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	*day_count = DatumGetInt64(ledger_datum(1));
	*day_points = DatumGetInt64(DirectFunctionCall1(numeric_int8, ledger_datum(2)));
	*year_points = DatumGetInt64(DirectFunctionCall1(numeric_int8, ledger_datum(3)));
}

/*
 * check_limits
 *		Refuse a redemption beyond one of the program's limits.  Returns
 *		whether it takes the member's yearly total to the flag level.  The
 *		member is locked, so their other redemptions cannot slip in
 *		between this check and the order's insert.
 */
static bool
check_limits(const Redemption *r, int64 points, int64 *year_total)
{
	const RedeemLimits *l = &r->s->limits;
	int64		day_count = 0;
	int64		day_points = 0;
	int64		year_points = 0;
	GifqMoney	pts;

	pts.units = points;
	memcpy(pts.currency, r->s->points_code, GIFQ_CURRENCY_LEN);
	if (l->max_single >= 0 && points > l->max_single)
		report_limit(ERRCODE_GIFQ_SINGLE_LIMIT, "max_single_value", &l->shown[1],
					 psprintf("The card needs %s.", money_to_cstring(&pts)),
					 "Redeem a smaller card.");
	if (l->verify_above >= 0 && points > l->verify_above && !r->verified)
		report_limit(ERRCODE_GIFQ_VERIFICATION_REQUIRED, "verification_above",
					 &l->shown[2],
					 psprintf("Member \"%s\" is not verified; the card needs %s.",
							  r->member, money_to_cstring(&pts)),
					 "Verify the member (gifq_upsert_member(..., verified => true)) or redeem a smaller card.");
	if (!l->has_count && l->max_day < 0 && l->yearly_flag < 0)
		return false;

	member_usage(r, &day_count, &day_points, &year_points);
	if (l->has_count && day_count + 1 > l->max_count)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_DAILY_COUNT_LIMIT),
				 errmsg("redemption refused by limit max_redemptions_per_day %d",
						l->max_count),
				 errdetail("Member \"%s\" made %lld redemptions in the last 24 hours.",
						   r->member, (long long) day_count),
				 errhint("Try again once the oldest of them is 24 hours old.")));
	if (l->max_day >= 0 && day_points + points > l->max_day)
		report_limit(ERRCODE_GIFQ_DAILY_VALUE_LIMIT, "max_value_per_day",
					 &l->shown[0],
					 psprintf("Member \"%s\" redeemed %s in the last 24 hours; the card needs %s more.",
							  r->member,
							  money_to_cstring(money_make(day_points, r->s->points_code)),
							  money_to_cstring(&pts)),
					 "Redeem a smaller card, or wait until earlier redemptions are 24 hours old.");
	*year_total = year_points + points;
	return l->yearly_flag >= 0 && *year_total >= l->yearly_flag;
}

/*
 * flag_member
 *		Record (once a year) that the member's yearly total reached the
 *		program's recipient_yearly_flag level, with a member.flagged event.
 */
static void
flag_member(const Redemption *r, int64 order_id, int64 total)
{
	static const Oid argtypes[] = {INT8OID, INT8OID, TEXTOID, INT8OID, INT8OID,
	INT8OID, TEXTOID};
	Datum		values[7];

	values[0] = Int64GetDatum(r->program_id);
	values[1] = Int64GetDatum(r->member_id);
	values[2] = CStringGetTextDatum(r->s->timezone);
	values[3] = Int64GetDatum(total);
	values[4] = Int64GetDatum(r->s->limits.yearly_flag);
	values[5] = Int64GetDatum(order_id);
	values[6] = CStringGetTextDatum(r->member);
	ledger_run(ledger_plan(&plan_flag,
						   "WITH f AS ("
						   " INSERT INTO gifq.member_flags (program_id, member_id, flag, period,"
						   "  total, level, order_id)"
						   " VALUES ($1, $2, 'recipient_yearly_flag',"
						   "  to_char(now() AT TIME ZONE $3, 'YYYY'), $4, $5, $6)"
						   " ON CONFLICT DO NOTHING RETURNING period)"
						   " SELECT gifq.emit($1, 'member.flagged', jsonb_build_object("
						   "  'member', $7, 'flag', 'recipient_yearly_flag', 'period', period,"
						   "  'points', $4, 'level_points', $5, 'order_id', $6)) FROM f",
						   7, argtypes),
			   values, NULL, SPI_OK_SELECT);
}


/* ----------------------------------------------------------------------
 * The order
 * ----------------------------------------------------------------------
 */

/*
 * report_twin
 *		Called while an error is being thrown out of insert_order: turn a
 *		violation of the orders' unique (program, key) into QG109 and let
 *		anything else through.  Only a concurrent call with the same key
 *		for another member gets here (one for the same member waited on the
 *		member and replayed); it committed first, for another member.
 */
static void
report_twin(const Redemption *r, MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION ||
		edata->constraint_name == NULL ||
		strcmp(edata->constraint_name, "orders_program_id_idempotency_key_key") != 0)
		PG_RE_THROW();
	FlushErrorState();
	ledger_report_conflict(r->key, "redemption", "member", "another member",
						   psprintf("\"%s\"", r->member));
}

/*
 * insert_order
 *		Write the order (its creation is its first audit record: created_at
 *		and created_by) and its order.created event.  A plain INSERT, not ON
 *		CONFLICT, which would make every insert speculative: the rare
 *		concurrent twin with another member raises the unique violation
 *		that report_twin turns into QG109.
 *
 * The event goes to gifq.outbox only, without NOTIFY: a transaction that
 * notifies takes a database-wide lock at commit and holds it until the
 * commit is durable, which would let one redemption commit at a time.
 */
static void
insert_order(const Redemption *r, const OrderHolds *holds, bool flagged)
{
	MemoryContext cxt = CurrentMemoryContext;
	static const Oid argtypes[] = {INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID,
		TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, INT8OID,
	INT8OID, BOOLOID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[19];
	char		nulls[19];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(holds->order_id);
	values[1] = Int64GetDatum(r->program_id);
	values[2] = Int64GetDatum(r->member_id);
	values[3] = CStringGetTextDatum(r->brand);
	values[4] = Int64GetDatum(r->amount.units);
	values[5] = CStringGetTextDatum(pnstrdup(r->amount.currency, GIFQ_CURRENCY_LEN));
	values[6] = Int64GetDatum(holds->cost.units);
	values[7] = Int64GetDatum(holds->points.units);
	values[8] = CStringGetTextDatum(pnstrdup(r->s->points_code, GIFQ_CURRENCY_LEN));
	if (r->recipient != NULL || r->member_email != NULL)
		values[9] = CStringGetTextDatum(r->recipient ? r->recipient : r->member_email);
	else
		nulls[9] = 'n';
	values[10] = BoolGetDatum(r->recipient != NULL);
	values[11] = CStringGetTextDatum(r->key);
	values[12] = Int64GetDatum(holds->points_hold);
	values[13] = Int64GetDatum(holds->funding_hold);
	if (holds->funding_hold == 0)
		nulls[13] = 'n';
	values[14] = BoolGetDatum(flagged);
	values[15] = CStringGetTextDatum(r->member);
	values[16] = CStringGetTextDatum(money_to_cstring(&r->amount));
	values[17] = CStringGetTextDatum(money_to_cstring(&holds->points));
	values[18] = Int64GetDatum(r->amount.units - holds->cost.units);

	PG_TRY();
	{
		ledger_run(ledger_plan(&plan_insert,
						   "WITH o AS ("
						   " INSERT INTO gifq.orders (id, program_id, member_id, brand_id, amount,"
						   "  currency, cost, margin, points, points_code, recipient_email,"
						   "  recipient_given, idempotency_key, points_hold, funding_hold, flags,"
						   "  created_by)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $19, $8, $9, $10, $11, $12, $13,"
						   "  $14, CASE WHEN $15 THEN '{recipient_yearly_flag}'::text[] ELSE '{}' END,"
						   "  gifq.actor())"
						   " RETURNING id),"
						   " e AS (INSERT INTO gifq.outbox (program_id, event_type, payload)"
						   "  SELECT $2, 'order.created', jsonb_build_object('order_id', id,"
						   "   'reference', gifq.order_reference(id), 'member', $16, 'brand_id', $4,"
						   "   'amount', $17, 'points', $18) FROM o"
						   "  RETURNING id)"
						   " SELECT e.id FROM e",
						   19, argtypes),
			   values, nulls, SPI_OK_SELECT);
	}
	PG_CATCH();
	{
		report_twin(r, cxt);
	}
	PG_END_TRY();
}

/*
 * redeem
 *		The whole redemption, inside SPI.  Returns the order id, and sets
 *		*created false for a replay.
 */
static int64
redeem(Redemption *r, GifqMoney *points, char **status, bool *created)
{
	FirstOrder	first;
	OrderHolds	holds;
	int64		year_total = 0;
	bool		flagged;

	lock_member(r);
	if (find_first(r, &first))
	{
		check_replay(r, &first);
		*points = first.points;
		*status = first.status;
		*created = false;
		return first.id;
	}
	check_member_and_brand(r);

	memset(&holds, 0, sizeof(holds));
	holds.points.units = card_points(r);
	memcpy(holds.points.currency, r->s->points_code, GIFQ_CURRENCY_LEN);
	flagged = check_limits(r, holds.points.units, &year_total);
	holds.cost.units = orders_cost(r->amount.units, r->s->discount_pct);
	memcpy(holds.cost.currency, r->amount.currency, GIFQ_CURRENCY_LEN);
	holds.order_id = r->order_id;
	holds.program = r->program;
	holds.member = r->member;
	holds.program_id = r->program_id;
	holds.points_account = r->points_account;
	holds.issuance_account = r->s->issuance_account;
	holds.funding_account = r->s->funding_account;
	holds.payable_account = r->s->payable_account;
	orders_place_holds(&holds);

	insert_order(r, &holds, flagged);
	worker_wake_on_commit();
	if (flagged)
		flag_member(r, holds.order_id, year_total);
	*points = holds.points;
	*status = "pending";
	*created = true;
	return holds.order_id;
}

PG_FUNCTION_INFO_V1(gifq_redeem);

/*
 * gifq_redeem
 *		gifq_redeem(program, member, brand_id, amount, idempotency_key,
 *		recipient_email) returns (order_id, status, points_debited,
 *		created).  Not strict: only recipient_email may be NULL.
 */
Datum
gifq_redeem(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Redemption	r;
	GifqMoney	points;
	GifqMoney  *points_copy;
	char	   *status;
	bool		created;
	int64		order_id;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	MemoryContext caller = CurrentMemoryContext;

	InitMaterializedSRF(fcinfo, 0);
	memset(&r, 0, sizeof(r));
	read_arguments(fcinfo, &r);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	order_id = redeem(&r, &points, &status, &created);
	points_copy = MemoryContextAlloc(caller, sizeof(GifqMoney));
	memcpy(points_copy, &points, sizeof(GifqMoney));
	status = MemoryContextStrdup(caller, status);
	SPI_finish();

	values[0] = Int64GetDatum(order_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = GifqMoneyPGetDatum(points_copy);
	values[3] = BoolGetDatum(created);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
