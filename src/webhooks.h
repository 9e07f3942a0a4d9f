/*-------------------------------------------------------------------------
 * webhooks.h
 *	  Signatures of webhooks in and events out (X-Gifq-Signature).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/webhooks.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_WEBHOOKS_H
#define GIFQ_WEBHOOKS_H

#include "postgres.h"

/* the largest distance between a signature's time and ours */
#define WEBHOOK_TOLERANCE_S 300

extern char *webhook_signature(const char *secret, const char *previous,
							   int64 t, const char *body, size_t len);

#endif							/* GIFQ_WEBHOOKS_H */
