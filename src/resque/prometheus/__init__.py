"""The farm as Prometheus metrics: the dashboard's ``/metrics`` and ``resque metrics``.

``snapshot.read_snapshot`` reads everything in a few round trips (Ruby's counters, queue
lengths, workers, failure lists, delayed jobs, the age of each queue's oldest job, and the
job duration histograms workers add to with ``--job-metrics``); ``collector`` turns it into
metric families with ``prometheus_client`` (the ``prometheus`` extra); ``cli`` is the
``resque metrics`` exporter. Only ``collector`` and ``cli`` need ``prometheus_client``; no
worker imports any of it.
"""
