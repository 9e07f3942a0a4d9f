# 010_secrets.pl: gifq's secrets (issue 8, secrets).  Every secret set to a
# value of its own, real traffic (orders through the sandbox, a webhook,
# events POSTed to the sink), then: no secret in the server log (every
# statement and debug1 logged), in any gifq table or view, or in
# pg_stat_activity; a pg_read_all_settings member and a plain role cannot
# read them (a superuser can).  Then each rotation of docs/secrets.md
# without downtime: the webhook secret, the card key and the events
# secret, old and new valid together; and the reloads that rotate them log
# no secret either.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256_hex);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GifqSandbox;

# distinctive values, each easy to find in any text
my %secret = (
	'gifq.provider_api_key' => 'ApiKey-Zq7Wv-secret-0001',
	'gifq.card_key' => 'CardKey-Zq7Wv-secret-0002',
	'gifq.card_key_previous' => 'CardKeyOld-Zq7Wv-secret-0003',
	'gifq.webhook_secret' => 'Whsec-Zq7Wv-secret-0004',
	'gifq.webhook_secret_previous' => 'WhsecOld-Zq7Wv-secret-0005',
	'gifq.events_secret' => 'Evsec-Zq7Wv-secret-0006',
	'gifq.events_secret_previous' => 'EvsecOld-Zq7Wv-secret-0007');
# the values the rotations below bring in
my %next = (
	card_key => 'CardKeyNew-Zq7Wv-secret-0008',
	webhook_secret => 'WhsecNew-Zq7Wv-secret-0009',
	events_secret => 'EvsecNew-Zq7Wv-secret-0010');
my @all = (values %secret, values %next);

my $sandbox = GifqSandbox->new(seed => 10, api_key => $secret{'gifq.provider_api_key'});
$sandbox->config({ sink_secret => $secret{'gifq.events_secret'} });
my $node = $sandbox->node('secrets', %secret,
	'gifq.events_url' => $sandbox->url . '/_sandbox/sink',
	'gifq.catalog_refresh_interval' => 1,
	log_statement => 'all', log_min_messages => 'debug1',
	log_min_error_statement => 'debug1', log_error_verbosity => 'verbose',
	log_connections => 'on', log_line_prefix => '%m [%p] %a %u ');
my $conf = $node->data_dir . '/postgresql.conf';

ok($node->poll_query_until('postgres', 'SELECT count(*) > 0 FROM gifq.brands'),
	'the worker loaded the catalog with the API key');

my $n = 0;

sub redeem
{
	$n++;
	my $id = $node->safe_psql('postgres',
		"SELECT order_id FROM gifq_redeem('acme', 'm1', 'amazon-us', '10.00 USD', 's-$n')");
	$node->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $id",
		'delivered')
	  or die "order $id not delivered";
	return $id;
}

# webhook(SECRET, BODY-HASH, [OTHER-V1]): gifq_provider_webhook's answer,
# or its error; OTHER-V1 goes first in the header, as a sender rotating its
# secret would send it
sub webhook
{
	my ($secret, $event, $other) = @_;
	my $body = encode_json($event);
	my $t = time();
	my $sig = "t=$t," . ($other ? "v1=$other," : '') . 'v1=' . hmac_sha256_hex("$t.$body", $secret);
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT gifq_provider_webhook(\$b\$$body\$b\$, '$sig')");
	return $ret == 0 ? $out : $err;
}

my $w = 0;

sub redeemed_event
{
	my ($id) = @_;
	my $ref = $node->safe_psql('postgres', "SELECT gifq.order_reference($id)");
	$w++;
	return { id => "evt_secrets_$w", type => 'card.redeemed',
		created_at => '2026-11-29T00:00:00Z', data => { reference_id => $ref } };
}

# reload(NAME => VALUE, ...): rotate in postgresql.conf, as docs/secrets.md says
sub reload
{
	my %s = @_;
	$node->append_conf('postgresql.conf', join '', map { "$_ = '$s{$_}'\n" } sort keys %s);
	$node->reload;
	# the next statement of a new session sees the reload
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_file_settings WHERE error IS NOT NULL")
	  or die 'reload failed';
	sleep 1;
}

# v1s(HEADER): the v1 values of an X-Gifq-Signature
sub v1s { my ($h) = @_; my @v = ($h =~ /v1=([0-9a-f]{64})/g); return @v }
sub nv1 { my @v = v1s(@_); return scalar @v }

# --- traffic ------------------------------------------------------------------
my $first = redeem();
my $second = redeem();
my $code = $node->safe_psql('postgres', "SELECT code FROM gifq_reveal_code($first)");
ok(length($code) > 0, 'a card revealed');
like(webhook($secret{'gifq.webhook_secret'}, redeemed_event($first)),
	qr/^card of order $first redeemed/, 'a webhook signed with the secret is applied');
like(webhook($secret{'gifq.webhook_secret_previous'}, redeemed_event($second)),
	qr/^card of order $second redeemed/, 'one signed with the previous secret too');
like(webhook('not-the-secret', redeemed_event($second)), qr/does not match/,
	'one signed with another is refused');
