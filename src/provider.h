/*-------------------------------------------------------------------------
 * provider.h
 *	  HTTP calls to the provider (and to the events endpoint) with libcurl's
 *	  multi interface, many at once, waited on together with the process's
 *	  latch.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/provider.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_PROVIDER_H
#define GIFQ_PROVIDER_H

#include "postgres.h"

#include "nodes/pg_list.h"

typedef struct ProviderSession ProviderSession;

/*
 * One call.  The caller fills the first part (strings it owns, alive until
 * the call is done); provider.c fills the results.
 */
typedef struct ProviderRequest
{
	const char *call;			/* "order", "lookup", "catalog", "balance", "event" */
	int64		id;				/* the order's or event's id, 0 for none */
	int			attempt;		/* the order's attempts, for the log */
	char	   *url;
	char	   *body;			/* POST this, or NULL to GET */
	bool		authorize;		/* send the provider's API key */
	char	   *idempotency_key;	/* or NULL */
	char	   *signature;		/* X-Gifq-Signature, or NULL */
	char	   *if_none_match;	/* or NULL */

	/* results */
	int			http_status;	/* 0: no answer */
	char	   *error;			/* why there is no usable answer, or NULL */
	char	   *response;		/* the body (NUL-terminated), or NULL */
	size_t		response_len;
	bool		response_json;	/* the body parsed as JSON */
	int			retry_after;	/* seconds; -1: not given */
	char	   *etag;			/* ETag header, or NULL */
	double		latency_ms;

	int			record_tries;	/* fulfil.c's: attempts to record the answer */
	void	   *transfer;		/* provider.c's, while in flight */
} ProviderRequest;

extern ProviderSession *provider_open(void);
extern void provider_close(ProviderSession *ps);
extern int	provider_in_flight(ProviderSession *ps);
extern long provider_rate_delay_ms(ProviderSession *ps);
extern void provider_start(ProviderSession *ps, ProviderRequest *req);
extern List *provider_wait(ProviderSession *ps, long timeout_ms, bool *woken);
extern char *provider_url(const char *path);
extern void provider_warn_insecure(void);

#endif							/* GIFQ_PROVIDER_H */
