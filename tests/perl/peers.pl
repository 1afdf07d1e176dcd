#!/usr/bin/env perl
# Drives the real Perl Resque for tests/test_peers_perl.py.
# Usage: perl -I<Perl Resque lib> peers.pl HOST:PORT COMMAND [ARGS...]
use strict;
use warnings;
use JSON;
use Resque;

# The same job names as tests/support/apps/peers_app.py (Python) and tests/ruby/peers.rb
# (Ruby). Each records the args it was given, re-encoded by Perl Resque's own encoder, in
# resque:peers:ran:perl.
package Echo;
sub perform {
    my $job = shift;
    $job->redis->rpush($job->resque->key(qw(peers ran perl)), $job->encoder->encode($job->args));
}

# Fails the first time it sees a given set of args, then succeeds: a retry is observable.
package Flaky;
sub perform {
    my $job = shift;
    my $args = JSON->new->utf8->canonical->encode($job->args);
    my $tries = $job->redis->incr($job->resque->key('peers', 'tries', 'perl', $args));
    die "flaky: first try\n" if $tries == 1;
    $job->redis->rpush($job->resque->key(qw(peers ran perl)), $job->encoder->encode($job->args));
}

package main;

my ($server, $command, @args) = @ARGV;
my $resque = Resque->new(redis => $server);
my $json = JSON->new->utf8;

sub worker {
    my ($queues, @options) = @_;
    my $worker = $resque->worker;
    $worker->add_queue(split /,/, $queues);
    $worker->cant_fork(1) if grep { $_ eq 'nofork' } @options;
    return $worker;
}

if ($command eq 'enqueue') {        # QUEUE CLASS ARGS_JSON
    my ($queue, $class, $argv) = @args;
    $resque->push($queue => { class => $class, args => $json->decode($argv) });
}
elsif ($command eq 'work') {        # QUEUES [nofork]: start (pruning), work until empty, exit
    my $worker = worker(@args);
    $worker->startup;
    while (my $job = $worker->reserve) {
        $worker->work_tick($job);
    }
    $worker->unregister_worker;
}
elsif ($command eq 'serve') {       # QUEUES: the stock loop, polling every 0.1 s, until TERM
    my $worker = worker(@args);
    $worker->interval(0.1);
    $| = 1;
    $worker->work;
}
elsif ($command eq 'workers') {     # the worker ids Perl sees, one per line
    print "$_\n" for $resque->worker->all;
}
else {
    die "unknown command $command\n";
}
