"""How a worker finds a payload's job code (``Registry.resolve``), as a real worker process does it.

Redis data never makes a worker import a module: a dotted class path resolves only through
modules already imported under an allowed prefix, or modules the application named itself
(``--app``, ``--allow``, ``RESQUE_JOB_MODULES``, ``preload``). And a decorated function found
through its module is the same job on the first payload as on later ones.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import redis
from support.workerkit import APPS, Workers, failures, notes, push

from resque.errors import JobNotFound
from resque.jobs import Registry

MODES = [pytest.param("--fork", id="fork"), pytest.param("--no-fork", id="no-fork")]

SIDE_APP = {
    "sideapp/__init__.py": "",
    # Importing this module is the side effect a payload must never cause.
    "sideapp/sideeffect.py": """
        import os
        open(os.environ["SIDEAPP_MARKER"], "w").close()

        class Anything:
            @staticmethod
            def perform(*args):
                pass
    """,
    "sideapp/jobs.py": """
        import workerapp

        class Known:
            @staticmethod
            def perform(tag):
                workerapp.note("known", tag)
    """,
}

PLAIN_APP = {
    "plainapp.py": """
        import resque
        import workerapp

        @resque.job
        def send(tag):
            workerapp.note("sent", tag)
    """,
}


def write_app(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def app_env(root: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(root), str(APPS)]), **extra}


@pytest.mark.parametrize("mode", MODES)
def test_a_payload_naming_a_module_never_imported_does_not_import_it(
    r: redis.Redis, workers: Workers, tmp_path: Path, mode: str
) -> None:
    write_app(tmp_path, SIDE_APP)
    marker = tmp_path / "imported"
    push(r, "q", "sideapp.sideeffect.Anything", 1)
    workers.run("q", mode, "--allow", "sideapp", app=None,
                env=app_env(tmp_path, SIDEAPP_MARKER=str(marker)))
    assert not marker.exists()
    (failure,) = failures(r)
    assert failure["exception"] == "Resque::JobNotFound"


@pytest.mark.parametrize("mode", MODES)
def test_a_class_in_a_module_the_app_imported_resolves_under_an_allowed_prefix(
    r: redis.Redis, workers: Workers, tmp_path: Path, mode: str
) -> None:
    write_app(tmp_path, SIDE_APP)
    push(r, "q", "sideapp.jobs.Known", "a")
    workers.run("q", mode, "--app", "sideapp.jobs", "--allow", "sideapp", app=None,
                env=app_env(tmp_path, SIDEAPP_MARKER=str(tmp_path / "imported")))
    assert (notes(r), failures(r)) == (["known:a"], [])


@pytest.mark.parametrize("mode", MODES)
def test_a_module_named_in_resque_job_modules_serves_its_first_job_as_its_later_ones(
    r: redis.Redis, workers: Workers, tmp_path: Path, mode: str
) -> None:
    write_app(tmp_path, PLAIN_APP)
    push(r, "q", "plainapp.send", "first")
    push(r, "q", "plainapp.send", "second")
    workers.run("q", mode, app=None, env=app_env(tmp_path, RESQUE_JOB_MODULES="plainapp"))
    assert (notes(r), failures(r)) == (["sent:first", "sent:second"], [])


def test_resolve_imports_a_named_module_but_not_a_module_below_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    write_app(tmp_path, {"namedpkg/__init__.py": "", "namedpkg/below.py": "class Job:\n"
                         "    @staticmethod\n    def perform():\n        pass\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    with pytest.raises(JobNotFound):
        registry.resolve("namedpkg.below.Job", ["namedpkg"])
    assert ("namedpkg" in sys.modules, "namedpkg.below" in sys.modules) == (True, False)
    assert registry.resolve("namedpkg.below.Job", ["namedpkg.below"]).__name__ == "Job"
