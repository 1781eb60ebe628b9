"""The drop folder with an events file as its sink: files moved once converted, failures set aside with
their reason, the same file twice published once, a crash in the middle of a file repaired on restart."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import orjson
from typer.testing import CliRunner

from paysentry.connectors.cli import FAULT_ENV, connect_app
from paysentry.connectors.formats import parse_format
from paysentry.connectors.sinks import FileSink
from paysentry.connectors.watch import Watcher, WatchOptions
from tests.connectors.support import SAMPLES, assert_no_clear_account

runner = CliRunner()
ENTRY = "from paysentry.connectors.cli import connect_app; connect_app()"


def _drop(folder: Path, *names: str, rename: str | None = None) -> None:
    for name in names:
        shutil.copy(SAMPLES / name, folder / (rename or name))
        old = time.time() - 60  # complete: unchanged for longer than --settle
        os.utime(folder / (rename or name), (old, old))


def _keys(path: Path) -> list[tuple[str, str]]:
    return [(e["type"], e["event_id"]) for e in map(orjson.loads, path.read_bytes().splitlines())]


def _watch(folder: Path, out: Path, *extra: str) -> str:
    result = runner.invoke(connect_app, ["watch", str(folder), "--out", str(out), "--once", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_files_published_moved_and_failures_set_aside(tmp_path: Path) -> None:
    folder, out = tmp_path / "drop", tmp_path / "events.jsonl"
    folder.mkdir()
    _drop(folder, "pain002_v03.xml", "pain001_v03.xml", "camt054_v02.xml")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.7\n" + bytes(300))
    os.utime(folder / "scan.pdf", (time.time() - 60, time.time() - 60))
    (folder / "upload.xml.part").write_bytes(b"<half")  # still being uploaded: left alone
    cut = (SAMPLES / "pain001_v09.xml").read_bytes()[:900]
    (folder / "cut.xml").write_bytes(cut)
    os.utime(folder / "cut.xml", (time.time() - 60, time.time() - 60))
    (folder / "fresh.xml").write_bytes(b"<x/>")  # modified just now: not complete yet
    output = _watch(folder, out, "--settle", "30")
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 9
    assert [k[0] for k in keys[:3]] == ["payment.released"] * 3  # the pain.001 went first, the pain.002 found it
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["camt054_v02.xml", "pain001_v03.xml",
                                                                   "pain002_v03.xml"]  # fmt: skip
    assert sorted(p.name for p in (folder / "failed").iterdir()) == ["cut.xml", "cut.xml.reason", "scan.pdf",
                                                                     "scan.pdf.reason"]  # fmt: skip
    assert "not well-formed XML" in (folder / "failed" / "cut.xml.reason").read_text()
    assert "not a known payment file" in (folder / "failed" / "scan.pdf.reason").read_text()
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["fresh.xml", "upload.xml.part"]
    assert "done pain001_v03.xml: published 3" in output and "failed cut.xml" in output
    assert_no_clear_account(output)


def test_the_same_file_twice_publishes_once(tmp_path: Path) -> None:
    folder, out = tmp_path / "drop", tmp_path / "events.jsonl"
    folder.mkdir()
    _drop(folder, "pain001_v03.xml")
    _watch(folder, out, "--settle", "0")
    before = out.read_bytes()
    _drop(folder, "pain001_v03.xml", rename="pain001_again.xml")  # the bank's SFTP delivered it twice
    output = _watch(folder, out, "--settle", "0")
    assert out.read_bytes() == before
    assert "duplicate pain001_again.xml: same content as pain001_v03.xml" in output
    assert (folder / "done" / "pain001_again.xml").is_file()
    # Another file with some of the same events (a statement repeating a notification): only the new ones.
    statement = (SAMPLES / "camt054_v02.xml").read_bytes()
    (folder / "n1.xml").write_bytes(statement)
    (folder / "n2.xml").write_bytes(statement.replace(b'<Amt Ccy="EUR">1000.00</Amt>', b'<Amt Ccy="EUR">999.00</Amt>'))
    for name in ("n1.xml", "n2.xml"):
        os.utime(folder / name, (time.time() - 60, time.time() - 60))
    output = _watch(folder, out, "--settle", "0")
    assert "published 3" in output and "published 0" in output and "3 already out" in output
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 6


def test_a_crash_in_the_middle_of_a_file_publishes_nothing_twice(tmp_path: Path) -> None:
    folder, out = tmp_path / "drop", tmp_path / "events.jsonl"
    folder.mkdir()
    _drop(folder, "pain001_v03.xml")
    command = [sys.executable, "-c", ENTRY, "watch", str(folder), "--out", str(out), "--once", "--batch", "1"]
    crashed = subprocess.run(command, env={**os.environ, FAULT_ENV: "published:2"}, capture_output=True, timeout=120)
    assert crashed.returncode == -9  # killed after the 2nd event was written, before the ledger knew
    assert len(_keys(out)) == 2 and (folder / "pain001_v03.xml").is_file()
    with out.open("ab") as handle:  # and a torn line, as a crash in the middle of a write leaves one
        handle.write(b'{"type":"payment.rel')
    restarted = subprocess.run(command, capture_output=True, timeout=120)
    assert restarted.returncode == 0, restarted.stderr
    keys = _keys(out)
    assert len(keys) == len(set(keys)) == 3
    assert [k[1].rsplit("/", 1)[1] for k in keys] == ["PAY-2026-000101", "PAY-2026-000102", "PAY-2026-000103"]
    assert b"published 1" in restarted.stderr and b"2 already out" in restarted.stderr
    assert (folder / "done" / "pain001_v03.xml").is_file()


def test_watch_options(tmp_path: Path) -> None:
    both = runner.invoke(connect_app, ["watch", str(tmp_path), "--once"])
    assert both.exit_code == 2 and "exactly one of --kafka" in both.output
    missing = runner.invoke(connect_app, ["watch", str(tmp_path / "nope"), "--out", str(tmp_path / "e"), "--once"])
    assert missing.exit_code == 2 and "is not a directory" in missing.output


class _DiskFullOnce(FileSink):
    """An events file on a disk that is full for the first batch (a full disk cannot be made here)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.full = True

    async def publish(self, batch: list) -> dict[str, int]:
        if self.full:
            self.full = False
            with self.path.open("ab") as handle:
                handle.write(b'{"type":"payment.released","eve')  # what a write cut short leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        return await super().publish(batch)


