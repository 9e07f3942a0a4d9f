/*-------------------------------------------------------------------------
 * webhooks.c
 *	  The X-Gifq-Signature of a webhook: checked on what the provider sends
 *	  (gifq.webhook_verify, used by gifq_provider_webhook) and made for the
 *	  events gifq sends (webhook_signature, used by the worker).
 *
 * A signature is "t=<unix seconds>,v1=<hex HMAC-SHA256>", the HMAC keyed by
 * the shared secret over "<t>.<raw body>".  Signing the time stops a
 * captured request from being replayed later than the tolerance, and the
 * event id (checked in SQL) stops it within the tolerance.  While a secret
 * is being rotated both gifq.webhook_secret and gifq.webhook_secret_previous
 * are tried, and a sender rotating its own may send one v1 per secret.
 * gifq does so for its events while gifq.events_secret_previous is set,
 * so a receiver still on the old secret and one already on the new both
 * find theirs.  Comparisons take the same time whatever matches.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/webhooks.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "webhooks.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define MAC_LEN 32
/* v1 values of one header looked at; more are ignored */
#define MAX_V1 4

static void
mac(const char *secret, int64 t, const char *body, size_t len, unsigned char *out)
{
	StringInfoData msg;
	unsigned int outlen = 0;
	bool		ok;

	initStringInfo(&msg);
	appendStringInfo(&msg, INT64_FORMAT ".", t);
	appendBinaryStringInfo(&msg, body, len);
	ok = HMAC(EVP_sha256(), secret, strlen(secret), (unsigned char *) msg.data,
			  msg.len, out, &outlen) != NULL && outlen == MAC_LEN;
	pfree(msg.data);
	if (!ok)
		elog(ERROR, "could not compute a webhook signature: OpenSSL failed");
}

/* ",v1=<hex>" of body under secret, appended to buf */
static void
append_v1(StringInfo buf, const char *secret, int64 t, const char *body, size_t len)
{
	unsigned char m[MAC_LEN];
	char		hex[MAC_LEN * 2 + 1];

	mac(secret, t, body, len, m);
	hex_encode((const char *) m, MAC_LEN, hex);
	hex[MAC_LEN * 2] = '\0';
	appendStringInfo(buf, ",v1=%s", hex);
	explicit_bzero(m, sizeof(m));
}

/*
 * webhook_signature
 *		The X-Gifq-Signature value for body, sent at t, under secret, and
 *		also under previous when that is set (not NULL or empty): then
 *		"t=<t>,v1=<under secret>,v1=<under previous>".
 */
char *
webhook_signature(const char *secret, const char *previous, int64 t,
				  const char *body, size_t len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "t=" INT64_FORMAT, t);
	append_v1(&buf, secret, t, body, len);
	if (previous != NULL && previous[0] != '\0')
		append_v1(&buf, previous, t, body, len);
	return buf.data;
}

pg_attribute_noreturn()
static void
refuse(const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_WEBHOOK_SIGNATURE),
			 errmsg("webhook refused: %s", message),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("Pass the raw request body and its X-Gifq-Signature header unchanged; the secret is gifq.webhook_secret.")));
}

/*
 * matches
 *		Does any of the nv1 MACs given match the HMAC of the body under
 *		secret?  Every one is compared, whichever matches.
 */
static bool
matches(const char *secret, int64 t, const char *body, size_t len,
		unsigned char given[][MAC_LEN], int nv1)
{
	unsigned char m[MAC_LEN];
	bool		found = false;

	if (secret == NULL || secret[0] == '\0')
		return false;
	mac(secret, t, body, len, m);
	for (int i = 0; i < nv1; i++)
		found |= CRYPTO_memcmp(m, given[i], MAC_LEN) == 0;
	explicit_bzero(m, sizeof(m));
	return found;
}

/*
 * parse_signature
 *		"t=...,v1=...[,v1=...]" into its time and up to MAX_V1 MACs (the
 *		count in *nv1); false when malformed.  Other keys (a future v2) are
 *		skipped.
 */
static bool
parse_signature(const char *header, int64 *t, unsigned char given[][MAC_LEN], int *nv1)
{
	char	   *copy = pstrdup(header);
	char	   *save = NULL;
	bool		have_t = false;

	*nv1 = 0;

	for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save))
	{
		while (*part == ' ')
			part++;
		if (strncmp(part, "t=", 2) == 0)
		{
			char	   *end;

			errno = 0;
			*t = strtoll(part + 2, &end, 10);
			have_t = errno == 0 && end != part + 2 && *end == '\0';
		}
		else if (strncmp(part, "v1=", 3) == 0 && strlen(part + 3) == MAC_LEN * 2 &&
				 strspn(part + 3, "0123456789abcdefABCDEF") == MAC_LEN * 2 &&
				 *nv1 < MAX_V1)
			hex_decode(part + 3, MAC_LEN * 2, (char *) given[(*nv1)++]);
	}
	return have_t && *nv1 > 0;
}

PG_FUNCTION_INFO_V1(gifq_webhook_verify);

/*
 * gifq_webhook_verify
 *		gifq.webhook_verify(body, signature): returns if the signature is
 *		good and fresh, raises QG405 otherwise.
 */
Datum
gifq_webhook_verify(PG_FUNCTION_ARGS)
{
	text	   *body;
	char	   *header;
	int64		t = 0,
				now;
	unsigned char given[MAX_V1][MAC_LEN];
	int			nv1;
	bool		good;

	if (PG_ARGISNULL(1))
		refuse("no signature", NULL);
	if (PG_ARGISNULL(0))
		refuse("no body", NULL);
	body = PG_GETARG_TEXT_PP(0);
	header = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if ((gifq_webhook_secret == NULL || gifq_webhook_secret[0] == '\0') &&
		(gifq_webhook_secret_previous == NULL || gifq_webhook_secret_previous[0] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_WEBHOOK_SIGNATURE),
				 errmsg("webhook refused: gifq.webhook_secret is not set"),
				 errhint("A superuser sets gifq.webhook_secret to the secret the provider signs with.")));
	if (!parse_signature(header, &t, given, &nv1))
		refuse(psprintf("signature \"%s\" is malformed", header),
			   "Expected t=<unix seconds>,v1=<64 hex digits>.");

	now = (int64) time(NULL);
	if (t < now - WEBHOOK_TOLERANCE_S || t > now + WEBHOOK_TOLERANCE_S)
		refuse(psprintf("signature time " INT64_FORMAT " is " INT64_FORMAT " s from now",
						t, t - now),
			   psprintf("At most %d s either way are accepted.", WEBHOOK_TOLERANCE_S));

	/* both secrets are always tried: the time taken tells nothing */
	good = matches(gifq_webhook_secret, t, VARDATA_ANY(body),
				   VARSIZE_ANY_EXHDR(body), given, nv1);
	good |= matches(gifq_webhook_secret_previous, t, VARDATA_ANY(body),
					VARSIZE_ANY_EXHDR(body), given, nv1);
	if (!good)
		refuse("signature does not match the body", NULL);
	PG_RETURN_VOID();
}
