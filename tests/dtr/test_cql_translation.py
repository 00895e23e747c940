"""The ELM committed beside every CQL library is exactly what the official translator makes of it
today (`make elm` regenerates it): a fresh translation must be byte-identical."""

from __future__ import annotations

import re

import pytest

from tests.dtr.cql_tools import CONTENT, TOOLS, check_translation, content, node_ready

CQL_FILES = sorted(CONTENT.glob("*/*.cql"))


def test_every_library_has_translated_elm() -> None:
    assert {p.parent.name for p in CQL_FILES} == {
        "_shared",
        "lumbar-mri",
        "home-oxygen",
        "adalimumab",
        "blood-gas",
    }
    for path in CQL_FILES:
        assert path.with_suffix(".json").is_file(), f"{path.name}: run `make elm`"


def test_retranslation_is_byte_identical() -> None:
    node_ready()
    result = check_translation(CQL_FILES)
    assert result.returncode == 0, result.stderr.decode()[-4000:]


def test_the_translator_is_the_locked_official_one() -> None:
    lock = (TOOLS / "package-lock.json").read_text(encoding="utf-8")
    assert '"node_modules/@cqframework/cql"' in lock
    for library in content().libraries.values():
        info = library.elm["library"]["annotation"][0]
        assert info["type"] == "CqlToElmInfo"
        assert info["translatorVersion"] == "5.3.0"


@pytest.mark.requirement("DTR", "spec-93")
def test_libraries_are_cql_with_patient_context() -> None:
    for library in content().libraries.values():
        cql = library.source.read_text(encoding="utf-8")
        assert re.search(r"^using FHIR version '4\.0\.1'$", cql, re.MULTILINE), library.name
        if library.name != "FHIRHelpers":  # FHIRHelpers holds only functions: no context
            assert re.search(r"^context Patient$", cql, re.MULTILINE), library.name
            contexts = {
                d.get("context")
                for d in library.elm["library"]["statements"]["def"]
                if d.get("type") != "FunctionDef"
            }
            assert contexts == {"Patient"}, library.name
