# What Ruby's resque-web computes for its pages, as JSON, for tests/test_web_ruby.py.
# resque-web needs Sinatra; these are the same library calls its views make
# (server/views/*.erb, server_helper.rb), so no web server is needed to compare.
# Usage: ruby -I<resque lib> web_view.rb REDIS_URL COMMAND [ARGS...]
require "json"
require "resque"
require "resque/failure/redis_multi_queue"

Resque.redis = ARGV.shift
command = ARGV.shift

def use_multi_queue(flag)
  Resque::Failure.backend = Resque::Failure::RedisMultiQueue if flag == "multi"
end

case command
when "view"        # [multi]: the data behind overview, queues, working, workers, failed, stats
  use_multi_queue(ARGV[0])
  workers = Resque.workers.sort_by(&:to_s)
  working = Resque.working.reject(&:idle?)          # working.erb
  hosts = Hash.new(0)
  workers.each { |w| hosts[w.to_s.split(":")[0]] += 1 }  # server_helper.rb worker_hosts
  lists = Resque::Failure.queues.map(&:to_s).sort
  first_page = []
  (lists.size > 1 || ARGV[0] == "multi" ? lists : ["failed"]).each do |list|
    Resque::Failure.each(0, 20, list.to_sym, nil, "desc") do |id, job|
      first_page << {"list" => list, "id" => id, "class" => job["payload"]["class"],
                     "exception" => job["exception"], "error" => job["error"],
                     "queue" => job["queue"], "worker" => job["worker"]}
    end
  end
  puts JSON.generate(
    "info" => Resque.info,
    "queues" => Resque.queues.sort.map { |q| [q, Resque.size(q)] },
    "failure_lists" => lists.map { |q| [q, Resque::Failure.count(q)] },
    "failure_total" => Resque::Failure.count,
    "failed_page" => first_page,
    "working" => working.map(&:to_s).sort,
    "hosts" => hosts,
    "workers" => workers.map { |w|
      {"id" => w.to_s, "state" => w.state.to_s, "started" => w.started,
       "heartbeat" => Resque.redis.hget("workers:heartbeat", w.to_s),
       "processed" => w.processed, "failed" => w.failed,
       "job" => w.job}
    },
  )
when "work"        # QUEUES [multi]: one pass, exit when the queues are empty
  use_multi_queue(ARGV[1])
  Resque::Worker.new(*ARGV[0].split(",")).work(0)
when "serve"       # QUEUE: a Ruby worker that stays registered, polling every 0.2 s
  worker = Resque::Worker.new(ARGV[0])
  $stdout.sync = true
  trap("TERM") { worker.shutdown }
  worker.work(0.2)
else
  abort "unknown command #{command}"
end
