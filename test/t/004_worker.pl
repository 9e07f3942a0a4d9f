# 004_worker.pl: the fulfilment worker against the sandbox provider:
# delivery, asynchronous orders (webhook and polling), each fault kind,
# the 401/402 pause, webhook signatures, outbound events, the concurrency
# cap and rate limit, reload and DROP DATABASE.  Every order ends
# delivered or failed, the sandbox never issues two cards for one
# reference, and gifq_ledger_verify() stays empty.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);
use GifqSandbox;

my $sandbox = GifqSandbox->new(seed => 4, webhook_secret => 'whsec-test');
my $sink_secret = 'evsec-test';

my $node = $sandbox->node('worker',
	'gifq.database' => 'postgres, dropme', 'gifq.webhook_secret' => 'whsec-test');

# the worker loads the catalog when it starts (here: once the extension
# exists, at its first turn after that)
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM gifq.brands'),
	'the worker loaded the catalog from the provider');

my $n = 0;

# redeem(): a new order for $10 of amazon-us; returns its id
sub redeem
{
	my ($brand) = @_;
	$n++;
	return $node->safe_psql('postgres',
		"SELECT order_id FROM gifq_redeem('acme', 'm1', '" . ($brand // 'amazon-us')
		  . "', '10.00 USD', 'k-$n')");
}

sub cpu_ticks
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return undef;
	my @f = split ' ', (split /\) /, <$fh>)[1];
	return $f[11] + $f[12];    # utime + stime
}

sub status_of
{
	my ($id) = @_;
	return $node->safe_psql('postgres', "SELECT status FROM gifq.orders WHERE id = $id");
}

sub wait_status
{
	my ($id, $status) = @_;
	return $node->poll_query_until('postgres',
		"SELECT status FROM gifq.orders WHERE id = $id", $status);
}

sub ledger_ok
{
	my ($what) = @_;
	is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq_ledger_verify()'),
		'0', "ledger verifies: $what");
}

# --- delivery -----------------------------------------------------------
my $id = redeem();
ok(wait_status($id, 'delivered'), 'an order is delivered by the worker');
my $ref = $node->safe_psql('postgres', "SELECT gifq.order_reference($id)");
my $card = $sandbox->order_by_reference($ref)->{gift_card};
is($node->safe_psql('postgres', "SELECT code || ' ' || pin FROM gifq_reveal_code($id)"),
	"$card->{code} $card->{pin}", 'gifq_reveal_code returns the card the provider issued');
is($node->safe_psql('postgres', "SELECT code_last4 FROM gifq_order($id)"),
	substr($card->{code}, -4), 'gifq_order shows only the last 4 characters');
is($node->safe_psql('postgres', "SELECT count(*) FROM gifq.card_reveals WHERE order_id = $id"),
	'1', 'the reveal is audited');
unlike($node->safe_psql('postgres', "SELECT encode(sealed, 'escape') FROM gifq.cards WHERE order_id = $id"),
	qr/\Q$card->{code}\E/, 'the code is not stored in the clear');
is($node->safe_psql('postgres',
	"SELECT string_agg(event_type, ',' ORDER BY id) FROM gifq.outbox WHERE payload->>'order_id' = '$id'"),
	'order.created,order.delivered', 'order.created and order.delivered events');
