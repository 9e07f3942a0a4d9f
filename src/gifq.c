/*-------------------------------------------------------------------------
 * gifq.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init.
 *
 * gifq works loaded on demand by CREATE EXTENSION and preloaded through
 * shared_preload_libraries alike; settings are defined in both cases, and
 * whatever needs shared memory or a background worker is set up only when
 * preloaded.  All settings live under the reserved "gifq." prefix.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/gifq.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "config.h"
#include "gifq.h"
#include "worker.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

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
	config_define();
	MarkGUCPrefixReserved("gifq");
	worker_init();
}
