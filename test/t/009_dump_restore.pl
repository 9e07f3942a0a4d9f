# 009_dump_restore.pl: a database using gifq, dumped with pg_dump (plain
# and custom format) and restored into fresh clusters, gives back what was
# dumped: every table's rows, every sequence's position, balances, orders,
# rewards, streaks, boards, threshold hits and pg_cron's jobs;
# gifq_ledger_verify() and gifq.board_verify() stay empty and a card
# stored before the dump is revealed after it.  Cluster A is built through
# gifq's API: two programs in two currencies, members, funding, rules, a
# challenge, streaks with grace and a milestone, thresholds (unlock and
# reward), points expiry, peer gifts, single and batch events, orders the
# worker delivers through the sandbox (cards sealed with gifq.card_key), a
# failed and a canceled order, an open hold, rewards sent, claimed and
# expired, outbox rows and the jobs of gifq_schedule_jobs().  Cluster B
# (plain dump, psql) and C (custom format, pg_restore) are new clusters with
# A's settings (the same gifq.card_key) and A's roles (pg_dumpall
# --globals-only), as docs/operations.md says.  Then B goes on: new
# events, orders and a claim get fresh ids, and the worker delivers.
# Last, DROP EXTENSION gifq: its pg_cron jobs go (a NOTICE names each, and
# any other job that calls gifq), and nothing of gifq is left in the
# catalogs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GifqSandbox;

my $sandbox = GifqSandbox->new(seed => 9);

# the settings of every cluster here: A's are B's and C's (same card key)
my %conf = (
	shared_preload_libraries => 'gifq,pg_cron',
	'cron.database_name' => 'postgres',
	'cron.use_background_workers' => 'on',
	max_worker_processes => 20,
	fsync => 'off',
	'gifq.database' => 'postgres',
	'gifq.provider_url' => $sandbox->url,
	'gifq.provider_api_key' => 'sandbox-key',
	'gifq.card_key' => 'restore-card-key-0123456789',
	'gifq.retry_base_ms' => 100,
	'gifq.retry_max_ms' => 1000,
	'gifq.request_timeout_ms' => 1000,
	'gifq.connect_timeout_ms' => 1000,
	'gifq.poll_interval' => 500,
	'gifq.catalog_refresh_interval' => 3600);

sub cluster
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		join '', map { "$_ = '$conf{$_}'\n" } sort keys %conf);
	$node->start;
	return $node;
}

# --- cluster A: a database that has seen everything gifq does ------------
my $src = cluster('dump_a');
sub sql_a { return $src->safe_psql('postgres', $_[0]); }

sql_a('CREATE EXTENSION pg_cron; CREATE EXTENSION gifq; SELECT pg_reload_conf();');
ok($src->poll_query_until('postgres', 'SELECT count(*) > 0 FROM gifq.brands'),
	'A: the worker loaded the catalog');

sql_a(q{
SELECT gifq_create_program('acme', 'USD', 'PTS', 100, 'UTC');
SELECT gifq_create_program('euro', 'EUR', 'PTE', 10, 'Europe/Paris');
SELECT gifq_upsert_member('acme', 'm' || i, 'm' || i || '@example.com', 'US',
	jsonb_build_object('team', i % 2)) FROM generate_series(1, 6) i;
SELECT gifq_upsert_member('euro', 'e' || i, 'e' || i || '@example.com', 'FR') FROM generate_series(1, 3) i;
SELECT gifq_fund('acme', '1000.00 USD', 'wire-1');
SELECT gifq_transfer(gifq_account('acme', NULL, 'issuance'), gifq_account('acme', 'm' || i),
	'3000 PTS', 'grant-' || i) FROM generate_series(3, 6) i;
SELECT gifq_fund('euro', '500.00 EUR', 'wire-e1');
SELECT gifq_set_rule('acme', 'login', 10);
SELECT gifq_set_rule('acme', 'sale', 500);
SELECT gifq_set_rule('acme', 'review', 40, 2);
SELECT gifq_set_rule('euro', 'visit', 7);
SELECT gifq_define_streak('acme', 'daily', 'login', 'day', 1);
SELECT gifq_define_streak('euro', 'weekly', 'visit', 'week', 0);
SELECT gifq_set_rule('acme', 'streak:daily:3', 100);
SELECT gifq_create_challenge('acme', 'double-sales', 'sale', now() - interval '30 days',
	now() + interval '30 days', 2, 100, 5);
SELECT gifq_define_threshold('acme', 300, 'unlock');
SELECT gifq_define_threshold('acme', 2500, 'reward', '5.00 USD');
SELECT gifq_set_points_expiry('acme', interval '90 days');
SELECT gifq_set_peer_limits('acme', '1000 PTS', '5000 PTS');
});

