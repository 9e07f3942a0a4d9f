# GifqSandbox: the sandbox provider (test/sandbox/sandbox.py) for TAP
# tests: started on a free loopback port, driven through its /_sandbox/
# control endpoints, stopped when the object goes.
package GifqSandbox;

use strict;
use warnings;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;

# new(%args): start a sandbox.  seed, webhook_secret, api_key, faults
# (hashref), config (hashref) as sandbox.py takes them; tls_cert and
# tls_key (PEM files) to serve https as well (tls_url), on the same port.
sub new
{
	my ($class, %args) = @_;
	my $root = $ENV{GIFQ_ROOT} // '.';
	my $dir = tempdir(CLEANUP => 1);
	my $port_file = "$dir/port";
	my @cmd = ('python3', "$root/test/sandbox/sandbox.py", '--port', 0,
		'--port-file', $port_file, '--quiet', '--seed', $args{seed} // 1,
		'--webhook-secret', $args{webhook_secret} // 'sandbox-webhook-secret');
	push @cmd, '--api-key', $args{api_key} if $args{api_key};
	push @cmd, '--tls-cert', $args{tls_cert}, '--tls-key', $args{tls_key}
	  if $args{tls_cert};
	push @cmd, '--faults', encode_json($args{faults}) if $args{faults};
	push @cmd, '--config', encode_json($args{config}) if $args{config};
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		open STDOUT, '>', "$dir/stdout";
		open STDERR, '>', "$dir/stderr";
		exec @cmd or die "exec: $!";
	}
	for (1 .. 200)
	{
		last if -s $port_file;
		usleep(50_000);
	}
	open my $fh, '<', $port_file or die "sandbox did not start: " . `cat $dir/stderr`;
	my $port = <$fh>;
	chomp $port;
	my $self = bless {
		pid => $pid, port => $port, dir => $dir,
		url => "http://127.0.0.1:$port",
		api_key => $args{api_key} // 'sandbox-key',
		http => HTTP::Tiny->new(timeout => 30),
	}, $class;
	return $self;
}

sub url { $_[0]{url} }
sub port { $_[0]{port} }

# tls_url([HOST]): the https URL (host "localhost" unless given), for a
# sandbox started with tls_cert; the tests' own requests stay on http
sub tls_url { my ($s, $host) = @_; 'https://' . ($host // 'localhost') . ":$s->{port}" }

# request(METHOD, PATH, [BODY]): the decoded JSON answer (undef if none)
sub request
{
	my ($self, $method, $path, $body) = @_;
	my %opt = (headers => { 'Authorization' => "Bearer $self->{api_key}",
			'Content-Type' => 'application/json' });
	$opt{content} = ref $body ? encode_json($body) : $body if defined $body;
	my $r = $self->{http}->request($method, $self->{url} . $path, \%opt);
	die "sandbox $method $path: $r->{status} $r->{content}\n"
	  if $r->{status} >= 500 && $path =~ m{^/_sandbox/};
	return length($r->{content} // '') ? decode_json($r->{content}) : undef;
}

sub faults { my ($s, $f) = @_; $s->request('POST', '/_sandbox/faults', $f) }
sub config { my ($s, $c) = @_; $s->request('POST', '/_sandbox/config', $c) }
sub stats { $_[0]->request('GET', '/_sandbox/stats') }
sub webhooks { $_[0]->request('GET', '/_sandbox/webhooks') }
sub sink { $_[0]->request('GET', '/_sandbox/sink') }
sub reset { $_[0]->request('POST', '/_sandbox/reset', {}) }

# order_by_reference(REF): the provider's order, or undef
sub order_by_reference
{
	my ($self, $ref) = @_;
	my $r = $self->{http}->get("$self->{url}/api/v1/orders?reference_id=$ref",
		{ headers => { 'Authorization' => "Bearer $self->{api_key}" } });
	return $r->{status} == 200 ? decode_json($r->{content}) : undef;
}

# node(NAME, %settings): a started cluster whose worker calls this sandbox
# (gifq preloaded, short retry times for tests), with more postgresql.conf
# settings as name => value; then gifq installed in "postgres" with a
# program "acme" funded with 1,000,000.00 USD and members m1 .. mN
# (members => N, default 1) holding 100,000,000 PTS each.
sub node
{
	my ($self, $name, %settings) = @_;
	my $members = delete $settings{members} // 1;
	my %conf = (
		shared_preload_libraries => 'gifq',
		fsync => 'off',
		'gifq.database' => 'postgres',
		'gifq.provider_url' => $self->{url},
		'gifq.provider_api_key' => $self->{api_key},
		'gifq.card_key' => "$name-card-key-0123456789",
		'gifq.retry_base_ms' => 100,
		'gifq.retry_max_ms' => 1000,
		'gifq.request_timeout_ms' => 1000,
		'gifq.connect_timeout_ms' => 1000,
		'gifq.poll_interval' => 500,
		'gifq.catalog_refresh_interval' => 3600,
		%settings);
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join '',
		map { defined $conf{$_} ? "$_ = '$conf{$_}'\n" : '' } sort keys %conf);
	$node->start;
	$node->safe_psql('postgres', qq{
CREATE EXTENSION gifq;
SELECT gifq_create_program('acme', 'USD');
SELECT gifq_upsert_member('acme', 'm' || i, 'm' || i || '\@example.com', 'US')
FROM generate_series(1, $members) i;
SELECT gifq_transfer(gifq_account('acme', NULL, 'issuance'), gifq_account('acme', 'm' || i),
	'100000000 PTS', idempotency_key => 'earn-' || i) FROM generate_series(1, $members) i;
SELECT gifq_fund('acme', '1000000.00 USD', 'wire-1');
});
	return $node;
}

sub DESTROY
{
	my $self = shift;
	return unless $self->{pid};
	kill 'TERM', $self->{pid};
	waitpid($self->{pid}, 0);
	$self->{pid} = 0;
}

1;
