/*-------------------------------------------------------------------------
 * orders.h
 *	  What redeem.c and orders.c share: an order's holds and the
 *	  conversions of face value to points and to cost.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/orders.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_ORDERS_H
#define GIFQ_ORDERS_H

#include "postgres.h"

#include "ledger.h"
#include "money.h"
#include "utils/numeric.h"

/*
 * The two holds of an order: the member's points (points account to
 * issuance) and the program's funding at cost (funding to payable, in the
 * card's currency).  The names are for refusal messages.
 */
typedef struct OrderHolds
{
	int64		order_id;
	const char *program;		/* program code */
	const char *member;			/* member's external id */
	LedgerAccount points_account;
	LedgerAccount issuance_account;
	LedgerAccount funding_account;	/* id 0: never funded in this currency */
	LedgerAccount payable_account;	/* id 0: created on first use */
	int64		program_id;
	GifqMoney	points;
	GifqMoney	cost;
	/* results */
	int64		points_hold;
	int64		funding_hold;
} OrderHolds;

/* The limits of a program, in points (minor units of its points code). */
typedef struct RedeemLimits
{
	bool		has_count;
	int32		max_count;
	int64		max_day;		/* -1: none, and so for the others */
	int64		max_single;
	int64		verify_above;
	int64		yearly_flag;
	GifqMoney	shown[4];		/* as set, for messages */
} RedeemLimits;

/*
 * What a redemption reads besides the member, for one program, brand and
 * card currency (settings.c caches it).  Pointers stay valid until the
 * next call of redeem_settings().
 */
typedef struct RedeemSettings
{
	int64		program_id;
	char		program_currency[GIFQ_CURRENCY_LEN];
	char		points_code[GIFQ_CURRENCY_LEN];
	Numeric		points_per_unit;
	Numeric		rate;			/* NULL: no rate for the card's currency */
	char	   *timezone;
	RedeemLimits limits;

	bool		brand_found;
	char	   *brand_country;
	char		brand_currency[GIFQ_CURRENCY_LEN];
	Numeric		discount_pct;
	bool		in_stock;
	bool		discontinued;
	int64	   *denominations;	/* NULL: a range from min_value to max_value */
	int			ndenominations;
	int64		min_value;
	int64		max_value;

	/* the program's accounts (id 0: none in the card's currency yet) */
	LedgerAccount issuance_account;
	LedgerAccount funding_account;
	LedgerAccount payable_account;
} RedeemSettings;

extern const RedeemSettings *redeem_settings(int64 program_id,
											 const char *brand,
											 const char *currency,
											 const SettingsVersion *seen);
extern bool redeem_settings_offer(const RedeemSettings *s, int64 units);

extern void orders_place_holds(OrderHolds *holds);
extern int64 orders_to_points(int64 units, const char *currency, Numeric rate,
							  const char *points_code, bool *overflow);
extern int64 orders_cost(int64 units, Numeric discount_pct);
extern void orders_refuse_blocked(const char *member) pg_attribute_noreturn();
extern void orders_refuse_discontinued(const char *brand) pg_attribute_noreturn();
extern void orders_refuse_out_of_stock(const char *brand) pg_attribute_noreturn();

#endif							/* GIFQ_ORDERS_H */
