/*-------------------------------------------------------------------------
 * gifq.h
 *	  Definitions shared by every gifq source file: SQLSTATEs and
 *	  version-compatibility macros.
 *
 * gifq's errors form a SQLSTATE class of their own, "QG".  Codes are
 * grouped by area: QG0xx for the gifq_money type, QG1xx for the ledger,
 * QG2xx for the catalog and orders, QG3xx for gamification, QG4xx for
 * fulfilment, QG5xx for recipient-choice rewards, QG6xx for operations, QG7xx for
 * security.
 * Every code is listed
 * in docs/errors.md with its condition name and is exercised by a test.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/gifq.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_H
#define GIFQ_H

#include "postgres.h"

/* gifq_money (QG0xx) */
#define ERRCODE_GIFQ_CURRENCY_MISMATCH		MAKE_SQLSTATE('Q','G','0','0','1')
#define ERRCODE_GIFQ_MONEY_OUT_OF_RANGE		MAKE_SQLSTATE('Q','G','0','0','2')
#define ERRCODE_GIFQ_EXCESS_PRECISION		MAKE_SQLSTATE('Q','G','0','0','3')
#define ERRCODE_GIFQ_INVALID_CURRENCY		MAKE_SQLSTATE('Q','G','0','0','4')
#define ERRCODE_GIFQ_INVALID_MONEY			MAKE_SQLSTATE('Q','G','0','0','5')
#define ERRCODE_GIFQ_MONEY_NOT_FINITE		MAKE_SQLSTATE('Q','G','0','0','6')
#define ERRCODE_GIFQ_INVALID_RATIOS			MAKE_SQLSTATE('Q','G','0','0','7')

/* ledger (QG1xx) */
#define ERRCODE_GIFQ_UNKNOWN_PROGRAM		MAKE_SQLSTATE('Q','G','1','0','1')
#define ERRCODE_GIFQ_UNKNOWN_MEMBER			MAKE_SQLSTATE('Q','G','1','0','2')
#define ERRCODE_GIFQ_UNKNOWN_ACCOUNT		MAKE_SQLSTATE('Q','G','1','0','3')
#define ERRCODE_GIFQ_INVALID_AMOUNT			MAKE_SQLSTATE('Q','G','1','0','4')
#define ERRCODE_GIFQ_SAME_ACCOUNT			MAKE_SQLSTATE('Q','G','1','0','5')
#define ERRCODE_GIFQ_ACCOUNT_CURRENCY		MAKE_SQLSTATE('Q','G','1','0','6')
#define ERRCODE_GIFQ_EXCEEDS_CREDITS		MAKE_SQLSTATE('Q','G','1','0','7')
#define ERRCODE_GIFQ_EXCEEDS_DEBITS			MAKE_SQLSTATE('Q','G','1','0','8')
#define ERRCODE_GIFQ_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('Q','G','1','0','9')
#define ERRCODE_GIFQ_UNKNOWN_PENDING		MAKE_SQLSTATE('Q','G','1','1','0')
#define ERRCODE_GIFQ_PENDING_POSTED			MAKE_SQLSTATE('Q','G','1','1','1')
#define ERRCODE_GIFQ_PENDING_VOIDED			MAKE_SQLSTATE('Q','G','1','1','2')
#define ERRCODE_GIFQ_PENDING_EXPIRED		MAKE_SQLSTATE('Q','G','1','1','3')
#define ERRCODE_GIFQ_EXCEEDS_PENDING		MAKE_SQLSTATE('Q','G','1','1','4')
#define ERRCODE_GIFQ_INVALID_PARAMETER		MAKE_SQLSTATE('Q','G','1','1','5')
#define ERRCODE_GIFQ_CROSS_PROGRAM			MAKE_SQLSTATE('Q','G','1','1','6')
#define ERRCODE_GIFQ_INVALID_TIMEOUT		MAKE_SQLSTATE('Q','G','1','1','7')
#define ERRCODE_GIFQ_INVALID_BATCH			MAKE_SQLSTATE('Q','G','1','1','8')