# single events: m1 daily for 6 days (a milestone at 3), m2 every other
# day (grace 1 keeps the streak), m3 with a gap of two days (broken)
sql_a(q{
SELECT count(*) FROM generate_series(0, 5) d,
	LATERAL gifq_record_event('acme', 'm1', 'login', 'l1-' || d, now() - (5 - d) * interval '1 day');
SELECT count(*) FROM generate_series(0, 4) d,
	LATERAL gifq_record_event('acme', 'm2', 'login', 'l2-' || d, now() - (8 - 2 * d) * interval '1 day');
SELECT count(*) FROM unnest(ARRAY[9, 8, 5, 4, 0]) d,
	LATERAL gifq_record_event('acme', 'm3', 'login', 'l3-' || d, now() - d * interval '1 day');
SELECT count(*) FROM gifq_record_event('acme', 'm1', 'sale', 's1', NULL, '{"deal": 1}');
SELECT count(*) FROM gifq_record_event('acme', 'm2', 'sale', 's2', NULL);
SELECT count(*) FROM gifq_record_event('acme', 'm4', 'review', 'r4', NULL);
SELECT count(*) FROM generate_series(1, 3) i, LATERAL gifq_record_event('euro', 'e' || i, 'visit', 'v' || i, NULL);
});
# a batch
sql_a(q{
SELECT count(*) FROM gifq_record_events('acme', (SELECT jsonb_agg(jsonb_build_object(
	'member', 'm' || (1 + i % 6), 'event_type', CASE WHEN i % 4 = 0 THEN 'sale' ELSE 'login' END,
	'idempotency_key', 'b-' || i, 'occurred_at', now() - (i % 7) * interval '1 day'))
	FROM generate_series(1, 40) i));
SELECT gifq_give_points('acme', 'm1', 'm6', '50 PTS', 'gift-1', 'thanks');
SELECT gifq_give_points('acme', 'm2', 'm6', '25 PTS', 'gift-2');
});
is(sql_a(q{SELECT EXISTS (SELECT 1 FROM gifq.events WHERE event_type LIKE 'streak:%'),
	EXISTS (SELECT 1 FROM gifq.threshold_hits WHERE reward_status IS NOT NULL)}), 't|t',
	'A: a streak milestone was recorded and a reward threshold reached');

# orders: two delivered, one failed, one canceled
my @delivered;
for my $m ('m1', 'm2')
{
	push @delivered, sql_a("SELECT order_id FROM gifq_redeem('acme', '$m', 'amazon-us', '10.00 USD', 'o-$m')");
}
for my $id (@delivered)
{
	ok($src->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $id", 'delivered'),
		"A: order $id delivered by the worker");
}
$sandbox->faults({ out_of_stock => 1.0 });
my $failed = sql_a("SELECT order_id FROM gifq_redeem('acme', 'm3', 'amazon-us', '10.00 USD', 'o-m3')");
ok($src->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $failed", 'failed'),
	'A: an order the provider refuses fails');
