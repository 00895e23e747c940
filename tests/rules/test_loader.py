"""Topic files: the shipped ones load; a malformed one is refused naming the file and the field."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from app.rules.loader import TopicLoadError, load_topics

SHIPPED = Path(__file__).resolve().parents[2] / "questionnaires"

VALID = {
    "id": "knee-mri",
    "title": "MRI of the knee",
    "codes": [{"system": "http://www.ama-assn.org/go/cpt", "values": ["73721"]}],
    "answer": {"covered": "covered", "pa-needed": "auth-needed"},
}


def _write(root: Path, topic: Mapping[str, object], folder: str | None = None) -> Path:
    path = root / (folder or str(topic.get("id", "broken"))) / "topic.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(topic), encoding="utf-8")
    return path


def test_shipped_topics_load() -> None:
    topics = load_topics(SHIPPED)
    assert {"lumbar-mri", "home-oxygen", "office-visit", "adalimumab", "bariatric-surgery"} <= set(
        topics.topics
    )
    assert len(topics.topics["office-visit"].codes) == 9  # 99202-99205 and 99211-99215


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"answer": {"covered": "maybe"}}, "answer.covered"),
        ({"answer": {"pa-needed": "auth-needed"}}, "(file)"),
        ({"colour": "green"}, "colour"),
        ({"codes": []}, "codes"),
        ({"codes": [{"system": "http://www.ama-assn.org/go/cpt"}]}, "codes[0]"),
        ({"codes": [{"system": "x", "ranges": [["99215", "99202"]]}]}, "codes[0].ranges"),
        ({"codes": [{"system": "x", "ranges": [["A1", "B2"]]}]}, "codes[0].ranges"),
        (
            {
                "conditions": [
                    {"name": "c", "when": "%order.code.where(", "then": {"pa-needed": "no-auth"}}
                ]
            },
            "conditions[0].when",
        ),
        (
            {
                "conditions": [
                    {"name": "c", "when": "%nosuch.exists()", "then": {"pa-needed": "no-auth"}}
                ]
            },
            "conditions[0].when",
        ),
        (
            {
                "site-of-care": [
                    {
                        "name": "s",
                        "when": "%questionnaireResponse.exists()",
                        "propose-location": "Location/x",
                        "summary": "s",
                        "detail": "d",
                    }
                ]
            },
            "site-of-care[0].when",
        ),
        ({"exemptions": {"gold-card-npis": ["12345"]}}, "exemptions.gold-card-npis"),
        ({"by-plan": {"platinum": {"covered": "not-covered"}}, "plans": ["gold"]}, "(file)"),
        (
            {"answer": {"covered": "covered", "pa-needed": "no-auth", "doc-needed": "clinical"}},
            "(file)",
        ),
        ({"answer": {"covered": "covered"}}, "(file)"),
        ({"answer": {"covered": "covered", "pa-needed": "satisfied"}}, "answer.pa-needed"),
        ({"id": "other-name"}, "id"),
    ],
)
def test_malformed_topic_names_file_and_field(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    path = _write(tmp_path, {**VALID, **change}, folder="knee-mri")
    with pytest.raises(TopicLoadError) as raised:
        load_topics(tmp_path)
    assert raised.value.source == path
    assert raised.value.field_path == field, str(raised.value)
    assert str(path) in str(raised.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "knee-mri" / "topic.yaml"
    path.parent.mkdir()
    path.write_text("id: knee-mri\ncodes: [\n", encoding="utf-8")
    with pytest.raises(TopicLoadError) as raised:
        load_topics(tmp_path)
    assert raised.value.field_path.startswith("line ")


def test_two_topics_may_name_the_same_code(tmp_path: Path) -> None:
    _write(tmp_path, VALID)
    second = tmp_path / "knee-mri-copy" / "topic.yaml"
    second.parent.mkdir()
    second.write_text(yaml.safe_dump({**VALID, "id": "knee-mri-copy"}), encoding="utf-8")
    topics = load_topics(tmp_path)
    assert set(topics.topics) == {"knee-mri", "knee-mri-copy"}
    assert len(topics.for_code("http://www.ama-assn.org/go/cpt", "73721")) == 2


def test_rules_version_names_the_topic_files(tmp_path: Path) -> None:
    """`TopicSet.version` is stable for the same files and changes with any byte of any of them
    (CRD answers stored under other rules are not reused)."""
    _write(tmp_path, VALID)
    version = load_topics(tmp_path).version
    assert len(version) == 32 and load_topics(tmp_path).version == version
    path = tmp_path / "knee-mri" / "topic.yaml"
    path.write_bytes(path.read_bytes() + b" ")
    assert load_topics(tmp_path).version != version
