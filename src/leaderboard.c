/*-------------------------------------------------------------------------
 * leaderboard.c
 *	  A transaction's changes to the leaderboards' counts, written at commit.
 *
 * gifq.board_counts holds how many members have each points value on each
 * board, and each range of 32^k values (see the leaderboards section of
 * sql/gifq--0.3.0--0.4.0.sql), so that a rank is a short sum of counts.
 * gifq.board_note turns a move into one per level.  Every event moves its
 * member from one value to another.  Were the trigger to update the count
 * rows at once, a transaction of many events (gifq_record_events, a
 * backfill) would update the same few rows once per event, and each
 * update of a row that the transaction has already updated walks every
 * version it made so far: a batch would cost the square of its size (2.3 s
 * for 1,000 events, 87 s for 2,000 once the rows had grown).  So the
 * trigger gifq.events_points (board_points.c) notes each move here, in
 * backend memory; just before the transaction commits or is prepared, the
 * moves are summed per count and added to the count rows in key order,
 * each row once (counters.c).  Until then the transaction reads its own
 * moves with gifq.board_pending, so its own events are on the boards it
 * reads; other transactions see them when it commits, as they see its
 * events.  The count rows are locked only for the commit itself.
 *
 * Moves carry the subtransaction that made them: a subtransaction that
 * aborts drops its moves, one that commits hands them to its parent.  The
 * list only grows at its end, and the moves of an open subtransaction
 * follow those of its parent (subtransaction ids grow), so the ids along
 * the list never decrease and both look only at its tail.  A long list is
 * compacted by summing the moves of one count and subtransaction.
 *
 * The counts are written after the transaction's deferred triggers, where
 * PostgreSQL runs user code before a commit (XACT_EVENT_PRE_COMMIT); an
 * error there aborts the transaction.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/leaderboard.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "counters.h"
#include "gifq.h"
#include "leaderboard.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* the slots of gifq.board_counts, as the ledger's hot accounts have */
#define BOARD_SLOTS 16

/* compact the list when it fills up beyond this many moves */
#define BOARD_COMPACT_AT 4096

/*
 * Counts are kept at several levels: level k counts the members whose
 * points >> (BOARD_BITS * k) equal a bucket, so a rank sums at most 31
 * buckets a level instead of every value above (see gifq.board_rows).
 * Level 0 is the points themselves; buckets of 0 above it are never read
 * and not kept.  13 levels of 5 bits cover any bigint.
 */
#define BOARD_BITS 5
#define BOARD_LEVELS 13

/* One member joining (+1) or leaving (-1) a bucket of a board. */
typedef struct BoardMove
{
	int64		program_id;
	int64		bucket;
	int64		members;
	int32		period_no;
	int16		level;
	char		period;			/* 'a'll, 'd'ay, 'w'eek, 'm'onth */
	SubTransactionId subid;
} BoardMove;

/* The transaction's moves, in TopTransactionContext. */
static BoardMove *moves = NULL;
static int	nmoves = 0;
static int	maxmoves = 0;

static bool callbacks_registered = false;

/*
 * move_cmp
 *		qsort order of moves: subtransaction, then count (program, period,
 *		period number, level, bucket).
 */
static int
move_cmp(const void *a, const void *b)
{
	const BoardMove *x = (const BoardMove *) a;
	const BoardMove *y = (const BoardMove *) b;

	if (x->subid != y->subid)
		return x->subid < y->subid ? -1 : 1;
	if (x->program_id != y->program_id)
		return x->program_id < y->program_id ? -1 : 1;
	if (x->period != y->period)
		return x->period < y->period ? -1 : 1;
	if (x->period_no != y->period_no)
		return x->period_no < y->period_no ? -1 : 1;
	if (x->level != y->level)
		return x->level < y->level ? -1 : 1;
	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return 0;
}

/*
 * compact
 *		Sum the moves of one count and subtransaction, dropping those that
 *		cancel out.  Keeps the list's order by subtransaction (qsort sorts by
 *		it first, and the list was already in that order).
 */
