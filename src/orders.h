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

extern void orders_place_holds(OrderHolds *holds);
extern int64 orders_to_points(int64 units, const char *currency, Numeric rate,
							  const char *points_code, bool *overflow);
extern int64 orders_cost(int64 units, Numeric discount_pct);
extern void orders_refuse_blocked(const char *member) pg_attribute_noreturn();
extern void orders_refuse_discontinued(const char *brand) pg_attribute_noreturn();
extern void orders_refuse_out_of_stock(const char *brand) pg_attribute_noreturn();

#endif							/* GIFQ_ORDERS_H */
