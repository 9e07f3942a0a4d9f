/*-------------------------------------------------------------------------
 * recording.h
 *	  The mark events.c sets while gifq records events (recording.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/recording.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_RECORDING_H
#define GIFQ_RECORDING_H

extern int	recording_begin(void);
extern void recording_end(int previous);

#endif							/* GIFQ_RECORDING_H */
