/*-------------------------------------------------------------------------
 * config.h
 *	  gifq's settings (the gifq.* GUCs) as C variables.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/config.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_CONFIG_H
#define GIFQ_CONFIG_H

#include "postgres.h"

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

/* secrets: superuser-only */
extern char *gifq_card_key;
extern char *gifq_card_key_previous;
extern char *gifq_webhook_secret;
extern char *gifq_webhook_secret_previous;
extern char *gifq_events_secret;

/* outbound events */
extern char *gifq_events_url;

extern void config_define(void);

#endif							/* GIFQ_CONFIG_H */
