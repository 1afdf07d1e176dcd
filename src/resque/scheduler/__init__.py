"""Delayed and recurring jobs, in resque-scheduler 5.0's Redis layout.

* ``delayed``  — ``enqueue_at``/``enqueue_in``, removal, inspection, and the atomic move of
  due jobs to their queues. Core install only.
* ``lock``     — the master lock shared with Ruby schedulers.
* ``schedule`` — recurring schedules: cron (croniter) and ``every``, YAML files, dynamic
  schedules stored in Redis. Needs ``pip install resque[scheduler]``.
* ``process``  — the ``resque scheduler`` loop: lock, move, fire, sleep.
* ``cli``      — the ``scheduler``, ``delayed`` and ``schedule`` verbs.
"""
