# 003_orders_random.pl: a seeded randomized order workload.  pgbench runs
# six clients against one program of 40 members whose funding is often
# near empty (topped up now and then), mixing redemptions (some refused for points or funding, some
# replays of an earlier key), cancels, the worker's claim, failures (which
# release holds), retries and deliveries (which post them).  Releasing and
# posting an order's two holds races redemptions on the same balance
# slots, so a lock taken out of the global order would show up here as a
# deadlock.  Afterwards: no transaction failed, every order's holds agree
# with its status, and gifq_ledger_verify() finds nothing.
#
# GIFQ_SEED=<n> replays the operations each client draws (the interleaving
# of the clients still varies).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $seed = $ENV{GIFQ_SEED} // 20261128;
die "GIFQ_SEED must be an integer\n" unless $seed =~ /^\d+$/;
note "random seed: $seed (replay with GIFQ_SEED=$seed)";

my $clients = 6;
my $per_client = 400;    # 2,400 transactions in all

my $node = PostgreSQL::Test::Cluster->new('orders_random');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'gifq'
fsync = off
max_connections = 30
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION gifq;
SELECT gifq_create_program('rnd', 'USD');
SELECT gifq_upsert_member('rnd', 'm' || i, 'm' || i || '@example.com', 'US')
FROM generate_series(1, 40) i;
SELECT gifq_transfer(gifq_account('rnd', NULL, 'issuance'), gifq_account('rnd', 'm' || i),
	gifq_money(3000 + 100 * i, 'PTS')) FROM generate_series(1, 40) i;
SELECT gifq_fund('rnd', '300.00 USD', 'initial');
SELECT gifq_catalog_load('{"brands": [
	{"id": "b10", "name": "Ten", "country": "US", "currency": "USD",
	 "categories": ["retail"], "denominations": [10, 25, 50], "discount_pct": 3,
	 "in_stock": true}]}');
CREATE TABLE rnd_log (kind text NOT NULL, outcome text NOT NULL);

CREATE FUNCTION rnd_step(op int, m int, k int, face int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	kind text;
	outcome text := 'ok';
	o bigint;
BEGIN
	BEGIN
		IF op <= 45 THEN
			-- a redemption; keys repeat, so some calls replay (or conflict)
			kind := 'redeem';
			SELECT CASE WHEN r.created THEN 'ok' ELSE 'replay' END INTO outcome
			FROM gifq_redeem('rnd', 'm' || m, 'b10', gifq_money(face, 'USD'),
				'k' || m || '-' || k) r;
		ELSIF op <= 60 THEN
			kind := 'cancel';
			SELECT id INTO o FROM gifq.orders WHERE status = 'pending'
			ORDER BY id OFFSET k % 7 LIMIT 1;
			IF o IS NULL THEN outcome := 'none';
			ELSE PERFORM gifq_cancel_order(o); END IF;
		ELSIF op <= 72 THEN
			kind := 'claim';
			outcome := 'claimed ' || least((SELECT count(*) FROM gifq.claim_orders(3, '1 minute')), 1);
		ELSIF op <= 82 THEN
			-- the provider refused a submitted order: holds released
			kind := 'fail';
			SELECT id INTO o FROM gifq.orders WHERE status = 'submitted'
			ORDER BY id OFFSET k % 5 LIMIT 1 FOR UPDATE SKIP LOCKED;
			IF o IS NULL THEN outcome := 'none';
			ELSE PERFORM gifq.fail_order(o, 'out_of_stock'); END IF;
		ELSIF op <= 92 THEN
			-- the provider delivered a submitted order: holds posted
			kind := 'deliver';
			SELECT id INTO o FROM gifq.orders WHERE status = 'submitted'
			ORDER BY id OFFSET k % 5 LIMIT 1 FOR UPDATE SKIP LOCKED;
			IF o IS NULL THEN outcome := 'none';
			ELSE
				PERFORM gifq.end_holds(ARRAY[x.points_hold, x.funding_hold], 'post')
				FROM gifq.orders x WHERE x.id = o;
				UPDATE gifq.orders SET status = 'delivered', status_reason = 'delivered',
					delivered_at = now() WHERE id = o;
			END IF;
		ELSIF op <= 96 THEN
			kind := 'retry';
			SELECT id INTO o FROM gifq.orders WHERE status = 'failed'
			ORDER BY id OFFSET k % 5 LIMIT 1;
			IF o IS NULL THEN outcome := 'none';
			ELSE PERFORM gifq_retry_order(o); END IF;
		ELSE
			-- the platform tops up its funding, often near empty
			kind := 'fund';
			PERFORM gifq_fund('rnd', '150.00 USD', 'top-' || op || '-' || m || '-' || k);
		END IF;
	EXCEPTION WHEN SQLSTATE 'QG208' OR SQLSTATE 'QG209' OR SQLSTATE 'QG109'
		OR SQLSTATE 'QG216' THEN
		-- short points or funding, a key reused for another amount, an
		-- order another client moved first
		outcome := SQLSTATE;
	END;
	INSERT INTO rnd_log VALUES (kind, outcome);
	RETURN outcome;
END $$;
});