like(webhook($secret{'gifq.webhook_secret'}, redeemed_event($second), 'ab' x 32),
	qr/^card of order $second redeemed/, 'a header with two v1 is applied when either matches');
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM gifq.outbox WHERE send_status = 'pending'"),
	'the events were POSTed');
my @sink = @{ $sandbox->sink };
ok(@sink > 0, 'the sink received events');
is(scalar(grep { $_->{valid} } @sink), scalar(@sink), 'each signed with gifq.events_secret');
is(scalar(grep { nv1($_->{signature}) == 2 } @sink), scalar(@sink),
	'and with gifq.events_secret_previous: two v1 signatures each');

# --- who can read them --------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE plain LOGIN;
CREATE ROLE settings_reader LOGIN IN ROLE pg_read_all_settings;
CREATE FUNCTION public.show_as_definer(name text) RETURNS text
	LANGUAGE sql SECURITY DEFINER AS $$ SELECT current_setting(name) $$;
});
for my $name (sort keys %secret)
{
	is($node->safe_psql('postgres', "SHOW $name"), $secret{$name}, "superuser: SHOW $name");
	is($node->safe_psql('postgres', "SELECT current_setting('$name')"), $secret{$name},
		"superuser: current_setting('$name')");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_settings WHERE name = '$name'"),
		'0', "$name is not in pg_settings, even for a superuser (no SHOW ALL dump shows it)");
	for my $role ('plain', 'settings_reader')
	{
		my @as = (extra_params => [ '-U', $role ]);
		for my $query ("SHOW $name", "SELECT current_setting('$name')",
			"SELECT setting FROM pg_settings WHERE name = '$name'",
			"SELECT public.show_as_definer('$name')",
			"SELECT current_setting('$name', true)")
		{
			my ($ret, $out, $err) = $node->psql('postgres', $query, @as);
			ok($out eq '(set)' || $out eq '' || $ret != 0, "$role: $query shows no secret")
			  or diag("got \"$out\"");
			unlike("$out $err", qr/Zq7Wv/, "$role: $query: no part of it");
		}
	}
}
my ($ret, $out, $err) = $node->psql('postgres', 'SHOW gifq.card_key',
	extra_params => [ '-U', 'settings_reader' ]);
is($out, '(set)', 'pg_read_all_settings sees only that the card key is set');
($ret, $out, $err) = $node->psql('postgres', 'SHOW gifq.card_key', extra_params => [ '-U', 'plain' ]);
like($err, qr/must be superuser or have privileges of pg_read_all_settings/, 'a plain role may not look');
($ret, $out, $err) = $node->psql('postgres', 'SELECT show_as_definer(\'gifq.card_key\')',
	extra_params => [ '-U', 'plain' ]);
is($out, '(set)', 'through a superuser\'s SECURITY DEFINER function: only that it is set');
is($node->safe_psql('postgres', q{SET ROLE settings_reader; SHOW gifq.card_key}),
	'(set)', 'a superuser acting as another role sees only that it is set');
# gifq_maintenance_jobs reads gifq.card_key with current_setting, as its
# definer: for another role it gets the mask, which is still "set".  (In
# a database the worker does not serve, where it looks at the key.)
$node->safe_psql('postgres', 'CREATE DATABASE unserved');
$node->safe_psql('unserved',
	'CREATE EXTENSION gifq; GRANT EXECUTE ON FUNCTION gifq_maintenance_jobs() TO plain');
($ret, $out, $err) = $node->psql('unserved', q{SELECT coalesce(skip_reason, 'scheduled')
	FROM gifq_maintenance_jobs() WHERE job_name LIKE '%orders'}, extra_params => [ '-U', 'plain' ]);
is("$out$err", 'scheduled', 'gifq_maintenance_jobs, called by another role, still sees the card key set');
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM pg_file_settings',
	extra_params => [ '-U', 'settings_reader' ]);
like($err, qr/permission denied/, 'pg_file_settings (the files\' text) is superuser-only');

# --- rotation: webhook secret ---------------------------------------------------
reload('gifq.webhook_secret_previous' => $secret{'gifq.webhook_secret'},
	'gifq.webhook_secret' => $next{webhook_secret}, 'gifq.poll_interval' => '400ms');
my $third = redeem();
like(webhook($secret{'gifq.webhook_secret'}, redeemed_event($third)),
	qr/^card of order $third redeemed/, 'webhook rotation: the old secret is still accepted');
like(webhook($next{webhook_secret}, redeemed_event($second)),
	qr/^card of order $second redeemed/, 'and the new one is');
like(webhook($secret{'gifq.webhook_secret_previous'}, redeemed_event($second)),
	qr/does not match/, 'the one before both no longer is');
reload('gifq.webhook_secret_previous' => '');
like(webhook($secret{'gifq.webhook_secret'}, redeemed_event($third)), qr/does not match/,
	'once the previous secret is emptied, the old one is refused');
like(webhook($next{webhook_secret}, redeemed_event($third)),
	qr/^card of order $third redeemed/, 'the new one still works');