$sandbox->faults({});
sql_a(q{BEGIN;
SELECT gifq_cancel_order(order_id) FROM gifq_redeem('acme', 'm4', 'amazon-us', '10.00 USD', 'o-m4');
COMMIT;});

# an open hold (a day to go)
sql_a(q{SELECT gifq_transfer(gifq_account('acme', 'm5'), gifq_account('acme', NULL, 'issuance'),
	'30 PTS', 'hold-1', pending => true, timeout => '1 day')});

# rewards: one claimed and delivered, one left to expire, one pending
my $claimed = sql_a(q{SELECT claim_token FROM gifq_send_reward('acme', 'friend@example.com',
	'25.00 USD', 'rw-1', ARRAY['amazon-us'])});
my $reward_order = sql_a("SELECT order_id FROM gifq_claim_reward('$claimed', 'amazon-us')");
ok($src->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $reward_order", 'delivered'),
	'A: a claimed reward\'s order is delivered');
sql_a(q{SELECT reward_id FROM gifq_send_reward('acme', 'late@example.com', '15.00 USD', 'rw-2',
	expires_at => now() + interval '1 second')});
ok($src->poll_query_until('postgres',
	q{SELECT expires_at < now() FROM gifq.rewards WHERE idempotency_key = 'rw-2'}), 'A: a reward\'s expiry passes');
is(sql_a('SELECT gifq_expire_rewards()'), '1', 'A: and it expires');
my $pending_token = sql_a(q{SELECT claim_token FROM gifq_send_reward('acme', 'later@example.com',
	'25.00 USD', 'rw-3', ARRAY['amazon-us'], expires_at => now() + interval '20 days')});

# codes revealed before the dump, pg_cron's jobs
my %code;
for my $id (@delivered, $reward_order)
{
	$code{$id} = sql_a("SELECT code || ' ' || coalesce(pin, '') FROM gifq_reveal_code($id)");
}
like(sql_a('SELECT string_agg(action, \',\') FROM gifq_schedule_jobs()'), qr/scheduled/,
	'A: gifq_schedule_jobs scheduled the maintenance jobs');
ok($src->poll_query_until('postgres', q{SELECT count(*) = 0 FROM gifq.orders
	WHERE status NOT IN ('delivered', 'failed', 'canceled')}), 'A: every order has ended');
ok($src->poll_query_until('postgres', q{SELECT count(*) = 0 FROM gifq.outbox
	WHERE send_status = 'pending'}), 'A: no event is waiting to be sent');

# every table and sequence of gifq is dumped but the call log and the cache
# version (docs/operations.md, "What a dump holds")
is(sql_a(q{SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
	WHERE c.relnamespace = 'gifq'::regnamespace AND c.relkind IN ('r', 'p', 'S')
	AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'gifq')::oid[])}),
	'provider_calls,provider_calls_id_seq,settings_version',
	'every gifq table and sequence is registered with pg_extension_config_dump but the log and the cache version');

# --- what must come back: canonical text of A's state ---------------------
# (the leaderboards and streaks are read at now(): a run across midnight
# UTC, or Paris's, could see A and B in different days)
my @tables = split /\n/, sql_a(q{SELECT c.relname FROM pg_class c
	WHERE c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'gifq')::oid[])
	AND c.relkind = 'r' ORDER BY 1});
my @sequences = split /\n/, sql_a(q{SELECT c.relname FROM pg_class c
	WHERE c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'gifq')::oid[])
	AND c.relkind = 'S' ORDER BY 1});

# the provider's catalog is the worker's to refresh (a restored cluster's
# worker may load it again): its rows are compared without their times
my %skip = (brands => 1, catalog_state => 1);

