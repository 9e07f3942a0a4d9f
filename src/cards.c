/*-------------------------------------------------------------------------
 * cards.c
 *	  Gift-card codes and PINs sealed at rest: gifq.card_seal,
 *	  gifq.card_open and gifq.card_key_id.
 *
 * A delivered card is bearer value: whoever reads the code can spend it.
 * So gifq.cards holds it sealed with AES-256-GCM under a key derived
 * (SHA-256) from the superuser-only setting gifq.card_key, and the order id
 * (8 bytes, big-endian) is authenticated with it, so a sealed card moved to
 * another order does not open.  A sealed card is
 *
 *		version (1 byte) | key id (4) | nonce (12) | ciphertext | tag (16)
 *
 * where the key id is the start of the SHA-256 of the derived key: it names
 * the key without revealing it, so after a rotation (the old key moved to
 * gifq.card_key_previous) both keys open what they sealed.  The plaintext
 * is the code, a zero byte, then the PIN preceded by 'P' (or nothing when
 * the card has no PIN).
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/cards.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"

#define SEAL_VERSION	1
#define KEY_ID_LEN		4
#define NONCE_LEN		12
#define TAG_LEN			16
#define HEADER_LEN		(1 + KEY_ID_LEN + NONCE_LEN)

typedef struct CardKey
{
	unsigned char key[32];
	unsigned char id[KEY_ID_LEN];
} CardKey;

/* derive a key and its id from a setting's text; false when it is empty */
static bool
card_key(const char *setting, CardKey *k)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];

	if (setting == NULL || setting[0] == '\0')
		return false;
	SHA256((const unsigned char *) setting, strlen(setting), k->key);
	SHA256(k->key, sizeof(k->key), digest);
	memcpy(k->id, digest, KEY_ID_LEN);
	return true;
}

static void
current_key(CardKey *k)
{
	if (!card_key(gifq_card_key, k))
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_CARD_KEY_MISSING),
				 errmsg("gifq.card_key is not set"),
				 errhint("A superuser sets gifq.card_key (a long random string) in postgresql.conf; gifq stores no card without it.")));
}

static char *
key_id_text(const unsigned char *id)
{
	static const char hex[] = "0123456789abcdef";
	char	   *s = palloc(KEY_ID_LEN * 2 + 1);

	for (int i = 0; i < KEY_ID_LEN; i++)
	{
		s[2 * i] = hex[id[i] >> 4];
		s[2 * i + 1] = hex[id[i] & 15];
	}
	s[KEY_ID_LEN * 2] = '\0';
	return s;
}

pg_attribute_noreturn()
static void
crypto_failed(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not %s a gift card: OpenSSL failed", what)));
}

/*
 * gcm
 *		Encrypt (or decrypt) len bytes of in into out under key and nonce,
 *		authenticating aad; writes (or checks) tag.  Returns false when a
 *		decryption does not authenticate.
 */
static bool
gcm(bool encrypt, const CardKey *k, const unsigned char *nonce,
	const unsigned char *aad, int aadlen,
	const unsigned char *in, int len, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			n;
	bool		ok;

	if (ctx == NULL)
		crypto_failed(encrypt ? "seal" : "open");
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, nonce, encrypt ? 1 : 0) == 1 &&
		EVP_CipherUpdate(ctx, NULL, &n, aad, aadlen) == 1 &&
		(len == 0 || EVP_CipherUpdate(ctx, out, &n, in, len) == 1);
	if (ok && !encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
	if (ok && encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok && encrypt)
		crypto_failed("seal");
	return ok;
}

PG_FUNCTION_INFO_V1(gifq_card_seal);

/*
 * gifq_card_seal
 *		gifq.card_seal(order_id, code, pin): the sealed card.
 */