# --- rotation: card key -----------------------------------------------------------
my $old_id = $node->safe_psql('postgres', 'SELECT gifq.card_key_id()');
reload('gifq.card_key_previous' => $secret{'gifq.card_key'}, 'gifq.card_key' => $next{card_key});
my $new_id = $node->safe_psql('postgres', 'SELECT gifq.card_key_id()');
isnt($new_id, $old_id, 'card key rotation: a new key id');
is($node->safe_psql('postgres', "SELECT code FROM gifq_reveal_code($first)"), $code,
	'a card sealed with the old key still reveals');
my $fourth = redeem();
is($node->safe_psql('postgres',
		"SELECT key_id FROM gifq.cards WHERE order_id = $fourth"),
	$new_id, 'a new card is sealed with the new key');
ok(length($node->safe_psql('postgres', "SELECT code FROM gifq_reveal_code($fourth)")) > 0,
	'and reveals');

# --- rotation: events secret -------------------------------------------------------
reload('gifq.events_secret_previous' => $secret{'gifq.events_secret'},
	'gifq.events_secret' => $next{events_secret});
my $before = scalar @{ $sandbox->sink };
my $fifth = redeem();
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM gifq.outbox WHERE send_status = 'pending'"),
	'events rotation: events still POSTed');
my @new = @{ $sandbox->sink }[ $before .. $#{ $sandbox->sink } ];
ok(@new > 0, 'new events received');
is(scalar(grep { $_->{valid} } @new), scalar(@new),
	'a receiver still on the old secret accepts them');
my $both = 0;
for my $e (@new)
{
	my ($t) = $e->{signature} =~ /t=(\d+)/;
	my %v = map { $_ => 1 } v1s($e->{signature});
	$both++ if $v{ hmac_sha256_hex("$t.$e->{body}", $next{events_secret}) }
	  && $v{ hmac_sha256_hex("$t.$e->{body}", $secret{'gifq.events_secret'}) };
}
is($both, scalar(@new), 'each carries a v1 under the new secret and one under the old');
$sandbox->config({ sink_secret => $next{events_secret} });
reload('gifq.events_secret_previous' => '');
$before = scalar @{ $sandbox->sink };
redeem();
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM gifq.outbox WHERE send_status = 'pending'"),
	'after the rotation, events still POSTed');
@new = @{ $sandbox->sink }[ $before .. $#{ $sandbox->sink } ];
is(scalar(grep { $_->{valid} && nv1($_->{signature}) == 1 } @new), scalar(@new),
	'signed with the new secret only, which the receiver now checks');

# --- nowhere else --------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE FUNCTION public.find_text(needle text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	c record;
	found boolean;
BEGIN
	FOR c IN SELECT n.nspname, r.relname, a.attname, a.atttypid::regtype::text AS type
		FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
		JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = 'gifq' AND r.relkind IN ('r', 'p', 'v', 'm')
		AND a.atttypid IN ('text'::regtype, 'jsonb'::regtype, 'json'::regtype,
			'bytea'::regtype, 'varchar'::regtype, 'text[]'::regtype, 'name'::regtype)
	LOOP
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE strpos(%s, $1) > 0)',
			c.nspname, c.relname,
			CASE WHEN c.type = 'bytea' THEN format('encode(%I, ''escape'')', c.attname)
				ELSE format('%I::text', c.attname) END)
			INTO found USING needle;
		IF found THEN
			RETURN NEXT c.relname || '.' || c.attname;
		END IF;
	END LOOP;
END $$;
});
my $columns = $node->safe_psql('postgres', q{SELECT count(*) FROM pg_attribute a
	JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace
	WHERE n.nspname = 'gifq' AND a.attnum > 0
	AND a.atttypid IN ('text'::regtype, 'jsonb'::regtype, 'bytea'::regtype)});
ok($columns > 20, "the scan covers the gifq columns of text, jsonb and bytea ($columns)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM gifq.provider_calls}) > 0, 1,
	'the provider calls were logged');
for my $s (sort @all)
{
	is($node->safe_psql('postgres', "SELECT string_agg(f, ', ') FROM find_text('$s') f"), '',
		"$s: in no gifq table or view");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE strpos(query, '$s') > 0 AND pid <> pg_backend_pid()"),
		'0', "$s: not in pg_stat_activity");
}

# the log, last: the queries above name the secrets, so it is read up to here
my $log = slurp_file($node->logfile);
$log =~ s/^.*find_text\('[^']*'\).*$//mg;
$log =~ s/^.*strpos\(query, '[^']*'\).*$//mg;
ok(length($log) > 10000, 'the log has every statement');
like($log, qr/statement: SELECT gifq_provider_webhook/, 'statements are logged');
like($log, qr/DEBUG:/, 'debug messages are logged');
for my $s (sort @all)
{
	unlike($log, qr/\Q$s\E/, "$s: not in the server log");
}
unlike($log, qr/parameter "gifq\.[a-z_]*(key|secret)[a-z_]*" changed to/,
	'a reload logs no change of a secret');
like($log, qr/parameter "gifq\.poll_interval" changed to "400ms"/,
	'(while the same reload logs the change of a setting that is not secret)');

$node->stop;
done_testing();
