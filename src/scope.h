/*-------------------------------------------------------------------------
 * scope.h
 *	  Program scoping of app roles: which programs the caller may act on.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/scope.h
 *-------------------------------------------------------------------------
 */
#ifndef GIFQ_SCOPE_H
#define GIFQ_SCOPE_H

extern bool scope_caller_is_scoped(void);
extern bool scope_program_visible(int64 program_id);
extern void scope_require_program(int64 program_id, const char *program);

#endif							/* GIFQ_SCOPE_H */
