"""What Ruby resque 3.0 keeps of a worker: its id, its process title, its working-on record.

Ruby and Perl workers prune same-host workers by these ids and titles, and resque-web reads
the working-on record, so each is spelled exactly as Ruby spells it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from resque.layout.codec import encode
from resque.layout.times import run_at

PAUSE_VALUE = "true"  # pause-all-workers pauses when its value, stripped and lowered, is this


def worker_id(hostname: str, pid: int, queues: Iterable[str]) -> str:
    """``host:pid:q1,q2``, queues as given (patterns included, ``!exclusions`` left out)."""
    return f"{hostname}:{pid}:{','.join(queues)}"


def parse_worker_id(worker: str) -> tuple[str, int | None, list[str]]:
    """Split a worker id like Ruby's ``split(':', 3)``; a malformed id gives pid ``None``."""
    parts = worker.split(":", 2)
    host = parts[0]
    # ASCII digits only: "²" or "٣" pass isdigit() but are no pid (and int() refuses "²").
    pid = int(parts[1]) if len(parts) > 1 and parts[1].isascii() and parts[1].isdigit() else None
    queues = parts[2].split(",") if len(parts) > 2 and parts[2] else []
    return host, pid, queues


def process_title(version: str, state: str, prefix: str = "") -> str:
    """``resque-<version>: <state>``; Ruby and Perl pruning look for ``resque-<digit>``."""
    return f"{prefix}resque-{version}: {state}"


STARTING_TITLE = "resque: Starting"


def title_waiting(queues: Sequence[str]) -> str:
    return f"Waiting for {','.join(queues)}"


def title_processing(queue: str, since: int, class_name: str) -> str:
    return f"Processing {queue} since {since} [{class_name}]"


def title_forked(pid: int, since: int) -> str:
    return f"Forked {pid} at {since}"


TITLE_PAUSED = "Paused"


# --- The working-on record --------------------------------------------------------------------


def working_on(queue: str, payload_json: str, now: float | None = None) -> str:
    """The ``worker:<id>`` value: ``{"queue":..,"run_at":..,"payload":{..}}``, in that order."""
    return WORKING_ON_TEMPLATE % (encode(queue), encode(run_at(now)), payload_json)


# ``%s`` slots: JSON queue name, JSON run_at, payload JSON. The reserve script fills it in
# Redis with string.format, so the shape is still spelled only here.
WORKING_ON_TEMPLATE = '{"queue":%s,"run_at":%s,"payload":%s}'

# The payload shown in the working-on record for an item that is not a JSON object (the raw
# bytes are kept in the in-flight list and in the failure record).
UNREADABLE_PAYLOAD = '{"class":"Resque::BadPayload","args":[]}'
