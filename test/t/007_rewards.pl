# 007_rewards.pl: recipient-choice rewards end to end with the worker and
# the sandbox provider: a reward is sent, claimed, and its order delivered
# by the worker (card stored, the cost hold posted to payable); a claimed
# reward whose order fails has its cost back in the funding; another
# reward expires and gifq_expire_rewards returns its value.
# gifq_ledger_verify() stays empty throughout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GifqSandbox;

my $sandbox = GifqSandbox->new(seed => 7);
my $node = $sandbox->node('rewards');

$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM gifq.brands'),
	'the worker loaded the catalog from the provider');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub ledger_ok
{
	my ($what) = @_;
	is(sql('SELECT count(*) FROM gifq_ledger_verify()'), '0', "ledger verifies: $what");
}

# send(key, value, expires_at SQL): a new reward's "id token"
sub send_reward
{
	my ($key, $value, $expires) = @_;
	return split / /, sql("SELECT reward_id || ' ' || claim_token FROM gifq_send_reward('acme',
		'friend\@example.com', '$value', '$key', ARRAY['amazon-us'], expires_at => $expires)");
}

sub funding { return sql("SELECT format('%s|%s', posted, pending_debits) FROM gifq_program_balance('acme')"); }

# --- sent, claimed, delivered ----------------------------------------------
my ($rid, $token) = send_reward('rw-1', '25.00 USD', "now() + interval '1 day'");
like($token, qr/^gqr_[A-Za-z0-9_-]{32}$/, 'a reward is sent with a claim token');
is(funding(), '1000000.00 USD|25.00 USD', 'its face value is held on the funding');
is(sql("SELECT string_agg(brand_id, ',') FROM gifq_reward_options('$token')"), 'amazon-us',
	'its options are the brands of its menu');
my $order = sql("SELECT order_id FROM gifq_claim_reward('$token', 'amazon-us')");
ok($node->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $order", 'delivered'),
	'the claimed reward\'s order is delivered by the worker');
is(sql("SELECT count(*) FROM gifq.cards WHERE order_id = $order"), '1', 'the card is stored');
my $ref = sql("SELECT gifq.order_reference($order)");
my $card = $sandbox->order_by_reference($ref)->{gift_card};
is(sql("SELECT code FROM gifq_reveal_code($order)"), $card->{code}, 'the card is the one the provider issued');
is(sql("SELECT h.status FROM gifq.orders o JOIN gifq.holds h ON h.transfer_id = o.funding_hold WHERE o.id = $order"),
	'posted', 'the order\'s cost hold is posted');
is(sql("SELECT h.status FROM gifq.rewards r JOIN gifq.holds h ON h.transfer_id = r.hold_id WHERE r.id = $rid"),
	'voided', 'the reward\'s face-value hold was voided at the claim');
is(funding(), '999975.75 USD|0.00 USD', 'the funding paid the cost (25.00 less 3%), nothing more');
is(sql("SELECT format('%s', posted) FROM gifq_balance(gifq_account('acme', NULL, 'payable'))"),
	'24.25 USD', 'payable holds the cost for the provider');
is(sql("SELECT string_agg(event_type, ',' ORDER BY id) FROM gifq.outbox WHERE payload->>'order_id' = '$order'"),
	'order.created,reward.claimed,order.delivered', 'order.created, reward.claimed and order.delivered events');
ledger_ok('after a claimed reward is delivered');

# --- claimed, the order fails: the cost goes back to the funding -------------
my ($rid2, $token2) = send_reward('rw-2', '10.00 USD', "now() + interval '1 day'");
$sandbox->faults({ out_of_stock => 1.0 });
my $order2 = sql("SELECT order_id FROM gifq_claim_reward('$token2', 'amazon-us')");
ok($node->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $order2", 'failed'),
	'a claimed reward\'s order the provider refuses fails');
$sandbox->faults({});
is(funding(), '999975.75 USD|0.00 USD', 'its cost hold is voided: the value is back in the funding');
is(sql("SELECT status FROM gifq.rewards WHERE id = $rid2"), 'claimed', 'the reward stays claimed');
ledger_ok('after a reward order failed');

# --- expiry ------------------------------------------------------------------
my ($rid3, $token3) = send_reward('rw-3', '50.00 USD', "now() + interval '1 second'");
is(funding(), '999975.75 USD|50.00 USD', 'a short-lived reward holds its value');
ok($node->poll_query_until('postgres', "SELECT expires_at < now() FROM gifq.rewards WHERE id = $rid3"),
	'its expiry passes');
my ($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM gifq_claim_reward('$token3', 'amazon-us')");
like($err, qr/reward \d+ expired at/, 'a claim after the expiry is refused');
is(sql('SELECT gifq_expire_rewards()'), '1', 'gifq_expire_rewards expires it');
is(funding(), '999975.75 USD|0.00 USD', 'its value is back in the funding');
is(sql("SELECT status FROM gifq.rewards WHERE id = $rid3"), 'expired', 'the reward is expired');
is(sql("SELECT count(*) FROM gifq.outbox WHERE event_type = 'reward.expired' AND payload->>'reward_id' = '$rid3'"),
	'1', 'a reward.expired event');
ledger_ok('after a reward expired');

is_deeply($sandbox->stats->{duplicates}, [], 'no reference got two cards');
$node->stop;
done_testing();
