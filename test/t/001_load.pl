# 001_load.pl: gifq loads with and without shared_preload_libraries, the
# "gifq." settings prefix is reserved either way, and gifq_money survives
# pg_dump and restore.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Preloaded, as in production.
my $pre = PostgreSQL::Test::Cluster->new('preloaded');
$pre->init;
$pre->append_conf('postgresql.conf', "shared_preload_libraries = 'gifq'");
$pre->start;

is($pre->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'gifq', 'gifq is preloaded');
$pre->safe_psql('postgres', 'CREATE EXTENSION gifq');
is($pre->safe_psql('postgres', "SELECT '12.5 USD'::gifq_money"),
	'12.50 USD', 'gifq_money works when preloaded');

my ($ret, $out, $err) =
  $pre->psql('postgres', 'SET gifq.no_such_setting = 1');
isnt($ret, 0, 'an unknown gifq.* setting is refused when preloaded');
like($err, qr/invalid configuration parameter name "gifq\.no_such_setting"/,
	'the refusal names the setting');

# Dump and restore a table of amounts in several currencies.
$pre->safe_psql('postgres', q{
	CREATE TABLE ledger_copy (id int PRIMARY KEY, m gifq_money);
	INSERT INTO ledger_copy
	SELECT i, gifq_money((i * 37 % 100000 - 50000) / 100.0,
		(ARRAY['USD', 'EUR', 'JPY', 'BHD', 'PTS'])[i % 5 + 1]::text)
	FROM generate_series(1, 1000) i
	WHERE i % 5 + 1 NOT IN (3, 5) OR i * 37 % 100 = 0;
	CREATE INDEX ON ledger_copy (m);
	SELECT gifq_create_program('dumped', 'USD');
	SELECT gifq_upsert_member('dumped', 'm' || i) FROM generate_series(1, 5) i;
	SELECT gifq_fund('dumped', '100.00 USD', 'f1');
	SELECT gifq_transfer(gifq_account('dumped', NULL, 'issuance'),
		gifq_account('dumped', 'm' || i), gifq_money(i * 100, 'PTS'), 'e' || i)
	FROM generate_series(1, 5) i;
	SELECT gifq_transfer(gifq_account('dumped', 'm1'), gifq_account('dumped', 'm2'),
		'50 PTS', 'h1', pending => true, timeout => '1 day');
});
my $summary = q{SELECT count(*), string_agg(m::text, ',' ORDER BY id),
	string_agg(gifq_currency(s)::text || '=' || s::text, ',' ORDER BY s)
	FROM ledger_copy,
	LATERAL (SELECT sum(m) s FROM ledger_copy l2
		WHERE gifq_currency(l2.m) = gifq_currency(ledger_copy.m)) x};
my $before = $pre->safe_psql('postgres', $summary);
my $dump = $PostgreSQL::Test::Utils::tmp_check . '/gifq.dump';
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $pre->connstr('postgres') ],
	'pg_dump of a database using gifq');
$pre->safe_psql('postgres', 'CREATE DATABASE restored');
command_ok([ 'pg_restore', '-d', $pre->connstr('restored'), $dump ],
	'pg_restore into a fresh database');
is($pre->safe_psql('restored', $summary), $before,
	'restored amounts and sums are identical');
my $balances = q{SELECT string_agg(external_id || '=' ||
	(gifq_member_balance('dumped', external_id))::text, ',' ORDER BY external_id)
	FROM gifq.members};
is($pre->safe_psql('restored', $balances), $pre->safe_psql('postgres', $balances),
	'restored member balances are identical');
is($pre->safe_psql('restored', 'SELECT count(*) FROM gifq_ledger_verify()'),
	'0', 'the restored ledger verifies');
is($pre->safe_psql('restored', q{
	SELECT gifq_post((SELECT id FROM gifq.transfers WHERE idempotency_key = 'h1')) >
		(SELECT max(id) FROM gifq.transfers WHERE kind = 'pending')}),
	't', 'after restore, a hold is posted and new ids do not collide');
is($pre->safe_psql('restored', 'SELECT count(*) FROM gifq_ledger_verify()'),
	'0', 'the restored ledger still verifies after new transfers');
$pre->stop;

# Not preloaded: every function still works, loaded on first use.
my $plain = PostgreSQL::Test::Cluster->new('not_preloaded');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION gifq');
is($plain->safe_psql('postgres',
		"SELECT sum(m) FROM (VALUES ('1.25 EUR'::gifq_money), ('2 EUR')) t(m)"),
	'3.25 EUR', 'gifq_money works without preload');
($ret, $out, $err) = $plain->psql('postgres',
	"SELECT '1 USD'::gifq_money; SET gifq.no_such_setting = 1");
isnt($ret, 0, 'an unknown gifq.* setting is refused once gifq is loaded');
like($err, qr/invalid configuration parameter name "gifq\.no_such_setting"/,
	'the refusal names the setting');
$plain->stop;

done_testing();
