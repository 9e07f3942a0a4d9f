/*-------------------------------------------------------------------------
 * orders.c
 *	  An order's holds and value conversions, and gifq_retry_order.
 *
 * An order holds two things until the provider answers: the member's
 * points (points account -> issuance, at the program's rate) and the
 * program's funding in the card's currency at cost (funding -> payable,
 * face value less the brand's discount).  Delivery posts both holds;
 * failure or cancellation voids them.  Both are placed by one
 * ledger_transfer_set() call, so their four balance rows are locked in the
 * ledger's global order whatever the account ids.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/orders.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "ledger.h"
#include "money.h"
#include "orders.h"
#include "scope.h"
#include "worker.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

static SPIPlanPtr plan_payable;
static SPIPlanPtr plan_retry_load;
static SPIPlanPtr plan_retry_update;


/* ----------------------------------------------------------------------
 * Conversions
 * ----------------------------------------------------------------------
 */

static Numeric
pow10_numeric(int exponent)
{
	int64		p = 1;

	for (int i = 0; i < exponent; i++)
		p *= 10;
	return int64_to_numeric(p);
}

/*
 * orders_to_points
 *		units (minor units of currency) at rate points per unit, in minor
 *		units of points_code, rounded up: a member never gets a card for
 *		less than the rate asks.  Exact: the quotient is truncated and the
 *		remainder decides.  *overflow is set when it does not fit an int64.
 */
int64
orders_to_points(int64 units, const char *currency, Numeric rate,
				 const char *points_code, bool *overflow)
{
	Datum		num = DirectFunctionCall2(numeric_mul,
										  NumericGetDatum(int64_to_numeric(units)),
										  NumericGetDatum(rate));
	Datum		den = NumericGetDatum(pow10_numeric(currency_exponent(currency)));
	Datum		q;
	Datum		r;
	Datum		limit = NumericGetDatum(int64_to_numeric(PG_INT64_MAX));

	num = DirectFunctionCall2(numeric_mul, num,
							  NumericGetDatum(pow10_numeric(currency_exponent(points_code))));
	q = DirectFunctionCall2(numeric_div_trunc, num, den);
	r = DirectFunctionCall2(numeric_sub, num,
							DirectFunctionCall2(numeric_mul, q, den));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, r,
										  NumericGetDatum(int64_to_numeric(0)))) > 0)
		q = DirectFunctionCall2(numeric_add, q,
								NumericGetDatum(int64_to_numeric(1)));
	*overflow = DatumGetInt32(DirectFunctionCall2(numeric_cmp, q, limit)) > 0;
	if (*overflow)
		return PG_INT64_MAX;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, q));
}

/*
 * orders_cost
 *		What a card of face value units costs at discount_pct percent off,
 *		rounded half to even to the minor unit.
 */
int64
orders_cost(int64 units, Numeric discount_pct)
{
	Datum		share = DirectFunctionCall2(numeric_sub,
											NumericGetDatum(int64_to_numeric(100)),
											NumericGetDatum(discount_pct));
	Datum		num = DirectFunctionCall2(numeric_mul,
										  NumericGetDatum(int64_to_numeric(units)),
										  share);
	int64		cost;

	if (!money_div_half_even(DatumGetNumeric(num), int64_to_numeric(100), &cost))
		elog(ERROR, "cost of %lld minor units out of range", (long long) units);
	return cost;
}

/* ----------------------------------------------------------------------
 * Holds
 * ----------------------------------------------------------------------
 */

static void refuse_points(const TransferRequest *req,
						  const LedgerAccount *account,
						  int64 available) pg_attribute_noreturn();
static void report_short_points(const OrderHolds *holds,
								int64 available) pg_attribute_noreturn();
static void report_short_funding(const OrderHolds *holds,
								 int64 available) pg_attribute_noreturn();
static void refuse_funding(const TransferRequest *req,
						   const LedgerAccount *account,
						   int64 available) pg_attribute_noreturn();

static void
report_short_points(const OrderHolds *holds, int64 available)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_INSUFFICIENT_POINTS),
			 errmsg("member \"%s\" has %s available, the card needs %s",
					holds->member,
					money_to_cstring(money_make(available, holds->points.currency)),
					money_to_cstring(&holds->points)),
			 errhint("Redeem a smaller amount, or wait until the member has earned enough points.")));
}