async def test_a_sink_failure_leaves_the_file_for_the_next_look(tmp_path: Path) -> None:
    folder, out = tmp_path / "drop", tmp_path / "events.jsonl"
    folder.mkdir()
    _drop(folder, "pain001_v03.xml")
    sink = _DiskFullOnce(out)
    options = WatchOptions(folder, parse_format("auto"), UTC, settle=0)
    async with Watcher(options, sink) as watcher:
        [failed] = await watcher.scan()
        assert (failed.status, failed.reason) == ("error", "OSError: [Errno 28] No space left on device")
        assert (folder / "pain001_v03.xml").is_file()
    async with Watcher(options, sink) as watcher:  # a restart: the torn line is dropped, the file published
        [done] = await watcher.scan()
    assert (done.status, done.published) == ("published", 3)
    assert len(_keys(out)) == 3


def test_one_watcher_per_folder(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    (folder / ".paysentry").mkdir(parents=True)
    with (folder / ".paysentry" / "lock").open("ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = runner.invoke(connect_app, ["watch", str(folder), "--out", str(tmp_path / "e.jsonl"), "--once"])
    assert result.exit_code == 2 and "another watcher is working on" in result.output


def test_a_file_name_is_shown_as_text(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    _drop(folder, "pain001_v03.xml", rename="[red]pay.xml")
    output = _watch(folder, tmp_path / "e.jsonl", "--settle", "0")
    assert "done [red]pay.xml: published 3" in output


def test_a_mapping_applies_to_csv_files_and_bank_files_are_recognised(tmp_path: Path) -> None:
    folder, out = tmp_path / "drop", tmp_path / "events.jsonl"
    folder.mkdir()
    _drop(folder, "vendor_master_utf8_bom.csv", "pain001_v09.xml")
    mapping = Path(__file__).parents[2] / "config" / "connectors" / "vendor-master.yaml"
    output = _watch(folder, out, "--settle", "0", "--format", f"csv:{mapping}")
    assert "done pain001_v09.xml: published 2" in output and "done vendor_master_utf8_bom.csv: published 4" in output
    assert (folder / "done" / "vendor_master_utf8_bom.csv.rejected").read_bytes().count(b"\n") == 1
