"""Delayed and recurring jobs, in resque-scheduler 5.0's Redis layout.

* ``delayed``   — ``enqueue_at``/``enqueue_in``, removal, inspection, and the atomic move of
  due jobs to their queues. Core install only.
* ``lock``      — the master lock shared with Ruby schedulers.
* ``triggers``  — when a schedule fires: cron and ``every``.
* ``schedule``  — schedule configs: checking them, YAML files, dynamic schedules stored in
  Redis. Everything imports on the core install; a cron expression needs croniter and a YAML
  file PyYAML (``pip install resque[scheduler]``), and only they ask for it.
* ``state``     — is a master running, is it dynamic, are due jobs late: what the verbs and
  the dashboard warn about.
* ``recurring`` — the master's side: each schedule's next tick, fired at most once.
* ``process``   — the ``resque scheduler`` loop: lock, move, fire, sleep
  (``settings.SchedulerSettings``).
* ``cli``       — the ``scheduler``, ``delayed`` and ``schedule`` verbs.

Everything here builds on ``resque.client.Client``; ``resque.Resque`` (``facade.py``) exposes
the delayed-job methods on top.
"""