static void
refuse_points(const TransferRequest *req, const LedgerAccount *account,
			  int64 available)
{
	report_short_points(req->refused_arg, available);
}

static void
report_short_funding(const OrderHolds *holds, int64 available)
{
	/*
	 * The holds are placed in account order, so the funding can be refused
	 * before the points are tried.  Short points are reported first all the
	 * same: the member can act on that, the program's funding is the
	 * platform's business.  If the points hold came first (the lower
	 * account id), the room it took is counted back.
	 */
	int64		room = ledger_available(&holds->points_account);

	if (holds->funding_account.id != 0 &&
		holds->points_account.id < holds->funding_account.id)
		room += holds->points.units;
	if (room < holds->points.units)
		report_short_points(holds, room);
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_INSUFFICIENT_FUNDING),
			 errmsg("program \"%s\" has %s of funding available, the card costs %s",
					holds->program,
					money_to_cstring(money_make(available, holds->cost.currency)),
					money_to_cstring(&holds->cost)),
			 errhint("Add funding in %.*s with gifq_fund(); set an alert with gifq_set_low_balance().",
					 (int) strnlen(holds->cost.currency, GIFQ_CURRENCY_LEN),
					 holds->cost.currency)));
}

static void
refuse_funding(const TransferRequest *req, const LedgerAccount *account,
			   int64 available)
{
	report_short_funding(req->refused_arg, available);
}

/*
 * payable_account
 *		The program's payable account in a currency, created on first use.
 */
static int64
payable_account(int64 program_id, const char *currency)
{
	static const Oid argtypes[] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(program_id);
	values[1] = PointerGetDatum(cstring_to_text_with_len(currency,
														 strnlen(currency, GIFQ_CURRENCY_LEN)));
	ledger_run(ledger_plan(&plan_payable,
						   "SELECT gifq.system_account($1, 'payable', $2)",
						   2, argtypes),
			   values, NULL, SPI_OK_SELECT);
	return DatumGetInt64(ledger_datum(1));
}

/*
 * add_hold
 *		One of an order's holds: a pending transfer of amount from debit to
 *		credit, naming the order, refused by refused; the two accounts go
 *		to pair[0] and pair[1], as ledger_transfer_set takes them.
 */
static void
add_hold(TransferRequest *req, LedgerAccount *pair, const LedgerAccount *debit,
		 const LedgerAccount *credit, const GifqMoney *amount,
		 LedgerRefusal refused, OrderHolds *holds, Jsonb *metadata)
{
	req->debit_account = debit->id;
	req->credit_account = credit->id;
	pair[0] = *debit;
	pair[1] = *credit;
	req->amount = *amount;
	req->pending = true;
	req->metadata = metadata;
	req->refused = refused;
	req->refused_arg = holds;
}

/*
 * orders_place_holds
 *		Hold the order's points and its funding at cost; fill in the two
 *		hold ids.  The caller has loaded the four accounts (or left the
 *		funding or payable account's id 0 where the program has none).
 *		Throws QG208 or QG209 when either is short.  A card that costs
 *		nothing (a 100% discount cannot be loaded, so only a zero-cost
 *		rounding of a tiny card) holds no funding.  An order of no points
 *		(a claimed reward's: the recipient spent none) holds no points; its
 *		hold ids stay 0 for what it does not hold.
 */
