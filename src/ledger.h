/*-------------------------------------------------------------------------
 * ledger.h
 *	  The ledger's shared internals: accounts, slot updates, transfer rows.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/ledger.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_LEDGER_H
#define GIFQ_LEDGER_H

#include "postgres.h"

#include "money.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* An account as a transfer needs it (gifq.accounts). */
typedef struct LedgerAccount
{
	int64		id;
	int64		program_id;
	char		currency[GIFQ_CURRENCY_LEN];
	bool		debits_must_not_exceed_credits;
	bool		credits_must_not_exceed_debits;
	int32		slots;
	bool		has_low_balance;
	bool		watch_thresholds;	/* a member's one-slot account */
} LedgerAccount;

/*
 * Whether a change of account "a" may cross a points threshold (slots.c):
 * a member's one-slot account.  (Whether the program has thresholds is
 * asked only when such an account gains: this library also serves
 * versions of the extension without the thresholds table, until ALTER
 * EXTENSION UPDATE runs.)
 */
#define LEDGER_WATCH_THRESHOLDS "(a.member_id IS NOT NULL AND a.slots = 1)"

/*
 * What a query selects of an account "a" for ledger_read_account(): id,
 * the two limit flags, slots, whether it has a low-balance level, and
 * whether it may cross a threshold.
 */
#define LEDGER_ACCOUNT_NCOLUMNS 6
#define LEDGER_ACCOUNT_COLUMNS "a.id, a.debits_must_not_exceed_credits," \
	" a.credits_must_not_exceed_debits, a.slots, a.low_balance IS NOT NULL, " \
	LEDGER_WATCH_THRESHOLDS

/* A change to one slot's four balances, in minor units. */
typedef struct SlotDelta
{
	int64		debits_posted;
	int64		credits_posted;
	int64		debits_pending;
	int64		credits_pending;
} SlotDelta;

struct TransferRequest;

/*
 * Called instead of the ledger's own QG107/QG108 error when an account's
 * limit refuses a side of a transfer; must throw.  "available" is the
 * room the account had left, in its minor units.
 */
typedef void (*LedgerRefusal) (const struct TransferRequest *request,
							   const struct LedgerAccount *account,
							   int64 available);

/* What gifq_transfer and the batch form are asked to do. */
typedef struct TransferRequest
{
	int64		debit_account;
	int64		credit_account;
	GifqMoney	amount;
	char	   *idempotency_key;	/* NULL: none */
	bool		pending;
	Interval   *timeout;		/* NULL: no timeout */
	Jsonb	   *metadata;
	LedgerRefusal refused;		/* NULL: the ledger's own error */
	void	   *refused_arg;	/* for the callback */
} TransferRequest;

/*
 * A caller that knows the thresholds and the points expiry of the
 * accounts it is about to change (events.c reads the program's with the
 * member) may set this while it changes them: ledger_apply then calls
 * gifq.points_changed, a PL/pgSQL function that costs more than the rest
 * of a balance change, only when the filter says it has work: the program
 * keeps lots of expiring points, or a threshold lies in (before, after].
 * NULL, the default: always call it.
 */
typedef bool (*LedgerThresholdFilter) (const LedgerAccount *account,
									   int64 before, int64 after, void *arg);
extern LedgerThresholdFilter ledger_threshold_filter;
extern void *ledger_threshold_filter_arg;

/* ledger.c */
extern void ledger_read_account(int n, int64 program_id, const char *currency,
								LedgerAccount *account);
extern void ledger_load_account(int64 id, LedgerAccount *account);
extern void ledger_load_accounts(const int64 *ids, int n,
								 LedgerAccount *accounts);
extern int	ledger_apply(const LedgerAccount *account, int slot,
						 const SlotDelta *delta, int64 transfer_id);
extern int64 ledger_insert_transfer(int64 program_id, const char *kind,
									int64 debit, int64 credit, int64 amount,
									const char *currency, int64 pending_id,
									Interval *timeout, const char *key,
									Jsonb *metadata);
extern void ledger_apply_both(const LedgerAccount *debit, int debit_slot,
							  const SlotDelta *debit_delta,
							  const LedgerAccount *credit, int credit_slot,
							  const SlotDelta *credit_delta,
							  int64 transfer_id, const GifqMoney *amount,
							  const TransferRequest *request);
extern int64 ledger_transfer(const TransferRequest *request);
extern void ledger_transfer_set(const TransferRequest *requests, int n,
								const LedgerAccount *loaded, int64 *ids);
extern void ledger_after_change(const LedgerAccount *account);
extern int64 ledger_available(const LedgerAccount *account);
extern void ledger_report_conflict(const char *key, const char *what,
								   const char *field, const char *first,
								   const char *now) pg_attribute_noreturn();

/* SPI helpers (ledger.c) */
extern SPIPlanPtr ledger_plan_generic(SPIPlanPtr *cache, const char *sql, int nargs,
									   const Oid *argtypes);
extern SPIPlanPtr ledger_plan(SPIPlanPtr *cache, const char *sql, int nargs,
							  const Oid *argtypes);
extern void ledger_run(SPIPlanPtr plan, Datum *values, const char *nulls,
					   int expected);
extern Datum ledger_datum(int n);
extern char *ledger_text(int n);

#endif							/* GIFQ_LEDGER_H */
