"""Every example in README.md and docs/ runs, one test per block.

How a page's fenced blocks are treated (write new examples to these rules):

* **Which blocks run.** ``python``, ``console``, ``bash``, ``sh`` and ``shell`` blocks run;
  everything else (``ini`` for a systemd unit, ``yaml``, ``text``, ``dockerfile``...) does not.
* **One folder per page.** A page's blocks run in page order in a fresh folder, against the
  suite's Redis (flushed when the page starts, ``RESQUE_REDIS`` pointing at it), so a page's
  blocks build on each other. Running one block alone runs the page's earlier blocks first.
  ``HOME`` and ``XDG_DATA_HOME`` are in that folder; it is on ``PYTHONPATH``.
* **Files.** A block of any language whose first line is a comment naming a relative path
  (``# jobs.py``, ``# config/schedule.yml``) is written to that path when the page reaches
  it. A Python file is then imported as a module (``import jobs``) to check it; an absolute
  path (``# /etc/systemd/system/x.service``) is only shown. In a Django project (the page
  wrote a ``manage.py``) files are only written: they import nothing until Django is set up,
  and the page's ``manage.py`` commands load them.
* **Python blocks** without a file name are run as a script and must exit 0.
* **Shell blocks** (``bash``, ``sh``, ``shell``) run with ``bash -e`` and must exit 0.
* **Console blocks** are transcripts: each ``$ command`` runs in turn, must exit 0, and its
  output (stdout and stderr together) must equal the lines shown under it once volatile parts
  are normalised (times, pids, host names, ports, durations, failure ids; runs of spaces). A
  command meant to fail shows ``[exit status N]`` as its last output line.
  ``RESQUE_DOCS_UPDATE=1 python -m pytest tests/test_docs.py`` rewrites the shown output
  from a fresh run instead of comparing (review the diff before committing it).
* **pip** is a stand-in that installs nothing: ``pip install`` checks that every requirement
  named (``.`` and ``resque`` mean this project, with its extras) is installed here and that
  each extra exists, and fails otherwise.
* **pytest** in an ``in-clone`` block runs with ``--collect-only -q`` (``PYTEST_ADDOPTS``):
  the project's suite would otherwise run inside itself. Elsewhere (a page's own example
  tests) it runs for real.

Markers, an HTML comment on the line just before a block's fence:

* ``<!-- docs-test: in-clone -->``: run in the repository checkout instead of the page's
  folder, as on a fresh clone (no ``RESQUE_REDIS``): ``pip install -e .``, ``python -m pytest``.
* ``<!-- docs-test: serves up=PROBE -->``: the block's last command runs until stopped (a
  worker without ``--burst``, the dashboard, the scheduler, a pool). The test waits until the
  probe sees it come up, sends TERM to the processes the block started, and expects the block
  to exit 0 (``status=N``: N; a server that re-raises TERM after a clean stop ends as 143).
  Probes: ``workers:N`` (N more workers registered), ``key:NAME`` (the key exists), ``http://...``
  (the address answers 200).
* ``<!-- docs-test: ci -->``: a command that ``.ci/run`` runs (the static checks, the docs
  build): each of its lines must appear in ``.ci/run`` character for character, instead of
  running twice.
* ``<!-- docs-test: skip REASON -->``: not run (a benchmark that takes minutes); the reason is
  the skip message. Keep these rare.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import yaml

from resque.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
RUN = ("python", "console", "bash", "sh", "shell")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
MARKER = re.compile(r"^<!-- docs-test: (in-clone|serves|ci|skip)\b\s*(.*?)\s*-->$")
FILE_HEADER = re.compile(r"^(?:#|//|;)\s*([\w./-]+\.\w+)\s*$")
UPDATE = os.environ.get("RESQUE_DOCS_UPDATE") == "1"
TIMEOUT = 180.0


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str = ""  # in-clone, serves or skip
    argument: str = ""

    @property
    def file_name(self) -> str | None:
        first = self.text.split("\n", 1)[0]
        match = FILE_HEADER.match(first.strip())
        if match and not match.group(1).startswith("/"):
            return match.group(1)
        return None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse_page(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the marker comment before each."""
    blocks: list[Block] = []
    lines = page.read_text().split("\n")
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        body = textwrap.dedent("\n".join(line[len(indent):] if line.startswith(indent) else line
                                         for line in lines[i + 1:end]))
        previous = lines[i - 1].strip() if i else ""
        marker = MARKER.match(previous)
        blocks.append(Block(page, i + 1, lang, body, *(marker.groups() if marker else ())))
        i = end + 1
    return blocks


