/*-------------------------------------------------------------------------
 * provider.c
 *	  HTTP calls with libcurl's multi interface, driven by the process's
 *	  own wait loop.
 *
 * A ProviderSession is a curl multi handle whose sockets and timer are
 * waited on with a WaitEventSet that also holds the process latch: a
 * worker sending fifty orders still wakes at once for a new order, a
 * SIGHUP or a SIGTERM, and a backend in gifq_process_orders answers a
 * query cancel.  Every call is limited in time (connect and total), in
 * protocol (http and https, no redirects, TLS verified: set_safety), and
 * in answer size; timeouts
 * run from when the call really starts, because callers never start more
 * than gifq.max_concurrent_requests at once (pg_net's users saw whole
 * queues time out in bursts where every queued request's clock ran).
 *
 * libcurl calls back into this file from within curl_multi_socket_action:
 * the callbacks only use malloc'd memory and never raise an ERROR, which
 * would longjmp through libcurl's frames.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/provider.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "provider.h"

#include <curl/curl.h>

#include "common/jsonapi.h"
#include "lib/ilist.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* a socket libcurl asked us to watch */
typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN, _OUT or _INOUT */
} WatchedSocket;

struct ProviderSession
{
	CURLM	   *multi;
	int			in_flight;
	dlist_head	transfers;		/* in flight */
	bool		timer_set;		/* libcurl wants a call at timer_due */
	TimestampTz timer_due;
	WatchedSocket *sockets;		/* malloc'd */
	int			nsockets;
	int			maxsockets;
	/* start times of the last calls, for gifq.provider_rate_limit */
	TimestampTz *starts;		/* malloc'd ring */
	int			nstarts;
	int			next_start;
};

/* a call in flight (malloc'd: libcurl's callbacks write into it) */
typedef struct Transfer
{
	dlist_node	node;
	ProviderRequest *req;
	CURL	   *easy;
	struct curl_slist *headers;
	char	   *buf;
	size_t		len;
	size_t		cap;
	bool		too_large;
	char	   *etag;
	char		errbuf[CURL_ERROR_SIZE];
} Transfer;

static bool curl_ready = false;

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	ProviderSession *ps = userp;
	int			i;

	for (i = 0; i < ps->nsockets; i++)
		if (ps->sockets[i].fd == fd)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < ps->nsockets)
			ps->sockets[i] = ps->sockets[--ps->nsockets];
		return 0;
	}
	if (i == ps->nsockets)
	{
		if (ps->nsockets == ps->maxsockets)
		{
			int			n = Max(16, ps->maxsockets * 2);
			WatchedSocket *s = realloc(ps->sockets, n * sizeof(WatchedSocket));

			if (s == NULL)
				return -1;		/* libcurl fails the transfer */
			ps->sockets = s;
			ps->maxsockets = n;
		}
		ps->nsockets++;
	}
	ps->sockets[i].fd = fd;
	ps->sockets[i].what = what;
	return 0;
}

/* libcurl gives its timeout relative to now; keep when it is due */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	ProviderSession *ps = userp;

	ps->timer_set = timeout_ms >= 0;
	if (ps->timer_set)
		ps->timer_due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	return 0;
}

/* milliseconds until libcurl's timer is due: -1 none, 0 now */
static long
timer_left_ms(ProviderSession *ps)
{
	TimestampTz now;

	if (!ps->timer_set)
		return -1;
	now = GetCurrentTimestamp();
	return ps->timer_due <= now ? 0 : (long) ((ps->timer_due - now + 999) / 1000);
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	Transfer   *t = userp;
	size_t		n = size * nmemb;

	if (t->len + n > (size_t) gifq_max_response_bytes)
	{
		t->too_large = true;
		return 0;				/* libcurl aborts the transfer */
	}
	if (t->len + n + 1 > t->cap)
	{
		size_t		cap = Max(t->cap * 2, t->len + n + 1);
		char	   *buf = realloc(t->buf, Max(cap, 1024));

		if (buf == NULL)
			return 0;
		t->buf = buf;
		t->cap = Max(cap, 1024);
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return n;
}

/* keep the ETag header; libcurl gives headers one line at a time */
static size_t
header_cb(char *line, size_t size, size_t nmemb, void *userp)
{
	Transfer   *t = userp;
	size_t		n = size * nmemb;

	if (n > 5 && pg_strncasecmp(line, "etag:", 5) == 0)
	{
		size_t		start = 5,
					end = n;

		while (start < end && (line[start] == ' ' || line[start] == '\t'))
			start++;
		while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' ||
							   line[end - 1] == ' '))
			end--;
		free(t->etag);
		t->etag = strndup(line + start, end - start);
	}
	return n;
}

