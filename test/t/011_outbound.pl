# 011_outbound.pl: what the worker's calls may do (issue 8, outbound
# safety).  The sandbox serves https with a certificate made here with the
# openssl command: without its CA the worker refuses the certificate and
# the order stays retryable; with gifq.tls_ca_file it is delivered; a host
# name the certificate does not name is refused; gifq.tls_verify = off
# works, with a WARNING.  An answer over gifq.max_response_bytes and a
# redirect (to https, file: or gopher:) are refused without harm, and
# schemes other than http and https are refused in the settings.  Only a
# superuser may change any of these.
use strict;
use warnings;
use File::Temp qw(tempdir);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GifqSandbox;

plan skip_all => 'no openssl command' if system('openssl version >/dev/null 2>&1') != 0;

# a self-signed certificate for "localhost" only (not 127.0.0.1)
my $dir = tempdir(CLEANUP => 1);
my ($cert, $key) = ("$dir/cert.pem", "$dir/key.pem");
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', $key,
	'-out', $cert, '-days', '2', '-subj', '/CN=localhost',
	'-addext', 'subjectAltName=DNS:localhost') == 0
  or die "openssl req failed";
chmod 0644, $cert;

my $sandbox = GifqSandbox->new(seed => 11, tls_cert => $cert, tls_key => $key);
my $node = $sandbox->node('outbound', 'gifq.provider_url' => $sandbox->tls_url);
my $conf = $node->data_dir . '/postgresql.conf';

# the worker's own catalog load fails like the orders: load it here
my $catalog = encode_json($sandbox->request('GET', '/api/v1/catalog'));
$node->safe_psql('postgres', "SELECT gifq_catalog_load(\$c\$$catalog\$c\$)");

my $n = 0;

sub redeem
{
	$n++;
	return $node->safe_psql('postgres',
		"SELECT order_id FROM gifq_redeem('acme', 'm1', 'amazon-us', '10.00 USD', 'o-$n')");
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

# wait_error(ID, REGEX): a call of order ID logged an error matching REGEX
# (a POSIX regular expression)
sub wait_error
{
	my ($id, $re) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM gifq.provider_calls WHERE order_id = $id AND error ~ '$re'");
}

# set(NAME => VALUE, ...): postgresql.conf lines (last one wins), reload
sub set
{
	my %s = @_;
	$node->append_conf('postgresql.conf', join '', map { "$_ = '$s{$_}'\n" } sort keys %s);
	$node->reload;
}

sub created { $sandbox->stats->{orders_created} }

# --- TLS ------------------------------------------------------------------
my $created = created();
my $id = redeem();
ok(wait_error($id, 'certificate'), 'without the CA, the call fails with a certificate error');
my $untrusted = $node->safe_psql('postgres',
	"SELECT error FROM gifq.provider_calls WHERE order_id = $id ORDER BY id LIMIT 1");
note("the error: $untrusted");
like($untrusted, qr/SSL certificate problem/, 'the error says what was wrong with the certificate');
like(status_of($id), qr/^(pending|submitted)$/, 'the order stays retryable');
is(created(), $created, 'the provider created nothing');

set('gifq.tls_ca_file' => $cert);
ok(wait_status($id, 'delivered'), 'with gifq.tls_ca_file, the same order is delivered');
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM gifq.provider_calls WHERE call = 'catalog' AND http_status IN (200, 304)"),
	'and the catalog loads over https');

# 127.0.0.1 is not a name the certificate holds
set('gifq.provider_url' => $sandbox->tls_url('127.0.0.1'));
$created = created();
$id = redeem();
ok(wait_error($id, 'certificate|subject name|SSL'), 'a host name the certificate does not name is refused');
my $mismatch = $node->safe_psql('postgres',
	"SELECT error FROM gifq.provider_calls WHERE order_id = $id ORDER BY id LIMIT 1");
note("the error: $mismatch");
like($mismatch, qr/subject name|does not match|certificate/, 'the error names the mismatch');
like(status_of($id), qr/^(pending|submitted)$/, 'the order stays retryable');
is(created(), $created, 'the provider created nothing');

# verification off (for tests only): works, and says so
my $log_offset = -s $node->logfile;
set('gifq.tls_verify' => 'off', 'gifq.tls_ca_file' => '');
ok(wait_status($id, 'delivered'), 'gifq.tls_verify = off: delivered despite the name');
ok($node->wait_for_log(qr/WARNING:  gifq: TLS certificates and host names are not verified/, $log_offset),
	'the worker WARNs when a reload turns verification off');
$log_offset = -s $node->logfile;
$node->restart;
ok($node->wait_for_log(qr/WARNING:  gifq: TLS certificates and host names are not verified/, $log_offset),
	'and when it starts with verification off');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT gifq_process_orders(1)');
like($err, qr/WARNING:  gifq: TLS certificates and host names are not verified/,
	'gifq_process_orders WARNs its caller too');