def pages() -> list[Path]:
    """README.md, CONTRIBUTING.md, then the site's pages in the order of its navigation, then
    any others."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    ordered = [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]

    def walk(entry: object) -> Iterator[str]:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from walk(value)
        elif isinstance(entry, list):
            for item in entry:
                yield from walk(item)

    ordered += [ROOT / "docs" / name for name in walk(config["nav"])]
    ordered += sorted(set((ROOT / "docs").rglob("*.md")) - set(ordered))
    return ordered


ALL_BLOCKS = [block for page in pages() for block in parse_page(page)]
RUNNABLE = [block for block in ALL_BLOCKS if block.lang in RUN]


# --- normalising output -----------------------------------------------------------------------

HOST = socket.gethostname()
VOLATILE = [
    (re.compile(r"\d{4}[-/]\d\d[-/]\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?"
                r"(?: ?(?:[+-]\d\d:?\d\d|Z|UTC|[A-Z]{3,4}))?"), "<time>"),
    (re.compile(r"\b1[5-9]\d{8}\b"), "<epoch>"),
    (re.compile(r"\b[0-9a-f]{16}-[0-9a-f]+\b"), "<job id>"),  # resque.ids: per process
    (re.compile(r"\b\d+-[0-9a-f]{12}\b"), "<failure id>"),
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d+"), r"\1:<port>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|us|µs|s|min)\b"), "<duration>"),
    (re.compile(r"\b[\d,]+ jobs/s\b"), "<rate> jobs/s"),
    (re.compile(r"(pid |\[|:)\d{2,7}(\]|:| )"), r"\1<pid>\2"),
]


def normalise(text: str, folder: Path) -> list[str]:
    text = text.replace(str(folder), "<dir>")
    text = re.sub(rf"\b{re.escape(HOST)}\b", "<host>", text)
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return [re.sub(r"\s+", " ", line).strip() for line in text.rstrip("\n").split("\n")]


# --- the page's folder and environment ---------------------------------------------------------

PIP = '''#!{python}
"""pip for the docs' examples: checks that what a block installs is installed; installs nothing."""
import importlib.metadata as metadata
import re
import sys
import tomllib
from packaging.requirements import Requirement

project = tomllib.load(open({pyproject!r}, "rb"))["project"]


def check(spec, seen):
    spec = re.sub(r"^\\.(?=\\[|$)", "resque", spec)
    requirement = Requirement(spec)
    if requirement.name == "resque":
        for extra in sorted(requirement.extras) or [""]:
            if (requirement.name, extra) in seen:
                continue
            seen.add((requirement.name, extra))
            if extra and extra not in project["optional-dependencies"]:
                sys.exit(f"pip: resque has no extra {{extra!r}}")
            wanted = project["optional-dependencies"][extra] if extra else project["dependencies"]
            for item in wanted:
                check(item, seen)
        return
    if requirement.marker and not requirement.marker.evaluate({{"extra": ""}}):
        return
    try:
        version = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        sys.exit(f"pip: {{requirement.name}} is not installed in the test environment")
    if version not in requirement.specifier:
        sys.exit(f"pip: {{requirement.name}} {{version}} does not satisfy {{requirement}}")


args = sys.argv[1:]
if not args or args[0] != "install":
    sys.exit("pip: the docs' stand-in only checks `pip install`")
seen = set()
for arg in args[1:]:
    if not arg.startswith("-"):
        check(arg, seen)
