# Drives the real Ruby resque 3.0 (and resque-scheduler 5.0) for tests/test_peers_*.py.
# Usage: ruby -I<resque lib> [-I<resque-scheduler lib>] peers.rb REDIS_URL COMMAND [ARGS...]
# resque-scheduler's own executable can load this file as its initializer (-I): then only the
# connection (from PEERS_REDIS_URL) and the job classes are set up.
require "json"
require "resque"

# The same job names and queue as tests/support/apps/peers_app.py (Python) and
# tests/perl/peers.pl (Perl). Each records the args it was given, re-encoded by this language, in resque:peers:ran:ruby.
class Echo
  @queue = :peers

  def self.perform(*args)
    Resque.redis.rpush("peers:ran:ruby", Resque.encode(args))
  end
end

# Fails the first time it sees a given set of args, then succeeds: a retry is observable.
class Flaky
  @queue = :peers

  def self.perform(*args)
    tries = Resque.redis.incr("peers:tries:ruby:#{Resque.encode(args)}")
    raise "flaky: first try" if tries == 1
    Resque.redis.rpush("peers:ran:ruby", Resque.encode(args))
  end
end

def failures
  all = Resque::Failure.all(0, Resque::Failure.count)
  all = [all] if all.is_a?(Hash) # Ruby returns a bare hash for one failure
  all || []
end

def scheduler!
  require "resque-scheduler"
end

if __FILE__ != $PROGRAM_NAME # loaded by resque-scheduler as its initializer
  Resque.redis = ENV.fetch("PEERS_REDIS_URL")
  return
end

Resque.redis = ARGV.shift
command = ARGV.shift

case command
when "enqueue"       # QUEUE CLASS ARGS_JSON
  queue, klass, args = ARGV
  Resque::Job.create(queue, klass, *JSON.parse(args))
when "destroy"       # QUEUE CLASS ARGS_JSON -> how many Job.destroy removed
  queue, klass, args = ARGV
  puts Resque::Job.destroy(queue, klass, *JSON.parse(args))
when "work"          # QUEUES: start (pruning same-host workers), work until empty, exit
  Resque::Worker.new(*ARGV.first.split(",")).work(0)
when "workers"       # the worker ids Ruby sees, one per line
  Resque.workers.each { |w| puts w.to_s }
when "failures"      # every failure as Ruby's Failure.all reads it
  puts JSON.generate(failures)
when "enqueue_at"    # QUEUE CLASS JSON [[epoch, args], ...]: resque-scheduler's enqueue_at
  scheduler!
  queue, klass, items = ARGV
  JSON.parse(items).each do |epoch, args|
    Resque.enqueue_at_with_queue(queue, Time.at(epoch), klass, *args)
  end
when "remove_delayed" # QUEUE CLASS ARGS_JSON -> how many resque-scheduler removed
  scheduler!
  queue, klass, args = ARGV
  puts Resque.remove_delayed_in_queue(klass, queue, *JSON.parse(args))
when "set_schedule"  # NAME CONFIG_JSON: a dynamic schedule, as an app would store it
  scheduler!
  name, config = ARGV
  Resque.set_schedule(name, JSON.parse(config))
when "schedule"      # NAME -> the schedule as resque-scheduler reads it back, JSON
  scheduler!
  puts JSON.generate(Resque.fetch_schedule(ARGV.first))
else
  abort "unknown command #{command}"
end