/*
 * provider_warn_insecure
 *		The WARNING of every session (a worker's start, a call of
 *		gifq_process_orders) that calls out with gifq.tls_verify off.
 */
void
provider_warn_insecure(void)
{
	ereport(WARNING,
			(errmsg("gifq: TLS certificates and host names are not verified (gifq.tls_verify is off)"),
			 errdetail("Anyone between this server and the provider can read and change the calls, the API key included."),
			 errhint("gifq.tls_verify = off is for tests only; to trust a private CA, set gifq.tls_ca_file instead.")));
}

/*
 * provider_open
 *		A session for concurrent calls.  Close it (also on error) with
 *		provider_close.
 */
ProviderSession *
provider_open(void)
{
	ProviderSession *ps;

	if (!curl_ready)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			elog(ERROR, "could not initialise libcurl");
		curl_ready = true;
	}
	if (!gifq_tls_verify)
		provider_warn_insecure();
	ps = MemoryContextAllocZero(TopMemoryContext, sizeof(ProviderSession));
	dlist_init(&ps->transfers);
	ps->multi = curl_multi_init();
	if (ps->multi == NULL)
		elog(ERROR, "could not create a libcurl multi handle");
	curl_multi_setopt(ps->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(ps->multi, CURLMOPT_SOCKETDATA, ps);
	curl_multi_setopt(ps->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(ps->multi, CURLMOPT_TIMERDATA, ps);
	return ps;
}

/*
 * free_headers
 *		Free a call's request headers, wiping them first: one of them holds
 *		the provider's API key, which should not outlive the call in freed
 *		memory (a core file, a later palloc'd dump).
 */
static void
free_headers(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

static void
transfer_free(ProviderSession *ps, Transfer *t)
{
	dlist_delete(&t->node);
	curl_multi_remove_handle(ps->multi, t->easy);
	curl_easy_cleanup(t->easy);
	free_headers(t->headers);
	free(t->buf);
	free(t->etag);
	t->req->transfer = NULL;
	free(t);
	ps->in_flight--;
}

/*
 * provider_close
 *		End the session; calls still in flight are abandoned (their callers
 *		find out what became of them by looking them up later).
 */
void
provider_close(ProviderSession *ps)
{
	dlist_mutable_iter iter;

	if (ps == NULL)
		return;
	dlist_foreach_modify(iter, &ps->transfers)
		transfer_free(ps, dlist_container(Transfer, node, iter.cur));
	curl_multi_cleanup(ps->multi);
	free(ps->sockets);
	free(ps->starts);
	pfree(ps);
}

int
provider_in_flight(ProviderSession *ps)
{
	return ps->in_flight;
}

/*
 * provider_rate_delay_ms
 *		How long before another call may start under
 *		gifq.provider_rate_limit (calls per second): 0 now.  The limit holds
 *		in every window of one second, not only on average: a call may start
 *		when the call that many starts ago is a second old.
 */
long
provider_rate_delay_ms(ProviderSession *ps)
{
	TimestampTz oldest,
				now;

	if (gifq_provider_rate_limit <= 0)
		return 0;
	if (ps->nstarts != gifq_provider_rate_limit)
	{
		free(ps->starts);
		ps->starts = calloc(gifq_provider_rate_limit, sizeof(TimestampTz));
		if (ps->starts == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		ps->nstarts = gifq_provider_rate_limit;
		ps->next_start = 0;
	}
	oldest = ps->starts[ps->next_start];
	now = GetCurrentTimestamp();
	if (oldest == 0 || now - oldest >= USECS_PER_SEC)
		return 0;
	return (long) ((oldest + USECS_PER_SEC - now + 999) / 1000);
}

static void
note_start(ProviderSession *ps)
{
	if (gifq_provider_rate_limit <= 0 || ps->nstarts != gifq_provider_rate_limit)
		return;
	ps->starts[ps->next_start] = GetCurrentTimestamp();
	ps->next_start = (ps->next_start + 1) % ps->nstarts;
}

/*
 * provider_url
 *		gifq.provider_url joined with path (which starts with '/').
 */
char *
provider_url(const char *path)
{
	size_t		len = strlen(gifq_provider_url);

	while (len > 0 && gifq_provider_url[len - 1] == '/')
		len--;
	return psprintf("%.*s%s", (int) len, gifq_provider_url, path);
}

static struct curl_slist *
request_headers(const ProviderRequest *req)
{
	struct curl_slist *h = NULL;

	h = curl_slist_append(h, "Accept: application/json");
	h = curl_slist_append(h, "User-Agent: gifq");
	h = curl_slist_append(h, "Expect:");
	if (req->body)
		h = curl_slist_append(h, "Content-Type: application/json");
	if (req->authorize && gifq_provider_api_key && gifq_provider_api_key[0])
	{
		char	   *auth = psprintf("Authorization: Bearer %s", gifq_provider_api_key);

		h = curl_slist_append(h, auth);
		explicit_bzero(auth, strlen(auth));
		pfree(auth);
	}
	if (req->idempotency_key)
		h = curl_slist_append(h, psprintf("Idempotency-Key: %s", req->idempotency_key));
	if (req->signature)
		h = curl_slist_append(h, psprintf("X-Gifq-Signature: %s", req->signature));
	if (req->if_none_match)
		h = curl_slist_append(h, psprintf("If-None-Match: %s", req->if_none_match));
	return h;
}

/*
 * set_safety
 *		What every call may do, whatever its URL or answer: speak http or
 *		https only (a URL of another scheme fails with "Protocol ... not
 *		supported or disabled"), follow no redirect (a 3xx is an answer
 *		like any other; were one followed, only to http or https), and
 *		verify the peer's certificate and host name unless a superuser
 *		turned gifq.tls_verify off for a test.  libcurl verifies by
 *		default; saying so here keeps a build or a libcurl with other
 *		defaults from relaxing it.
 */
static void
set_safety(CURL *e)
{
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, gifq_tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, gifq_tls_verify ? 2L : 0L);
	if (gifq_tls_ca_file != NULL && gifq_tls_ca_file[0] != '\0')
		curl_easy_setopt(e, CURLOPT_CAINFO, gifq_tls_ca_file);
}

/*
 * provider_start
 *		Start req.  Its strings must stay valid until provider_wait returns
 *		it.  The caller keeps to gifq.max_concurrent_requests and
 *		provider_rate_delay_ms.
 */
void
provider_start(ProviderSession *ps, ProviderRequest *req)
{
	Transfer   *t = calloc(1, sizeof(Transfer));
	CURL	   *e;

	if (t == NULL || (e = curl_easy_init()) == NULL)
	{
		free(t);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	t->req = req;
	t->easy = e;
	t->headers = request_headers(req);
	req->transfer = t;
	req->http_status = 0;
	req->error = NULL;
	req->response = NULL;
	req->response_len = 0;
	req->response_json = false;
	req->retry_after = -1;
	req->etag = NULL;

	curl_easy_setopt(e, CURLOPT_URL, req->url);
	set_safety(e);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) gifq_connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) gifq_request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	/* refused before the body comes when the answer says it is larger */
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) gifq_max_response_bytes);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	if (req->body)
	{
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(req->body));
	}
	if (curl_multi_add_handle(ps->multi, e) != CURLM_OK)
	{
		curl_easy_cleanup(e);
		free_headers(t->headers);
		free(t);
		req->transfer = NULL;
		elog(ERROR, "could not add a call to the libcurl multi handle");
	}
	dlist_push_tail(&ps->transfers, &t->node);
	ps->in_flight++;
	if (req->authorize)
		note_start(ps);			/* a provider call: rate-limited */
}

