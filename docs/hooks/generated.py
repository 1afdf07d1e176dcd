"""MkDocs hook: sections of the docs that are generated from the code, so they cannot drift.

A page asks for a generated section with an HTML comment on a line of its own:

* ``<!-- cli-reference -->``: the ``--help`` of ``resque`` and of every verb, as click prints
  it (lazy verbs included, so the scheduler and web extras must be installed).
* ``<!-- settings-table: WorkerSettings -->``: ``resque.settings.settings_table`` of a
  settings class (every field, its default, environment variable and Ruby name).
* ``<!-- golden: ruby-resque-3.0-layout.json working -->``: the keys that the real Ruby
  resque, resque-scheduler or Perl Resque left in Redis at one phase of a golden capture
  (``tests/data/golden``), one row per key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden"
MARKER = re.compile(r"^<!-- (cli-reference|settings-table|golden)(?::\s*(.*?))? -->$", re.M)
WIDTH = 100


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(_expand, markdown)


def _expand(match: re.Match[str]) -> str:
    kind, argument = match.group(1), (match.group(2) or "").strip()
    if kind == "cli-reference":
        return cli_reference()
    if kind == "settings-table":
        return settings_table(argument)
    return golden_table(*argument.split())


# --- the command line -------------------------------------------------------------------------


def cli_reference() -> str:
    from resque.cli import main

    sections = []
    for path, command, ctx in _walk(main, click.Context(main, info_name="resque",
                                                        max_content_width=WIDTH,
                                                        terminal_width=WIDTH)):
        level = "#" * min(2 + len(path), 4)
        title = " ".join(["resque", *path])
        sections.append(f"{level} `{title}`\n\n```text\n{command.get_help(ctx)}\n```\n")
    return "\n".join(sections)


def _walk(command: click.Command, ctx: click.Context,
          path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command,
                                                        click.Context]]:
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx), (*path, name))


# --- settings ---------------------------------------------------------------------------------


def settings_table(class_name: str) -> str:
    from resque import settings

    return settings.settings_table(getattr(settings, class_name))


# --- golden captures --------------------------------------------------------------------------


def golden_table(file_name: str, phase: str) -> str:
    """One row per key: name, type, TTL and the value as stored (long values shortened)."""
    capture = json.loads((GOLDEN / file_name).read_text())
    keys, description = _phase(capture, phase)
    rows = [f"*{_cell(description, 400)}*", "", "| key | type | value as stored |", "|---|---|---|"]
    for name, entry in sorted(keys.items()):
        ttl = f", TTL {entry['ttl']} s" if entry.get("ttl", -1) != -1 else ""
        rows.append(f"| `{_cell(name, 90)}` | {entry['type']}{ttl} | "
                    f"{_value(entry['type'], entry['value'])} |")
    return "\n".join(rows)


def _phase(capture: dict[str, Any], phase: str) -> tuple[dict[str, Any], str]:
    if "phases" in capture:
        for item in capture["phases"]:
            if item["phase"] == phase:
                return item["keys"], item["description"]
    else:  # Perl's capture: scenarios of labelled dumps; "main/2" is the third dump of main
        scenario, _, index = phase.partition("/")
        dump = capture["scenarios"][scenario]["dumps"][int(index or 0)]
        return dump["keys"], dump["label"]
    raise KeyError(f"no phase {phase!r} in the golden capture")


def _value(kind: str, value: Any) -> str:
    if kind == "list":
        shown = [f"`{_cell(element, 160)}`" for element in value[:2]]
        more = f" (+{len(value) - 2} more)" if len(value) > 2 else ""
        return "[" + ", ".join(shown) + "]" + more
    if kind == "hash":
        return ", ".join(f"`{_cell(field, 40)}` → `{_cell(text, 120)}`"
                         for field, text in list(value.items())[:2])
    if kind == "zset":
        return ", ".join(f"`{_cell(str(member[0]), 40)}`" for member in value[:3])
    if kind == "set":
        return ", ".join(f"`{_cell(member, 80)}`" for member in value[:3])
    return f"`{_cell(str(value), 160)}`"


def _cell(text: str, limit: int) -> str:
    """Escaped for a table cell; a long value keeps its head and its tail (where Ruby appends
    ``retried_at``)."""
    if len(text) > limit:
        text = text[: limit // 2] + " … " + text[-(limit // 2 - 3):]
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