static void
compact(void)
{
	int			n = 0;

	if (nmoves == 0)
		return;
	qsort(moves, nmoves, sizeof(BoardMove), move_cmp);
	for (int i = 0; i < nmoves; i++)
	{
		if (n > 0 && move_cmp(&moves[n - 1], &moves[i]) == 0)
			moves[n - 1].members += moves[i].members;
		else
			moves[n++] = moves[i];
		if (moves[n - 1].members == 0)
			n--;
	}
	nmoves = n;
}

/*
 * forget
 *		Drop the list (its memory goes with TopTransactionContext).
 */
static void
forget(void)
{
	moves = NULL;
	nmoves = 0;
	maxmoves = 0;
}

/*
 * flush
 *		Write the transaction's moves to gifq.board_counts: each count's sum,
 *		in key order (concurrent commits lock shared counts in one order), in
 *		this backend's slot, added to the newest version of its row
 *		(counters.c).  Nothing to do without moves, or if the table is gone
 *		(the extension was dropped after the events).  Throws on any error.
 */
static void
flush(void)
{
	CounterTable t;
	int32		slot = MyProcPid % BOARD_SLOTS;

	if (nmoves == 0)
		return;
	/* every subtransaction has ended: sum per count alone */
	for (int i = 0; i < nmoves; i++)
		moves[i].subid = InvalidSubTransactionId;
	compact();
	if (nmoves == 0 || !counters_open(&t, "board_counts", true))
	{
		forget();
		return;
	}
	for (int i = 0; i < nmoves; i++)
	{
		Datum		key[6];

		CHECK_FOR_INTERRUPTS();
		key[0] = Int64GetDatum(moves[i].program_id);
		key[1] = CStringGetTextDatum(period_name(moves[i].period));
		key[2] = Int32GetDatum(moves[i].period_no);
		key[3] = Int16GetDatum(moves[i].level);
		key[4] = Int64GetDatum(moves[i].bucket);
		key[5] = Int32GetDatum(slot);
		(void) counters_add(&t, key, moves[i].members);
	}
	counters_close(&t);
	forget();
}

/*
 * board_xact_callback
 *		Write the moves just before a commit or a prepare; drop them when the
 *		transaction ends any way.
 */
static void
board_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			flush();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget();
			break;
		default:
			break;
	}
}

/*
 * board_subxact_callback
 *		A subtransaction's end: drop its moves (abort) or hand them to its
 *		parent (commit).  Its moves, and those of its committed children,
 *		are the tail of the list with ids from its own.
 */
static void
board_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			i = nmoves;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	while (i > 0 && moves[i - 1].subid >= mySubid)
		i--;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		nmoves = i;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (; i < nmoves; i++)
			moves[i].subid = parentSubid;
	}
}

/*
 * add_move
 *		Append one move to the list, growing or compacting it when full.
 */
static void
add_move(const BoardMove *move)
{
	if (moves == NULL)
	{
		maxmoves = 64;
		moves = MemoryContextAlloc(TopTransactionContext,
								   maxmoves * sizeof(BoardMove));
	}
	else if (nmoves == maxmoves)
	{
		if (nmoves >= BOARD_COMPACT_AT)
			compact();
		/* grow unless compacting freed half (sorts stay O(n log n)) */
		if (nmoves > maxmoves / 2)
		{
			maxmoves *= 2;
			moves = repalloc_huge(moves, (Size) maxmoves * sizeof(BoardMove));
		}
	}
	moves[nmoves++] = *move;
}

/*
 * note_levels
 *		Add move at each level of points where its bucket is not 0, up to the
 *		first where other (another value of the same board, or 0) shares it:
 *		from there up the two values share every bucket, and a member who
 *		leaves one for the other moves no count there.
 */
static void
note_levels(BoardMove *move, int64 points, int64 other)
{
	for (int level = 0; level < BOARD_LEVELS; level++)
	{
		int			shift = BOARD_BITS * level;

		move->level = level;
		move->bucket = points >> shift;
		if ((level > 0 && move->bucket == 0) ||
			(other > 0 && (other >> shift) == move->bucket))
			break;
		add_move(move);
	}
}

