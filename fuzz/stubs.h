/*-------------------------------------------------------------------------
 * stubs.h
 *	  What the fuzz targets share with the backend stand-ins in stubs.c.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  fuzz/stubs.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_FUZZ_STUBS_H
#define GIFQ_FUZZ_STUBS_H

#include "postgres.h"

#include <setjmp.h>

/*
 * The harness's stand-in for PG_TRY: errfinish() for an ERROR longjmps to
 * fuzz_error_jmp, and the last error's SQLSTATE and message are kept here.
 */
extern sigjmp_buf *fuzz_error_jmp;
extern int	fuzz_error_sqlstate;
extern char fuzz_error_message[1024];

/* free every palloc'd chunk since the last reset (one per input) */
extern void fuzz_reset_memory(void);

/* the SQLSTATE as its five characters, into buf[6] */
extern void fuzz_sqlstate_text(int sqlstate, char *buf);

/* abort() with a message: a property the target checks did not hold */
extern void fuzz_fail(const char *fmt,...) pg_attribute_printf(1, 2)
			pg_attribute_noreturn();

#endif							/* GIFQ_FUZZ_STUBS_H */