is($node->safe_psql('postgres', "SELECT count(*) FROM gifq.holds h JOIN gifq.orders o
	ON h.transfer_id IN (o.points_hold, o.funding_hold) WHERE o.id = $id AND h.status = 'posted'"),
	'2', 'both holds are posted');
ledger_ok('after a delivery');

# --- faults, one kind at a time ------------------------------------------
my %fault = (
	'5xx' => 'delivered', '429' => 'delivered', 'timeout' => 'delivered',
	'slow' => 'delivered', 'malformed' => 'delivered', 'reset' => 'delivered',
	'out_of_stock' => 'failed');
for my $kind (sort keys %fault)
{
	for my $after (0, 1)
	{
		next if $after && $kind !~ /^(5xx|timeout|malformed|reset)$/;
		$sandbox->faults({ $kind => 1.0, after_create_ratio => $after,
			timeout_ms => 2000, slow_ms => 300, retry_after => 1 });
		my $order = redeem();
		# let the fault happen once, then let the order through
		$node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM gifq.provider_calls WHERE order_id = $order");
		$sandbox->faults({});
		ok(wait_status($order, $fault{$kind}),
			"fault $kind" . ($after ? ' after the order was made' : '') . ": order $fault{$kind}");
	}
}
my $held = $node->safe_psql('postgres', q{SELECT count(*) FROM gifq.orders o JOIN gifq.holds h
	ON h.transfer_id IN (o.points_hold, o.funding_hold) WHERE o.status = 'failed' AND h.status <> 'voided'});
is($held, '0', 'failed orders have their holds voided');
is_deeply($sandbox->stats->{duplicates}, [], 'no reference got two cards');
ledger_ok('after each fault kind');

# a failed order retried is sent under a new reference, with new attempts
my $failed = $node->safe_psql('postgres', "SELECT min(id) FROM gifq.orders WHERE status = 'failed'");
$node->safe_psql('postgres', "SELECT gifq_retry_order($failed)");
ok(wait_status($failed, 'delivered'), 'a retried order is delivered');
my $retry_ref = $node->safe_psql('postgres', "SELECT reference FROM gifq_order($failed)");
like($retry_ref, qr/^gifq-ord-\d+-r1$/, 'under the reference of its first retry');
ok($sandbox->order_by_reference($retry_ref), 'which the provider knows');
ledger_ok('after a retry');

# --- 401 and 402 pause sending --------------------------------------------
for my $switch ('unauthorized', 'insufficient_funds')
{
	$sandbox->faults({ $switch => JSON::PP::true });
	my $order = redeem();
	ok($node->poll_query_until('postgres',
		"SELECT paused_reason IS NOT NULL FROM gifq.worker WHERE database = 'postgres'"),
		"$switch: the worker pauses sending");
	my $attempts_before = $node->safe_psql('postgres', "SELECT attempts FROM gifq.orders WHERE id = $order");
	sleep 1;
	is($node->safe_psql('postgres', "SELECT status || ' ' || attempts FROM gifq.orders WHERE id = $order"),
		"pending $attempts_before", "$switch: the order waits without using its attempts");
	ok($node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM gifq.outbox WHERE event_type = 'provider.alert'"),
		"$switch: a provider.alert event");
	$sandbox->faults({});
	ok(wait_status($order, 'delivered'), "$switch: sending resumes once the provider answers");
	is($node->safe_psql('postgres', "SELECT paused_reason IS NULL FROM gifq.worker WHERE database = 'postgres'"),
		't', "$switch: no longer paused");
}

# --- asynchronous orders --------------------------------------------------
$sandbox->config({ async_ratio => 1.0, async_delay_ms => 100 });
$node->safe_psql('postgres', "ALTER SYSTEM SET gifq.retry_base_ms = 60000; SELECT pg_reload_conf()");
$id = redeem();
ok(wait_status($id, 'processing'), 'an asynchronous order is processing');
$ref = $node->safe_psql('postgres', "SELECT gifq.order_reference($id)");
my ($hook) = grep { $_->{type} eq 'order.delivered' && $_->{body} =~ /\Q$ref\E/ } @{ $sandbox->webhooks };
for (1 .. 100)
{
	last if $hook;
	select undef, undef, undef, 0.1;
	($hook) = grep { $_->{type} eq 'order.delivered' && $_->{body} =~ /\Q$ref\E/ } @{ $sandbox->webhooks };
}
ok($hook, 'the sandbox sent a signed order.delivered webhook');
my $quoted = sub { my $s = shift; $s =~ s/'/''/g; "'$s'" };
my ($body, $sig) = ($quoted->($hook->{body}), $quoted->($hook->{signature}));
like($node->safe_psql('postgres', "SELECT gifq_provider_webhook($body, $sig)"),
	qr/delivered/, 'gifq_provider_webhook delivers the order');
is(status_of($id), 'delivered', 'delivered by webhook');
like($node->safe_psql('postgres', "SELECT gifq_provider_webhook($body, $sig)"),
	qr/^duplicate event/, 'the same event again is a duplicate and changes nothing');

my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT gifq_provider_webhook(" . $quoted->($hook->{body} . ' ') . ", $sig)");
like($err, qr/QG405|does not match/, 'a body that does not match its signature is refused');
my $old = time() - 600;
my $stale_sig = "t=$old,v1=" . hmac_sha256_hex("$old.$hook->{body}", 'whsec-test');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT gifq_provider_webhook($body, " . $quoted->($stale_sig) . ")");
like($err, qr/from now/, 'a signature older than 300 s is refused');
my $now = time();
my $forged = "t=$now,v1=" . hmac_sha256_hex("$now.$hook->{body}", 'not-the-secret');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT gifq_provider_webhook($body, " . $quoted->($forged) . ")");
like($err, qr/does not match/, 'a signature made with another secret is refused');

# polling: no webhook is delivered, the worker asks
$node->safe_psql('postgres', "ALTER SYSTEM SET gifq.retry_base_ms = 100; SELECT pg_reload_conf()");
$id = redeem();
ok(wait_status($id, 'delivered'), 'an asynchronous order is delivered by polling');
$sandbox->config({ async_ratio => 0.0 });
ledger_ok('after asynchronous orders');

# --- events out -------------------------------------------------------------
$sandbox->config({ sink_secret => $sink_secret, sink_fail_ratio => 0.5 });
$node->safe_psql('postgres', "ALTER SYSTEM SET gifq.events_url = '@{[ $sandbox->url ]}/_sandbox/sink'");
$node->safe_psql('postgres', "ALTER SYSTEM SET gifq.events_secret = '$sink_secret'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
sleep 1;
$id = redeem();
ok(wait_status($id, 'delivered'), 'an order while events are sent');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM gifq.outbox WHERE send_status = 'pending'"),
	'every queued event is sent, retried past the failures');
my @received = grep { $_->{body} =~ /"order_id": $id\b/ } @{ $sandbox->sink };
ok(scalar(@received) >= 2, 'order.created and order.delivered reached the endpoint');
ok(!grep({ !$_->{valid} } @received), 'each with a valid signature');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET gifq.events_url; SELECT pg_reload_conf()');

# --- concurrency cap and rate limit ----------------------------------------
$sandbox->reset;
$node->safe_psql('postgres', q{ALTER SYSTEM SET gifq.max_concurrent_requests = 4});
$node->safe_psql('postgres', q{ALTER SYSTEM SET gifq.provider_rate_limit = 25});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
sleep 1;
$sandbox->faults({ slow => 1.0, slow_ms => 100 });
$node->safe_psql('postgres', q{SELECT gifq_redeem('acme', 'm1', 'amazon-us', '10.00 USD', 'cap-' || i)
	FROM generate_series(1, 60) i});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM gifq.orders WHERE status NOT IN ('delivered', 'failed')"),
	'60 slow orders end');
my $stats = $sandbox->stats;
cmp_ok($stats->{max_in_flight}, '<=', 4, "at most 4 calls in flight ($stats->{max_in_flight})");
cmp_ok($stats->{max_requests_in_any_second}, '<=', 25,
	"at most 25 calls in any second ($stats->{max_requests_in_any_second})");
$sandbox->faults({});
$node->safe_psql('postgres', 'ALTER SYSTEM RESET gifq.max_concurrent_requests');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET gifq.provider_rate_limit');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

# --- DROP DATABASE is not blocked by the worker ----------------------------
$node->safe_psql('postgres', 'CREATE DATABASE dropme');
ok($node->poll_query_until('postgres',
	"SELECT pid IS NOT NULL FROM gifq.worker WHERE database = 'dropme'"),
	'the worker of a second database connects');
my $other = $node->safe_psql('postgres', "SELECT pid FROM gifq.worker WHERE database = 'dropme'");
my $ticks = cpu_ticks($other);
sleep 2;
cmp_ok(cpu_ticks($other) - $ticks, '<', 20, 'a worker waiting for CREATE EXTENSION sleeps');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE dropme');
is($ret, 0, 'DROP DATABASE succeeds while its worker runs');
is($node->safe_psql('postgres', "SELECT count(*) FROM gifq.worker WHERE database = 'postgres' AND pid IS NOT NULL"),
	'1', 'the other database keeps its worker');

# an answer over gifq.max_response_bytes is not read: the catalog (a few
# kB) is refused at 1 kB, asked for by a catalog.updated webhook
$node->safe_psql('postgres', q{ALTER SYSTEM SET gifq.max_response_bytes = 1024});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
sleep 1;
$sandbox->request('POST', '/_sandbox/catalog', { patch => { 'target-us' => { in_stock => JSON::PP::false } } });
$node->safe_psql('postgres', 'SELECT gifq.request_catalog_refresh()');
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM gifq.provider_calls
	WHERE call = 'catalog' AND error LIKE 'answer larger than gifq.max_response_bytes%'}),
	'an answer larger than gifq.max_response_bytes is refused');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET gifq.max_response_bytes});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');

my ($r2, $o2, $e2) = $node->psql('postgres', q{ALTER SYSTEM SET gifq.provider_url = 'ftp://x.example'});
like($e2, qr/is not an http or https URL/, 'only http and https provider URLs are accepted');

# --- an idle worker sleeps --------------------------------------------------
# (CPU time from /proc over 3 s with nothing to do: a busy loop would use
# most of it)
my $idle_pid = $node->safe_psql('postgres', "SELECT pid FROM gifq.worker WHERE database = 'postgres'");
my $before = cpu_ticks($idle_pid);
sleep 3;
cmp_ok(cpu_ticks($idle_pid) - $before, '<', 30, 'an idle worker uses under 10% of a core');

# --- the end -----------------------------------------------------------------
is($node->safe_psql('postgres',
	"SELECT count(*) FROM gifq.orders WHERE status NOT IN ('delivered', 'failed')"),
	'0', 'every order ended delivered or failed');
is_deeply($sandbox->stats->{duplicates}, [], 'no duplicates at the provider');
ledger_ok('at the end');

$node->stop('fast');
ok(1, 'the cluster stops with the worker running');
done_testing();