/* a move's common fields; the first call registers the callbacks */
static void
start_move(BoardMove *move, int64 program_id, char period, int32 period_no)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(board_xact_callback, NULL);
		RegisterSubXactCallback(board_subxact_callback, NULL);
		callbacks_registered = true;
	}
	move->program_id = program_id;
	move->period = period;
	move->period_no = period_no;
	move->subid = GetCurrentSubTransactionId();
}

/*
 * board_note_move
 *		Note that members (+1 or -1) joined or left a points value (> 0) on a
 *		board, to be written at commit: the value's bucket at each level
 *		where it is not 0.  The list lives in TopTransactionContext; throws
 *		only when out of memory.
 */
void
board_note_move(int64 program_id, char period, int32 period_no, int64 points,
				int64 members)
{
	BoardMove	move;

	if (points <= 0)
		elog(ERROR, "a leaderboard move needs points above 0, not " INT64_FORMAT,
			 points);
	start_move(&move, program_id, period, period_no);
	move.members = members;
	note_levels(&move, points, 0);
}

/*
 * board_note_change
 *		Note that a member went from old_points (0: not on the board) to
 *		points (> 0) on one board in one period: board_note_move's two
 *		moves, without the levels where both values fall in one bucket
 *		(their moves cancel out).  An event's gain of a few points leaves
 *		most levels alone, and the list is sorted at commit.
 */
void
board_note_change(int64 program_id, char period, int32 period_no,
				  int64 old_points, int64 points)
{
	BoardMove	move;

	if (points <= 0 || old_points < 0)
		elog(ERROR, "a leaderboard change needs points above 0, not " INT64_FORMAT
			 " to " INT64_FORMAT, old_points, points);
	start_move(&move, program_id, period, period_no);
	if (old_points > 0)
	{
		move.members = -1;
		note_levels(&move, old_points, points);
	}
	move.members = 1;
	note_levels(&move, points, old_points);
}

PG_FUNCTION_INFO_V1(gifq_board_note);

/*
 * gifq_board_note
 *		gifq.board_note(program_id, period, period_no, points, members): SQL's
 *		way to board_note_move (gifq.board_rebuild's recount, and databases
 *		not yet updated to 0.7.0, whose trigger is PL/pgSQL).
 */
Datum
gifq_board_note(PG_FUNCTION_ARGS)
{
	board_note_move(PG_GETARG_INT64(0), period_code(text_to_cstring(PG_GETARG_TEXT_PP(1))),
					PG_GETARG_INT32(2), PG_GETARG_INT64(3), PG_GETARG_INT64(4));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(gifq_board_pending);

/*
 * gifq_board_pending
 *		gifq.board_pending(): the transaction's moves not yet written, summed
 *		per count: (program_id, period, period_no, level, bucket, members).
 *		Reads add them to gifq.board_counts.  Usually no rows.
 */
Datum
gifq_board_pending(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BoardMove  *sorted;

	InitMaterializedSRF(fcinfo, 0);
	if (nmoves == 0)
		return (Datum) 0;
	sorted = palloc(nmoves * sizeof(BoardMove));
	memcpy(sorted, moves, nmoves * sizeof(BoardMove));
	for (int i = 0; i < nmoves; i++)
		sorted[i].subid = InvalidSubTransactionId;
	qsort(sorted, nmoves, sizeof(BoardMove), move_cmp);
	for (int i = 0; i < nmoves;)
	{
		int64		sum = 0;
		int			j = i;
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		for (; j < nmoves && move_cmp(&sorted[i], &sorted[j]) == 0; j++)
			sum += sorted[j].members;
		if (sum != 0)
		{
			values[0] = Int64GetDatum(sorted[i].program_id);
			values[1] = CStringGetTextDatum(period_name(sorted[i].period));
			values[2] = Int32GetDatum(sorted[i].period_no);
			values[3] = Int16GetDatum(sorted[i].level);
			values[4] = Int64GetDatum(sorted[i].bucket);
			values[5] = Int64GetDatum(sum);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
								 nulls);
		}
		i = j;
	}
	return (Datum) 0;
}