void
orders_place_holds(OrderHolds *holds)
{
	TransferRequest reqs[2];
	LedgerAccount accounts[4];
	int64		ids[2];
	int			n = 0;
	Jsonb	   *metadata;

	if (holds->funding_account.id == 0 && holds->cost.units > 0)
		report_short_funding(holds, 0);

	metadata = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												  CStringGetDatum(psprintf("{\"order_id\": %lld}",
																		   (long long) holds->order_id))));
	memset(reqs, 0, sizeof(reqs));
	memset(ids, 0, sizeof(ids));
	/* a claimed reward's order holds no points */
	if (holds->points.units > 0)
	{
		add_hold(&reqs[n], &accounts[2 * n], &holds->points_account,
				 &holds->issuance_account, &holds->points, refuse_points,
				 holds, metadata);
		n++;
	}
	if (holds->cost.units > 0)
	{
		if (holds->payable_account.id == 0)
			ledger_load_account(payable_account(holds->program_id,
												holds->cost.currency),
								&holds->payable_account);
		add_hold(&reqs[n], &accounts[2 * n], &holds->funding_account,
				 &holds->payable_account, &holds->cost, refuse_funding,
				 holds, metadata);
		n++;
	}
	if (n > 0)
		ledger_transfer_set(reqs, n, accounts, ids);
	holds->points_hold = holds->points.units > 0 ? ids[0] : 0;
	holds->funding_hold = holds->cost.units > 0 ? ids[n - 1] : 0;
}


/* ----------------------------------------------------------------------
 * Refusals that redemption and retry share
 * ----------------------------------------------------------------------
 */

void
orders_refuse_blocked(const char *member)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_MEMBER_BLOCKED),
			 errmsg("member \"%s\" is blocked", member),
			 errhint("Unblock the member with gifq_block_member(program, member, false) first.")));
}

void
orders_refuse_discontinued(const char *brand)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_BRAND_DISCONTINUED),
			 errmsg("brand \"%s\" is discontinued", brand),
			 errhint("Redeem another brand; gifq_alternatives() suggests some.")));
}

void
orders_refuse_out_of_stock(const char *brand)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_OUT_OF_STOCK),
			 errmsg("brand \"%s\" is out of stock", brand),
			 errhint("Redeem another brand; gifq_alternatives() suggests some.")));
}


/* ----------------------------------------------------------------------
 * SQL-callable functions
 * ----------------------------------------------------------------------
 */

/*
 * check_retry
 *		Refuse to send a failed order again when it is not failed, its
 *		member is blocked or its brand no longer sells.
 */
static void
check_retry(int64 order_id, const char *status, bool blocked,
			const char *member, const char *brand, bool discontinued,
			bool in_stock)
{
	if (strcmp(status, "failed") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_ORDER_TRANSITION),
				 errmsg("order %lld is %s, not failed", (long long) order_id,
						status),
				 errhint("Only a failed order can be retried; see gifq_order() for its status.")));
	if (blocked)
		orders_refuse_blocked(member);
	if (discontinued)
		orders_refuse_discontinued(brand);
	if (!in_stock)
		orders_refuse_out_of_stock(brand);
}

/*
 * load_order_accounts
 *		Read the four accounts of an order's holds by id (0: none).
 */
static void
load_order_accounts(OrderHolds *holds, int64 points, int64 issuance,
					int64 funding, int64 payable)
{
	int64		ids[4] = {points, issuance, funding, payable};
	LedgerAccount *targets[4] = {&holds->points_account,
		&holds->issuance_account, &holds->funding_account,
	&holds->payable_account};
	LedgerAccount loaded[4];
	int64		wanted[4];
	int			n = 0;

	for (int i = 0; i < 4; i++)
		if (ids[i] != 0)
			wanted[n++] = ids[i];
	ledger_load_accounts(wanted, n, loaded);
	for (int i = 0, j = 0; i < 4; i++)
	{
		memset(targets[i], 0, sizeof(LedgerAccount));
		if (ids[i] != 0)
			*targets[i] = loaded[j++];
	}
}

PG_FUNCTION_INFO_V1(gifq_retry_order);

/*
 * gifq_retry_order
 *		gifq_retry_order(order_id): send a failed order again.  Its old
 *		holds were voided when it failed, so new ones are placed for the
 *		same points and cost; the order goes back to pending.
 */