/* catalog and orders (QG2xx) */
#define ERRCODE_GIFQ_UNKNOWN_BRAND			MAKE_SQLSTATE('Q','G','2','0','1')
#define ERRCODE_GIFQ_BRAND_DISCONTINUED		MAKE_SQLSTATE('Q','G','2','0','2')
#define ERRCODE_GIFQ_OUT_OF_STOCK			MAKE_SQLSTATE('Q','G','2','0','3')
#define ERRCODE_GIFQ_BRAND_CURRENCY			MAKE_SQLSTATE('Q','G','2','0','4')
#define ERRCODE_GIFQ_INVALID_DENOMINATION	MAKE_SQLSTATE('Q','G','2','0','5')
#define ERRCODE_GIFQ_COUNTRY_NOT_SERVED		MAKE_SQLSTATE('Q','G','2','0','6')
#define ERRCODE_GIFQ_NO_RATE				MAKE_SQLSTATE('Q','G','2','0','7')
#define ERRCODE_GIFQ_INSUFFICIENT_POINTS	MAKE_SQLSTATE('Q','G','2','0','8')
#define ERRCODE_GIFQ_INSUFFICIENT_FUNDING	MAKE_SQLSTATE('Q','G','2','0','9')
#define ERRCODE_GIFQ_MEMBER_BLOCKED			MAKE_SQLSTATE('Q','G','2','1','0')
#define ERRCODE_GIFQ_SINGLE_LIMIT			MAKE_SQLSTATE('Q','G','2','1','1')
#define ERRCODE_GIFQ_VERIFICATION_REQUIRED	MAKE_SQLSTATE('Q','G','2','1','2')
#define ERRCODE_GIFQ_DAILY_COUNT_LIMIT		MAKE_SQLSTATE('Q','G','2','1','3')
#define ERRCODE_GIFQ_DAILY_VALUE_LIMIT		MAKE_SQLSTATE('Q','G','2','1','4')
#define ERRCODE_GIFQ_UNKNOWN_ORDER			MAKE_SQLSTATE('Q','G','2','1','5')
#define ERRCODE_GIFQ_ORDER_TRANSITION		MAKE_SQLSTATE('Q','G','2','1','6')
#define ERRCODE_GIFQ_INVALID_CATALOG		MAKE_SQLSTATE('Q','G','2','1','7')

/* gamification (QG3xx; see docs/gamification.md) */
#define ERRCODE_GIFQ_UNKNOWN_STREAK_TYPE	MAKE_SQLSTATE('Q','G','3','0','1')
#define ERRCODE_GIFQ_PEER_LIMIT			MAKE_SQLSTATE('Q','G','3','0','2')

/* fulfilment: cards, webhooks, the provider (QG4xx; see docs/worker.md) */
#define ERRCODE_GIFQ_NO_CARD				MAKE_SQLSTATE('Q','G','4','0','1')
#define ERRCODE_GIFQ_CARD_KEY_MISSING		MAKE_SQLSTATE('Q','G','4','0','2')
#define ERRCODE_GIFQ_CARD_UNREADABLE		MAKE_SQLSTATE('Q','G','4','0','3')
#define ERRCODE_GIFQ_INVALID_WEBHOOK		MAKE_SQLSTATE('Q','G','4','0','4')
#define ERRCODE_GIFQ_WEBHOOK_SIGNATURE		MAKE_SQLSTATE('Q','G','4','0','5')
#define ERRCODE_GIFQ_PROVIDER_NOT_SET		MAKE_SQLSTATE('Q','G','4','0','6')

/*
 * recipient-choice rewards (QG5xx; see docs/rewards.md).  Raised by the
 * PL/pgSQL half of the rewards API in the 0.7.0 script.
 */