set('gifq.tls_verify' => 'on', 'gifq.tls_ca_file' => $cert,
	'gifq.provider_url' => $sandbox->tls_url);
is($node->safe_psql('postgres', 'SHOW gifq.tls_verify'), 'on', 'verification back on');

# --- who may change them ----------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE ROLE settings_reader LOGIN IN ROLE pg_read_all_settings;
});
for my $role ('app', 'settings_reader')
{
	for my $stmt ("SET gifq.tls_verify = off", "ALTER SYSTEM SET gifq.tls_verify = off",
		"ALTER SYSTEM SET gifq.tls_ca_file = '/tmp/evil.pem'",
		"ALTER SYSTEM SET gifq.provider_url = 'http://127.0.0.1:1'",
		"ALTER SYSTEM SET gifq.max_response_bytes = '256MB'",
		"ALTER ROLE app SET gifq.tls_verify = off")
	{
		($ret, $out, $err) = $node->psql('postgres', $stmt, extra_params => [ '-U', $role ]);
		isnt($ret, 0, "$role: $stmt is refused");
	}
}
($ret, $out, $err) = $node->psql('postgres', 'SET gifq.tls_verify = off');
like($err, qr/cannot be changed now/, 'not even a superuser turns it off for a session');
unlike(slurp_file($node->data_dir . '/postgresql.auto.conf'), qr/tls|evil/,
	'postgresql.auto.conf unchanged');

# --- schemes ---------------------------------------------------------------------
for my $url ('ftp://127.0.0.1/x', 'file:///etc/passwd', 'gopher://127.0.0.1/x', 'localhost:80')
{
	for my $setting ('gifq.provider_url', 'gifq.events_url')
	{
		($ret, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET $setting = '$url'");
		like($err, qr/is not an http or https URL/, "ALTER SYSTEM SET $setting = '$url' is refused");
	}
}
for my $url ('https://user:Pw-secret-7@localhost/', 'http://key@127.0.0.1:1', 'ftp://u:Pw-secret-7@h/')
{
	($ret, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET gifq.provider_url = '$url'");
	like($err, qr/may not carry credentials/, "a URL with credentials is refused: $url");
	unlike($err, qr/Pw-secret-7|key@/, '... and not quoted');
}
ok($node->safe_psql('postgres', q{ALTER SYSTEM SET gifq.events_url = 'https://h.example/a@b?c=d@e'; ALTER SYSTEM RESET gifq.events_url; SELECT true}),
	'an @ in the path or query is no credential');
$log_offset = -s $node->logfile;
set('gifq.provider_url' => 'file:///etc/passwd');
ok($node->wait_for_log(qr{"file:///etc/passwd" is not an http or https URL}, $log_offset),
	'a reload with a file: URL is refused');
is($node->safe_psql('postgres', 'SHOW gifq.provider_url'), $sandbox->tls_url,
	'and the URL before stays');
set('gifq.provider_url' => $sandbox->tls_url);

# --- answer size ----------------------------------------------------------------
set('gifq.max_response_bytes' => '64kB');
$created = created();
$sandbox->faults({ huge_bytes => 1024 * 1024 });
$id = redeem();
ok(wait_error($id, '^answer larger than gifq.max_response_bytes \(65536\)$'),
	'an answer over gifq.max_response_bytes is refused, with a clear error');
like(status_of($id), qr/^(pending|submitted)$/, 'the order stays retryable');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM gifq.provider_calls WHERE order_id = $id AND http_status IS NOT NULL"),
	'0', 'no answer is recorded for it');
$sandbox->faults({});
ok(wait_status($id, 'delivered'), 'delivered once the answers are small again');
is(created(), $created + 1, 'one card');
set('gifq.max_response_bytes' => '16MB');

# --- redirects --------------------------------------------------------------------
for my $to ($sandbox->tls_url . '/api/v1/elsewhere', 'file:///etc/passwd', 'gopher://127.0.0.1:70/x')
{
	my $other = $sandbox->stats->{by_endpoint}{other} // 0;
	$created = created();
	$sandbox->faults({ redirect_to => $to });
	$id = redeem();
	ok($node->poll_query_until('postgres',
			"SELECT count(*) > 1 FROM gifq.provider_calls WHERE order_id = $id AND http_status = 302"),
		"a redirect to $to is an answer (302)");
	like(status_of($id), qr/^(pending|submitted)$/, '... the order stays retryable');
	is($sandbox->stats->{by_endpoint}{other} // 0, $other, '... and is not followed');
	$sandbox->faults({});
	ok(wait_status($id, 'delivered'), '... delivered once the provider answers');
	is(created(), $created + 1, '... with one card');
}

is($node->safe_psql('postgres', 'SELECT count(*) FROM gifq_ledger_verify()'), '0',
	'the ledger verifies');
is($sandbox->stats->{internal_errors}, 0, 'the sandbox hit no bug');
$node->stop;
done_testing();
