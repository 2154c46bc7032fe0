"""README's examples, pasted into the shell README describes, against the stack `make run`
starts (``exchange up``: broker, worker, demo producer, archiver).

The blocks README marks with ``<!-- checked: ... -->`` run in order in one bash, from
a directory holding ``.venv`` and ``data`` as the project's does, with nothing of the
virtualenv on ``PATH``: the first block has to put ``exchange`` there and take the
keys ``make run`` wrote. Each command's expected answer is README's own comment: a
status (``# 200: ...`` after a ``curl``, or ``# 400 {"errors": [...]}`` on the next
line, whose JSON the answer must equal); any other command must exit 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange_app.broker import free_port
from tests.harness import EXCHANGE, ROOT, Worker, eventually

pytestmark = pytest.mark.integration

#: What marks a block of README as run by this test.
MARK = "<!-- checked: tests/integration/test_readme.py"
BLOCK = re.compile(re.escape(MARK) + r"[^\n]*-->\n```sh\n(.*?)\n```", re.DOTALL)
EXPECTED = re.compile(r"(\d{3})\b\s*(\{.*\})?")
WEB = "localhost:6066"


@dataclass(frozen=True)
class Example:
    """One command of README and the answer README says it gets."""

    line: str
    status: int | None  # an HTTP status, for a curl; None: the command must exit 0
    answer: object | None = None  # the JSON the answer must equal, where README shows it


def examples(readme: str) -> list[Example]:
    """Every command of the checked blocks, in order, with its expected answer."""
    found = []
    for block in BLOCK.findall(readme):
        lines = block.splitlines()
        for at, text in enumerate(lines):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            command, _, comment = text.partition("  #")
            following = lines[at + 1] if at + 1 < len(lines) else ""
            if following.startswith("# ") and EXPECTED.match(following[2:]):
                comment = following[2:]
            expected = EXPECTED.match(comment.strip())
            if command.startswith("curl"):
                assert expected, f"README gives no status for: {text}"
                answer = json.loads(expected.group(2)) if expected.group(2) else None
                found.append(Example(command.strip(), int(expected.group(1)), answer))
            else:
                found.append(Example(command.strip(), None))
    return found


def script(commands: list[Example], port: int) -> str:
    """One bash script: each command between markers, each curl's status after its body
    (a stream is cut after a few seconds)."""
    parts = []
    for n, example in enumerate(commands):
        line = example.line.replace(WEB, f"localhost:{port}")
        if line.startswith("curl"):
            timeout = " --max-time 3" if " -sN " in line else ""
            line = f"curl{timeout} -w '\\n@@@status %{{http_code}}'" + line[len("curl") :]
        parts.append(f"echo '@@@begin {n}'\n{line}\nstatus=$?; echo; echo \"@@@end {n} $status\"")
    parts.append('echo "@@@exchange $(command -v exchange)"')
    return "\n".join(parts) + "\n"


def results(output: str) -> tuple[dict[int, tuple[str, int]], str]:
    """Each command's output and exit status, and where ``exchange`` was found."""
    found = {}
    for n, body, code in re.findall(r"@@@begin (\d+)\n(.*?)\n@@@end \1 (\d+)", output, re.S):
        found[int(n)] = (body, int(code))
    where = re.search(r"@@@exchange (.*)", output)
    return found, where.group(1) if where else ""


def newcomers_path() -> str:
    """``PATH`` without this virtualenv: README's shell has to find ``exchange`` itself."""
    venv = str(Path(EXCHANGE).parent)
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv)


def has_files(root: Path, dataset: str) -> bool:
    return any(root.glob(f"archive/run-*/{dataset}/**/*.parquet"))


def test_readme_examples_answer_as_readme_says(tmp_path: Path) -> None:
    commands = examples((ROOT / "README.md").read_text())
    assert len(commands) >= 20 and commands[0].line == ". .venv/bin/activate"
    home = tmp_path / "checkout"  # what a clone holds after make run: .venv and data
    home.mkdir()
    (home / ".venv").symlink_to(ROOT / ".venv")
    data = home / "data"
    broker_port, web_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")},
        "EXCHANGE_BROKER": f"kafka://127.0.0.1:{broker_port}",
        "EXCHANGE_BROKER_PORT": str(broker_port),
        "EXCHANGE_WEB_PORT": str(web_port),
        "EXCHANGE_DATA_DIR": str(data),
        "EXCHANGE_ARCHIVE_FLUSH_SECONDS": "1",  # the query block needs archived trades
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    stack = Worker(env, tmp_path / "make-run.log", [EXCHANGE, "up"]).launch()
    try:
        # The keys come in a block of their own once the worker answers /health.
        stack.wait_for("The exchange is ready", timeout=240)
        banner = stack.text()[stack.text().index("The exchange is ready") :]
        keys_file = data / "demo-keys.env"
        assert f". .venv/bin/activate && . {keys_file}" in banner
        assert keys_file.stat().st_mode & 0o777 == 0o600

        async def archived() -> None:  # the query block reads trades and reports
            stack.alive()
            assert has_files(data, "trades") and has_files(data, "events")

        asyncio.run(eventually(archived, timeout=120))
        shell = subprocess.run(
            ["bash", "-c", script(commands, web_port)],
            cwd=home,
            env={**env, "PATH": newcomers_path()},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stack.stop()
    answers, where = results(shell.stdout)
    assert where and Path(where).resolve() == Path(EXCHANGE).resolve(), shell.stderr[-2000:]
    problems = []
    for n, example in enumerate(commands):
        body, code = answers.get(n, ("(no output)", -1))
        problem = judged(example, body, code)
        if problem:
            problems.append(f"{example.line[:120]}\n    {problem}")
    assert not problems, "\n".join(problems) + f"\nstderr:\n{shell.stderr[-3000:]}"


def judged(example: Example, body: str, code: int) -> str | None:
    """What is wrong with a command's answer, if anything."""
    if example.status is None:
        if code != 0:
            return f"exit status {code}: {body[-500:]}"
        if example.line.startswith("exchange query") and len(body.strip().splitlines()) < 2:
            return f"no rows: {body!r}"
        if example.line.startswith("exchange export") and " 0 rows" in body:
            return f"an empty export: {body!r}"
        return None
    text, _, status = body.rpartition("\n@@@status ")
    if " -sN " in example.line:  # a stream: cut by --max-time, after some events
        if code != 28 or "event: " not in text:
            return f"exit status {code}, no event in {text[:300]!r}"
    elif code != 0:
        return f"curl exit status {code}"
    if status.strip() != str(example.status):
        return f"status {status.strip()}, not {example.status}: {text[:300]}"
    if example.answer is not None and json.loads(text) != example.answer:
        return f"answered {text[:300]}, README says {json.dumps(example.answer)}"
    if text.startswith(("{", "[")):
        json.loads(text)  # whatever looks like JSON is JSON
    return None
