"""Where the real peers live: Ruby resque 3.0 (with resque-web), resque-scheduler 5.0 and Perl
Resque, unmodified, in ``../shared/peers`` beside the project's root (``.ci/run`` installs what
they need with that folder's ``setup.sh``). Tests that drive them call ``require_*``, which
skips the test with the reason when a peer cannot run here (a clone outside this workspace).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("RESQUE_PEERS", ROOT.parent / "shared" / "peers"))
RUBY_RESQUE = PEERS / "ruby-resque-3.0"
RUBY_SCHEDULER = PEERS / "resque-scheduler-5.0"
PERL_RESQUE = PEERS / "resque-perl"


@cache
def _probe(command: tuple[str, ...]) -> str | None:
    """None when ``command`` runs cleanly, else why it does not."""
    if shutil.which(command[0]) is None:
        return f"{command[0]} is not installed (bash {PEERS}/setup.sh installs it)"
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"{' '.join(command)} failed: {done.stderr.strip()[:300]}"
    return None


def _require(folder: Path, command: tuple[str, ...]) -> str:
    if not folder.is_dir():
        pytest.skip(f"the real peer is absent: no {folder} (set RESQUE_PEERS to its folder)")
    reason = _probe(command)
    if reason:
        pytest.skip(reason)
    return str(folder / "lib")


def require_ruby_resque() -> str:
    """Ruby resque 3.0's ``lib`` folder, for ``ruby -I``."""
    lib = RUBY_RESQUE / "lib"
    return _require(RUBY_RESQUE, ("ruby", "-I", str(lib), "-e", 'require "resque"'))


def require_ruby_scheduler() -> tuple[str, str]:
    """``(resque lib, resque-scheduler lib)``, for ``ruby -I ... -I ...``."""
    resque = require_ruby_resque()
    lib = RUBY_SCHEDULER / "lib"
    _require(RUBY_SCHEDULER,
             ("ruby", "-I", resque, "-I", str(lib), "-e", 'require "resque-scheduler"'))
    return resque, str(lib)


def require_perl_resque() -> str:
    """Perl Resque's ``lib`` folder, for ``perl -I``."""
    lib = PERL_RESQUE / "lib"
    return _require(PERL_RESQUE, ("perl", "-I", str(lib), "-MResque", "-e", "1"))
