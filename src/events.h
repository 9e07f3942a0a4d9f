/*-------------------------------------------------------------------------
 * events.h
 *	  What events.c (one event) and events_batch.c (a batch) share.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/events.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_EVENTS_H
#define GIFQ_EVENTS_H

#include "postgres.h"

#include "gifq.h"
#include "ledger.h"
#include "money.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* One call: what the app sent. */
typedef struct EventCall
{
	const char *member;			/* NULL: SQL NULL */
	const char *event_type;
	const char *key;
	bool		occurred_given;
	TimestampTz occurred_at;	/* when given */
	Jsonb	   *attributes;		/* NULL: SQL NULL */
} EventCall;

/* What an event returns (a new one or the replayed first). */
typedef struct EventResult
{
	int64		event_id;
	int64		points;
	int64		balance;		/* minor units of balance_code */
	char		balance_code[GIFQ_CURRENCY_LEN];
	Jsonb	   *details;
} EventResult;

/* A challenge of an event's type. */
typedef struct Challenge
{
	int64		id;
	char	   *name;
	Numeric		multiplier;
	bool		limited;		/* has max_completions */
	bool		per_member;		/* has per_member_limit */
	int32		per_member_limit;
	int64		member_completions;
	TimestampTz starts_at;		/* when it runs (the cached settings, a batch) */
	TimestampTz ends_at;
	/* a batch's */
	char	   *event_type;
	int64		room;			/* completions left under max_completions */
	int64		taken;			/* completions the batch took */
} Challenge;

/*
 * What the ledger's filter needs to know of a program: its thresholds
 * (gifq.thresholds.points) and whether it keeps lots of expiring points
 * (then every change of a member's points goes to gifq.points_changed).
 */
typedef struct EventThresholds
{
	int			n;
	int64	   *points;
	bool		expiring;
} EventThresholds;

/* A streak type that counts events of a type. */
typedef struct StreakRule
{
	char	   *streak_type;
	char		period;			/* a PERIOD_ code (periods.h) */
	int32		grace;
} StreakRule;

/*
 * What an event of one type reads besides the member (settings.c caches
 * it): the program, its issuance account and thresholds, the type's rule,
 * its challenges that end after horizon and the streak types it counts
 * for (in name order).  Pointers stay valid until
 * the next call of event_settings().
 */
typedef struct EventSettings
{
	char	   *timezone;
	char		points_code[GIFQ_CURRENCY_LEN];
	LedgerAccount issuance_account;
	EventThresholds thresholds;
	bool		rule_exists;
	int64		rule_points;
	bool		has_cap;
	int32		daily_cap;
	TimestampTz horizon;
	int			nchallenges;
	Challenge  *challenges;		/* in id order, with starts_at and ends_at */
	int			nstreaks;
	StreakRule *streaks;
} EventSettings;

extern const EventSettings *event_settings(int64 program_id, const char *event_type,
										   TimestampTz at,
										   const SettingsVersion *seen);

/* The two columns events_read_thresholds reads, of a program "p". */
#define EVENT_THRESHOLD_COLUMNS \
	"ARRAY(SELECT t.points FROM gifq.thresholds t WHERE t.program_id = p.id)," \
	" EXISTS (SELECT 1 FROM gifq.points_expiry x WHERE x.program_id = p.id)"

/* A batch's last details text parsed, kept for its next event (event_details.c). */
typedef struct EventDetailsCache
{
	MemoryContext cxt;			/* holds all below */
	char	   *rule;			/* the texts the tree was parsed from */
	char	   *applied;
	char	   *skipped;
	JsonbValue *tree;			/* the details, in memory */
	JsonbValue *transfer_id;	/* the tree's "transfer_id" value */
} EventDetailsCache;

/* event_details.c */
extern Jsonb *events_details(const char *rule, const char *applied,
							 const char *skipped, int64 transfer_id);
extern Jsonb *events_details_cached(EventDetailsCache *cache, const char *rule,
									const char *applied, const char *skipped,
									int64 transfer_id);
extern void events_details_forget(EventDetailsCache *cache);

/* events.c */
extern void events_read_thresholds(Datum array, Datum expiring, EventThresholds *t);
extern void events_post(const TransferRequest *reqs, int n, const LedgerAccount *loaded,
						int64 *ids, EventThresholds *t);
extern void events_apply(const LedgerAccount *account, int slot, const SlotDelta *delta,
						 int64 transfer_id, EventThresholds *t);
extern int64 events_program_id(const char *program);
extern void events_check_call(const char *program, const EventCall *call);
extern void events_check_repeat(const EventCall *call, int64 member_id,
								int64 first_member_id, const char *first_event_type,
								bool first_occurred_given,
								TimestampTz first_occurred_at,
								Jsonb *first_attributes);
extern int64 events_challenge_bonus(int64 base, Numeric multiplier);
extern void events_append_challenge(StringInfo list, const Challenge *c,
									const char *reason, int64 bonus);
extern void events_record_one(const char *program, const EventCall *call,
							  EventResult *result);
extern void events_report_key_conflict(const char *key, const char *member,
									   MemoryContext cxt);

/* events_batch.c */
extern bool events_record_batch(const char *program, int64 program_id,
								const EventCall *calls, int n,
								EventResult *results);

#endif							/* GIFQ_EVENTS_H */
