/*-------------------------------------------------------------------------
 * rewards.c
 *	  Recipient-choice rewards: claim tokens and the set-wise funding holds
 *	  of a batch of rewards.
 *
 * The SQL API (gifq_send_reward, gifq_send_rewards, gifq_claim_reward,
 * gifq_expire_rewards) is PL/pgSQL in the 0.7.0 script; what it needs from
 * C is here:
 *
 * - claim tokens: 192 bits from pg_strong_random(), base64url, prefixed
 *	 "gqr_".  Only their SHA-256 is stored; a claim finds the reward by the
 *	 hash (a unique index) and then compares the hash bytes again in
 *	 constant time (CRYPTO_memcmp), so no comparison of secret material
 *	 depends on how many leading bytes match.
 * - gifq.reward_holds: one hold per reward (funding -> liability), written
 *	 with one INSERT for the whole batch, and the two accounts' balance
 *	 slots changed once each by the batch's total (entries that sum
 *	 several transfers name none, as gifq_record_events' do).  Changing
 *	 one slot 10,000 times in one transaction would walk an ever longer
 *	 chain of row versions.
 *
 * Expiry voids a batch of reward holds together with gifq.void_holds
 * (holds.c).
 *
 * Locking: gifq.reward_holds locks the two balance slots in the ledger's
 * global order (ledger_apply_both).  Callers lock their reward rows before
 * any balance slot.
 *
 * Copyright (c) 2026, the gifq authors
 *
 * IDENTIFICATION
 *	  src/rewards.c
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "gifq.h"
#include "arrays.h"
#include "ledger.h"
#include "money.h"
#include "orders.h"
#include "worker.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

/* random bytes in a claim token: 192 bits */
#define TOKEN_RANDOM_BYTES 24
#define TOKEN_PREFIX "gqr_"

static const char base64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

PG_FUNCTION_INFO_V1(gifq_reward_token);

/*
 * gifq_reward_token
 *		gifq.reward_token(): a new claim token, "gqr_" and 32 base64url
 *		characters (192 random bits from pg_strong_random).  Throws if the
 *		system's random source fails.  VOLATILE.
 */
Datum
gifq_reward_token(PG_FUNCTION_ARGS)
{
	unsigned char raw[TOKEN_RANDOM_BYTES];
	char		out[sizeof(TOKEN_PREFIX) + TOKEN_RANDOM_BYTES * 4 / 3];
	char	   *p = out;

	if (!pg_strong_random(raw, sizeof(raw)))
		elog(ERROR, "could not generate random claim token");
	memcpy(p, TOKEN_PREFIX, strlen(TOKEN_PREFIX));
	p += strlen(TOKEN_PREFIX);
	/* 24 bytes: 8 groups of 3 bytes, 4 characters each, no padding */
	for (int i = 0; i < TOKEN_RANDOM_BYTES; i += 3)
	{
		uint32		v = ((uint32) raw[i] << 16) | ((uint32) raw[i + 1] << 8) | raw[i + 2];

		*p++ = base64url[(v >> 18) & 63];
		*p++ = base64url[(v >> 12) & 63];
		*p++ = base64url[(v >> 6) & 63];
		*p++ = base64url[v & 63];
	}
	*p = '\0';
	explicit_bzero(raw, sizeof(raw));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * token_hash
 *		SHA-256 of a token's bytes into digest.
 */
static void
token_hash(text *token, unsigned char *digest)
{
	SHA256((const unsigned char *) VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token),
		   digest);
}

PG_FUNCTION_INFO_V1(gifq_reward_token_hash);

/*
 * gifq_reward_token_hash
 *		gifq.reward_token_hash(token): the SHA-256 stored for a token, as
 *		bytea.  IMMUTABLE STRICT.
 */
