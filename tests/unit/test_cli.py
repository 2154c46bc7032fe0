"""The command line as a newcomer meets it: the archive ``make run`` wrote is found, and a
mistake is one line on stderr with exit status 2, never a traceback."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from exchange_app.archive import open_archive
from exchange_app.cli import main
from exchange_app.demo import PRODUCER_ACCOUNTS, TRADER_ACCOUNTS, keys_script, write_keys
from exchange_app.processes import ROOT
from exchange_app.settings import get_settings
from tests.unit.test_archive import TRADES, rows, trade


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data directory, no EXCHANGE_ARCHIVE_URL: the shell of a newcomer."""
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EXCHANGE_ARCHIVE_URL", raising=False)
    monkeypatch.delenv("EXCHANGE_KEY", raising=False)
    monkeypatch.setenv("EXCHANGE_AUTH", "on")
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def archive_run(data_dir: Path, started: str, trades: int) -> Path:
    """An archive as ``make run`` leaves it: ``<data dir>/archive/run-<started>``."""
    root = data_dir / "archive" / f"run-{started}"
    archive = open_archive(str(root))
    archive.write_batch(TRADES, "tt", 0, rows([trade(i + 1) for i in range(trades)]), 0, trades - 1)
    return root


def assert_one_line_refusal(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_query_reads_the_newest_make_run_archive(data_dir: Path) -> None:
    archive_run(data_dir, "20260101T090000Z", trades=2)
    newest = archive_run(data_dir, "20260102T090000Z", trades=3)
    result = run("query", "SELECT count(*) AS n FROM trades")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["n", "3"]
    assert result.stderr.strip() == f"(read the archive {newest})"


def test_query_and_export_read_the_archive_named(data_dir: Path, tmp_path: Path) -> None:
    older = archive_run(data_dir, "20260101T090000Z", trades=2)
    archive_run(data_dir, "20260102T090000Z", trades=3)
    result = run("query", "--archive", str(older), "SELECT count(*) AS n FROM trades")
    assert result.stdout.split() == ["n", "2"]
    out = tmp_path / "csv"
    result = run("export", "--from-archive", "--archive", str(older), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "successful_orders.csv: 2 rows" in result.stdout
    assert len((out / "successful_orders.csv").read_text().splitlines()) == 3


def test_export_from_archive_finds_the_newest_run_and_its_day(data_dir: Path, tmp_path) -> None:
    archive_run(data_dir, "20260102T090000Z", trades=3)
    out = tmp_path / "csv"
    result = run("export", "--from-archive", "--date", "2023-03-12", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "successful_orders.csv: 3 rows" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["query", "SELECT count(*) FROM trades"], ["no archive at", "--archive"]),
        (["query", "--archive", "{missing}", "SELECT 1"], ["no archive at {missing}"]),
        (["query", "--url", "{missing}", "SELECT 1"], ["no archive at {missing}"]),
        (["export", "--from-archive", "--archive", "{missing}", "--out", "{out}"], ["{missing}"]),
        (["export", "--from-archive", "--date", "2023-13-45"], ["--date", "2023-13-45"]),
        (["export", "--date", "2023-03-12", "--out", "{out}"], ["--from-archive"]),
        (["replay", "--archive-date", "12/03/2023"], ["--archive-date", "12/03/2023"]),
        (["latency"], ["--key", "EXCHANGE_KEY"]),
    ],
)
def test_a_mistake_is_one_line_and_exit_status_2(data_dir: Path, args, words) -> None:
    """Nothing is created on the way: not the archive named, not the output."""
    places = {"missing": str(data_dir.parent / "nonexistent"), "out": str(data_dir / "out")}
    assert_one_line_refusal(
        run(*(a.format(**places) for a in args)), *(w.format(**places) for w in words)
    )
    assert not any(Path(place).exists() for place in places.values())


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELEC count(*) FROM trades", ["Parser Error"]),
        ("SELECT count(*) FROM trade", ["trade", "does not exist"]),
        ("SELECT nothing FROM trades", ["nothing"]),
    ],
)
def test_bad_sql_is_one_line(data_dir: Path, sql: str, words: list[str]) -> None:
    archive_run(data_dir, "20260102T090000Z", trades=1)
    assert_one_line_refusal(run("query", sql), *words)


def test_an_archive_not_written_yet_says_when_it_will_be(data_dir: Path) -> None:
    (data_dir / "archive" / "run-20260102T090000Z").mkdir(parents=True)
    assert_one_line_refusal(run("query", "SELECT * FROM trades"), "holds nothing yet", "30 s")


def every_command(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_command(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("command", list(every_command(main)), ids=" ".join)
def test_help_texts_are_plain_text(command: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "``" not in result.stdout and ":class:" not in result.stdout


def test_every_latency_option_says_what_it_is() -> None:
    latency = main.commands["latency"]
    assert all(option.help for option in latency.params if isinstance(option, click.Option))


def test_demo_keys_are_written_for_the_owner_only(tmp_path: Path) -> None:
    traders = [("alice", "ek_a"), ("bob", "ek_b")]
    path = tmp_path / "data" / "demo-keys.env"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_keys(path, traders, "ek_admin")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == keys_script(traders, "ek_admin")
    assert "export KEY=ek_a\n" in path.read_text()
    assert "export ADMIN_KEY=ek_admin\n" in path.read_text()
    assert "export BOB_KEY=ek_b\n" in path.read_text()


def test_the_demo_producer_trades_as_accounts_no_newcomer_is_given() -> None:
    for path in (ROOT / "Procfile", ROOT / "docker-compose.yml"):
        text = path.read_text()
        assert f"--accounts {','.join(PRODUCER_ACCOUNTS)}" in text, path
        for account in TRADER_ACCOUNTS:
            assert account not in text.split("--accounts", 1)[1].split()[0], path


def test_waiting_for_the_broker_logs_no_refused_connection(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``make run``'s producer starts with the broker: it used to log every refusal."""
    from exchange_app.broker import free_port
    from exchange_app.broker.admin import ensure_topics
    from exchange_app.cli import _with_broker

    bootstrap = [f"127.0.0.1:{free_port()}"]
    with pytest.raises(click.ClickException, match="unreachable"):
        asyncio.run(_with_broker(lambda: ensure_topics(bootstrap, ["t"], partitions=1), wait=1.0))
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")]
