"""A Flask app whose jobs come from ``resque.contrib.flask``: keywords, a status, an
``async def`` job, each reading the app's config (test_contrib_flask.py)."""

from __future__ import annotations

from flask import Flask, current_app

from resque.contrib.flask import Resque

resque = Resque()


@resque.job(queue="greetings")
def greet(name: str, *, punctuation: str = ".") -> str:
    return f"{current_app.config['GREETING']}, {name}{punctuation}"


@resque.job(queue="greetings")
async def greet_later(name: str, *, punctuation: str = ".") -> str:
    return f"{current_app.config['GREETING']}, {name}{punctuation}"


def create_app(redis_url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(RESQUE_REDIS=redis_url, GREETING="hej")
    resque.init_app(app)
    return app
