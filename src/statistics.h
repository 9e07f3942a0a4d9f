/*-------------------------------------------------------------------------
 * statistics.h
 *	  gifq's tables' statistics refreshed within a transaction that has
 *	  outgrown them (statistics.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/statistics.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_STATISTICS_H
#define GIFQ_STATISTICS_H

extern void statistics_keep_current(bool now);

#endif							/* GIFQ_STATISTICS_H */
