# 002_ledger_random.pl: a seeded randomized ledger workload.  pgbench runs
# six clients against one program of 50 members, mixing earning, transfers
# between members (some refused for overdraft), holds with short timeouts,
# full and partial posts, voids, expiry, redemption-like holds on the
# program's funding (a 16-slot account, often near zero, so rebalancing
# runs), batches, top-ups and idempotent replays.  Afterwards every hold
# with a timeout is expired and the ledger's invariants must hold:
# gifq_ledger_verify() finds nothing, each currency's slots net to zero,
# no member or funding account is negative, balance history ends where the
# balances are.
#
# The operations each client draws come from pgbench's random() seeded by
# --random-seed: GIFQ_SEED=<n> replays a run (the interleaving of the
# clients still varies).  The seed is printed with the results.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $seed = $ENV{GIFQ_SEED} // 20260428;
die "GIFQ_SEED must be an integer\n" unless $seed =~ /^\d+$/;
note "random seed: $seed (replay with GIFQ_SEED=$seed)";

my $clients = 6;
my $per_client = 500;    # 3,000 transactions in all
my $members = 50;

my $node = PostgreSQL::Test::Cluster->new('ledger_random');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'gifq'
fsync = off
max_connections = 30
});
$node->start;

# --------------------------------------------------------------------
# The program, its members, its funding, and the workload's functions
# --------------------------------------------------------------------

$node->safe_psql('postgres', qq{
CREATE EXTENSION gifq;
SELECT gifq_create_program('rnd', 'USD');
SELECT gifq_upsert_member('rnd', 'm' || i) FROM generate_series(1, $members) i;
SELECT gifq_fund('rnd', '300.00 USD', 'initial');

-- account ids, looked up once
CREATE TABLE rnd_members (n int PRIMARY KEY, account bigint NOT NULL);
INSERT INTO rnd_members SELECT i, gifq_account('rnd', 'm' || i) FROM generate_series(1, $members) i;
CREATE TABLE rnd_sys (kind text PRIMARY KEY, account bigint NOT NULL);
INSERT INTO rnd_sys SELECT k, gifq_account('rnd', NULL, k)
FROM unnest(ARRAY['issuance', 'funding', 'payable']) k;

-- what each operation did: 'ok', a tolerated SQLSTATE, 'replay', 'none'
CREATE TABLE rnd_log (kind text NOT NULL, outcome text NOT NULL);
});

