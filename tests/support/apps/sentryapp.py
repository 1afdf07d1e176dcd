"""A job app whose failures go to Sentry through a transport that writes each event to the
file named by ``SENTRYAPP_EVENTS`` (one JSON per line): Sentry's real SDK, no network."""

from __future__ import annotations

import json
import os
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

import resque


class FileTransport(Transport):
    """Records every event the SDK sends, instead of sending it."""

    def capture_envelope(self, envelope: Envelope) -> None:
        with open(os.environ["SENTRYAPP_EVENTS"], "a", encoding="utf-8") as out:
            for item in envelope.items:
                if item.type == "event" and item.payload.json is not None:
                    out.write(json.dumps(item.payload.json) + "\n")


sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=FileTransport)


@resque.job(queue="errors")
def explode(n: int) -> None:
    raise ValueError(f"boom {n}")


@resque.job(queue="errors")
def explode_politely(n: int, *, reason: str) -> None:
    raise ValueError(f"boom {n}: {reason}")


@resque.job(queue="errors")
def fine(n: int) -> Any:
    return n
