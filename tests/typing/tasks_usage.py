"""Right and wrong uses of the typed task API, checked by mypy and pyright (test_typing.py).

Never run. Every line marked ``# expect-error`` must be reported by both checkers, and no
other line may be: the task API's types are what users' type checkers see.
"""

from __future__ import annotations

import datetime

import resque


@resque.job(queue="mail")
def send_welcome(user_id: int, locale: str = "en") -> bool:
    return True


@resque.job(queue="fetch")
async def fetch(url: str, *, retries: int = 3) -> bytes:
    return b""


class SendWelcome:
    queue = "mail"

    @staticmethod
    def perform(user_id: int, locale: str = "en") -> None:
        pass


class Report:
    queue = "reports"

    @classmethod
    def perform(cls, day: str) -> int:
        return 0


client = resque.Resque()
now = datetime.datetime.now()


def right() -> None:
    sent: bool = send_welcome(42)
    send_welcome(42, "sv")
    send_welcome(42, locale="sv")
    job = send_welcome.enqueue(42)
    if job is not None:
        again: bool = job.result(timeout=1)
        print(sent, again, job.id, job.status())
    send_welcome.enqueue_in(datetime.timedelta(minutes=5), 42, locale="sv")
    send_welcome.enqueue_in(60, 42)
    send_welcome.enqueue_at(now, 42)
    send_welcome.to("urgent").enqueue(42)
    send_welcome.options(status=True, result_ttl=60).enqueue(42, "sv")
    send_welcome.options(client=client).to("urgent").enqueue_in(5, user_id=42)
    client.enqueue(send_welcome, 42, "sv")
    client.enqueue(SendWelcome, 42)
    client.enqueue("Mailer::Welcome", {"any": "thing"}, 1)
    client.enqueue_to("urgent", send_welcome, 42)
    client.enqueue_in(60, send_welcome, 42)
    client.enqueue_at(now, SendWelcome, 42, locale="sv")
    fetched = fetch.enqueue("https://example.com", retries=1)
    if fetched is not None:
        body: bytes = fetched.result()
        print(body)
    report = client.enqueue(Report, "monday")
    if report is not None:
        pages: int = report.result()
        print(pages)
    resque.current_job().at(1, 10, "one of ten")


def wrong() -> None:
    send_welcome("42")  # expect-error
    send_welcome(42, lang="sv")  # expect-error
    send_welcome.enqueue()  # expect-error
    send_welcome.enqueue("42")  # expect-error
    send_welcome.enqueue_in(datetime.timedelta(minutes=5), "42")  # expect-error
    send_welcome.enqueue_at(now, 42, "sv", "extra")  # expect-error
    send_welcome.to("urgent").enqueue(42, locale=1)  # expect-error
    send_welcome.options(status=True).enqueue(42, locale=5)  # expect-error
    send_welcome.options(status="yes").enqueue(42)  # expect-error
    client.enqueue(send_welcome, "42")  # expect-error
    client.enqueue(SendWelcome, "42")  # expect-error
    client.enqueue(Report)  # expect-error
    client.enqueue_to("urgent", send_welcome, 42, extra=True)  # expect-error
    client.enqueue_in(60, SendWelcome, user="x")  # expect-error
    client.enqueue_at(now, Report, 7)  # expect-error
    fetch.enqueue(b"https://example.com")  # expect-error
    job = send_welcome.enqueue(42)
    if job is not None:
        text: str = job.result()  # expect-error
        print(text)
    print(send_welcome.enqueue(42).id)  # expect-error
