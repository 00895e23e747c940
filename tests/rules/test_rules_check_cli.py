"""`greenlight rules check [DIR]`: validate topics without serving; exit 1 names file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "questionnaires"


def test_shipped_topics_check_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert "all valid" in out and "lumbar-mri" in out


def test_malformed_topic_fails_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = tmp_path / "knee-mri" / "topic.yaml"
    topic.parent.mkdir()
    topic.write_text(
        "id: knee-mri\ntitle: Knee MRI\ncodes:\n  - system: http://www.ama-assn.org/go/cpt\n"
        "    values: ['73721']\nanswer:\n  covered: sometimes\n",
        encoding="utf-8",
    )
    assert main(["rules", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(topic) in err and "answer.covered" in err
