# 006_no_preload.pl: gifq without shared_preload_libraries: no worker,
# and gifq_process_orders does the worker's job in the calling session,
# against the sandbox: a delivery, an unknown outcome settled by look-up on
# a later call, a pause on 401 that gives the claimed orders back, and the
# refusals when the provider URL or the card key is missing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GifqSandbox;

my $sandbox = GifqSandbox->new(seed => 6);
my $node = $sandbox->node('no_preload', shared_preload_libraries => undef,
	'gifq.database' => undef, 'gifq.retry_base_ms' => 10);
$node->safe_psql('postgres', q{
SELECT gifq_catalog_load('{"brands": [{"id": "amazon-us", "name": "Amazon", "country": "US",
	"currency": "USD", "categories": ["retail"], "denominations": [10, 25], "in_stock": true}]}');
});

is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq.worker'), '0',
	'no worker without preload');

$node->safe_psql('postgres', q{SELECT gifq_redeem('acme', 'm1', 'amazon-us', '10.00 USD', 'a')});
is($node->safe_psql('postgres', 'SELECT gifq_process_orders()'), '1', 'one call made');
is($node->safe_psql('postgres', "SELECT status FROM gifq.orders WHERE idempotency_key = 'a'"),
	'delivered', 'delivered within the call');
is($node->safe_psql('postgres', 'SELECT gifq_process_orders()'), '0', 'nothing left to do');

# a timeout after the provider made the card: the next call looks it up
$sandbox->faults({ timeout => 1.0, after_create_ratio => 1.0, timeout_ms => 3000 });
$node->safe_psql('postgres', q{SELECT gifq_redeem('acme', 'm1', 'amazon-us', '10.00 USD', 'b')});
$node->safe_psql('postgres', 'SELECT gifq_process_orders()');
like($node->safe_psql('postgres', "SELECT status || ': ' || last_error FROM gifq.orders WHERE idempotency_key = 'b'"),
	qr/^submitted: .*timed out/, 'a timeout leaves the order submitted');
$sandbox->faults({});
ok($node->poll_query_until('postgres',
	"SELECT gifq_process_orders() >= 0 AND status = 'delivered' FROM gifq.orders WHERE idempotency_key = 'b'"),
	'a later call looks it up and delivers it');
is($sandbox->stats->{posts_per_reference_max}, 1, 'it was not sent again');

# 401: the claimed orders not yet sent go back to pending
$sandbox->faults({ unauthorized => JSON::PP::true });
$node->safe_psql('postgres', q{SELECT gifq_redeem('acme', 'm1', 'amazon-us', '10.00 USD', 'c' || i)
	FROM generate_series(1, 3) i});
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT gifq_process_orders()');
like($err, qr/sending orders paused/, 'a 401 pauses, with a warning');
is($node->safe_psql('postgres', q{SELECT string_agg(status || '/' || attempts, ',')
	FROM gifq.orders WHERE idempotency_key LIKE 'c%'}),
	'pending/0,pending/0,pending/0', 'the orders are pending with no attempt counted');
$sandbox->faults({});
$node->safe_psql('postgres', 'SELECT gifq_process_orders()');
is($node->safe_psql('postgres', q{SELECT count(*) FROM gifq.orders WHERE status = 'delivered'}),
	'5', 'then they are delivered');

# refusals
$node->safe_psql('postgres', q{ALTER SYSTEM SET gifq.card_key = ''});
$node->reload;
($ret, $out, $err) = $node->psql('postgres', 'SELECT gifq_process_orders()');
like($err, qr/gifq.card_key is not set/, 'QG402 without a card key');
($ret, $out, $err) = $node->psql('postgres', 'SELECT code FROM gifq_reveal_code(1)');
like($err, qr/gifq.card_key is not set/, 'no card opens without a key');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET gifq.card_key});
$node->safe_psql('postgres', q{ALTER SYSTEM SET gifq.provider_url = ''});
$node->reload;
($ret, $out, $err) = $node->psql('postgres', 'SELECT gifq_process_orders()');
like($err, qr/gifq.provider_url is not set/, 'QG406 without a provider');

is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq_ledger_verify()'), '0',
	'gifq_ledger_verify() finds nothing');
is_deeply($sandbox->stats->{duplicates}, [], 'no duplicates');
done_testing();