Datum
gifq_retry_order(PG_FUNCTION_ARGS)
{
	static const Oid load_types[] = {INT8OID};
	static const Oid update_types[] = {INT8OID, INT8OID, INT8OID};
	int64		order_id;
	OrderHolds	holds;
	Datum		values[3];
	char		nulls[3] = "   ";

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_UNKNOWN_ORDER),
				 errmsg("unknown order NULL"),
				 errhint("Order ids are returned by gifq_redeem().")));
	order_id = PG_GETARG_INT64(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	values[0] = Int64GetDatum(order_id);
	ledger_run(ledger_plan(&plan_retry_load,
						   "SELECT o.status, coalesce(m.blocked, false),"
						   " coalesce(m.external_id, ''), o.brand_id,"
						   " b.discontinued_at IS NOT NULL, b.in_stock, p.code,"
						   " o.program_id, o.points, o.points_code, o.cost, o.currency,"
						   " coalesce((SELECT a.id FROM gifq.accounts a WHERE a.member_id = m.id"
						   "   AND a.code = 'points'), 0),"
						   " (SELECT a.id FROM gifq.accounts a WHERE a.program_id = p.id"
						   "   AND a.member_id IS NULL AND a.code = 'issuance'"
						   "   AND a.currency = o.points_code),"
						   " coalesce((SELECT a.id FROM gifq.accounts a WHERE a.program_id = p.id"
						   "   AND a.member_id IS NULL AND a.code = 'funding'"
						   "   AND a.currency = o.currency), 0),"
						   " coalesce((SELECT a.id FROM gifq.accounts a WHERE a.program_id = p.id"
						   "   AND a.member_id IS NULL AND a.code = 'payable'"
						   "   AND a.currency = o.currency), 0)"
						   " FROM gifq.orders o LEFT JOIN gifq.members m ON m.id = o.member_id"
						   " JOIN gifq.programs p ON p.id = o.program_id"
						   " JOIN gifq.brands b ON b.id = o.brand_id"
						   " WHERE o.id = $1 FOR UPDATE OF o",
						   1, load_types),
			   values, NULL, SPI_OK_SELECT);
	/* a scoped caller is told the same of another program's orders */
	if (SPI_processed != 1 ||
		!scope_program_visible(DatumGetInt64(ledger_datum(8))))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_UNKNOWN_ORDER),
				 errmsg("unknown order %lld", (long long) order_id),
				 errhint("Order ids are returned by gifq_redeem().")));
	check_retry(order_id, TextDatumGetCString(ledger_datum(1)),
				DatumGetBool(ledger_datum(2)), TextDatumGetCString(ledger_datum(3)),
				TextDatumGetCString(ledger_datum(4)), DatumGetBool(ledger_datum(5)),
				DatumGetBool(ledger_datum(6)));

	memset(&holds, 0, sizeof(holds));
	holds.order_id = order_id;
	holds.member = TextDatumGetCString(ledger_datum(3));
	holds.program = TextDatumGetCString(ledger_datum(7));
	holds.program_id = DatumGetInt64(ledger_datum(8));
	holds.points.units = DatumGetInt64(ledger_datum(9));
	currency_from_text(DatumGetTextPP(ledger_datum(10)), holds.points.currency);
	holds.cost.units = DatumGetInt64(ledger_datum(11));
	currency_from_text(DatumGetTextPP(ledger_datum(12)), holds.cost.currency);
	load_order_accounts(&holds, DatumGetInt64(ledger_datum(13)),
						DatumGetInt64(ledger_datum(14)),
						DatumGetInt64(ledger_datum(15)),
						DatumGetInt64(ledger_datum(16)));
	orders_place_holds(&holds);
	worker_wake_on_commit();

	values[1] = Int64GetDatum(holds.points_hold);
	values[2] = Int64GetDatum(holds.funding_hold);
	if (holds.points_hold == 0)
		nulls[1] = 'n';		/* a claimed reward's order */
	if (holds.funding_hold == 0)
		nulls[2] = 'n';
	ledger_run(ledger_plan(&plan_retry_update,
						   "UPDATE gifq.orders SET status = 'pending',"
						   " status_reason = 'retried', points_hold = $2,"
						   " funding_hold = $3, next_attempt_at = pg_catalog.now(),"
						   " lease_until = NULL WHERE id = $1",
						   3, update_types),
			   values, nulls, SPI_OK_UPDATE);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gifq_actor);

/*
 * gifq_actor
 *		gifq.actor(): the role that called in.  Inside a SECURITY DEFINER
 *		function current_user is the function's owner; the outer user id
 *		is the caller's (session user or SET ROLE), which audit rows need.
 */
Datum
gifq_actor(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(GetUserNameFromId(GetOuterUserId(), false)));
}
