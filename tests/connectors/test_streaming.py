"""Files are converted as streams: memory does not grow with the file, a refusal found at the end of a file
takes back what it already produced (`convert`) or publishes nothing (the drop folder), and the limits
hold while streaming."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from paysentry.connectors import synthetic, xmlsafe
from paysentry.connectors.base import FileRefused, Limits
from paysentry.connectors.cli import connect_app
from tests.connectors.support import MAPPINGS, SAMPLES, convert, refused
from tests.harness.conversion_memory import assert_memory_flat, measure_conversion

runner = CliRunner()


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # Sizes kept small enough for the suite (tracemalloc slows conversion down); bench/connectors_throughput.py
    # shows the same at 100,000 transactions (~13 MB here at 30,000).
    small = measure_conversion(synthetic.write_pain001, 3_000, tmp_path / "small.xml")
    large = measure_conversion(synthetic.write_pain001, 30_000, tmp_path / "large.xml")
    assert_memory_flat(small, large)


def _pain001(transactions: int, folder: Path, control: str | None = None) -> Path:
    path = folder / f"p{transactions}.xml"
    synthetic.write_pain001(path, transactions)
    if control is not None:
        text = path.read_text()
        start = text.index("<CtrlSum>") + len("<CtrlSum>")
        path.write_text(text[:start] + control + text[text.index("</CtrlSum>") :])
    return path


def test_control_sum_wrong_at_the_end_takes_the_file_back_out(tmp_path: Path) -> None:
    good, bad = _pain001(30, tmp_path), _pain001(40, tmp_path, control="1.00")
    out = tmp_path / "events.jsonl"
    result = runner.invoke(connect_app, ["convert", str(good), str(bad), "--out", str(out)])
    assert result.exit_code == 1, result.output
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["payment_id"] for e in events] == [synthetic.end_to_end(n) for n in range(30)]
    assert "CtrlSum 1.00 is not the sum" in result.output
    rejected = [orjson.loads(line) for line in (tmp_path / "events.jsonl.rejected").read_bytes().splitlines()]
    assert rejected[-1]["file"] == str(bad) and "CtrlSum" in rejected[-1]["reason"]
    # The refused file's payments are forgotten too: the same run, now whole, converts in full afterwards.
    (tmp_path / "later").mkdir()
    fixed = _pain001(40, tmp_path / "later")  # the same 40 payments with a control sum that adds up
    again = runner.invoke(connect_app, ["convert", str(bad), str(fixed), "--out", str(out)])
    assert again.exit_code == 1 and len(out.read_bytes().splitlines()) == 40


def test_a_csv_broken_in_its_last_line_takes_its_rows_back_out(tmp_path: Path) -> None:
    export = tmp_path / "zahlungen.csv"
    synthetic.write_ap_csv(export, 20)
    with export.open("ab") as handle:
        handle.write(b"ZA-X;BEZAHLT;\x00\x01\r\n")
    out = tmp_path / "events.jsonl"
    mapping = f"csv:{MAPPINGS / 'generic-ap.yaml'}"
    result = runner.invoke(connect_app, ["convert", str(export), "--format", mapping, "--out", str(out)])
    assert result.exit_code == 1 and out.read_bytes() == b""
    assert "NUL byte) at line 22" in result.output


def test_the_drop_folder_publishes_nothing_of_a_file_refused_at_its_end(tmp_path: Path) -> None:
    folder, out = tmp_path / "drop", tmp_path / "events.jsonl"
    folder.mkdir()
    _pain001(25, folder, control="1.00")
    _pain001(15, folder)
    for path in folder.iterdir():
        os.utime(path, (time.time() - 60, time.time() - 60))
    result = runner.invoke(connect_app, ["watch", str(folder), "--out", str(out), "--once", "--batch", "4"])
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["payment_id"] for line in out.read_bytes().splitlines()] == [
        synthetic.end_to_end(n) for n in range(15)
    ]
    assert "CtrlSum 1.00 is not the sum" in (folder / "failed" / "p25.xml.reason").read_text()
    assert (folder / "done" / "p15.xml").is_file() and "done p15.xml: published 15" in result.output


def test_a_doctype_past_the_head_of_the_file_is_refused() -> None:
    data = (SAMPLES / "pain001_v03.xml").read_text()
    padded = data.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>' + " " * 100_000 + '<!DOCTYPE d [<!ENTITY a "b">]>',
    )
    walked = xmlsafe.walk(io.BytesIO(padded.encode()), Limits(), "not pain.001", "CstmrCdtTrfInitn", "CdtTrfTxInf",
                          "PmtInf")  # fmt: skip
    with pytest.raises(FileRefused, match="document type declaration"):
        next(walked)


def test_an_element_out_of_place_between_blocks_refuses_the_file() -> None:
    data = (SAMPLES / "pain001_v03.xml").read_text()
    stray = data.replace("</PmtInf>", "</PmtInf><Stray>1</Stray>", 1)
    assert "element 'Stray' is not expected" in refused(convert("stray.xml", data=stray.encode()))
    after = data.replace("</CdtTrfTxInf>\n    </PmtInf>", "</CdtTrfTxInf><Stray>1</Stray></PmtInf>", 1)
    assert after != data and "element 'Stray' is not expected" in refused(convert("late.xml", data=after.encode()))


def test_one_record_with_too_many_elements_is_refused() -> None:
    data = (SAMPLES / "pain001_v03.xml").read_text()
    swollen = data.replace("<RmtInf>", "<RmtInf>" + "<Ustrd>x</Ustrd>" * 300, 1)
    reason = refused(convert("swollen.xml", data=swollen.encode(), limits=Limits(max_record_elements=200)))
    assert "more than 200 elements in one record" in reason


def test_a_csv_line_without_end_is_refused() -> None:
    header = (SAMPLES / "vendor_master_utf8_bom.csv").read_bytes().splitlines(keepends=True)[0]
    data = header + b"V1," + b"x" * 5000
    result = convert("v.csv", f"csv:{MAPPINGS / 'vendor-master.yaml'}", data=data, limits=Limits(max_line_bytes=4096))
    assert "a line longer than the 4096 bytes allowed" in refused(result)


def test_a_big_camt054_streams_its_bookings(tmp_path: Path) -> None:
    path = tmp_path / "bookings.xml"
    synthetic.write_camt054(path, 1200)
    result = convert("bookings.xml", data=path.read_bytes())
    assert result.refused is None and result.rejections == []
    assert [e["payment_id"] for e in result.events] == [synthetic.end_to_end(n) for n in range(1200)]
    assert {e["fee"] for e in result.events} == {"2.50"}
