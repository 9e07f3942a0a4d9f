-- gifq--0.1.0.sql: install script for gifq 0.1.0

\echo Load gifq with CREATE EXTENSION gifq, not psql. \quit

-- API objects live in the extension's schema (@extschema@); state, views
-- and internal functions will live in schema gifq.
CREATE SCHEMA gifq;
COMMENT ON SCHEMA gifq IS 'gifq state tables and internal functions; apps never write them directly';

------------------------------------------------------------------------
-- gifq_money type
------------------------------------------------------------------------

CREATE TYPE @extschema@.gifq_money;

CREATE FUNCTION @extschema@.gifq_money_in(cstring) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_out(@extschema@.gifq_money) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_recv(internal) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_send(@extschema@.gifq_money) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.gifq_money (
	INPUT = @extschema@.gifq_money_in,
	OUTPUT = @extschema@.gifq_money_out,
	RECEIVE = @extschema@.gifq_money_recv,
	SEND = @extschema@.gifq_money_send,
	INTERNALLENGTH = 16,
	ALIGNMENT = double,
	STORAGE = plain
);
COMMENT ON TYPE @extschema@.gifq_money IS 'an exact amount with its currency, such as ''12.50 USD'' or ''1500 PTS''';

------------------------------------------------------------------------
-- gifq_money functions
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_money(amount numeric, currency text) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gifq_money(numeric, text) IS 'an amount in a currency; refuses more decimal places than the currency has';

CREATE FUNCTION @extschema@.gifq_amount(@extschema@.gifq_money) RETURNS numeric
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gifq_amount(@extschema@.gifq_money) IS 'the amount as numeric, with the currency''s decimal places';

CREATE FUNCTION @extschema@.gifq_currency(@extschema@.gifq_money) RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gifq_currency(@extschema@.gifq_money) IS 'the currency code';

CREATE FUNCTION @extschema@.gifq_minor_units(@extschema@.gifq_money) RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gifq_minor_units(@extschema@.gifq_money) IS 'the amount in the currency''s minor units (cents for USD)';