# One operation, chosen by op (1..100) with arguments drawn by pgbench.
# Refusals the workload provokes on purpose (overdraft QG107, a hold ended
# or expired by another client QG111/QG112/QG113) are logged and
# tolerated; any other error aborts the pgbench client and fails the test.
$node->safe_psql('postgres', q{
CREATE FUNCTION rnd_step(op int, a int, b int, pts int, cents int, k int, frac int)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	ma bigint := (SELECT account FROM rnd_members WHERE n = a);
	mb bigint := (SELECT account FROM rnd_members
		WHERE n = CASE WHEN b = a THEN b % 50 + 1 ELSE b END);
	iss bigint := (SELECT account FROM rnd_sys WHERE kind = 'issuance');
	fund bigint := (SELECT account FROM rnd_sys WHERE kind = 'funding');
	pay bigint := (SELECT account FROM rnd_sys WHERE kind = 'payable');
	-- 0.1 s to 2 s, or no timeout for one hold in five
	tmo interval := CASE WHEN frac <= 80
		THEN make_interval(secs => 0.1 + (frac % 20) / 10.0) END;
	kind text;
	outcome text := 'ok';
	h record;
	id bigint;
	existed boolean;
BEGIN
	BEGIN
		IF op <= 18 THEN
			kind := 'earn';
			PERFORM gifq_transfer(iss, ma, gifq_money(pts, 'PTS'));
		ELSIF op <= 36 THEN
			kind := 'move';
			PERFORM gifq_transfer(ma, mb, gifq_money(pts, 'PTS'),
				metadata => jsonb_build_object('op', op));
		ELSIF op <= 48 THEN
			kind := 'hold';
			PERFORM gifq_transfer(ma, mb, gifq_money(pts, 'PTS'), pending => true,
				timeout => tmo);
		ELSIF op <= 66 THEN
			-- post (in full or in part) or void some pending hold
			SELECT t.id, t.amount, t.currency INTO h
			FROM gifq.holds x JOIN gifq.transfers t ON t.id = x.transfer_id
			WHERE x.status = 'pending' ORDER BY x.transfer_id
			OFFSET k % greatest(1, (SELECT count(*) FROM gifq.holds WHERE status = 'pending'))
			LIMIT 1;
			IF NOT FOUND THEN
				kind := 'post';
				outcome := 'none';
			ELSIF op <= 52 THEN
				kind := 'post';
				PERFORM gifq_post(h.id);
			ELSIF op <= 58 THEN
				kind := 'post_part';
				PERFORM gifq_post(h.id, gifq_from_minor_units(
					greatest(1, h.amount * frac / 101), h.currency));
			ELSE
				kind := 'void';
				PERFORM gifq_void(h.id);
			END IF;
		ELSIF op <= 70 THEN
			kind := 'expire';
			outcome := 'expired ' || least(gifq_expire_holds(), 1);
		ELSIF op <= 84 THEN
			-- a redemption: hold the member's points and the program's money
			kind := 'redeem';
			-- (two transfers in one transaction: the batch form takes their
			-- accounts in the global lock order)
			PERFORM gifq_transfers(jsonb_build_array(
				jsonb_build_object('debit_account', ma, 'credit_account', iss,
					'amount', pts || ' PTS', 'pending', true,
					'timeout', coalesce(tmo, '1 second')),
				jsonb_build_object('debit_account', fund, 'credit_account', pay,
					'amount', gifq_from_minor_units(cents, 'USD')::text, 'pending', true,
					'timeout', coalesce(tmo, '1 second'),
					'metadata', jsonb_build_object('member', a))));
		ELSIF op <= 92 THEN
			-- a key names one earning: a repeat must return its id
			kind := 'replay';
			existed := EXISTS (SELECT 1 FROM gifq.transfers WHERE idempotency_key = 'k' || k);
			id := gifq_transfer(iss, (SELECT account FROM rnd_members WHERE n = k % 50 + 1),
				gifq_money(k % 97 + 1, 'PTS'), 'k' || k);
			IF id IS DISTINCT FROM (SELECT t.id FROM gifq.transfers t
				WHERE t.idempotency_key = 'k' || k) THEN
				RAISE EXCEPTION 'key k% returned transfer %, not the one holding the key', k, id;
			END IF;
			IF existed THEN
				outcome := 'replay';
			END IF;
		ELSIF op <= 94 THEN
			-- the same key with another amount must be refused
			kind := 'conflict';
			IF EXISTS (SELECT 1 FROM gifq.transfers WHERE idempotency_key = 'k' || k) THEN
				BEGIN
					PERFORM gifq_transfer(iss, (SELECT account FROM rnd_members WHERE n = k % 50 + 1),
						gifq_money(k % 97 + 2, 'PTS'), 'k' || k);
					RAISE EXCEPTION 'key k% reused with another amount was accepted', k;
				EXCEPTION WHEN SQLSTATE 'QG109' THEN
					outcome := 'QG109';
				END;
			ELSE
				outcome := 'none';
			END IF;
		ELSIF op <= 97 THEN
			-- all or nothing: an earning and a move of twice as much
			kind := 'batch';
			PERFORM gifq_transfers(jsonb_build_array(
				jsonb_build_object('debit_account', iss, 'credit_account', ma,
					'amount', pts || ' PTS'),
				jsonb_build_object('debit_account', ma, 'credit_account', mb,
					'amount', (2 * pts) || ' PTS')));
		ELSE
			-- a top-up; its key makes a repeat add nothing
			kind := 'fund';
			PERFORM gifq_fund('rnd', gifq_money(20 + k % 31, 'USD'), 'top' || k);
		END IF;
	EXCEPTION WHEN SQLSTATE 'QG107' OR SQLSTATE 'QG111' OR SQLSTATE 'QG112'
		OR SQLSTATE 'QG113' THEN
		outcome := SQLSTATE;
	END;
	INSERT INTO rnd_log VALUES (kind, outcome);
	RETURN outcome;
END $$;
});

my $script = $node->basedir . '/ledger_random.pgbench';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set op random(1, 100)
\set a random(1, 50)
\set b random(1, 50)
\set pts random(1, 400)
\set cents random(1, 3000)
\set k random(1, 300)
\set frac random(1, 100)
SELECT rnd_step(:op, :a, :b, :pts, :cents, :k, :frac);
});

# --------------------------------------------------------------------
# The workload
# --------------------------------------------------------------------

