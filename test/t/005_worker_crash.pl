# 005_worker_crash.pl: 2,000 orders through the worker while the sandbox
# injects faults into 30% of the calls, the worker is killed with
# SIGKILL, and the cluster is stopped in immediate mode and started again,
# all in the middle of the run.  At the end every order is delivered or
# failed, the sandbox issued at most one card per reference (and a card
# for every delivered order, none for a failed one), and
# gifq_ledger_verify() is empty.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GifqSandbox;

my $orders = 2000;
my $sandbox = GifqSandbox->new(seed => 5, faults => {
	'5xx' => 0.06, '429' => 0.05, timeout => 0.05, slow => 0.04,
	malformed => 0.05, reset => 0.05, timeout_ms => 1500, slow_ms => 100,
	retry_after => 1 });

my $node = $sandbox->node('worker_crash', members => 50, restart_after_crash => 'on',
	'gifq.retry_base_ms' => 50, 'gifq.retry_max_ms' => 500, 'gifq.max_attempts' => 10,
	'gifq.max_concurrent_requests' => 32);
$node->safe_psql('postgres', q{
SELECT gifq_catalog_load('{"brands": [{"id": "amazon-us", "name": "Amazon", "country": "US",
	"currency": "USD", "categories": ["retail"], "denominations": [10, 25, 50, 100, 500],
	"discount_pct": 3.0, "in_stock": true}]}');
});

# redemptions in batches of 100, with the crashes between them.  A batch
# can deadlock with the worker's recording and lose (when the worker began
# waiting first, the batch's own check finds the cycle): it is retried, as
# an application would, and its keys make the retry replay what it made.
sub redeem_batch
{
	my ($from) = @_;
	for my $try (1 .. 5)
	{
		my ($ret, $out, $err) = $node->psql('postgres', qq{
			SELECT gifq_redeem('acme', 'm' || (i % 50 + 1), 'amazon-us', '10.00 USD', 'o-' || i)
			FROM generate_series($from, $from + 99) i});
		return if $ret == 0;
		die "redemption batch from $from failed: $err" unless $err =~ /deadlock detected/;
		note "redemption batch from $from deadlocked with the worker: retrying";
	}
	die "redemption batch from $from deadlocked 5 times";
}

sub worker_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM gifq.worker WHERE database = 'postgres' AND pid IS NOT NULL");
}

sub delivered
{
	return $node->safe_psql('postgres', "SELECT count(*) FROM gifq.orders WHERE status = 'delivered'");
}

for my $b (0 .. $orders / 100 - 1)
{
	redeem_batch($b * 100 + 1);
	if ($b == 6)
	{
		# some orders are in flight now: kill the worker
		$node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM gifq.orders WHERE status = 'submitted'");
		my $pid = worker_pid();
		ok($pid, 'the worker runs');
		note "killing worker $pid with SIGKILL with " . delivered() . ' delivered';
		kill 'KILL', $pid;
		# (the postmaster resets shared memory: connections fail briefly)
		sleep 1;
		# the postmaster restarts every process after a crash
		ok($node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM gifq.worker WHERE pid IS NOT NULL AND pid <> $pid"),
			'a new worker runs after the SIGKILL');
	}
	if ($b == 13)
	{
		$node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM gifq.orders WHERE status = 'submitted'");
		note 'immediate stop with ' . delivered() . ' delivered';
		$node->stop('immediate');
		$node->start;
		ok(worker_pid() || $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM gifq.worker WHERE pid IS NOT NULL"),
			'the worker runs after an immediate restart');
	}
}

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM gifq.orders WHERE status NOT IN ('delivered', 'failed')"),
	'every order ended');
is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq.orders'), $orders,
	"$orders orders");
my $stats = $sandbox->stats;
note "sandbox: $stats->{orders_posted} posts, $stats->{cards_issued} cards, faults "
  . join(', ', map { "$_ $stats->{faults_injected}{$_}" } sort keys %{ $stats->{faults_injected} });
my $faults = 0;
$faults += $_ for values %{ $stats->{faults_injected} };
cmp_ok($faults, '>=', $orders * 0.2, "faults were injected ($faults)");
is_deeply($stats->{duplicates}, [], 'no reference got two cards');
is($stats->{cards_issued}, delivered(), 'one card per delivered order, none for a failed one');
my $provider_refs = join ',', sort map { $_->{reference_id} } grep { $_->{status} eq 'delivered' }
  @{ $sandbox->request('GET', '/_sandbox/orders') };
my $our_refs = $node->safe_psql('postgres',
	"SELECT string_agg(gifq.order_reference(id), ',' ORDER BY gifq.order_reference(id))
	 FROM gifq.orders WHERE status = 'delivered'");
is($our_refs, $provider_refs, 'the delivered orders are exactly those the provider made');
is($node->safe_psql('postgres', q{SELECT count(*) FROM gifq.orders o JOIN gifq.holds h
	ON h.transfer_id IN (o.points_hold, o.funding_hold)
	WHERE h.status <> CASE o.status WHEN 'delivered' THEN 'posted' ELSE 'voided' END}),
	'0', "every order's holds match its status");
is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq_ledger_verify()'), '0',
	'gifq_ledger_verify() finds nothing');
done_testing();