# state(node): name => canonical text
sub state_of
{
	my ($node) = @_;
	my %s;
	for my $t (@tables)
	{
		next if $skip{$t};
		$s{"table $t"} = $node->safe_psql('postgres',
			"SELECT string_agg(x::text, E'\\n' ORDER BY x::text) FROM gifq.$t x");
	}
	$s{'table brands'} = $node->safe_psql('postgres', q{SELECT string_agg(
		format('%s %s %s %s %s', id, name, currency, min_value, max_value), E'\n' ORDER BY id)
		FROM gifq.brands});
	for my $q (@sequences)
	{
		$s{"sequence $q"} = $node->safe_psql('postgres', "SELECT last_value || ' ' || is_called FROM gifq.$q");
	}
	my %api = (
		'member balances' => q{SELECT string_agg(format('%s/%s %s', p.code, m.external_id,
				gifq_member_balance(p.code, m.external_id)), E'\n' ORDER BY p.code, m.external_id)
			FROM gifq.members m JOIN gifq.programs p ON p.id = m.program_id},
		'program balances' => q{SELECT string_agg(format('%s %s', code, gifq_program_balance(code)),
			E'\n' ORDER BY code) FROM gifq.programs},
		'account balances' => q{SELECT string_agg(format('%s %s', id, gifq_balance(id)), E'\n' ORDER BY id)
			FROM gifq.accounts},
		'orders' => q{SELECT string_agg(format('%s %s %s %s %s %s %s', o.order_id, o.status, o.amount,
				o.points, o.cost, o.code_last4, o.reference), E'\n' ORDER BY o.order_id)
			FROM gifq.orders x, gifq_order(x.id) o},
		'order history' => q{SELECT string_agg(format('%s %s', x.id, h), E'\n' ORDER BY x.id, h::text)
			FROM gifq.orders x, gifq_order_history(x.id) h},
		'rewards' => q{SELECT string_agg(format('%s %s %s %s %s', id, status, value, order_id, threshold_id),
			E'\n' ORDER BY id) FROM gifq.rewards},
		'streaks' => q{SELECT string_agg(format('%s/%s/%s %s', p.code, m.external_id, t.streak_type, s),
				E'\n' ORDER BY p.code, m.external_id, t.streak_type)
			FROM gifq.members m JOIN gifq.programs p ON p.id = m.program_id
			JOIN gifq.streak_types t ON t.program_id = p.id,
			LATERAL gifq_streak(p.code, m.external_id, t.streak_type) s},
		'leaderboards' => q{SELECT string_agg(format('%s/%s %s', p.code, k, l), E'\n' ORDER BY p.code, k, l::text)
			FROM gifq.programs p, unnest(ARRAY['all', 'day', 'week', 'month']) k,
			LATERAL gifq_leaderboard(p.code, k, '{}', 10) l},
		'board verify' => q{SELECT count(*) FROM gifq.board_verify()},
		'ledger verify' => q{SELECT count(*) FROM gifq_ledger_verify()},
		'threshold hits' => q{SELECT string_agg(format('%s %s %s %s', threshold_id, member_id, balance,
			reward_status), E'\n' ORDER BY threshold_id, member_id) FROM gifq.threshold_hits},
		'expiring points' => q{SELECT string_agg(format('%s %s', m.external_id, e), E'\n' ORDER BY m.external_id, e::text)
			FROM gifq.members m, LATERAL gifq_expiring_points('acme', m.external_id, interval '1 year') e
			WHERE m.program_id = 1},
		'cron jobs' => q{SELECT string_agg(format('%s %s %s %s %s %s', jobname, schedule, command,
			database, username, active), E'\n' ORDER BY jobname) FROM cron.job});
	$s{$_} = $node->safe_psql('postgres', $api{$_}) for keys %api;
	return \%s;
}

my $tmp = PostgreSQL::Test::Utils::tempdir;
command_ok([ 'pg_dumpall', '-h', $src->host, '-p', $src->port, '--globals-only', '-f', "$tmp/globals.sql" ],
	'A: pg_dumpall --globals-only');
command_ok([ 'pg_dump', '-h', $src->host, '-p', $src->port, '-d', 'postgres', '-f', "$tmp/plain.sql" ],
	'A: pg_dump, plain format');