my ($out, $err) = ('', '');
my $started = time;
my $ok = IPC::Run::run(
	[
		'pgbench', '--no-vacuum', '--client' => $clients, '--jobs' => 2,
		'--transactions' => $per_client, "--random-seed=$seed",
		'--failures-detailed', '--verbose-errors', '--file' => $script,
		'--host' => $node->host, '--port' => $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err, IPC::Run::timeout(120));
my $elapsed = time - $started;
note sprintf('pgbench took %.1f s', $elapsed);
note $out;
note $err if $err ne '';

ok($ok, "pgbench ran (seed $seed)");
like($out, qr/number of transactions actually processed: 3000\/3000/,
	"all 3000 transactions ran (seed $seed)");
like($out, qr/number of failed transactions: 0 \(/,
	"no transaction failed: no deadlock, no serialization failure (seed $seed)");
unlike($err, qr/aborted/, "no pgbench client aborted (seed $seed)");
unlike($err, qr/deadlock detected/, "no deadlock (seed $seed)");
cmp_ok($elapsed, '<', 60, 'the workload takes less than 60 s');

# --------------------------------------------------------------------
# The workload did what it was meant to
# --------------------------------------------------------------------

my $log = $node->safe_psql('postgres',
	q{SELECT kind || ' ' || outcome || ' ' || count(*) FROM rnd_log
	GROUP BY kind, outcome ORDER BY kind, outcome});
note "operations:\n$log";
my %did = map { /^(\S+ \S+(?: \d)?) (\d+)$/ ? ($1 => $2) : () } split /\n/, $log;
for my $what ('earn ok', 'move ok', 'move QG107', 'hold ok', 'post ok',
	'post_part ok', 'void ok', 'expire expired 1', 'redeem ok', 'redeem QG107',
	'replay replay', 'conflict QG109', 'batch ok', 'fund ok')
{
	cmp_ok($did{$what} // 0, '>', 0, "the workload saw: $what");
}
is($node->safe_psql('postgres',
		q{SELECT string_agg(kind, ',' ORDER BY kind) FROM (SELECT DISTINCT kind FROM gifq.transfers) k}),
	'expire,pending,post,posted,void', 'transfers of every kind were made');
is($node->safe_psql('postgres',
		q{SELECT count(*) > 0 FROM gifq.transfers p JOIN gifq.transfers h ON h.id = p.pending_id
		WHERE p.kind = 'post' AND p.amount < h.amount}),
	't', 'some holds were posted in part');
is($node->safe_psql('postgres',
		q{SELECT count(*) > 0 FROM gifq.entries e JOIN rnd_sys s ON s.account = e.account_id
		WHERE s.kind = 'funding' AND e.transfer_id IS NULL}),
	't', 'the funding account was rebalanced');

# --------------------------------------------------------------------
# Invariants, once every timed hold is past its timeout and expired
# --------------------------------------------------------------------

ok($node->poll_query_until('postgres',
		q{SELECT NOT EXISTS (SELECT 1 FROM gifq.holds
		WHERE status = 'pending' AND expires_at >= now())}),
	'every timed hold is past its timeout');
$node->safe_psql('postgres', 'SELECT gifq_expire_holds()');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM gifq.holds WHERE status = 'pending' AND expires_at IS NOT NULL}),
	'0', 'gifq_expire_holds() released every timed hold');
is($node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE h.status = 'expired') > 0
			AND count(*) FILTER (WHERE h.status = 'expired' AND (t.kind IS DISTINCT FROM 'expire'
				OR h.resolved_by IS DISTINCT FROM t.id)) = 0
		FROM gifq.holds h LEFT JOIN gifq.transfers t ON t.pending_id = h.transfer_id}),
	't', 'holds expired, each by its own expire transfer');

my $problems = $node->safe_psql('postgres',
	q{SELECT coalesce(account::text, '-') || ': ' || problem FROM gifq_ledger_verify()});
is($problems, '', "gifq_ledger_verify() finds no problem (seed $seed)");

is($node->safe_psql('postgres', q{
	SELECT coalesce(string_agg(a.currency, ','), '')
	FROM gifq.account_slots s JOIN gifq.accounts a ON a.id = s.account_id
	GROUP BY a.currency
	HAVING sum(s.credits_posted) <> sum(s.debits_posted)
		OR sum(s.credits_pending) <> sum(s.debits_pending)}),
	'', 'in each currency the slots net to zero: posted credits = posted debits, pending too');
is($node->safe_psql('postgres', q{
	SELECT sum(s.credits_posted - s.debits_posted)::text
	FROM gifq.account_slots s JOIN gifq.accounts a ON a.id = s.account_id}),
	'0', 'all balances together net to zero');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.accounts a
	WHERE a.member_id IS NOT NULL
	AND (SELECT sum(credits_posted - debits_posted - debits_pending)
		FROM gifq.account_slots WHERE account_id = a.id) < 0}),
	'0', "no member account is negative (seed $seed)");
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.account_slots s JOIN rnd_sys f ON f.account = s.account_id
	WHERE f.kind = 'funding' AND s.debits_posted + s.debits_pending > s.credits_posted}),
	'0', "no slot of the funding account is overdrawn (seed $seed)");
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.accounts a
	WHERE (SELECT (x.posted, x.pending_debits, x.pending_credits) FROM gifq_balance(a.id) x)
		IS DISTINCT FROM
		(SELECT (y.posted, y.pending_debits, y.pending_credits) FROM gifq_balance_at(a.id, 'infinity') y)}),
	'0', 'every account\'s history ends at its balance');
is($node->safe_psql('postgres', q{
	SELECT (SELECT sum(amount) FILTER (WHERE kind IN ('posted', 'post')) FROM gifq.transfers t
		WHERE t.debit_account_id = f.account)
		= (SELECT sum(debits_posted) FROM gifq.account_slots WHERE account_id = f.account)
	FROM rnd_sys f WHERE f.kind = 'funding'}),
	't', 'the funding account\'s posted debits equal its transfers');

$node->stop;
done_testing();
