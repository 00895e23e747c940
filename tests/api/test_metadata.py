"""`/fhir/metadata`: a 4.0.1 CapabilityStatement generated from the registry, and nothing more."""

from __future__ import annotations

from app.registry import REGISTRY, STANDARD_INTERACTIONS
from tests.support.conformance import assert_conforms
from tests.support.db_rows import assert_no_nulls
from tests.support.live_server import LiveServer


def test_capability_statement_lists_what_is_implemented(module_server: LiveServer) -> None:
    with module_server.client() as client:
        response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    assert_no_nulls(statement)
    assert_conforms(statement, "http://hl7.org/fhir/StructureDefinition/CapabilityStatement")
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert statement["implementation"]["url"] == module_server.fhir
    rest = statement["rest"][0]
    assert {r["type"] for r in rest["resource"]} == set(REGISTRY.resources)
    for resource in rest["resource"]:
        # every interaction listed is one the round-trip test performs on every type
        assert {i["code"] for i in resource["interaction"]} <= set(STANDARD_INTERACTIONS)
        spec = REGISTRY.resources[resource["type"]]
        listed = {p["name"] for p in resource["searchParam"]}
        assert listed == {"_id", "_lastUpdated", *(p.name for p in spec.search_params)}


def test_metadata_honours_pretty_and_rejects_xml(module_server: LiveServer) -> None:
    with module_server.client() as client:
        pretty = client.get("/fhir/metadata", params={"_pretty": "true"})
        xml = client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
        json_format = client.get("/fhir/metadata", params={"_format": "json"})
    assert pretty.text.startswith('{\n  "resourceType"')
    assert xml.status_code == 406 and xml.json()["resourceType"] == "OperationOutcome"
    assert json_format.status_code == 200
