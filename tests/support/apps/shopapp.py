"""An example application's jobs, tested by tests/test_plugin_example.py as a user would."""

from __future__ import annotations

from datetime import timedelta

import resque

SENT: list[str] = []  # stands in for a mail server


@resque.job(queue="orders")
def place_order(order_id: int, email: str) -> None:
    """Takes an order: queues its receipt now and a reminder for tomorrow."""
    send_receipt.enqueue(order_id, email=email)
    remind.enqueue_in(timedelta(days=1), order_id)


@resque.job(queue="mail")
def send_receipt(order_id: int, *, email: str) -> str:
    if order_id <= 0:
        raise ValueError(f"no order {order_id}")
    SENT.append(f"receipt {order_id} to {email}")
    return f"sent {order_id}"


@resque.job(queue="mail")
def remind(order_id: int) -> None:
    SENT.append(f"reminder {order_id}")


@resque.job(queue="reports", status=True)
def mail_count() -> int:
    """A job whose result the caller reads (status=True keeps it)."""
    return len(SENT)