#define ERRCODE_GIFQ_CLAIM_TOKEN_UNKNOWN	MAKE_SQLSTATE('Q','G','5','0','1')
#define ERRCODE_GIFQ_REWARD_CLAIMED		MAKE_SQLSTATE('Q','G','5','0','2')
#define ERRCODE_GIFQ_REWARD_EXPIRED		MAKE_SQLSTATE('Q','G','5','0','3')
#define ERRCODE_GIFQ_BRAND_NOT_OFFERED		MAKE_SQLSTATE('Q','G','5','0','4')
/* operations: maintenance jobs (QG6xx; see docs/operations.md) */
#define ERRCODE_GIFQ_CATALOG_NOT_REFRESHED	MAKE_SQLSTATE('Q','G','6','0','3')

/* security: roles and program scoping (QG7xx; see docs/security.md) */
#define ERRCODE_GIFQ_PROGRAM_NOT_GRANTED	MAKE_SQLSTATE('Q','G','7','0','1')
#define ERRCODE_GIFQ_UNKNOWN_ROLE			MAKE_SQLSTATE('Q','G','7','0','2')

/* security: hostile input (QG74x; see docs/security.md) */
#define ERRCODE_GIFQ_HOLD_OWNED				MAKE_SQLSTATE('Q','G','7','4','0')

/* settings (gifq.c; docs/settings.md) */
/* where the worker runs (postmaster start only) */
extern char *gifq_database;

/* the provider */
extern char *gifq_provider_url;
extern char *gifq_provider_api_key;
extern int	gifq_max_concurrent_requests;
extern int	gifq_connect_timeout_ms;
extern int	gifq_request_timeout_ms;
extern int	gifq_max_response_bytes;
extern int	gifq_provider_rate_limit;
extern int	gifq_max_attempts;
extern int	gifq_retry_base_ms;
extern int	gifq_retry_max_ms;
extern int	gifq_poll_interval_ms;
extern int	gifq_catalog_refresh_interval;
extern int	gifq_call_log_retention;
extern int	gifq_outbox_retention;
extern int	gifq_webhook_retention;

/* secrets: superuser-only */
extern char *gifq_card_key;
extern char *gifq_card_key_previous;
extern char *gifq_webhook_secret;
extern char *gifq_webhook_secret_previous;
extern char *gifq_events_secret;
extern char *gifq_events_secret_previous;

/* outbound events */
extern char *gifq_events_url;

/* outbound TLS (provider.c) */
extern bool gifq_tls_verify;
extern char *gifq_tls_ca_file;

/*
 * What a statement saw of gifq.settings_version (settings.c): the version,
 * the transaction that wrote it (a version number that an aborted
 * transaction reached can be reached again by another, with other
 * settings) and the table's OID (the extension may have been created
 * again).  SETTINGS_VERSION_COLUMNS reads them, of a row "v".
 */
typedef struct SettingsVersion
{
	int64		version;
	TransactionId xmin;
	Oid			table;
} SettingsVersion;

#define SETTINGS_VERSION_COLUMNS "v.version, v.xmin, v.tableoid"

extern void settings_version_read(int n, SettingsVersion *seen);

/*
 * GIFQ_ERETURN reports a soft error where the server supports them
 * (PostgreSQL 16 and later, for pg_input_is_valid()), and a plain ERROR
 * before that.  "context" is fcinfo->context of an input function, or NULL
 * to always throw.
 */
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
#define GIFQ_ERETURN(context, dummy, ...) \
	ereturn((context), (dummy), __VA_ARGS__)
#define GIFQ_SOFT_ERROR_OCCURRED(context) SOFT_ERROR_OCCURRED(context)
#else
#define GIFQ_ERETURN(context, dummy, ...) \
	do { \
		(void) (context); \
		ereport(ERROR, __VA_ARGS__); \
		return (dummy); \
	} while (0)
#define GIFQ_SOFT_ERROR_OCCURRED(context) ((void) (context), false)
#endif

#endif							/* GIFQ_H */
