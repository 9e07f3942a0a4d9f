# 008_cron.pl: gifq's maintenance jobs with pg_cron (1.4: jobs run at
# most once a minute).  In pg_cron's database ("postgres", which the worker
# serves): gifq_schedule_jobs refused before CREATE EXTENSION pg_cron
# (QG601), then scheduling, idempotently; the gifq-holds job runs and
# voids an expired hold.  In another database ("rewards", no worker): QG602
# there, its jobs scheduled from pg_cron's database with the statements of
# gifq_maintenance_jobs(), gifq_refresh_catalog against the sandbox, and
# the gifq-rewards-orders job sending an order.  Then the jobs are removed,
# and a server without pg_cron refuses with QG601.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GifqSandbox;

my $sandbox = GifqSandbox->new(seed => 8);
my $node = $sandbox->node('cron',
	shared_preload_libraries => 'gifq,pg_cron',
	'cron.database_name' => 'postgres',
	'cron.use_background_workers' => 'on',
	'max_worker_processes' => 20);

my ($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM gifq_schedule_jobs()');
like($err, qr/pg_cron is not installed.*Database "postgres" has no extension pg_cron/s,
	'QG601 before CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');

# rewards expiry is a job once gifq_expire_rewards() exists
my $rewards = $node->safe_psql('postgres',
	q{SELECT to_regprocedure('gifq_expire_rewards()') IS NOT NULL}) eq 't';
my $rewards_action = $rewards ? 'scheduled' : 'skipped';
is($node->safe_psql('postgres', 'SELECT job_name, action, reason FROM gifq_schedule_jobs()'),
	join("\n",
		'gifq-holds|scheduled|', 'gifq-points|scheduled|',
		$rewards ? 'gifq-rewards|scheduled|'
		  : 'gifq-rewards|skipped|gifq_expire_rewards() does not exist in this version of gifq',
		'gifq-prune|scheduled|', 'gifq-boards|scheduled|',
		'gifq-orders|skipped|the gifq worker serves this database',
		'gifq-catalog|skipped|the gifq worker serves this database'),
	'the jobs are scheduled; the worker does the rest');
my $jobs = $rewards ? 5 : 4;
is($node->safe_psql('postgres', q{SELECT string_agg(action, ',' ORDER BY job_name)
	FROM gifq_schedule_jobs() WHERE reason IS NULL}),
	join(',', ('unchanged') x $jobs), 'scheduling again changes nothing');
is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || bool_and(database = 'postgres')::int
	FROM cron.job WHERE jobname LIKE 'gifq-%'}), "$jobs 1", 'one job each, in this database');

# a job that no longer applies, and one the list no longer has, go
$node->safe_psql('postgres', q{
SELECT cron.schedule('gifq-orders', '* * * * *', 'SELECT gifq_process_orders(100)');
SELECT cron.schedule('gifq-old', '0 0 1 1 *', 'SELECT 1');
SELECT cron.schedule('mine', '0 0 1 1 *', 'SELECT 1');
});
is($node->safe_psql('postgres', q{SELECT job_name || ' ' || action || ': ' || reason
	FROM gifq_schedule_jobs() WHERE action = 'unscheduled'}),
	"gifq-orders unscheduled: the gifq worker serves this database\n"
	  . "gifq-old unscheduled: no longer a gifq job",
	'jobs that do not apply are unscheduled');
is($node->safe_psql('postgres', q{SELECT string_agg(jobname, ',' ORDER BY jobname) FROM cron.job
	WHERE jobname NOT LIKE 'gifq-%'}), 'mine', 'other jobs are left alone');
$node->safe_psql('postgres', q{SELECT cron.unschedule('mine')});

# a changed job is put back
$node->safe_psql('postgres',
	q{SELECT cron.alter_job(jobid, schedule => '0 0 1 1 *') FROM cron.job WHERE jobname = 'gifq-holds'});
is($node->safe_psql('postgres', q{SELECT action FROM gifq_schedule_jobs() WHERE job_name = 'gifq-holds'}),
	'updated', 'a job changed by hand is updated');

