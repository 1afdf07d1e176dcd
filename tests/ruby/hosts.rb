# A Ruby resque 3.0 worker inside a host of tests/hostkit.py, for tests/test_hosts.py.
# Usage: ruby -I<resque lib> hosts.rb REDIS_URL QUEUES INTERVAL
# Env: HOSTS_HEARTBEAT_INTERVAL (Resque.heartbeat_interval) and HOSTS_PRUNE_INTERVAL
# (Resque.prune_interval: the heartbeat age after which Ruby prunes a worker), so that a test
# sees heartbeat pruning in seconds. INTERVAL 0 works until the queues are empty and exits.
require "socket"
require "resque"

# The Ruby twin of tests/hostapp.py's Hold: records its start with the host name, waits for
# hosts:release, records its end. Its keys are outside Resque's namespace, as hostapp's are.
class Hold
  def self.perform(tag)
    entry = "#{tag}@#{Socket.gethostname}"
    plain = Redis.new(url: ARGV[0])
    plain.rpush("hosts:started", entry)
    sleep 0.05 until plain.exists?("hosts:release")
    plain.rpush("hosts:ran", entry)
  end
end

Resque.redis = ARGV[0]
Resque.heartbeat_interval = Integer(ENV.fetch("HOSTS_HEARTBEAT_INTERVAL", "60"))
Resque.prune_interval = Integer(ENV.fetch("HOSTS_PRUNE_INTERVAL", "300"))
$stdout.sync = true
worker = Resque::Worker.new(*ARGV[1].split(","))
worker.verbose = true
worker.work(Float(ARGV[2]))