CREATE FUNCTION @extschema@.gifq_allocate(total @extschema@.gifq_money, ratios int[]) RETURNS @extschema@.gifq_money[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.gifq_allocate(@extschema@.gifq_money, int[]) IS 'split an amount by ratios; the shares sum exactly to the total';

------------------------------------------------------------------------
-- gifq_money operators
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_money_eq(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_ne(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_lt(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_le(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_gt(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_ge(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_cmp(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_sortsupport(internal) RETURNS void
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_hash(@extschema@.gifq_money) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_hash_extended(@extschema@.gifq_money, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION @extschema@.gifq_money_add(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_sub(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_neg(@extschema@.gifq_money) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_mul(@extschema@.gifq_money, numeric) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_numeric_mul_money(numeric, @extschema@.gifq_money) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_div(@extschema@.gifq_money, numeric) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.= (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_eq,
	COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR @extschema@.<> (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_ne,
	COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
	RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR @extschema@.< (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_lt,
	COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR @extschema@.<= (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_le,
	COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR @extschema@.> (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_gt,
	COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR @extschema@.>= (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_ge,
	COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
	RESTRICT = scalargesel, JOIN = scalargejoinsel
);

CREATE OPERATOR @extschema@.+ (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_add, COMMUTATOR = OPERATOR(@extschema@.+)
);
CREATE OPERATOR @extschema@.- (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_money_sub
);
CREATE OPERATOR @extschema@.- (
	RIGHTARG = @extschema@.gifq_money, FUNCTION = @extschema@.gifq_money_neg
);
CREATE OPERATOR @extschema@.* (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = numeric,
	FUNCTION = @extschema@.gifq_money_mul, COMMUTATOR = OPERATOR(@extschema@.*)
);
CREATE OPERATOR @extschema@.* (
	LEFTARG = numeric, RIGHTARG = @extschema@.gifq_money,
	FUNCTION = @extschema@.gifq_numeric_mul_money, COMMUTATOR = OPERATOR(@extschema@.*)
);
CREATE OPERATOR @extschema@./ (
	LEFTARG = @extschema@.gifq_money, RIGHTARG = numeric,
	FUNCTION = @extschema@.gifq_money_div
);

------------------------------------------------------------------------
-- gifq_money operator classes
------------------------------------------------------------------------

CREATE OPERATOR CLASS @extschema@.gifq_money_ops
	DEFAULT FOR TYPE @extschema@.gifq_money USING btree AS
	OPERATOR 1 @extschema@.< ,
	OPERATOR 2 @extschema@.<= ,
	OPERATOR 3 @extschema@.= ,
	OPERATOR 4 @extschema@.>= ,
	OPERATOR 5 @extschema@.> ,
	FUNCTION 1 @extschema@.gifq_money_cmp(@extschema@.gifq_money, @extschema@.gifq_money),
	FUNCTION 2 @extschema@.gifq_money_sortsupport(internal);

CREATE OPERATOR CLASS @extschema@.gifq_money_hash_ops
	DEFAULT FOR TYPE @extschema@.gifq_money USING hash AS
	OPERATOR 1 @extschema@.= ,
	FUNCTION 1 @extschema@.gifq_money_hash(@extschema@.gifq_money),
	FUNCTION 2 @extschema@.gifq_money_hash_extended(@extschema@.gifq_money, bigint);

------------------------------------------------------------------------
-- gifq_money aggregates
------------------------------------------------------------------------

CREATE FUNCTION @extschema@.gifq_money_sum_accum(internal, @extschema@.gifq_money) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_sum_inv(internal, @extschema@.gifq_money) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_sum_combine(internal, internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_sum_serialize(internal) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_sum_deserialize(bytea, internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_sum_final(internal) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_larger(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.gifq_money_smaller(@extschema@.gifq_money, @extschema@.gifq_money) RETURNS @extschema@.gifq_money
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE @extschema@.sum(@extschema@.gifq_money) (
	SFUNC = @extschema@.gifq_money_sum_accum,
	STYPE = internal,
	SSPACE = 32,
	FINALFUNC = @extschema@.gifq_money_sum_final,
	COMBINEFUNC = @extschema@.gifq_money_sum_combine,
	SERIALFUNC = @extschema@.gifq_money_sum_serialize,
	DESERIALFUNC = @extschema@.gifq_money_sum_deserialize,
	MSFUNC = @extschema@.gifq_money_sum_accum,
	MINVFUNC = @extschema@.gifq_money_sum_inv,
	MSTYPE = internal,
	MSSPACE = 32,
	MFINALFUNC = @extschema@.gifq_money_sum_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.sum(@extschema@.gifq_money) IS 'exact sum of amounts in one currency; only the final sum must fit';

CREATE AGGREGATE @extschema@.min(@extschema@.gifq_money) (
	SFUNC = @extschema@.gifq_money_smaller,
	STYPE = @extschema@.gifq_money,
	COMBINEFUNC = @extschema@.gifq_money_smaller,
	SORTOP = OPERATOR(@extschema@.<),
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.min(@extschema@.gifq_money) IS 'least value, ordered by currency code, then amount';

CREATE AGGREGATE @extschema@.max(@extschema@.gifq_money) (
	SFUNC = @extschema@.gifq_money_larger,
	STYPE = @extschema@.gifq_money,
	COMBINEFUNC = @extschema@.gifq_money_larger,
	SORTOP = OPERATOR(@extschema@.>),
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.max(@extschema@.gifq_money) IS 'greatest value, ordered by currency code, then amount';

------------------------------------------------------------------------
-- gifq_balance
------------------------------------------------------------------------

CREATE TYPE @extschema@.gifq_balance AS (
	posted @extschema@.gifq_money,
	pending_debits @extschema@.gifq_money,
	pending_credits @extschema@.gifq_money,
	available @extschema@.gifq_money
);
COMMENT ON TYPE @extschema@.gifq_balance IS 'an account''s balances: posted, pending debits, pending credits, available';
