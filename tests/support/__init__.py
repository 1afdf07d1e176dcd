"""What the tests share: kits that start and drive real processes and read Redis.

``workerkit`` (worker processes), ``faultkit`` (Redis servers to stop, freeze and drop
replies from), ``failurekit`` (failure records of every origin), ``schedulerkit`` (scheduler
processes, golden dumps), ``webkit`` (the dashboard's test client and pages), ``peers``
(finds the real Ruby and Perl peers, drives them, says why a test skips), ``replies``
(Redis replies narrowed to bytes). ``core_install.py`` runs ``resque`` as on the core install.

``apps/`` holds the job modules workers load by name (``--app workerapp``): they are
top-level modules, on ``PYTHONPATH`` for worker processes and on ``sys.path`` for the suite
(pytest's ``pythonpath``), because payloads and settings name them (``securityapp.Archive``,
``workerapp:TrackerBackend``).
"""