command_ok([ 'pg_dump', '-h', $src->host, '-p', $src->port, '-d', 'postgres', '-Fc', '-f', "$tmp/dump.custom" ],
	'A: pg_dump, custom format');
my $before = state_of($src);
is($before->{'ledger verify'}, '0', 'A: gifq_ledger_verify() is empty');
is($before->{'board verify'}, '0', 'A: gifq.board_verify() is empty');
cmp_ok(scalar(split /\n/, $before->{'table events'}), '>', 60, 'A: the events are there to compare');
$src->stop;

# globals(node): A's roles, as pg_dumpall --globals-only gave them (the
# role running the restore exists already: that one statement fails)
sub globals
{
	my ($node) = @_;
	system('psql', '-X', '-q', '-h', $node->host, '-p', $node->port, '-d', 'postgres',
		'-f', "$tmp/globals.sql", '-o', '/dev/null') == 0 or die "psql: $?";
}

# restored(node, how): the restored database gives back A's state
sub restored
{
	my ($node, $how) = @_;
	my $after = state_of($node);
	for my $k (sort keys %$before)
	{
		is($after->{$k}, $before->{$k}, "$how: $k as dumped");
	}
	for my $id (sort keys %code)
	{
		is($node->safe_psql('postgres', "SELECT code || ' ' || coalesce(pin, '') FROM gifq_reveal_code($id)"),
			$code{$id}, "$how: gifq_reveal_code($id) reveals the card stored before the dump");
	}
}

# --- B: plain dump, psql, one transaction --------------------------------
my $plain = cluster('dump_b');
globals($plain);
command_ok([ 'psql', '-X', '-q', '-h', $plain->host, '-p', $plain->port, '-d', 'postgres',
	'--single-transaction', '-v', 'ON_ERROR_STOP=1', '-f', "$tmp/plain.sql" ],
	'B: the plain dump restores in one transaction');
restored($plain, 'B (plain)');

# --- C: custom format, pg_restore ------------------------------------------
my $custom = cluster('dump_c');
globals($custom);
command_ok([ 'pg_restore', '-h', $custom->host, '-p', $custom->port, '-d', 'postgres',
	'--single-transaction', '--exit-on-error', "$tmp/dump.custom" ],
	'C: the custom dump restores with pg_restore');
restored($custom, 'C (custom)');
$custom->stop;

# --- B goes on ---------------------------------------------------------------
sub sql_b { return $plain->safe_psql('postgres', $_[0]); }
my ($max_event) = $before->{'sequence events_id_seq'} =~ /^(\d+)/;
# (in the period of m1's last login, whatever the clock says now)
is(sql_b(q{SELECT event_id FROM gifq_record_event('acme', 'm1', 'login', 'after-1',
	(SELECT max(e.occurred_at) FROM gifq.events e JOIN gifq.members m ON m.id = e.member_id
	 WHERE m.external_id = 'm1' AND m.program_id = 1 AND e.event_type = 'login'))}),
	$max_event + 1, 'B: a new event gets the next id');
