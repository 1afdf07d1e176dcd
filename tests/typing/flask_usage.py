"""Right and wrong uses of resque.contrib.flask's tasks, checked by mypy and pyright
(test_typing.py): the extension's jobs are typed tasks, as ``resque.job``'s are.

Never run. Every line marked ``# expect-error`` must be reported by both checkers, and no
other line may be.
"""

from __future__ import annotations

import resque
from resque.contrib.flask import Resque

ext = Resque()


@ext.job(queue="mail")
def send_welcome(user_id: int, *, locale: str = "en") -> bool:
    return True


@ext.job
async def fetch(url: str) -> bytes:
    return b""


job: resque.Job[bool] | None = send_welcome.enqueue(42, locale="sv")
send_welcome.enqueue_in(60, 43)
send_welcome.to("urgent").options(status=True).enqueue(44)
ext.enqueue(send_welcome, 45, locale="sv")
result: bool = send_welcome(46)
later: resque.Job[bytes] | None = fetch.enqueue("https://example.org")

send_welcome.enqueue("42")  # expect-error
send_welcome.enqueue(42, language="sv")  # expect-error
fetch.enqueue(1)  # expect-error
