/*-------------------------------------------------------------------------
 * recording.c
 *	  Whether gifq itself is recording events, for the triggers that
 *	  derive state from them.
 *
 * Streaks, streak milestones and the leaderboards' rows follow from
 * gifq.events through AFTER INSERT triggers.  They must follow only from
 * events gifq records (gifq_record_event, gifq_record_events), never from
 * rows copied in by a restore: pg_dump's script creates the extension,
 * with its triggers, and then loads every table registered with
 * pg_extension_config_dump, the derived ones included, so a trigger that
 * fired on the loaded events would count them a second time (and a
 * streak milestone would record new events and pay their points).
 *
 * So the event-recording entry points mark the backend as recording for
 * the length of the call, and those triggers carry WHEN (gifq.recording()):
 * the condition is evaluated as each row is inserted, when the mark is
 * set or not, and a trigger whose condition is false is not even queued.
 * A restore's COPY, an INSERT by hand and pg_dump --inserts all see false.
 * The mark is a counter, since recording nests (a milestone reached while
 * an event is recorded records its own event), and each entry point puts
 * it back as it was also when an error leaves it, so that an error caught
 * by an outer exception block does not leave it set or cleared.
 *
 * The mark is backend-local and lives no longer than the call that set
 * it: nothing to reset at transaction end.
 *
 * While gifq_record_event inserts its event, it also leaves here what it
 * has read of the event's program (its time zone, the streak types of the
 * event's type), so that the triggers need not read them again; it puts
 * back what was there when its insert ends, also on error, as events
 * nest the same way.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/recording.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "recording.h"

#include "fmgr.h"

/* how many event-recording calls are running in this backend */
static int	recording_depth = 0;

/* the event being inserted by gifq_record_event, if any */
static const RecordingEvent *recording_now = NULL;

/*
 * recording_begin
 *		Mark the backend as recording events; returns the mark as it was,
 *		for recording_end.  Cannot throw.
 */
int
recording_begin(void)
{
	int			previous = recording_depth;

	recording_depth = previous + 1;
	return previous;
}

/*
 * recording_end
 *		Put the mark back as recording_begin found it.  Called on the
 *		way out of the recording call, in PG_FINALLY on an error too.
 */
void
recording_end(int previous)
{
	recording_depth = previous;
}

/*
 * recording_event_set
 *		What the caller knows of the event it is about to insert (NULL: no
 *		event); returns what was set before, for the caller to put back
 *		when its insert ends.
 */
const RecordingEvent *
recording_event_set(const RecordingEvent *event)
{
	const RecordingEvent *before = recording_now;

	recording_now = event;
	return before;
}

/*
 * recording_event
 *		What the recording call knows of the event being inserted, if it is
 *		one of program_id's; NULL otherwise.
 */
const RecordingEvent *
recording_event(int64 program_id)
{
	if (recording_now == NULL || recording_now->program_id != program_id)
		return NULL;
	return recording_now;
}

PG_FUNCTION_INFO_V1(gifq_recording);

/*
 * gifq_recording
 *		gifq.recording() returns boolean: is gifq recording events in this
 *		backend right now?  The WHEN condition of the triggers that derive
 *		state from gifq.events (and from gifq.streaks).
 */
Datum
gifq_recording(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(recording_depth > 0);
}
