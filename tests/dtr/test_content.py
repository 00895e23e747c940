"""The payer's documentation content: what is published, that it conforms to the DTR 2.0.1
Questionnaire profiles, and that broken content stops start-up with the file named."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import orjson
import pytest

from app.dtr.adaptive import load_flows
from app.dtr.content import DtrContentError, load_content
from tests.dtr.inferno_checks import DTR, IG
from tests.support.conformance import assert_conforms

ROOT = Path(__file__).resolve().parents[2] / "questionnaires"
GL = "http://greenlight.example.org/fhir"


def test_published_content() -> None:
    content = load_content(ROOT)
    assert sorted(q["id"] for q in content.questionnaires.values()) == [
        "adalimumab",
        "blood-gas",
        "home-oxygen",
        "lumbar-mri",
        "lumbar-mri-adaptive",
    ]
    assert sorted(lib.name for lib in content.libraries.values()) == [
        "AdalimumabPrepopulation",
        "BloodGasPrepopulation",
        "FHIRHelpers",
        "GreenlightCommon",
        "HomeOxygenPrepopulation",
        "LumbarMRIPrepopulation",
    ]
    assert len(content.resources()) == 23
    assert set(load_flows(ROOT, content).flows) == {f"{GL}/Questionnaire/lumbar-mri-adaptive"}


@pytest.mark.requirement("DTR", "spec-23")
def test_questionnaires_conform_to_the_dtr_profiles() -> None:
    for questionnaire in load_content(ROOT).questionnaires.values():
        profile = questionnaire["meta"]["profile"][0]
        assert profile in (DTR + "dtr-std-questionnaire", DTR + "dtr-questionnaire-adapt-search")
        assert_conforms(questionnaire, profile, ig=IG)


@pytest.mark.requirement("DTR", "sec-4")
def test_no_hidden_or_read_only_prepopulated_items() -> None:
    hidden = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
    for questionnaire in load_content(ROOT).questionnaires.values():
        stack = list(questionnaire.get("item") or [])
        while stack:
            item = stack.pop()
            stack.extend(item.get("item") or [])
            assert not item.get("readOnly"), item["linkId"]
            assert all(e["url"] != hidden for e in item.get("extension") or []), item["linkId"]


@pytest.mark.requirement("DTR", "spec-98")
def test_libraries_carry_cql_and_elm_and_unique_names() -> None:
    libraries = load_content(ROOT).libraries.values()
    assert len({lib.name for lib in libraries}) == len(libraries)
    for library in libraries:
        content = {c["contentType"]: c["data"] for c in library.resource["content"]}
        cql = base64.b64decode(content["text/cql"]).decode()
        elm = orjson.loads(base64.b64decode(content["application/elm+json"]))
        assert f"library {library.name} version '{library.version}'" in cql
        assert elm["library"]["identifier"] == {"id": library.name, "version": library.version}
        assert_conforms(library.resource, "http://hl7.org/fhir/StructureDefinition/Library")


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "questionnaires"
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns("topic.yaml"))
    return target


def test_unknown_answer_value_set_names_the_file(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "home-oxygen" / "Questionnaire-home-oxygen.json"
    path.write_bytes(path.read_bytes().replace(b"ValueSet/oxygen-test-types|", b"ValueSet/gone|"))
    with pytest.raises(DtrContentError, match=r"Questionnaire-home-oxygen\.json.*gone"):
        load_content(root)


def test_stale_elm_names_the_file(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "adalimumab" / "AdalimumabPrepopulation.cql"
    path.write_text(
        path.read_text().replace("version '1.0.0'\n\nusing", "version '1.0.1'\n\nusing", 1)
    )
    with pytest.raises(DtrContentError, match=r"AdalimumabPrepopulation\.json.*make elm"):
        load_content(root)


def test_unknown_adaptive_link_id_names_the_file(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "lumbar-mri" / "adaptive.yaml"
    path.write_text(
        path.read_text().replace(
            "[prior-imaging-done]\n  - name: prior-imaging-details",
            "[no-such-item]\n  - name: prior-imaging-details",
        )
    )
    with pytest.raises(DtrContentError, match=r"adaptive\.yaml.*no-such-item"):
        load_flows(root, load_content(root))
