# 012_long_transaction.pl: a go-live loaded in one transaction into a new
# installation whose tables were analyzed while empty: members imported
# one call each, their points seeded by transfers, past events recorded
# one call each, then a backfill in batches.  Plans are made at a
# statement's first use in a session, when the tables are still empty, and
# only new statistics make them again; autovacuum sees only committed
# rows.  0.10.0 kept sequential scans for key lookups all along, each call
# reading the whole table (2,000 members imported in 0.25 s at first, in
# 1.9 s after 14,000).  Since 0.11.0 the transaction analyzes what it has
# outgrown (src/statistics.c).  Each step runs in two halves; the
# transaction's own table statistics count the rows each half read in
# sequence, and in the second halves that must not be a table per call.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('golive');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'gifq'");
$node->start;

my $n = 4000;
my $half = $n / 2;
$node->safe_psql('postgres', q{
	CREATE EXTENSION gifq;
	SELECT gifq_create_program('golive', 'USD', 'PTS', 100, 'UTC');
	SELECT gifq_set_rule('golive', 'task.done', 10);
	SELECT gifq_define_streak('golive', 'daily', 'task.done', 'day', 1);
});
# statistics that say the tables are empty, as after a new installation's
# first ANALYZE
$node->safe_psql('postgres', 'VACUUM ANALYZE');

# each step, over members $1 to $2
my %steps = (
	members => q{SELECT count(gifq_upsert_member('golive', 'u' || i, NULL, 'US'))
		FROM generate_series(%d, %d) i},
	transfers => q{SELECT count(gifq_transfer(gifq_account('golive', NULL, 'issuance'),
			gifq_account('golive', 'u' || i), gifq_from_minor_units(500, 'PTS'), 'seed-' || i))
		FROM generate_series(%d, %d) i},
	events => q{SELECT count(*) FROM generate_series(%d, %d) i,
		LATERAL gifq_record_event('golive', 'u' || i, 'task.done', 'past-' || i,
			now() - interval '1 day')},
	batches => q{SELECT count(*) FROM generate_series(%d, %d, 250) b,
		LATERAL gifq_record_events('golive', (SELECT jsonb_agg(jsonb_build_object(
			'member', 'u' || i, 'event_type', 'task.done', 'idempotency_key', 'batch-' || i))
			FROM generate_series(b, b + 249) i))},
);
my @order = qw(members transfers events batches);

my $sql = "BEGIN;\nCREATE TEMP TABLE reads (step text, relname name, seq bigint);\n";
for my $step (@order)
{
	for my $part (1, 2)
	{
		my ($from, $to) = $part == 1 ? (1, $half) : ($half + 1, $n);
		$sql .= sprintf($steps{$step}, $from, $to) . ";\n";
		$sql .= "INSERT INTO reads SELECT '$step.$part', relname, seq_tup_read
			FROM pg_stat_xact_user_tables WHERE schemaname = 'gifq';\n";
	}
}
# rows read in sequence during each step's second half
$sql .= q{
SELECT r2.step, r2.relname, r2.seq - r1.seq
FROM reads r2 JOIN reads r1 ON r1.relname = r2.relname
	AND r1.step = split_part(r2.step, '.', 1) || '.1'
WHERE r2.step LIKE '%.2'
	AND r2.relname IN ('members', 'accounts', 'transfers', 'events', 'streaks',
		'streak_periods')
ORDER BY 1, 2;
COMMIT;
};
my $out = $node->safe_psql('postgres', $sql);

my %read;
for my $line (split /\n/, $out)
{
	my ($step, $rel, $rows) = split /\|/, $line;
	next unless defined $rows;
	$read{$step}{$rel} = $rows;
}
for my $step (@order)
{
	ok(exists $read{"$step.2"}, "$step: the second half's reads were counted");
	for my $rel (sort keys %{ $read{"$step.2"} })
	{
		# a table read whole on each of the half's calls would be millions
		cmp_ok($read{"$step.2"}{$rel}, '<', 2 * $n,
			"$step, second half: $rel read in sequence at most about once");
	}
}

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.events e JOIN gifq.members m ON m.id = e.member_id
	WHERE e.points = 10 AND m.external_id = 'u' || substr(e.idempotency_key, 6)
		AND e.idempotency_key LIKE 'past-%'}),
	$n, 'every member got their past event and its points');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.events WHERE idempotency_key LIKE 'batch-%' AND points = 10}),
	$n, 'and their backfilled event');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM gifq.members m JOIN gifq.accounts a ON a.member_id = m.id
	WHERE (gifq_balance(a.id)).available = '520 PTS'}),
	$n, 'each member holds the seeded 500 PTS and the two events\' 20');
is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq_ledger_verify()'),
	'0', 'the ledger verifies');

# the transaction's ANALYZEs leave the tables' statistics counting its rows
cmp_ok($node->safe_psql('postgres',
	"SELECT reltuples FROM pg_class WHERE oid = 'gifq.members'::regclass"),
	'>=', $half, 'members were analyzed within the transaction');

$node->stop;
done_testing();