'''


@dataclass
class PageRun:
    """One page's folder, and which of its blocks have run there."""

    page: Path
    folder: Path
    redis_url: str
    done: set[int] = field(default_factory=set)

    def env(self, block: Block) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDIS_URL", "RESQUE_JOB_MODULES", "QUEUE", "QUEUES", "COUNT")}
        env.update(
            RESQUE_REDIS=self.redis_url, HOME=str(self.folder / "home"),
            XDG_DATA_HOME=str(self.folder / "home" / "data"), PYTHONPATH=str(self.folder),
            PATH=f"{self.folder / 'bin'}{os.pathsep}{Path(sys.executable).parent}"
                 f"{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1", COLUMNS="100", TERM="dumb", NO_COLOR="1",
        )
        if block.marker == "in-clone":  # a fresh clone: no Redis configured
            del env["RESQUE_REDIS"]
            env["PYTEST_ADDOPTS"] = "--collect-only -q -p no:cacheprovider"
        return env

    def cwd(self, block: Block) -> Path:
        return ROOT if block.marker == "in-clone" else self.folder


_runs: dict[Path, PageRun] = {}


def page_run(page: Path, server: EmbeddedRedis, base: Path) -> PageRun:
    run = _runs.get(page)
    if run is None:
        folder = base / page.relative_to(ROOT).with_suffix("").as_posix().replace("/", "_")
        (folder / "home" / "data").mkdir(parents=True)
        (folder / "bin").mkdir()
        pip = folder / "bin" / "pip"
        pip.write_text(PIP.format(python=sys.executable, pyproject=str(ROOT / "pyproject.toml")))
        pip.chmod(0o755)
        server.client().flushall()
        run = _runs[page] = PageRun(page, folder, server.url)
    return run


# --- running blocks ---------------------------------------------------------------------------


def write_file(run: PageRun, block: Block) -> None:
    assert block.file_name is not None
    target = run.folder / block.file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.text + "\n")


def run_block(run: PageRun, block: Block) -> None:
    """Run one block; fail the test with its output if it does not do what it shows."""
    if block.file_name:
        write_file(run, block)
    if block.lang == "python":
        run_python(run, block)
    elif block.lang == "console":
        run_console(run, block)
    elif block.marker == "serves":
        run_serving(run, block)
    else:
        script = run.folder / f"_block_{block.line}.sh"
        script.write_text(block.text + "\n")
        check(run, block, ["bash", "-e", str(script)])


def check(run: PageRun, block: Block, command: list[str], status: int = 0) -> str:
    done = subprocess.run(command, cwd=run.cwd(block), env=run.env(block),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    if not UPDATE or block.lang != "console":
        assert done.returncode == status, f"{block.id} exited {done.returncode}:\n{done.stdout}"
    if done.returncode:
        return f"{done.stdout}[exit status {done.returncode}]\n"
    return done.stdout


def run_python(run: PageRun, block: Block) -> None:
    if block.file_name:
        if not block.file_name.endswith(".py"):
            return
        if (run.folder / "manage.py").exists():  # Django's: loaded by the page's manage.py
            return
        module = block.file_name[:-3].replace("/", ".")
        check(run, block, [sys.executable, "-c", f"import {module}"])
        return
    script = run.folder / f"_block_{block.line}.py"
    script.write_text(block.text + "\n")
    check(run, block, [sys.executable, str(script)])


EXIT_STATUS = re.compile(r"^\[exit status (\d+)\]$")


def expected_status(shown: list[str]) -> int:
    """A transcript's last line ``[exit status N]`` says the command fails, and how."""
    last = EXIT_STATUS.match(shown[-1]) if shown else None
    return int(last.group(1)) if last else 0


def transcript(text: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines and the output shown under each."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"a console block starts with '$ ', not {line!r}")
    return steps


def run_console(run: PageRun, block: Block) -> None:
    fresh: list[str] = []
    for command, shown in transcript(block.text):
        output = check(run, block, ["bash", "-c", command], expected_status(shown))
        fresh += [f"$ {command}", *output.rstrip("\n").split("\n")] if output.strip() else \
            [f"$ {command}"]
        if not UPDATE:
            assert normalise(output, run.folder) == normalise("\n".join(shown), run.folder), (
                f"{block.id}: `{command}` printed\n{output}\nbut the page shows\n"
                + "\n".join(shown) + "\n(RESQUE_DOCS_UPDATE=1 rewrites the page's output)")
    if UPDATE and "\n".join(fresh) != block.text:
        source = block.page.read_text()
        old = f"```console\n{block.text}\n```"
        assert source.count(old) == 1, f"{block.id}: cannot find the block to update"
        block.page.write_text(source.replace(old, f"```console\n{chr(10).join(fresh)}\n```"))


def run_serving(run: PageRun, block: Block) -> None:
    """Start the block, wait for its probe, TERM what it started, expect exit status 0."""
    options = dict(part.split("=", 1) for part in block.argument.split())
    probe, expected = options.get("up", ""), int(options.get("status", "0"))
    script = run.folder / f"_block_{block.line}.sh"
    script.write_text(block.text + "\n")
    log = run.folder / f"_block_{block.line}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(["bash", "-e", str(script)], cwd=run.cwd(block),
                                   env=run.env(block), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(process, probe, run, log)
        for child in children(process.pid):
            os.kill(child, signal.SIGTERM)
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert status == expected, f"{block.id} exited {status} after TERM:\n{log.read_text()}"


def wait_until_up(process: subprocess.Popen[bytes], probe: str, run: PageRun,
                  log: Path) -> None:
    client = redis.Redis.from_url(run.redis_url)
    before = int(client.scard("resque:workers"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode} before it came up "
                                 f"({probe}):\n{log.read_text()}")
        if is_up(probe, client, before):
            return
        time.sleep(0.2)
    raise AssertionError(f"did not come up within 60 s ({probe}):\n{log.read_text()}")


def is_up(probe: str, client: redis.Redis, workers_before: int) -> bool:
    kind, _, value = probe.partition(":")
    if kind == "workers":
        return int(client.scard("resque:workers")) >= workers_before + int(value)
    if kind == "key":
        return bool(client.exists(value))
    if kind in ("http", "https"):
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False
    raise AssertionError(f"unknown probe {probe!r}: workers:N, key:NAME or a URL")


def children(pid: int) -> list[int]:
    """The processes a block's shell started (their own children are theirs to stop)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("docs")
    yield folder
    _runs.clear()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_example_runs(block: Block, redis_server: EmbeddedRedis, docs_folder: Path) -> None:
    if block.marker == "skip":
        pytest.skip(block.argument or "marked skip without a reason")
    if block.marker == "ci":
        assert commands(block) and set(commands(block)) <= ci_lines(), \
            f"{block.id}: .ci/run does not run {sorted(set(commands(block)) - ci_lines())}"
        return
    run = page_run(block.page, redis_server, docs_folder)
    index = ALL_BLOCKS.index(block)
    for earlier in ALL_BLOCKS[:index]:  # what the page built before this block
        position = ALL_BLOCKS.index(earlier)
        if earlier.page != block.page or position in run.done:
            continue
        run.done.add(position)
        if earlier.file_name:
            write_file(run, earlier)
        if earlier.lang in RUN and earlier.marker not in ("skip", "ci"):
            run_block(run, earlier)
    run.done.add(index)
    run_block(run, block)


def commands(block: Block) -> list[str]:
    """A shell block's commands, without comments."""
    lines = (line.split(" #")[0].strip() for line in block.text.split("\n"))
    return [line for line in lines if line and not line.startswith("#")]


def ci_lines() -> set[str]:
    return {line.strip() for line in (ROOT / ".ci" / "run").read_text().split("\n")}


def test_ci_runs_the_readmes_test_command() -> None:
    """.ci/run runs the README's test command character for character."""
    first = next(b for b in ALL_BLOCKS if b.page.name == "README.md" and b.lang in RUN)
    command = next(line for line in commands(first) if "pytest" in line)
    assert command in ci_lines()


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_links_of_the_repository_pages_resolve() -> None:
    """The site's own links are checked by ``mkdocs build --strict``; README, CONTRIBUTING
    and CHANGELOG are not in it, so their relative links are checked here."""
    pages = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")
    targets = [t for page in pages for t in LINK.findall((ROOT / page).read_text())
               if "://" not in t]
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert len(targets) > 10 and missing == []


def test_every_skip_gives_a_reason() -> None:
    reasonless = [b.id for b in ALL_BLOCKS if b.marker == "skip" and not b.argument]
    assert reasonless == []
