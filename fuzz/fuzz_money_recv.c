/*-------------------------------------------------------------------------
 * fuzz_money_recv.c
 *	  libFuzzer target: gifq_money binary input (gifq_money_recv).
 *
 * Each input is a binary parameter value, given to the real
 * gifq_money_recv in a StringInfo the way exec_bind_message() builds one
 * (NUL after the data).  The binary form is canonical, so:
 *	  - fewer than 16 bytes: refused with 08P01 (insufficient data);
 *	  - otherwise refused only with 22P03, exactly when the currency bytes
 *		are not a valid code followed by NULs;
 *	  - an accepted value used exactly 16 bytes: with trailing garbage the
 *		cursor stops short of the end, which is how every caller of a recv
 *		function (bind parameters, record_recv, array_recv) refuses it;
 *	  - send(recv(x)) gives back x's 16 bytes, and the text round trips
 *		hold (check_round_trips).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  fuzz/fuzz_money_recv.c
 *-------------------------------------------------------------------------
 */
#include "money_calls.h"

#include <stdint.h>
#include <stdlib.h>

#include "port/pg_bswap.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the reference: are these 8 bytes a valid, NUL-padded code? */
static bool
code_bytes_valid(const char *c)
{
	int			len = 0;

	while (len < GIFQ_CURRENCY_LEN && c[len] != '\0')
		len++;
	if (len < 3 || !(c[0] >= 'A' && c[0] <= 'Z'))
		return false;
	for (int i = 1; i < len; i++)
		if (!((c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= '0' && c[i] <= '9')))
			return false;
	for (int i = len; i < GIFQ_CURRENCY_LEN; i++)
		if (c[i] != '\0')
			return false;
	return true;
}

static void
check_accepted(GifqMoney *v, StringInfo buf, const uint8_t *data,
			   size_t size)
{
	uint64		units_be;
	bytea	   *sent;

	if (size < sizeof(GifqMoney))
		fuzz_fail("accepted %zu bytes", size);
	if (!code_bytes_valid((const char *) data + 8))
		fuzz_fail("accepted an invalid currency field");
	if (buf->cursor != (int) sizeof(GifqMoney))
		fuzz_fail("recv consumed %d bytes, not 16", buf->cursor);
	/* trailing bytes stay unread, so the caller refuses the value */
	if (size > sizeof(GifqMoney) && buf->cursor == buf->len)
		fuzz_fail("trailing garbage consumed");
	memcpy(&units_be, data, 8);
	if (v->units != (int64) pg_ntoh64(units_be) ||
		memcmp(v->currency, data + 8, GIFQ_CURRENCY_LEN) != 0)
		fuzz_fail("recv built a value other than its input");
	sent = money_send(v);
	if (VARSIZE_ANY_EXHDR(sent) != sizeof(GifqMoney) ||
		memcmp(VARDATA_ANY(sent), data, sizeof(GifqMoney)) != 0)
		fuzz_fail("send(recv(x)) != x");
	check_round_trips(v);
}

static void
check_refused(const uint8_t *data, size_t size)
{
	char		got[6];

	fuzz_sqlstate_text(fuzz_error_sqlstate, got);
	if (size < sizeof(GifqMoney))
	{
		if (fuzz_error_sqlstate != ERRCODE_PROTOCOL_VIOLATION)
			fuzz_fail("short input (%zu bytes) refused with %s (%s)", size,
					  got, fuzz_error_message);
		return;
	}
	if (fuzz_error_sqlstate != ERRCODE_INVALID_BINARY_REPRESENTATION)
		fuzz_fail("refused with %s (%s), expected 22P03", got,
				  fuzz_error_message);
	if (code_bytes_valid((const char *) data + 8))
		fuzz_fail("refused a valid value: %s", fuzz_error_message);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sigjmp_buf	jb;
	StringInfoData buf;
	volatile int stage = 0;

	if (size > 1024 * 1024)
		return 0;
	buf.data = palloc(size + 1);
	memcpy(buf.data, data, size);
	buf.data[size] = '\0';
	buf.len = (int) size;
	buf.maxlen = (int) size + 1;
	buf.cursor = 0;

	fuzz_error_jmp = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		GifqMoney  *v = money_recv(&buf);

		stage = 1;				/* from here on an ERROR is a bug */
		check_accepted(v, &buf, data, size);
	}
	else if (stage == 0)
		check_refused(data, size);
	else
		fuzz_fail("ERROR while checking an accepted value: %s",
				  fuzz_error_message);
	fuzz_error_jmp = NULL;
	fuzz_reset_memory();
	return 0;
}
