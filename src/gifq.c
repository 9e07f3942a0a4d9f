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
 * SHOW nor SET them, pg_read_all_settings sees only whether one is set,
 * no reload logs one, and gifq's own functions read them in C
 * (docs/secrets.md).  Everything
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
#if PG_VERSION_NUM >= 160000
#include "utils/guc_tables.h"
#endif

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *gifq_database = NULL;
char	   *gifq_provider_url = NULL;
char	   *gifq_provider_api_key = NULL;
int			gifq_max_concurrent_requests = 16;
int			gifq_connect_timeout_ms = 5000;
int			gifq_request_timeout_ms = 30000;
int			gifq_max_response_bytes = 16 * 1024 * 1024;
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
char	   *gifq_events_secret_previous = NULL;
char	   *gifq_events_url = NULL;
bool		gifq_tls_verify = true;
char	   *gifq_tls_ca_file = NULL;

/*
 * What the GUC machinery itself holds for a secret, whatever its value.
 *
 * The postmaster logs "parameter X changed to <new text>" on a reload
 * whenever GetConfigOption's value of a setting changes, and
 * GetConfigOption, pg_settings' reset_val and postgres -C read the
 * variable, not the show hook.  A variable that never changes keeps every
 * one of them from seeing the secret: the value lives in the setting's
 * "extra" (check_secret), and the assign hook points gifq's C variable
 * (gifq_card_key...) at it.
 *
 * A parallel worker is sent the settings' variables, so it gets the
 * constant, not the secret (which no longer goes into the parallel
 * query's shared memory): the functions that read a secret are and must
 * stay PARALLEL UNSAFE.
 */
#define SECRET_STORED ""

/* the GUC variables of the secrets: always SECRET_STORED */
static char *stored_provider_api_key;
static char *stored_card_key;
static char *stored_card_key_previous;
static char *stored_webhook_secret;
static char *stored_webhook_secret_previous;
static char *stored_events_secret;
static char *stored_events_secret_previous;

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
	const char *authority;

	if (url == NULL || url[0] == '\0')
		return true;

	/*
	 * Credentials in the URL (https://user:password@host/) would be shown
	 * by SHOW to every role and in libcurl's errors: they belong in
	 * gifq.provider_api_key.  The message does not quote the URL.
	 */
	authority = strstr(url, "://");
	authority = authority ? authority + 3 : url;
	if (memchr(authority, '@', strcspn(authority, "/?#")) != NULL)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("a URL gifq calls may not carry credentials (user:password@)");
		GUC_check_errhint("Every role can read this setting; the provider's key goes in gifq.provider_api_key.");
		return false;
	}
	if (pg_strncasecmp(url, "http://", 7) == 0 ||
		pg_strncasecmp(url, "https://", 8) == 0)
		return true;
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("\"%s\" is not an http or https URL", url);
	GUC_check_errhint("gifq calls its provider and event endpoint over http or https only.");
	return false;
}

/* GUC memory: malloc'd before PostgreSQL 16, its own context since */
static char *
secret_strdup(const char *s)
{
#if PG_VERSION_NUM >= 160000
	return guc_strdup(LOG, s);
#else
	char	   *copy = malloc(strlen(s) + 1);

	if (copy != NULL)
		strcpy(copy, s);
	return copy;
#endif
}

/*
 * check_secret
 *		Move the secret into *extra and leave SECRET_STORED as the value
 *		the GUC machinery keeps (see SECRET_STORED).  Any text is a valid
 *		secret, so this never fails but for memory.
 */
static bool
check_secret(char **newval, void **extra, GucSource source)
{
	char	   *stored;

	if (*newval == NULL && (*newval = secret_strdup("")) == NULL)
		return false;
	if ((stored = secret_strdup(SECRET_STORED)) == NULL)
		return false;
	*extra = *newval;
	*newval = stored;
	return true;
}

/*
 * show_secret
 *		What SHOW, current_setting() and pg_settings show of a secret.
 *		PostgreSQL lets members of pg_read_all_settings read superuser-only
 *		settings; they and anyone acting through a superuser's SECURITY
 *		DEFINER function see only whether it is set.  A superuser session,
 *		as itself, sees the value (it can read the configuration files
 *		anyway).
 */
static const char *
show_secret(const char *value)
{
	if (value == NULL)
		return "";
	if (superuser() && superuser_arg(GetSessionUserId()))
		return value;
	return value[0] != '\0' ? "(set)" : "";
}

/*
 * Each secret's assign hook points its C variable at the extra holding
 * the value (the GUC machinery frees an extra only once no value refers
 * to it), and its show hook shows that variable.
 */
#define SECRET_HOOKS(name) \
static void \
assign_##name(const char *newval, void *extra) \
{ \
	gifq_##name = (char *) extra; \
} \
static const char * \
show_##name(void) \
{ \
	return show_secret(gifq_##name); \
}

SECRET_HOOKS(provider_api_key)
SECRET_HOOKS(card_key)
SECRET_HOOKS(card_key_previous)
SECRET_HOOKS(webhook_secret)
SECRET_HOOKS(webhook_secret_previous)
SECRET_HOOKS(events_secret)
SECRET_HOOKS(events_secret_previous)

#define DEFINE_SECRET(name, description) \
	DefineCustomStringVariable("gifq." #name, (description), NULL, \
							   &stored_##name, "", PGC_SIGHUP, \
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, \
							   check_secret, assign_##name, show_##name)

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
	DEFINE_SECRET(provider_api_key,
				  "API key sent to the provider as a bearer token.");
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
	DEFINE_SECRET(card_key,
				  "Key that seals gift-card codes and PINs at rest.");
	DEFINE_SECRET(card_key_previous,
				  "The card key before the last rotation, to open older cards.");
	DEFINE_SECRET(webhook_secret,
				  "Secret of the provider's webhook signatures.");
	DEFINE_SECRET(webhook_secret_previous,
				  "The webhook secret being rotated out; accepted too while set.");
	DefineCustomStringVariable("gifq.events_url",
							   "Endpoint the worker POSTs gifq's events to (empty: none).",
							   NULL, &gifq_events_url, "", PGC_SIGHUP, 0,
							   check_url, NULL, NULL);
	DEFINE_SECRET(events_secret,
				  "Secret that signs the events POSTed to gifq.events_url.");
	DEFINE_SECRET(events_secret_previous,
				  "The events secret being rotated out; events are signed with it too while set.");
	DefineCustomBoolVariable("gifq.tls_verify",
							 "Verify the TLS certificates and host names of the provider and event endpoint.",
							 "Turn off only to test against a server with a certificate no CA vouches for.",
							 &gifq_tls_verify, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("gifq.tls_ca_file",
							   "CA certificates (PEM file) to verify the provider and event endpoint with.",
							   "Empty: the system's CA store.",
							   &gifq_tls_ca_file, "", PGC_SIGHUP, 0,
							   NULL, NULL, NULL);
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
