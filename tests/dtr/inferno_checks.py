"""The DTR payer-server checks of Inferno's `dtr_payer_server` suite (shared/spec/INFERNO-KITS.md
§3, our harness plan §8.3, DTR-S1 to S10 and DTR-A1 to A8), as assertions over our responses.

Profile checks use the project's validator over the DTR 2.0.1 package (`assert_conforms`), as
Inferno validates with `hl7.fhir.us.davinci-dtr#2.0.1`.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.conformance import assert_conforms

DTR = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/"
IG = "hl7.fhir.us.davinci-dtr#2.0.1"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
CQF_LIBRARY = "http://hl7.org/fhir/StructureDefinition/cqf-library"
Q_LEVEL = {
    SDC + "sdc-questionnaire-launchContext",
    "http://hl7.org/fhir/StructureDefinition/variable",
    SDC + "sdc-questionnaire-itemPopulationContext",
    CQF_LIBRARY,
}
ITEM_LEVEL = {
    SDC + "sdc-questionnaire-initialExpression",
    SDC + "sdc-questionnaire-candidateExpression",
    SDC + "sdc-questionnaire-contextExpression",
}


def _items(items: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in items or []:
        found.append(item)
        found.extend(_items(item.get("item")))
    return found


def package_bundles(response: httpx.Response) -> list[dict[str, Any]]:
    """DTR-S1 to S4: 200/201, Parameters with `PackageBundle` collection Bundles that start
    with a Questionnaire and conform to the output profiles."""
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert body["resourceType"] in ("Parameters", "Bundle")
    if body["resourceType"] == "Bundle":
        bundles = [body]
    else:
        assert_conforms(body, DTR + "dtr-qpackage-output-parameters", ig=IG)
        names = {p["name"] for p in body["parameter"]}
        assert names <= {"PackageBundle", "operationOutcome"}, names
        for parameter in body["parameter"]:
            if parameter["name"] == "operationOutcome":
                assert parameter["resource"]["resourceType"] == "OperationOutcome"
        bundles = [p["resource"] for p in body["parameter"] if p["name"] == "PackageBundle"]
    assert bundles, "at least one questionnaire Bundle"
    for bundle in bundles:
        assert bundle["type"] == "collection"
        assert bundle["entry"][0]["resource"]["resourceType"] == "Questionnaire"  # dtrb-1
        assert_conforms(bundle, DTR + "DTR-QPackageBundle", ig=IG)
    return bundles


def resources(bundles: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for b in bundles
        for e in b["entry"]
        if e["resource"]["resourceType"] == resource_type
    ]


def check_libraries(bundles: list[dict[str, Any]]) -> set[str]:
    """DTR-S5: Libraries with both CQL and ELM JSON data; names unique within each package."""
    libraries = resources(bundles, "Library")
    assert libraries, "at least one Library"
    for bundle in bundles:
        names = [
            e["resource"]["name"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Library"
        ]
        assert len(names) == len(set(names)), names
    for library in libraries:
        types = {c["contentType"]: c for c in library["content"]}
        assert "text/cql" in types and types["text/cql"].get("data"), library["name"]
        assert "application/elm+json" in types, library["name"]
        assert types["application/elm+json"].get("data"), library["name"]
    return {lib["url"] for lib in libraries}


def check_questionnaire_extensions(
    questionnaires: list[dict[str, Any]], library_urls: set[str]
) -> None:
    """DTR-S6 and S7: Q-level pre-population extensions, CQL, cqf-library canonicals that equal
    a delivered Library.url (Inferno compares the strings)."""
    assert questionnaires
    found = False
    for questionnaire in questionnaires:
        for ext in questionnaire.get("extension") or []:
            if ext["url"] in Q_LEVEL:
                found = True
            if ext["url"] == CQF_LIBRARY:
                assert ext["valueCanonical"] in library_urls, ext["valueCanonical"]
            if "valueExpression" in ext and ext["url"] in Q_LEVEL:
                assert ext["valueExpression"]["language"] == "text/cql"
    assert found, "Questionnaire must demonstrate prepopulation"


def check_expressions(questionnaires: list[dict[str, Any]], library_names: set[str]) -> None:
    """DTR-S8 and S9: item-level CQL init/candidate/context expressions, each beginning with
    the name of a delivered library."""
    found = 0
    for questionnaire in questionnaires:
        for item in _items(questionnaire.get("item")):
            for ext in item.get("extension") or []:
                if ext["url"] in ITEM_LEVEL:
                    found += 1
                    expression = ext["valueExpression"]
                    assert expression["language"] == "text/cql"
                    assert any(
                        expression["expression"].startswith(f'"{name}".') for name in library_names
                    ), expression
    assert found, "at least one item-level CQL expression"


def check_static_package(response: httpx.Response) -> list[dict[str, Any]]:
    """Everything Inferno's static-package group asserts, plus the Questionnaire profile."""
    bundles = package_bundles(response)
    urls = check_libraries(bundles)
    questionnaires = resources(bundles, "Questionnaire")
    check_questionnaire_extensions(questionnaires, urls)
    check_expressions(questionnaires, {lib["name"] for lib in resources(bundles, "Library")})
    for questionnaire in questionnaires:  # DTR-S10
        assert_conforms(questionnaire, DTR + "dtr-std-questionnaire", ig=IG)
    return bundles


def check_adaptive_package(response: httpx.Response) -> list[dict[str, Any]]:
    """DTR-A1 and A2: the package checks, every Questionnaire an adaptive-search form."""
    bundles = package_bundles(response)
    urls = check_libraries(bundles)
    questionnaires = resources(bundles, "Questionnaire")
    check_questionnaire_extensions(questionnaires, urls)
    for questionnaire in questionnaires:
        assert_conforms(questionnaire, DTR + "dtr-questionnaire-adapt-search", ig=IG)
        assert any(
            e["url"] == SDC + "sdc-questionnaire-questionnaireAdaptive"
            for e in questionnaire["extension"]
        )
    return bundles


def check_next_question_responses(
    responses: list[httpx.Response], library_urls: set[str], library_names: set[str]
) -> list[dict[str, Any]]:
    """DTR-A3 to A8 over a whole `$next-question` sequence."""
    bodies = []
    for response in responses:
        assert response.status_code in (200, 202), response.text  # A3 (201 is not accepted)
        body = response.json()
        assert body["resourceType"] == "QuestionnaireResponse"  # A4: bare, not Parameters
        assert body.get("questionnaire") and body.get("status")
        bodies.append(body)
    contained = [
        q
        for body in bodies
        for q in body.get("contained") or []
        if q["resourceType"] == "Questionnaire"
    ]
    assert contained  # A5
    check_questionnaire_extensions(contained, library_urls)
    check_expressions(contained, library_names)  # A6
    for body in bodies:
        q = next(r for r in body["contained"] if r["resourceType"] == "Questionnaire")
        assert body["questionnaire"] == f"#{q['id']}"  # A8
        linked = {i["linkId"] for i in _items(q.get("item"))}
        assert {i["linkId"] for i in _items(body.get("item"))} <= linked
        assert_conforms(q, DTR + "dtr-questionnaire-adapt", ig=IG)
    assert [b["status"] for b in bodies[:-1]] == ["in-progress"] * (len(bodies) - 1)  # A7
    assert bodies[-1]["status"] == "completed"
    return bodies