Datum
gifq_reward_token_hash(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);
	bytea	   *result = palloc(VARHDRSZ + SHA256_DIGEST_LENGTH);

	SET_VARSIZE(result, VARHDRSZ + SHA256_DIGEST_LENGTH);
	token_hash(token, (unsigned char *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(gifq_reward_token_matches);

/*
 * gifq_reward_token_matches
 *		gifq.reward_token_matches(token, stored): whether token hashes to
 *		the stored hash, compared in constant time.  False for a stored
 *		value of the wrong length.  IMMUTABLE STRICT.
 */
Datum
gifq_reward_token_matches(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);
	bytea	   *stored = PG_GETARG_BYTEA_PP(1);
	unsigned char digest[SHA256_DIGEST_LENGTH];
	bool		same;

	if (VARSIZE_ANY_EXHDR(stored) != SHA256_DIGEST_LENGTH)
		PG_RETURN_BOOL(false);
	token_hash(token, digest);
	same = CRYPTO_memcmp(digest, VARDATA_ANY(stored), SHA256_DIGEST_LENGTH) == 0;
	PG_RETURN_BOOL(same);
}

PG_FUNCTION_INFO_V1(gifq_card_cost);

/*
 * gifq_card_cost
 *		gifq.card_cost(units bigint, discount_pct numeric): what a card of
 *		face value units (minor units) costs the program, rounded half to
 *		even, exactly as gifq_redeem computes an order's cost.  STRICT.
 */
Datum
gifq_card_cost(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(orders_cost(PG_GETARG_INT64(0), PG_GETARG_NUMERIC(1)));
}

/*
 * reward_refused
 *		The funding slot refused the batch's total (another session spent
 *		the funding after the caller's up-front check): QG209.
 */
static void
reward_refused(const TransferRequest *req, const LedgerAccount *account,
			   int64 available) pg_attribute_noreturn();

static void
reward_refused(const TransferRequest *req, const LedgerAccount *account,
			   int64 available)
{
	ereport(ERROR,
			(errcode(ERRCODE_GIFQ_INSUFFICIENT_FUNDING),
			 errmsg("funding account %lld has %s available, the rewards need %s",
					(long long) account->id,
					money_to_cstring(money_make(available, account->currency)),
					money_to_cstring(&req->amount)),
			 errhint("Add funding with gifq_fund(), or send fewer or smaller rewards.")));
}

PG_FUNCTION_INFO_V1(gifq_reward_holds);

/*
 * gifq_reward_holds
 *		gifq.reward_holds(debit bigint, credit bigint, currency text,
 *		amounts bigint[], reward_ids bigint[]) returns bigint[]: one
 *		pending transfer (a hold, no timeout) from debit to credit per
 *		element, metadata {"reward_id": id}, in the order given; their ids.
 *
 * The transfer and hold rows are written by one statement; the balance
 * slots change once per account (this backend's slot, by the total),
 * locked in the global order, the funding topped up from sibling slots if
 * need be.  Throws QG209 when the debit account cannot cover the total,
 * QG106 when an account is not in the currency, QG116 across programs.
 * STRICT.
 */
Datum
gifq_reward_holds(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	static const Oid argtypes[] = {INT8OID, INT8OID, INT8OID, TEXTOID,
	INT8ARRAYOID, INT8ARRAYOID, INT4OID, INT4OID};
	int64		ids[2];
	LedgerAccount accounts[2];
	ArrayType  *amounts = PG_GETARG_ARRAYTYPE_P(3);
	ArrayType  *rewards = PG_GETARG_ARRAYTYPE_P(4);
	Datum	   *amount_d;
	bool	   *amount_null;
	int			n;
	int			nrewards;
	int64		total = 0;
	GifqMoney	money;
	TransferRequest req;
	SlotDelta	debit_delta;
	SlotDelta	credit_delta;
	Datum		values[8];
	Datum	   *result;
	MemoryContext caller = CurrentMemoryContext;
	Datum		out;

	ids[0] = PG_GETARG_INT64(0);
	ids[1] = PG_GETARG_INT64(1);
	currency_from_text(PG_GETARG_TEXT_PP(2), money.currency);
	deconstruct_array(amounts, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &amount_d, &amount_null, &n);
	nrewards = ArrayGetNItems(ARR_NDIM(rewards), ARR_DIMS(rewards));
	if (n != nrewards || array_contains_nulls(rewards))
		elog(ERROR, "reward_holds needs one reward id per amount");
	for (int i = 0; i < n; i++)
	{
		int64		units;

		CHECK_FOR_INTERRUPTS();
		units = amount_null[i] ? 0 : DatumGetInt64(amount_d[i]);
		if (units <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_INVALID_AMOUNT),
					 errmsg("reward amount %s is not positive",
							money_to_cstring(money_make(units, money.currency))),
					 errhint("Give each reward a value above zero.")));
		if (pg_add_s64_overflow(total, units, &total))
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_MONEY_OUT_OF_RANGE),
					 errmsg("total of the rewards is out of range"),
					 errhint("Send the rewards in smaller batches.")));
	}
	if (ids[0] == ids[1])
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_SAME_ACCOUNT),
				 errmsg("debit and credit account are both %lld", (long long) ids[0]),
				 errhint("Rewards move funding to the liability account.")));

	/* in the caller's context: it outlives SPI */
	result = palloc(sizeof(Datum) * Max(n, 1));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ledger_load_accounts(ids, 2, accounts);
	for (int i = 0; i < 2; i++)
		if (memcmp(accounts[i].currency, money.currency, GIFQ_CURRENCY_LEN) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_GIFQ_ACCOUNT_CURRENCY),
					 errmsg("account %lld is not in %s", (long long) accounts[i].id,
							pnstrdup(money.currency, GIFQ_CURRENCY_LEN)),
					 errhint("Hold a reward in the currency of the program's funding account.")));
	if (accounts[0].program_id != accounts[1].program_id)
		ereport(ERROR,
				(errcode(ERRCODE_GIFQ_CROSS_PROGRAM),
				 errmsg("accounts %lld and %lld belong to different programs",
						(long long) ids[0], (long long) ids[1]),
				 errhint("A reward is held within its program.")));

	if (n > 0)
	{
		values[0] = Int64GetDatum(accounts[0].program_id);
		values[1] = Int64GetDatum(ids[0]);
		values[2] = Int64GetDatum(ids[1]);
		values[3] = PointerGetDatum(cstring_to_text_with_len(money.currency,
															 strnlen(money.currency, GIFQ_CURRENCY_LEN)));
		values[4] = PointerGetDatum(amounts);
		values[5] = PointerGetDatum(rewards);
		values[6] = Int32GetDatum(MyProcPid % accounts[0].slots);
		values[7] = Int32GetDatum(MyProcPid % accounts[1].slots);
		ledger_run(ledger_plan(&plan,
							   "WITH t AS ("
							   " INSERT INTO gifq.transfers (program_id, kind, debit_account_id,"
							   "  credit_account_id, amount, currency, metadata)"
							   " SELECT $1, 'pending', $2, $3, u.amount, $4,"
							   "  pg_catalog.jsonb_build_object('reward_id', u.reward_id)"
							   " FROM unnest($5, $6) WITH ORDINALITY u(amount, reward_id, n)"
							   " ORDER BY u.n"
							   " RETURNING id, (metadata OPERATOR(pg_catalog.->>) 'reward_id')::bigint AS reward_id),"
							   " h AS (INSERT INTO gifq.holds (transfer_id, debit_slot, credit_slot)"
							   "  SELECT id, $7, $8 FROM t)"
							   " SELECT t.id FROM t JOIN unnest($6) WITH ORDINALITY r(reward_id, n)"
							   "  ON r.reward_id OPERATOR(pg_catalog.=) t.reward_id ORDER BY r.n",
							   8, argtypes),
				   values, NULL, SPI_OK_SELECT);
		if ((int) SPI_processed != n)
			elog(ERROR, "reward_holds wrote %d holds for %d rewards (duplicate reward ids?)",
				 (int) SPI_processed, n);
		for (int i = 0; i < n; i++)
		{
			bool		isnull;

			result[i] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									  1, &isnull);
		}

		memset(&req, 0, sizeof(req));
		req.debit_account = ids[0];
		req.credit_account = ids[1];
		req.amount.units = total;
		memcpy(req.amount.currency, money.currency, GIFQ_CURRENCY_LEN);
		req.pending = true;
		req.refused = reward_refused;
		memset(&debit_delta, 0, sizeof(debit_delta));
		memset(&credit_delta, 0, sizeof(credit_delta));
		debit_delta.debits_pending = total;
		credit_delta.credits_pending = total;
		ledger_apply_both(&accounts[0], MyProcPid % accounts[0].slots,
						  &debit_delta,
						  &accounts[1], MyProcPid % accounts[1].slots,
						  &credit_delta,
						  n == 1 ? DatumGetInt64(result[0]) : 0, NULL, &req);
		ledger_after_change(&accounts[0]);
		ledger_after_change(&accounts[1]);
	}
	SPI_finish();
	MemoryContextSwitchTo(caller);
	out = datum_array(result, n, INT8OID);
	PG_RETURN_DATUM(out);
}

PG_FUNCTION_INFO_V1(gifq_wake_worker);

/*
 * gifq_wake_worker
 *		gifq.wake_worker(): wake the worker when this transaction commits,
 *		as gifq_redeem does for its order (a claimed reward's order).
 */
Datum
gifq_wake_worker(PG_FUNCTION_ARGS)
{
	worker_wake_on_commit();
	PG_RETURN_VOID();
}
