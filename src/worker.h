/*-------------------------------------------------------------------------
 * worker.h
 *	  The fulfilment worker: registration, shared state and wake-ups.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/worker.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_WORKER_H
#define GIFQ_WORKER_H

#include "postgres.h"

extern void worker_init(void);
extern void worker_wake_on_commit(void);

#endif							/* GIFQ_WORKER_H */
