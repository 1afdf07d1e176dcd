"""The pool's config: queue lists and how many workers each, as resque-pool's YAML::

    "high,low": 2
    mail: 1
    production:          # an environment section, merged over the top level when
      mail: 3            # RESQUE_ENV / RACK_ENV / RAILS_ENV (or --environment) names it

or the same as JSON, or ``-w`` specs on the command line (``high,low:2``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from resque.errors import ResqueError

DEFAULT_CONFIGS = ("resque-pool.yml", "config/resque-pool.yml")


class PoolConfigError(ResqueError, ValueError):
    """A pool config that cannot be used; the message says which entry and why."""


Config = dict[str, int]
"""Queue list (``"high,low"``) -> number of workers."""


def parse_config(data: Any, environment: str | None = None, source: str = "config") -> Config:
    """Validate a decoded config; an environment section named ``environment`` is merged in.

    Values that are mappings are environment sections (resque-pool's layout); the others
    must be counts >= 0. Queue lists are normalised (``"high, low"`` -> ``"high,low"``).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PoolConfigError(f"{source}: expected a mapping of queues to counts, not {data!r}")
    merged: dict[Any, Any] = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    section = data.get(environment) if environment else None
    if isinstance(section, Mapping):
        merged.update(section)
    config: Config = {}
    for queues, count in merged.items():
        if isinstance(count, Mapping):
            raise PoolConfigError(f"{source}: {queues!r} nests a section inside a section")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PoolConfigError(
                f"{source}: the count for {queues!r} must be a whole number >= 0, not {count!r}"
            )
        names = [q.strip() for q in str(queues).split(",")]
        if not all(names) or any(any(ch.isspace() for ch in q) for q in names):
            raise PoolConfigError(f"{source}: {queues!r} is not a comma-separated queue list")
        key = ",".join(names)
        config[key] = config.get(key, 0) + count
    return config


def parse_inline(specs: Sequence[str]) -> Config:
    """``-w`` values: ``"high,low:2"`` (the count after the last colon, default 1), or a
    JSON object ``'{"high,low": 2}'``; several are added together."""
    config: Config = {}
    for spec in specs:
        text = spec.strip()
        if text.startswith("{"):
            try:
                part = parse_config(json.loads(text), source=f"-w {spec!r}")
            except json.JSONDecodeError as exc:
                raise PoolConfigError(f"-w {spec!r} is not valid JSON: {exc}") from None
        else:
            queues, sep, count = text.rpartition(":")
            if not sep:
                queues, count = text, "1"
            if not count.isdigit():
                raise PoolConfigError(f"-w {spec!r}: expected QUEUES[:COUNT], e.g. high,low:2")
            part = parse_config({queues: int(count)}, source=f"-w {spec!r}")
        for queues, count_ in part.items():
            config[queues] = config.get(queues, 0) + count_
    return config


def load_config(path: str | os.PathLike[str], environment: str | None = None) -> Config:
    """Read a YAML (or JSON) pool config file. YAML needs PyYAML (the ``scheduler`` extra)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PoolConfigError(f"cannot read the pool config {path}: {exc.strerror}") from None
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            return parse_config(json.loads(text), environment, str(path))
        except json.JSONDecodeError as exc:
            if path.suffix == ".json":
                raise PoolConfigError(f"{path} is not valid JSON: {exc}") from None
    try:
        import yaml
    except ImportError:
        raise PoolConfigError(
            f"{path} is YAML, which needs PyYAML: pip install 'resque[scheduler]' (or "
            "PyYAML), or write the config as JSON, or pass -w 'high,low:2'"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PoolConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, environment, str(path))


def find_config(explicit: str | None = None) -> Path | None:
    """``explicit``, else the first of ``resque-pool.yml`` and ``config/resque-pool.yml``."""
    if explicit:
        return Path(explicit)
    return next((Path(p) for p in DEFAULT_CONFIGS if Path(p).is_file()), None)


def multiply(config: Config, count: int) -> Config:
    """``COUNT``: every entry's number of workers times ``count``."""
    return {queues: n * count for queues, n in config.items()}
