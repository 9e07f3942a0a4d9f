/*-------------------------------------------------------------------------
 * stubs.c
 *	  Minimal stand-ins for the backend functions src/money.c and
 *	  src/currency.c call, so the real files can run under libFuzzer.
 *
 * Each stand-in does what the PostgreSQL 15 function does for the inputs
 * the type's I/O gives it: palloc is malloc with every chunk remembered
 * and freed after each input (so AddressSanitizer sees every overrun and
 * use after free); ereport(ERROR) keeps the SQLSTATE and the formatted
 * message and longjmps back to the target, as PG_TRY would; the StringInfo
 * and pq_getmsg* routines check bounds and raise the same errors as
 * stringinfo.c and pqformat.c.  Functions only the arithmetic and the
 * numeric casts need are stubs that abort: the targets never reach them,
 * and if they ever did the run would stop loudly.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  fuzz/stubs.c
 *-------------------------------------------------------------------------
 */
#include "stubs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/sortsupport.h"

/* port.h maps these to pg_* versions we do not link: use libc's */
#undef vsnprintf
#undef snprintf
#undef fprintf
#undef vfprintf

sigjmp_buf *fuzz_error_jmp = NULL;
int			fuzz_error_sqlstate = 0;
char		fuzz_error_message[1024];

/* ---------------------------------------------------------------------
 * Memory: every chunk on one list, all freed by fuzz_reset_memory()
 * ---------------------------------------------------------------------
 */
typedef struct Chunk
{
	struct Chunk *next;
	/* the caller's bytes follow, maxaligned */
} Chunk;

#define CHUNK_HDR	MAXALIGN(sizeof(Chunk))

static Chunk *chunks = NULL;

void
fuzz_reset_memory(void)
{
	while (chunks != NULL)
	{
		Chunk	   *next = chunks->next;

		free(chunks);
		chunks = next;
	}
}

void *
palloc(Size size)
{
	Chunk	   *c;

	/* palloc refuses requests above MaxAllocSize with an ERROR */
	if (!AllocSizeIsValid(size))
		fuzz_fail("palloc: invalid memory alloc request size %zu", size);
	c = malloc(CHUNK_HDR + size);
	if (c == NULL)
		fuzz_fail("palloc: out of memory");
	c->next = chunks;
	chunks = c;
	return (char *) c + CHUNK_HDR;
}

void *
palloc0(Size size)
{
	void	   *p = palloc(size);

	memset(p, 0, size);
	return p;
}

void *
repalloc(void *pointer, Size size)
{
	Chunk	   *old = (Chunk *) ((char *) pointer - CHUNK_HDR);
	Chunk	  **link;
	Chunk	   *c;

	if (!AllocSizeIsValid(size))
		fuzz_fail("repalloc: invalid memory alloc request size %zu", size);
	for (link = &chunks; *link != old; link = &(*link)->next)
	{
		if (*link == NULL)
			fuzz_fail("repalloc: pointer not from palloc");
	}
	c = realloc(old, CHUNK_HDR + size);
	if (c == NULL)
		fuzz_fail("repalloc: out of memory");
	*link = c;
	return (char *) c + CHUNK_HDR;
}

char *
psprintf(const char *fmt,...)
{
	va_list		args;
	int			n;
	char	   *buf;

	va_start(args, fmt);
	n = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	buf = palloc(n + 1);
	va_start(args, fmt);
	vsnprintf(buf, n + 1, fmt, args);
	va_end(args);
	return buf;
}

/* ---------------------------------------------------------------------
 * Errors: ereport(ERROR) longjmps back to the target
 * ---------------------------------------------------------------------
 */
static int	cur_elevel;
static int	cur_sqlstate;

void
fuzz_sqlstate_text(int sqlstate, char *buf)
{
	for (int i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(sqlstate);
		sqlstate >>= 6;
	}
	buf[5] = '\0';
}

void
fuzz_fail(const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	fprintf(stderr, "gifq fuzz: property violated: ");
	vfprintf(stderr, fmt, args);
	fprintf(stderr, "\n");
	va_end(args);
	abort();
}

bool
errstart(int elevel, const char *domain)
{
	cur_elevel = elevel;
	cur_sqlstate = (elevel >= ERROR) ? ERRCODE_INTERNAL_ERROR : 0;
	fuzz_error_message[0] = '\0';
	return elevel >= ERROR;		/* drop WARNING and below */
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

int
errcode(int sqlerrcode)
{
	cur_sqlstate = sqlerrcode;
	return 0;
}

/* format every message part, so a bad format or argument is caught too */
static int
format_part(bool keep, const char *fmt, va_list args)
{
	char		buf[4096];

	vsnprintf(keep ? fuzz_error_message : buf,
			  keep ? sizeof(fuzz_error_message) : sizeof(buf), fmt, args);
	return 0;
}

#define FORMAT_PART(keep) \
	do { \
		va_list		args; \
		va_start(args, fmt); \
		format_part((keep), fmt, args); \
		va_end(args); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	FORMAT_PART(true);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	FORMAT_PART(true);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	FORMAT_PART(false);
	return 0;
}

int
errhint(const char *fmt,...)
{
	FORMAT_PART(false);
	return 0;
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (cur_elevel < ERROR)
		return;
	if (fuzz_error_jmp == NULL)
		fuzz_fail("ERROR outside a target call at %s:%d: %s", filename,
				  lineno, fuzz_error_message);
	fuzz_error_sqlstate = cur_sqlstate;
	siglongjmp(*fuzz_error_jmp, 1);
}

/* ---------------------------------------------------------------------
 * StringInfo and pqformat, as lib/stringinfo.c and libpq/pqformat.c
 * ---------------------------------------------------------------------
 */
void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	resetStringInfo(str);
}