/* is this answer JSON, in the database's encoding? */
static bool
is_json(char *body, size_t len)
{
	JsonParseErrorType r;

	if (!pg_verify_mbstr(GetDatabaseEncoding(), body, len, true))
		return false;
#if PG_VERSION_NUM >= 170000
	{
		JsonLexContext lex;

		makeJsonLexContextCstringLen(&lex, body, len, GetDatabaseEncoding(), false);
		r = pg_parse_json(&lex, &nullSemAction);
		freeJsonLexContext(&lex);
	}
#else
	r = pg_parse_json(makeJsonLexContextCstringLen(body, len, GetDatabaseEncoding(), false),
					  &nullSemAction);
#endif
	return r == JSON_SUCCESS;
}

/* a finished transfer's results into its request, in the request's context */
static ProviderRequest *
finish(ProviderSession *ps, Transfer *t, CURLcode code)
{
	ProviderRequest *req = t->req;
	MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(req));
	long		status = 0;
	curl_off_t	total_us = 0,
				retry = -1;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry);
	req->latency_ms = total_us / 1000.0;
	req->retry_after = retry >= 0 && retry < INT_MAX ? (int) retry : -1;
	if (t->etag)
		req->etag = pstrdup(t->etag);

	if (code != CURLE_OK)
		req->error = t->too_large || code == CURLE_FILESIZE_EXCEEDED
			? psprintf("answer larger than gifq.max_response_bytes (%d)", gifq_max_response_bytes)
			: psprintf("%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
	else
	{
		req->http_status = (int) status;
		if (t->len > 0)
		{
			req->response = pnstrdup(t->buf, t->len);
			req->response_len = t->len;
			req->response_json = is_json(req->response, t->len);
		}
	}
	transfer_free(ps, t);
	MemoryContextSwitchTo(old);
	return req;
}

