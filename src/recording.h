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

#include "events.h"

/*
 * What the recording call knows of the event it is inserting, for the
 * triggers that would otherwise read it: the event's program and type, the
 * program's time zone and the streak types counting the type (from
 * settings.c's cache).
 */
typedef struct RecordingEvent
{
	int64		program_id;
	const char *event_type;
	text	   *timezone;
	int			nstreaks;
	const StreakRule *streaks;
} RecordingEvent;

extern int	recording_begin(void);
extern void recording_end(int previous);
extern const RecordingEvent *recording_event_set(const RecordingEvent *event);
extern const RecordingEvent *recording_event(int64 program_id);

#endif							/* GIFQ_RECORDING_H */