void
resetStringInfo(StringInfo str)
{
	str->data[0] = '\0';
	str->len = 0;
	str->cursor = 0;
}

void
enlargeStringInfo(StringInfo str, int needed)
{
	int			newlen;

	if (needed < 0 || ((Size) needed) >= (MaxAllocSize - (Size) str->len))
		fuzz_fail("enlargeStringInfo: out of memory request %d", needed);
	needed += str->len + 1;
	if (needed <= str->maxlen)
		return;
	newlen = 2 * str->maxlen;
	while (needed > newlen)
		newlen = 2 * newlen;
	str->data = repalloc(str->data, newlen);
	str->maxlen = newlen;
}

void
appendBinaryStringInfo(StringInfo str, const char *data, int datalen)
{
	enlargeStringInfo(str, datalen);
	memcpy(str->data + str->len, data, datalen);
	str->len += datalen;
	str->data[str->len] = '\0';
}

void
pq_sendbytes(StringInfo buf, const char *data, int datalen)
{
	appendBinaryStringInfo(buf, data, datalen);
}

void
pq_begintypsend(StringInfo buf)
{
	initStringInfo(buf);
	/* reserve four bytes for the bytea length word */
	appendBinaryStringInfo(buf, "\0\0\0\0", 4);
}

bytea *
pq_endtypsend(StringInfo buf)
{
	bytea	   *result = (bytea *) buf->data;

	Assert(buf->len >= VARHDRSZ);
	SET_VARSIZE(result, buf->len);
	return result;
}

const char *
pq_getmsgbytes(StringInfo msg, int datalen)
{
	const char *result;

	if (datalen < 0 || datalen > (msg->len - msg->cursor))
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("insufficient data left in message")));
	result = &msg->data[msg->cursor];
	msg->cursor += datalen;
	return result;
}

int64
pq_getmsgint64(StringInfo msg)
{
	uint64		n64;

	memcpy(&n64, pq_getmsgbytes(msg, sizeof(n64)), sizeof(n64));
	return pg_ntoh64(n64);
}

/* ---------------------------------------------------------------------
 * text, as utils/adt/varlena.c (only currency_from_text uses these)
 * ---------------------------------------------------------------------
 */
text *
cstring_to_text_with_len(const char *s, int len)
{
	text	   *result = (text *) palloc(len + VARHDRSZ);

	SET_VARSIZE(result, len + VARHDRSZ);
	memcpy(VARDATA(result), s, len);
	return result;
}

char *
text_to_cstring(const text *t)
{
	int			len = VARSIZE_ANY_EXHDR(t);
	char	   *result = palloc(len + 1);

	memcpy(result, VARDATA_ANY(t), len);
	result[len] = '\0';
	return result;
}

/* ---------------------------------------------------------------------
 * Never reached by the I/O targets: arithmetic, numeric casts, hashing,
 * sorting, detoasting.  Abort if they ever are.
 * ---------------------------------------------------------------------
 */
#define UNREACHED(name) \
	fuzz_fail("%s called: not expected from the I/O functions", name)

Datum
DirectFunctionCall1Coll(PGFunction func, Oid collation, Datum arg1)
{
	UNREACHED("DirectFunctionCall1Coll");
}

Datum
DirectFunctionCall2Coll(PGFunction func, Oid collation, Datum arg1,
						Datum arg2)
{
	UNREACHED("DirectFunctionCall2Coll");
}

uint32
hash_bytes(const unsigned char *k, int keylen)
{
	UNREACHED("hash_bytes");
}

uint64
hash_bytes_extended(const unsigned char *k, int keylen, uint64 seed)
{
	UNREACHED("hash_bytes_extended");
}

Numeric
int64_to_numeric(int64 val)
{
	UNREACHED("int64_to_numeric");
}

Numeric
int64_div_fast_to_numeric(int64 val1, int log10val2)
{
	UNREACHED("int64_div_fast_to_numeric");
}

bool
numeric_is_nan(Numeric num)
{
	UNREACHED("numeric_is_nan");
}

bool
numeric_is_inf(Numeric num)
{
	UNREACHED("numeric_is_inf");
}

#define UNREACHED_FMGR(name) \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	UNREACHED(#name); \
}

UNREACHED_FMGR(numeric_abs)
UNREACHED_FMGR(numeric_add)
UNREACHED_FMGR(numeric_cmp)
UNREACHED_FMGR(numeric_div_trunc)
UNREACHED_FMGR(numeric_int8)
UNREACHED_FMGR(numeric_mod)
UNREACHED_FMGR(numeric_mul)
UNREACHED_FMGR(numeric_out)
UNREACHED_FMGR(numeric_sub)
UNREACHED_FMGR(numeric_trunc)

int
ssup_datum_unsigned_cmp(Datum x, Datum y, SortSupport ssup)
{
	UNREACHED("ssup_datum_unsigned_cmp");
}

struct varlena *
pg_detoast_datum(struct varlena *datum)
{
	UNREACHED("pg_detoast_datum");
}

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	UNREACHED("pg_detoast_datum_packed");
}
