/*-------------------------------------------------------------------------
 * gifq.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init.
 *
 * gifq works loaded on demand by CREATE EXTENSION and preloaded through
 * shared_preload_libraries alike; settings are defined in both cases, and
 * whatever needs shared memory or a background worker is set up only when
 * preloaded.  All settings live under the reserved "gifq." prefix.
 *
 * The settings (every gifq.* GUC) are defined here too; docs/settings.md
 * documents each.  Secrets (the provider's API key, the card key, the
 * webhook and event secrets) are superuser-only: an app role can neither
 * SHOW nor SET them, and gifq's own functions read them in C.  Everything
 * the worker uses is reloadable (SIGHUP) except the list of databases it
 * serves, which needs a restart like shared_preload_libraries itself (and
 * exists only when gifq is preloaded).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/gifq.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "gifq.h"
#include "worker.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *gifq_database = NULL;
char	   *gifq_provider_url = NULL;
char	   *gifq_provider_api_key = NULL;
int			gifq_max_concurrent_requests = 16;
int			gifq_connect_timeout_ms = 5000;
int			gifq_request_timeout_ms = 30000;
int			gifq_max_response_bytes = 1024 * 1024;
int			gifq_provider_rate_limit = 0;
int			gifq_max_attempts = 5;
int			gifq_retry_base_ms = 1000;
int			gifq_retry_max_ms = 300000;
int			gifq_poll_interval_ms = 5000;
int			gifq_catalog_refresh_interval = 300;
int			gifq_call_log_retention = 7 * 24 * 3600;
int			gifq_outbox_retention = 30 * 24 * 3600;
int			gifq_webhook_retention = 30 * 24 * 3600;
char	   *gifq_card_key = NULL;
char	   *gifq_card_key_previous = NULL;
char	   *gifq_webhook_secret = NULL;
char	   *gifq_webhook_secret_previous = NULL;
char	   *gifq_events_secret = NULL;
char	   *gifq_events_url = NULL;

/*
 * check_url
 *		An endpoint gifq calls is http or https, or not set.  libcurl is
 *		also told to speak nothing else (provider.c); refusing here makes a
 *		typo an error at reload rather than failed orders.
 */
static bool
check_url(char **newval, void **extra, GucSource source)
{
	const char *url = *newval;

	if (url == NULL || url[0] == '\0')
		return true;
	if (pg_strncasecmp(url, "http://", 7) == 0 ||
		pg_strncasecmp(url, "https://", 8) == 0)
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("\"%s\" is not an http or https URL", url);
	GUC_check_errhint("gifq calls its provider and event endpoint over http or https only.");
	return false;
}

static void
define_secret(const char *name, const char *description, char **variable)
{
	DefineCustomStringVariable(name, description, NULL, variable, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
}

static void
define_ms(const char *name, const char *description, int *variable,
		  int boot, int min, int max)
{
	DefineCustomIntVariable(name, description, NULL, variable, boot, min, max,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

/*
 * define_settings
 *		Define every setting; called from _PG_init, preloaded or not.
 */
static void
define_settings(void)
{
	/* a postmaster setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("gifq.database",
								   "Databases the gifq worker serves (comma-separated).",
								   "One worker runs per database; each needs gifq installed.",
								   &gifq_database, "postgres", PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);
	DefineCustomStringVariable("gifq.provider_url",
							   "Base URL of the gift-card provider's API.",
							   "For example https://api.provider.example; orders go to <url>/api/v1/orders.",
							   &gifq_provider_url, "", PGC_SIGHUP, 0,
							   check_url, NULL, NULL);
	define_secret("gifq.provider_api_key",
				  "API key sent to the provider as a bearer token.",
				  &gifq_provider_api_key);
	DefineCustomIntVariable("gifq.max_concurrent_requests",
							"Most requests to the provider in flight at once, per worker or session.",
							NULL, &gifq_max_concurrent_requests, 16, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	define_ms("gifq.connect_timeout_ms", "Time allowed to connect to the provider.",
			  &gifq_connect_timeout_ms, 5000, 100, 600000);
	define_ms("gifq.request_timeout_ms", "Time allowed for a whole provider call.",
			  &gifq_request_timeout_ms, 30000, 100, 3600000);
	DefineCustomIntVariable("gifq.max_response_bytes",
							"Largest provider answer accepted; a larger one is an error.",
							NULL, &gifq_max_response_bytes, 1024 * 1024, 1024, 256 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("gifq.provider_rate_limit",
							"Most provider calls started per second (0: no limit).",
							"Set it to the provider's published limit.",
							&gifq_provider_rate_limit, 0, 0, 100000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gifq.max_attempts",
							"Times an order is sent before it fails.",
							NULL, &gifq_max_attempts, 5, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	define_ms("gifq.retry_base_ms", "First retry delay; it doubles with each attempt.",
			  &gifq_retry_base_ms, 1000, 1, 3600000);
	define_ms("gifq.retry_max_ms", "Longest retry delay.",
			  &gifq_retry_max_ms, 300000, 1, 86400000);
	define_ms("gifq.poll_interval", "Longest time the worker sleeps without being woken.",
			  &gifq_poll_interval_ms, 5000, 10, 3600000);
	DefineCustomIntVariable("gifq.catalog_refresh_interval",
							"How often the worker loads the provider's catalog (0: never).",
							NULL, &gifq_catalog_refresh_interval, 300, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("gifq.call_log_retention",
							"How long provider calls stay in gifq.provider_calls.",
							NULL, &gifq_call_log_retention, 7 * 24 * 3600, 60, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("gifq.outbox_retention",
							"How long gifq_prune keeps events in gifq.outbox that are not waiting to be sent.",
							NULL, &gifq_outbox_retention, 30 * 24 * 3600, 3600, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("gifq.webhook_retention",
							"How long gifq_prune keeps the ids of webhooks received in gifq.webhook_events.",
							NULL, &gifq_webhook_retention, 30 * 24 * 3600, 86400, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	define_secret("gifq.card_key",
				  "Key that seals gift-card codes and PINs at rest.",
				  &gifq_card_key);
	define_secret("gifq.card_key_previous",
				  "The card key before the last rotation, to open older cards.",
				  &gifq_card_key_previous);
	define_secret("gifq.webhook_secret",
				  "Secret of the provider's webhook signatures.",
				  &gifq_webhook_secret);
	define_secret("gifq.webhook_secret_previous",
				  "The webhook secret being rotated out; accepted too while set.",
				  &gifq_webhook_secret_previous);
	DefineCustomStringVariable("gifq.events_url",
							   "Endpoint the worker POSTs gifq's events to (empty: none).",
							   NULL, &gifq_events_url, "", PGC_SIGHUP, 0,
							   check_url, NULL, NULL);
	define_secret("gifq.events_secret",
				  "Secret that signs the events POSTed to gifq.events_url.",
				  &gifq_events_secret);
}


/*
 * _PG_init
 *		Called once per process when the library is loaded.
 *
 * Reserving the prefix makes a misspelt "gifq.*" setting an error instead
 * of a silently ignored placeholder.
 */
void
_PG_init(void)
{
	define_settings();
	MarkGUCPrefixReserved("gifq");
	worker_init();
}
