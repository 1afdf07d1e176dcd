"""How a worker performs the jobs it reserved: one interface, one module per mode.

``base.py``        the interface (``Executor``) and what every mode shares: a reserved job
                   becomes a payload and a target; its outcome becomes an acknowledgement
                   (``store.Ack``) that the worker's next step sends to Redis.
``inline.py``      in the worker process (``fork=False``): batches, interruptible by a stop.
``threads.py``     ``concurrency=N``: N jobs at once on threads, ``async def`` jobs on one loop.
``fork.py``        a child process per job (Ruby's way), from the fork server when it can.
``forkserver.py``  the small process that forks those children cheaply.
``child.py``       the child's side: perform, report through a pipe, die with the parent.

This package's ``__init__`` imports nothing: the fork server imports ``forkserver`` and
``child``, which must stay free of redis-py.
"""