is(sql_b(q{SELECT count(*) FROM gifq_record_events('acme',
	'[{"member": "m5", "event_type": "sale", "idempotency_key": "after-2"},
	  {"member": "m6", "event_type": "login", "idempotency_key": "after-3"}]')}), '2',
	'B: a batch is recorded');
is(sql_b(q{SELECT count(*) FROM gifq_record_event('acme', 'm1', 'login', 'l1-0', NULL)}), '1',
	'B: an event key of before the dump replays');
is(sql_b(q{SELECT count(*) FROM gifq.events WHERE idempotency_key = 'l1-0'}), '1',
	'B: and records nothing');
my ($max_order) = $before->{'sequence orders_id_seq'} =~ /^(\d+)/;
my $order_b = sql_b(q{SELECT order_id FROM gifq_redeem('acme', 'm5', 'amazon-us', '10.00 USD', 'o-b1')});
is($order_b, $max_order + 1, 'B: a new order gets the next id');
ok($plain->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $order_b", 'delivered'),
	'B: the worker delivers it');
my $claim_b = sql_b("SELECT order_id FROM gifq_claim_reward('$pending_token', 'amazon-us')");
ok($plain->poll_query_until('postgres', "SELECT status FROM gifq.orders WHERE id = $claim_b", 'delivered'),
	'B: a reward sent before the dump is claimed and delivered');
is(sql_b(q{SELECT gifq_void(id) IS NOT NULL FROM gifq.transfers WHERE idempotency_key = 'hold-1'}),
	't', 'B: the hold open at the dump is voided');
is(sql_b(q{SELECT count(*) FROM gifq.board_verify()}), '0', 'B: gifq.board_verify() is empty after new events');
is(sql_b(q{SELECT count(*) FROM gifq_ledger_verify()}), '0', 'B: gifq_ledger_verify() is empty');
is(sql_b(q{SELECT current_streak FROM gifq_streak('acme', 'm1', 'daily')}),
	(split /[ ,()]+/, (grep { m{^acme/m1/daily } } split /\n/, $before->{streaks})[0])[1],
	'B: a second event in the same period leaves m1\'s streak as it was');

# --- DROP EXTENSION leaves nothing behind ----------------------------------
# pg_cron's database: gifq's jobs go, another job that calls gifq is named
sql_b(q{SELECT cron.schedule('mine', '0 0 1 1 *', 'SELECT gifq_expire_holds()');
SELECT cron.schedule('other', '0 0 1 1 *', 'SELECT 1');});
my ($ret, $out, $err) = $plain->psql('postgres', 'BEGIN; DROP SCHEMA public CASCADE; ROLLBACK;');
like($err, qr/pg_cron job \d+ "gifq-holds" unscheduled/, 'B: DROP SCHEMA ... CASCADE of gifq\'s schema removes its jobs too');
($ret, $out, $err) = $plain->psql('postgres', 'DROP EXTENSION gifq');
is($ret, 0, 'B: DROP EXTENSION gifq');
my @gone = $err =~ /pg_cron job \d+ "(gifq-[a-z]+)" unscheduled/g;
is(join(',', sort @gone), join(',', sort split /\n/, $before->{'cron jobs'} =~ s/ .*//gmr),
	'B: a NOTICE names each of gifq\'s pg_cron jobs it unscheduled');
like($err, qr/pg_cron job \d+ "mine" calls gifq and remains.*cron\.unschedule\(\d+\)/s,
	'B: and the job that calls gifq and remains, with how to remove it');
is(sql_b(q{SELECT string_agg(jobname, ',' ORDER BY jobname) FROM cron.job}), 'mine,other',
	'B: the other jobs stay');

# nothing of gifq in the catalogs (roles are the cluster's: they stay)
my $leftovers = q{
SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname ~ 'gifq'
UNION ALL SELECT 'function ' || oid::regprocedure FROM pg_proc WHERE proname ~ 'gifq' OR prosrc ~ 'gifq'
UNION ALL SELECT 'type ' || oid::regtype FROM pg_type WHERE typname ~ 'gifq'
UNION ALL SELECT 'relation ' || oid::regclass FROM pg_class WHERE relname ~ 'gifq'
UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname ~ 'gifq' OR tgfoid NOT IN (SELECT oid FROM pg_proc)
UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger WHERE evtname ~ 'gifq'
UNION ALL SELECT 'operator ' || oid::regoperator FROM pg_operator WHERE oprleft::regtype::text ~ 'gifq'
	OR oprright::regtype::text ~ 'gifq' OR oprcode::text ~ 'gifq'
UNION ALL SELECT 'operator class ' || opcname FROM pg_opclass WHERE opcname ~ 'gifq'
UNION ALL SELECT 'operator family ' || opfname FROM pg_opfamily WHERE opfname ~ 'gifq'
UNION ALL SELECT 'cast ' || oid FROM pg_cast WHERE castsource NOT IN (SELECT oid FROM pg_type)
	OR casttarget NOT IN (SELECT oid FROM pg_type)
UNION ALL SELECT 'view ' || oid::regclass FROM pg_class WHERE relkind = 'v' AND pg_get_viewdef(oid) ~ 'gifq'
UNION ALL SELECT 'dependency ' || classid::regclass || ' ' || objid FROM pg_depend
	WHERE refclassid = 'pg_extension'::regclass AND refobjid NOT IN (SELECT oid FROM pg_extension)
UNION ALL SELECT 'initial privileges ' || classoid::regclass || ' ' || objoid FROM pg_init_privs i
	WHERE classoid = 'pg_proc'::regclass AND objoid NOT IN (SELECT oid FROM pg_proc)
	OR classoid = 'pg_class'::regclass AND objoid NOT IN (SELECT oid FROM pg_class)
	OR classoid = 'pg_type'::regclass AND objoid NOT IN (SELECT oid FROM pg_type)
UNION ALL SELECT 'comment ' || classoid::regclass || ' ' || objoid FROM pg_description
	WHERE classoid = 'pg_proc'::regclass AND objoid NOT IN (SELECT oid FROM pg_proc)
	OR classoid = 'pg_class'::regclass AND objoid NOT IN (SELECT oid FROM pg_class)
	OR classoid = 'pg_type'::regclass AND objoid NOT IN (SELECT oid FROM pg_type)
UNION ALL SELECT 'privileges on schema ' || nspname FROM pg_namespace WHERE nspacl::text ~ 'gifq'
UNION ALL SELECT 'privileges on database ' || datname FROM pg_database
	WHERE datname = current_database() AND datacl::text ~ 'gifq'
UNION ALL SELECT 'extension ' || extname FROM pg_extension WHERE extname = 'gifq'
ORDER BY 1};
is(sql_b($leftovers), '', 'B: after DROP EXTENSION gifq no object of gifq is left');

# another database, which pg_cron's jobs cannot be read from: a NOTICE says
# where they would be; the catalogs count as before CREATE EXTENSION
sql_b('CREATE DATABASE other');
my $count = q{SELECT string_agg(format('%s %s', t, n), ',' ORDER BY t) FROM (
	SELECT c.relname AS t, (xpath('/row/n/text()',
		query_to_xml(format('SELECT count(*) AS n FROM pg_catalog.%I', c.relname), false, true, '')))[1]::text AS n
	FROM pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r'
	AND NOT c.relisshared AND c.relname NOT IN ('pg_statistic', 'pg_largeobject')) x};
my $empty = $plain->safe_psql('other', $count);
$plain->safe_psql('other', q{CREATE EXTENSION gifq;
SELECT gifq_create_program('p', 'USD');
SELECT gifq_upsert_member('p', 'x');
SELECT gifq_set_rule('p', 'e', 5);
SELECT count(*) FROM gifq_record_event('p', 'x', 'e', 'k1', NULL);});
($ret, $out, $err) = $plain->psql('other', 'DROP EXTENSION gifq');
like($err, qr/pg_cron jobs for database "other" are kept in database "postgres".*SELECT cron\.unschedule\(jobid\) FROM cron\.job WHERE database = 'other'/s,
	'another database: the NOTICE says where its jobs would be and how to remove them');
is($plain->safe_psql('other', $count), $empty, 'another database: every catalog has as many rows as before CREATE EXTENSION gifq');
is($plain->safe_psql('other', $leftovers), '', 'another database: no object of gifq is left');
$plain->safe_psql('other', 'CREATE EXTENSION gifq');
is($plain->safe_psql('other', 'SELECT count(*) FROM gifq_ledger_verify()'), '0',
	'another database: gifq can be created again');

$plain->stop;
done_testing();