# gifq-holds voids a hold past its timeout (within the minute)
$node->safe_psql('postgres', q{SELECT gifq_transfer(gifq_account('acme', 'm1'),
	gifq_account('acme', NULL, 'issuance'), '100 PTS', pending => true, timeout => '1 second')});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM gifq.holds WHERE status = 'expired'}),
	'the gifq-holds job expired the hold');
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM cron.job_run_details d
	JOIN cron.job j USING (jobid) WHERE j.jobname = 'gifq-holds' AND d.status = 'succeeded'}),
	'cron.job_run_details shows the run');

# another database, which the worker does not serve
$node->safe_psql('postgres', 'CREATE DATABASE rewards');
$node->safe_psql('rewards', q{
CREATE EXTENSION gifq;
SELECT gifq_create_program('acme', 'USD');
SELECT gifq_upsert_member('acme', 'm1', 'm1@example.com', 'US');
SELECT gifq_transfer(gifq_account('acme', NULL, 'issuance'), gifq_account('acme', 'm1'), '100000 PTS');
SELECT gifq_fund('acme', '1000.00 USD', 'wire-1');
});
($ret, $out, $err) = $node->psql('rewards', 'SELECT * FROM gifq_schedule_jobs()');
like($err, qr/pg_cron runs in database "postgres", not in "rewards"/, 'QG602 in another database');
is($node->safe_psql('rewards', 'SELECT gifq_refresh_catalog()'), 'loaded',
	'gifq_refresh_catalog loads the catalog from the provider');
is($node->safe_psql('rewards', 'SELECT gifq_refresh_catalog()'), 'unchanged',
	'and finds it unchanged the second time');
my $statements = $node->safe_psql('rewards',
	'SELECT cron_statement FROM gifq_maintenance_jobs() WHERE cron_statement IS NOT NULL');
$node->safe_psql('postgres', $statements);
is($node->safe_psql('postgres', q{SELECT string_agg(jobname, ',' ORDER BY jobname) FROM cron.job
	WHERE database = 'rewards'}),
	join(',', sort map { "gifq-rewards-$_" }
		qw(holds points prune boards orders catalog), $rewards ? ('rewards') : ()),
	'scheduled from pg_cron\'s database, orders and catalog included');
my $order = $node->safe_psql('rewards',
	q{SELECT order_id FROM gifq_redeem('acme', 'm1', 'amazon-us', '10.00 USD', 'cron-1')});
ok($node->poll_query_until('rewards', "SELECT status = 'delivered' FROM gifq.orders WHERE id = $order"),
	'the gifq-rewards-orders job sent the order, in database rewards');

# removing
is($node->safe_psql('postgres', q{SELECT string_agg(job_name, ',') FROM gifq_unschedule_jobs()}),
	join(',', sort map { "gifq-$_" } qw(holds points prune boards), $rewards ? ('rewards') : ()),
	'gifq_unschedule_jobs removes this database\'s jobs');
is($node->safe_psql('postgres', q{SELECT count(*) FROM gifq_unschedule_jobs()}), '0',
	'and then there are none');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE database = 'rewards'}),
	$rewards ? '7' : '6', 'another database\'s jobs are left alone');
$node->safe_psql('postgres',
	q{SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'gifq-%' AND database = 'rewards'});
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '0', 'all gone');
is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq_ledger_verify()'), '0',
	'gifq_ledger_verify() finds nothing');
is($node->safe_psql('rewards', 'SELECT count(*) FROM gifq_ledger_verify()'), '0',
	'nor in rewards');
$node->stop;

# without pg_cron, gifq works and says why it cannot schedule
my $plain = PostgreSQL::Test::Cluster->new('no_cron');
$plain->init;
$plain->append_conf('postgresql.conf', "shared_preload_libraries = 'gifq'\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION gifq');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT * FROM gifq_schedule_jobs()');
like($err, qr/pg_cron is not installed.*not in shared_preload_libraries/s,
	'QG601 without pg_cron');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT * FROM gifq_unschedule_jobs()');
like($err, qr/pg_cron is not installed/, 'for unscheduling too');
is($plain->safe_psql('postgres', q{SELECT count(*) FROM gifq_maintenance_jobs()
	WHERE job_name LIKE 'gifq-postgres-%'}), '7', 'the job list is there to schedule by other means');
is($plain->safe_psql('postgres', 'SELECT sum(removed) FROM gifq_prune()'), '0',
	'and gifq_prune works');
$plain->stop;
done_testing();
