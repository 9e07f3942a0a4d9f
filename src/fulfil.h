/*-------------------------------------------------------------------------
 * fulfil.h
 *	  Sending orders to the provider and recording what it answered: the
 *	  steps the worker and gifq_process_orders share.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/fulfil.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_FULFIL_H
#define GIFQ_FULFIL_H

#include "postgres.h"

#include "provider.h"

typedef struct Fulfilment
{
	ProviderSession *ps;
	char	   *caller;			/* "worker" or "session <pid>": the lease owner */
	MemoryContext cxt;
	List	   *waiting;		/* claimed, not yet started */
	List	   *finished;		/* answered (or not), not yet recorded */
	/* counts, for gifq.worker */
	int64		calls;
	int64		delivered;
	int64		failed;
	/* 401/402 from the provider: nothing is sent until this clears */
	char	   *paused;
	int			paused_status;
} Fulfilment;

extern Fulfilment *fulfil_begin(const char *caller, MemoryContext parent);
extern void fulfil_end(Fulfilment *f);
extern bool fulfil_ready(bool raise);
extern int	fulfil_claim_orders(Fulfilment *f, int batch, int lease_ms);
extern int	fulfil_claim_events(Fulfilment *f, int batch, int lease_ms);
extern void fulfil_call(Fulfilment *f, const char *call, const char *path, char *if_none_match);
extern void fulfil_start(Fulfilment *f);
extern void fulfil_add_finished(Fulfilment *f, List *done);
extern int	fulfil_record(Fulfilment *f);
extern void fulfil_release(Fulfilment *f, bool sends_only);
extern void fulfil_drop_finished(Fulfilment *f);
extern int	fulfil_lease_ms(void);
extern Datum fulfil_interval_ms(int64 ms);

#endif							/* GIFQ_FULFIL_H */
