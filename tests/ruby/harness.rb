# Drives the real Ruby resque 3.0 for tests/test_ruby_compat.py.
# Usage: ruby -I<resque lib> harness.rb REDIS_URL COMMAND [ARGS...]
require "json"
require "resque"

Resque.redis = ARGV.shift
command = ARGV.shift

class Hello
  @queue = :high
  def self.perform(*args)
    Resque.redis.rpush("ruby-ran", JSON.generate(["Hello", args]))
  end
end

case command
when "enqueue"      # QUEUE CLASS ARGS_JSON
  queue, klass, args = ARGV
  Resque::Job.create(queue, klass, *JSON.parse(args))
when "dequeue"      # CLASS ARGS_JSON -> prints the count removed
  klass, args = ARGV
  puts Resque::Job.destroy("high", klass, *JSON.parse(args))
when "work"         # QUEUES: one pass, exit when the queues are empty
  worker = Resque::Worker.new(*ARGV.first.split(","))
  worker.work(0)
when "workers"      # the worker ids Ruby sees, one per line
  Resque.workers.each { |w| puts w.to_s }
when "failures"     # every failure as Ruby's Failure.all reads it
  failures = Resque::Failure.all(0, Resque::Failure.count)
  failures = [failures] if failures.is_a?(Hash)  # Ruby returns a bare hash for one failure
  puts JSON.generate(failures || [])
when "retry"        # INDEX
  Resque::Failure.requeue(ARGV.first.to_i)
when "info"
  puts JSON.generate(Resque.info)
else
  abort "unknown command #{command}"
end
