/*-------------------------------------------------------------------------
 * leaderboard.h
 *	  The leaderboards' counts (leaderboard.c), fed by the members' points
 *	  kept as events are recorded (board_points.c).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/leaderboard.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_LEADERBOARD_H
#define GIFQ_LEADERBOARD_H

#include "postgres.h"

#include "periods.h"

/* period: a PERIOD_ code (periods.h) */
extern void board_note_move(int64 program_id, char period, int32 period_no,
							int64 points, int64 members);
extern void board_note_change(int64 program_id, char period, int32 period_no,
							  int64 old_points, int64 points);

#endif							/* GIFQ_LEADERBOARD_H */