my $script = $node->basedir . '/orders_random.pgbench';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set op random(1, 100)
\set m random(1, 40)
\set k random(1, 60)
\set face random(1, 3)
SELECT rnd_step(:op, :m, :k, (ARRAY[10, 25, 50])[:face]);
});

my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[
		'pgbench', '--no-vacuum', '--client' => $clients, '--jobs' => 2,
		'--transactions' => $per_client, "--random-seed=$seed",
		'--failures-detailed', '--verbose-errors', '--file' => $script,
		'--host' => $node->host, '--port' => $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err, IPC::Run::timeout(180));
note $out;
note $err if $err ne '';

ok($ok, "pgbench ran (seed $seed)");
like($out, qr/number of transactions actually processed: 2400\/2400/,
	"all 2400 transactions ran (seed $seed)");
like($out, qr/number of failed transactions: 0 \(/,
	"no transaction failed (seed $seed)");
unlike($err, qr/deadlock detected/, "no deadlock (seed $seed)");

my $log = $node->safe_psql('postgres',
	q{SELECT kind || ' ' || outcome || ' ' || count(*) FROM rnd_log
	GROUP BY kind, outcome ORDER BY kind, outcome});
note "operations:\n$log";
my %did = map { /^(\S+ \S+(?: \d)?) (\d+)$/ ? ($1 => $2) : () } split /\n/, $log;
for my $what ('redeem ok', 'redeem replay', 'cancel ok', 'claim claimed 1',
	'fail ok', 'deliver ok', 'retry ok', 'fund ok')
{
	cmp_ok($did{$what} // 0, '>', 0, "the workload saw: $what");
}
cmp_ok(($did{'redeem QG208'} // 0) + ($did{'redeem QG209'} // 0), '>', 0,
	'some redemptions were refused for points or funding');

# every order's current holds agree with its status
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.orders o
	JOIN gifq.holds p ON p.transfer_id = o.points_hold
	JOIN gifq.holds f ON f.transfer_id = o.funding_hold
	WHERE p.status <> f.status OR p.status <> CASE o.status
		WHEN 'delivered' THEN 'posted' WHEN 'failed' THEN 'voided'
		WHEN 'canceled' THEN 'voided' ELSE 'pending' END}), '0',
	'every order\'s holds match its status');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT program_id, idempotency_key FROM gifq.orders
	GROUP BY 1, 2 HAVING count(*) > 1) d}), '0', 'one order per key');
is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq_ledger_verify()'), '0',
	'gifq_ledger_verify() finds nothing');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.account_slots s JOIN gifq.accounts a ON a.id = s.account_id
	WHERE a.debits_must_not_exceed_credits
	AND s.debits_posted + s.debits_pending > s.credits_posted}), '0',
	'no member or funding slot is overdrawn');

$node->stop;
done_testing();
