"""The `resque` command itself: verbs from optional extras explain themselves when missing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from resque.cli import LazyGroup, main


def test_a_verb_whose_extra_is_missing_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(LazyGroup.lazy, "web", "resque_not_installed_anywhere.cli:web")
    commands = {name: cmd for name, cmd in main.commands.items() if name != "web"}
    monkeypatch.setattr(main, "commands", commands)  # restored after the test
    result = CliRunner().invoke(main, ["web", "--port", "1"])
    assert result.exit_code == 1
    assert "pip install 'resque[web]'" in result.output
    assert "Traceback" not in result.output
    listing = CliRunner().invoke(main, ["--help"])
    assert listing.exit_code == 0
    assert "not installed" in listing.output
