/*-------------------------------------------------------------------------
 * probe.h
 *	  Whether a row with a key exists, without running a statement
 *	  (probe.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/probe.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_PROBE_H
#define GIFQ_PROBE_H

#include "postgres.h"

extern bool probe_unique(const char *table, const char *index, int nkeys,
						 const Datum *key);

#endif							/* GIFQ_PROBE_H */