Datum
gifq_card_seal(PG_FUNCTION_ARGS)
{
	int64		order_id;
	text	   *code;
	CardKey		k;
	StringInfoData plain;
	bytea	   *sealed;
	unsigned char *p;
	uint64		aad;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a gift card needs an order id and a code")));
	order_id = PG_GETARG_INT64(0);
	code = PG_GETARG_TEXT_PP(1);
	current_key(&k);

	initStringInfo(&plain);
	appendBinaryStringInfo(&plain, VARDATA_ANY(code), VARSIZE_ANY_EXHDR(code));
	appendStringInfoChar(&plain, '\0');
	if (!PG_ARGISNULL(2))
	{
		text	   *pin = PG_GETARG_TEXT_PP(2);

		appendStringInfoChar(&plain, 'P');
		appendBinaryStringInfo(&plain, VARDATA_ANY(pin), VARSIZE_ANY_EXHDR(pin));
	}

	sealed = palloc(VARHDRSZ + HEADER_LEN + plain.len + TAG_LEN);
	SET_VARSIZE(sealed, VARHDRSZ + HEADER_LEN + plain.len + TAG_LEN);
	p = (unsigned char *) VARDATA(sealed);
	p[0] = SEAL_VERSION;
	memcpy(p + 1, k.id, KEY_ID_LEN);
	if (RAND_bytes(p + 1 + KEY_ID_LEN, NONCE_LEN) != 1)
		crypto_failed("seal");
	aad = pg_hton64((uint64) order_id);
	gcm(true, &k, p + 1 + KEY_ID_LEN, (unsigned char *) &aad, sizeof(aad),
		(unsigned char *) plain.data, plain.len, p + HEADER_LEN,
		p + HEADER_LEN + plain.len);
	explicit_bzero(plain.data, plain.len);
	pfree(plain.data);
	PG_RETURN_BYTEA_P(sealed);
}

PG_FUNCTION_INFO_V1(gifq_card_key_id);

/*
 * gifq_card_key_id
 *		gifq.card_key_id(): the id of the current key (QG402 if unset).
 */
Datum
gifq_card_key_id(PG_FUNCTION_ARGS)
{
	CardKey		k;

	current_key(&k);
	PG_RETURN_TEXT_P(cstring_to_text(key_id_text(k.id)));
}

pg_attribute_noreturn()
static void
card_unreadable(int64 order_id, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_CARD_UNREADABLE),
			 errmsg("the gift card of order " INT64_FORMAT " cannot be opened: %s",
					order_id, why),
			 errhint("Cards open with the key that sealed them: keep the key before a rotation in gifq.card_key_previous until every card is re-sealed.")));
}

PG_FUNCTION_INFO_V1(gifq_card_open);

/*
 * gifq_card_open
 *		gifq.card_open(order_id, sealed) -> (code, pin).
 */
Datum
gifq_card_open(PG_FUNCTION_ARGS)
{
	int64		order_id = PG_GETARG_INT64(0);
	bytea	   *sealed = PG_GETARG_BYTEA_PP(1);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(sealed);
	int			len = VARSIZE_ANY_EXHDR(sealed) - HEADER_LEN - TAG_LEN;
	CardKey		k;
	unsigned char tag[TAG_LEN];
	char	   *plain;
	size_t		codelen;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	uint64		aad = pg_hton64((uint64) order_id);

	if (len < 1 || p[0] != SEAL_VERSION)
		card_unreadable(order_id, "not a sealed card");
	if (!card_key(gifq_card_key, &k) && !card_key(gifq_card_key_previous, &k))
		current_key(&k);		/* QG402: no key at all */
	if (!((card_key(gifq_card_key, &k) && memcmp(k.id, p + 1, KEY_ID_LEN) == 0) ||
		  (card_key(gifq_card_key_previous, &k) && memcmp(k.id, p + 1, KEY_ID_LEN) == 0)))
		card_unreadable(order_id,
						psprintf("it was sealed with key %s, which is neither gifq.card_key nor gifq.card_key_previous",
								 key_id_text(p + 1)));

	plain = palloc(len + 1);
	memcpy(tag, p + HEADER_LEN + len, TAG_LEN);
	if (!gcm(false, &k, p + 1 + KEY_ID_LEN, (unsigned char *) &aad, sizeof(aad),
			 p + HEADER_LEN, len, (unsigned char *) plain, tag))
		card_unreadable(order_id, "it does not authenticate (altered, or another order's)");
	plain[len] = '\0';

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	codelen = strlen(plain);
	values[0] = PointerGetDatum(cstring_to_text_with_len(plain, codelen));
	if (codelen + 1 < (size_t) len && plain[codelen + 1] == 'P')
		values[1] = PointerGetDatum(cstring_to_text_with_len(plain + codelen + 2,
															 len - codelen - 2));
	else
		nulls[1] = true;
	explicit_bzero(plain, len);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