static List *
collect(ProviderSession *ps, List *done)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(ps->multi, &left)) != NULL)
	{
		Transfer   *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		done = lappend(done, finish(ps, t, msg->data.result));
	}
	return done;
}

/*
 * provider_wait
 *		Wait up to timeout_ms (-1: no limit) for calls to progress, the
 *		latch or postmaster death; returns the calls that finished (NIL if
 *		none).  *woken is set when the latch was set: it is reset here and
 *		interrupts are processed, and the caller looks for new work.
 */
List *
provider_wait(ProviderSession *ps, long timeout_ms, bool *woken)
{
	WaitEventSet *set;
	WaitEvent  *events;
	int			nevents = ps->nsockets + 2;
	int			n;
	int			running;
	List	   *done = NIL;

	long		timer = timer_left_ms(ps);

	*woken = false;
	if (timer >= 0 && (timeout_ms < 0 || timer < timeout_ms))
		timeout_ms = timer;

	set = CreateWaitEventSet(CurrentMemoryContext, nevents);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < ps->nsockets; i++)
	{
		uint32		ev = 0;

		if (ps->sockets[i].what & CURL_POLL_IN)
			ev |= WL_SOCKET_READABLE;
		if (ps->sockets[i].what & CURL_POLL_OUT)
			ev |= WL_SOCKET_WRITEABLE;
		AddWaitEventToSet(set, ev, ps->sockets[i].fd, NULL, NULL);
	}
	events = palloc(sizeof(WaitEvent) * nevents);
	n = WaitEventSetWait(set, timeout_ms, events, nevents, PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);

	for (int i = 0; i < n; i++)
	{
		int			flags = 0;

		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			*woken = true;
			continue;
		}
		if (events[i].events & WL_SOCKET_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events[i].events & WL_SOCKET_WRITEABLE)
			flags |= CURL_CSELECT_OUT;
		if (flags)
			curl_multi_socket_action(ps->multi, events[i].fd, flags, &running);
	}
	/* the timer is one-shot: libcurl sets it again if it wants another */
	if (timer_left_ms(ps) == 0)
	{
		ps->timer_set = false;
		curl_multi_socket_action(ps->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	pfree(events);

	done = collect(ps, done);
	if (*woken)
		CHECK_FOR_INTERRUPTS();
	return done;
}
