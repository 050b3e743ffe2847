"""``archsmith report EXP -o report.html``: one self-contained HTML file, escaped."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from archsmith.cli import main
from archsmith.experiment import STORE_FILE

from ._runs import XSS_ERROR, XSS_LABEL, XSS_OP, multi_run, single_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("report")
    single_run(base / "single")
    multi_run(base / "multi")
    return base


def files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def test_a_report_opens_offline_and_draws_every_figure(runs: Path, tmp_path: Path, capsys) -> None:
    before = files(runs)
    out = tmp_path / "report.html"
    assert main(["report", str(runs / "single"), "-o", str(out)]) == 0
    assert "wrote the report" in capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert files(runs) == before  # the experiment is only read
    # plotly.js is inside; nothing is fetched: no src= or href= to anything
    assert "plotly.js v" in text[:2000] or re.search(r"plotly\.js v\d", text)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    # history, curves, parallel and importance are drawn; the one-shot and Pareto plots do not apply
    assert text.count("Plotly.newPlot(") == 4
    assert "Pareto front" not in text and "One-shot" not in text
    assert "Best trials" in text and "trial 11" in text


def test_the_pareto_front_of_several_objectives(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "multi.html"
    assert main(["report", str(runs / "multi"), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Pareto front" in text and text.count("Plotly.newPlot(") == 5


def test_user_strings_are_text_in_the_report(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(runs / "single"), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    body = text[text.index("</head>") :]  # past plotly.js, whose source holds tags of its own
    for raw in (XSS_LABEL, XSS_OP, XSS_ERROR, "<script>alert", "<img src=x"):
        assert raw not in body, raw
    # the summary's and the best trials' tables hold them escaped; the figures' JSON cannot close <script>
    assert html.escape(XSS_OP, quote=True) in body or "\\u003cimg" in body
    scripts = re.findall(r"<script>(.*?)</script>", body, re.S)
    assert scripts and all("</" not in s for s in scripts)


def test_errors(runs: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nothing"), "-o", str(tmp_path / "r.html")]) == 2
    assert "not an archsmith experiment" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / STORE_FILE).write_bytes(b"garbage" * 500)
    assert main(["report", str(tmp_path / "broken"), "-o", str(tmp_path / "r.html")]) == 2  # not a store
    assert "cannot read" in capsys.readouterr().err and not (tmp_path / "r.html").exists()
    source = (runs / "single" / STORE_FILE).read_bytes()
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / STORE_FILE).write_bytes(source[: len(source) // 2])  # its first pages whole
    code = main(["report", str(tmp_path / "damaged"), "-o", str(tmp_path / "r.html")])
    assert code in (1, 2) and "cannot read" in capsys.readouterr().err  # 1 if SQLite opened it, 2 if not
    assert main(["report", str(runs / "single"), "-o", str(tmp_path / "no" / "dir.html")]) == 1
    assert "cannot write --out" in capsys.readouterr().err
