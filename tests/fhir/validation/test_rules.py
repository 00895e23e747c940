"""Validator rules one by one, on core resources and on small test profiles.

The Da Vinci IGs only slice by value, pattern and type; the profile and exists discriminators and
the closed / openAtEnd / ordered rules are exercised here on test profiles derived from the core
snapshots (the snapshot of a core resource plus a few added elements, as a profile would have).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.fhir.packages import PackageRegistry, package_from_resources
from app.fhir.validation import ValidationResult, Validator

CORE = "http://hl7.org/fhir/StructureDefinition/"
TEST = "http://example.org/fhir/StructureDefinition/"
Json = dict[str, Any]


def derive(registry: PackageRegistry, base: str, name: str, added: list[Json]) -> Json:
    """A profile of core `base`: its snapshot plus `added` elements (replacing same ids)."""
    core = registry.structure_definition(CORE + base)
    assert core is not None
    elements = copy.deepcopy(core["snapshot"]["element"])
    by_id = {e["id"]: e for e in elements}
    for element in added:
        element = {"path": element["id"].split(":")[0].split("/")[0], **element}
        element["path"] = ".".join(seg.split(":")[0] for seg in element["id"].split("."))
        if element["id"] in by_id:
            by_id[element["id"]].update(element)
        else:
            elements.append(element)
    return {
        "resourceType": "StructureDefinition",
        "id": name,
        "url": TEST + name,
        "version": "0.0.1",
        "name": name,
        "status": "draft",
        "kind": "resource",
        "abstract": False,
        "type": base,
        "baseDefinition": CORE + base,
        "derivation": "constraint",
        "snapshot": {"element": elements},
    }


def validator_with(registry: PackageRegistry, *profiles: Json) -> Validator:
    local = package_from_resources("example.test", "0.0.1", profiles)
    return Validator(PackageRegistry([*registry.packages, local]))


def errors(result: ValidationResult) -> list[tuple[str, str, str]]:
    return [(i.code, i.expression[0], i.diagnostics) for i in result.errors]


def has(
    result: ValidationResult, code: str, path: str, fragment: str, severity: str = "error"
) -> bool:
    return any(
        i.severity == severity
        and i.code == code
        and i.expression == (path,)
        and fragment in i.diagnostics
        for i in result.issues
    )


PATIENT: Json = {
    "resourceType": "Patient",
    "id": "p1",
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">p</div>'},
}


def patient(**elements: Any) -> Json:
    return {**copy.deepcopy(PATIENT), **elements}


# ------------------------------------------------------------------------------ core rules


def test_valid_core_resource(latest: Validator) -> None:
    result = latest.validate(patient(birthDate="1970-01-01", gender="female", active=True))
    assert result.ok and not result.warnings, result.describe(("error", "warning"))


@pytest.mark.parametrize(
    ("elements", "code", "path", "fragment"),
    [
        ({"birthDate": "1970-13-01"}, "value", "Patient.birthDate", "is not a valid date"),
        ({"birthDate": 1970}, "structure", "Patient.birthDate", "wrong JSON type"),
        ({"active": "true"}, "structure", "Patient.active", "wrong JSON type"),
        (
            {"multipleBirthInteger": True},
            "structure",
            "Patient.multipleBirth.ofType(integer)",
            "wrong JSON type",
        ),
        ({"name": [{"family": ""}]}, "value", "Patient.name[0].family", "is not a valid string"),
        ({"name": {"family": "x"}}, "structure", "Patient.name", "must be a JSON array"),
        ({"gender": ["female"]}, "structure", "Patient.gender", "not repeating"),
        ({"nickname": "Bob"}, "structure", "Patient.nickname", "Unrecognized element 'nickname'"),
        (
            {"deceasedString": "yes"},
            "structure",
            "Patient.deceased.ofType(string)",
            "Type string is not allowed",
        ),
        ({"gender": None}, "structure", "Patient.gender", "null"),
        ({"name": []}, "structure", "Patient.name", "empty array"),
        (
            {"communication": [{"preferred": True}]},
            "required",
            "Patient.communication[0].language",
            "minimum required = 1",
        ),
        ({"gender": "F"}, "code-invalid", "Patient.gender", "administrative-gender"),
        ({"contact": [{}]}, "invariant", "Patient.contact[0]", "ele-1"),
    ],
)
def test_core_rule_violations(
    latest: Validator, elements: Json, code: str, path: str, fragment: str
) -> None:
    result = latest.validate(patient(**elements))
    assert has(result, code, path, fragment), errors(result)


def test_primitive_extensions(latest: Validator) -> None:
    ext = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }
    assert latest.validate(patient(_birthDate=ext)).ok
    result = latest.validate(patient(_birthDate={"id": "x"}))
    assert has(result, "invariant", "Patient.birthDate", "ele-1"), errors(result)
    result = latest.validate(patient(_birthDate={"colour": "red"}))
    assert has(result, "structure", "Patient.birthDate.colour", "Unrecognized"), errors(result)


def test_extension_rules(latest: Validator) -> None:
    both = {
        "url": "http://example.org/x",
        "valueString": "a",
        "extension": [{"url": "y", "valueString": "b"}],
    }
    result = latest.validate(patient(extension=[both]))
    assert has(result, "invariant", "Patient.extension[0]", "ext-1"), errors(result)
    unknown = latest.validate(
        patient(extension=[{"url": "http://example.org/x", "valueString": "a"}])
    )
    assert unknown.ok
    assert any("not defined in the loaded packages" in i.diagnostics for i in unknown.issues)


def test_known_extension_definition_is_applied(latest: Validator) -> None:
    # data-absent-reason takes a code from a required value set.
    ext = {
        "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
        "valueCode": "bogus",
    }
    result = latest.validate(patient(_birthDate={"extension": [ext]}))
    assert has(
        result,
        "code-invalid",
        "Patient.birthDate.extension[0].value.ofType(code)",
        "data-absent-reason",
    ), errors(result)


def test_domain_resource_invariants(latest: Validator) -> None:
    org = {"resourceType": "Organization", "id": "o1", "name": "Payer"}
    referenced = patient(contained=[org], managingOrganization={"reference": "#o1"})
    assert latest.validate(referenced).ok
    orphan = latest.validate(patient(contained=[org]))
    assert has(orphan, "invariant", "Patient.contained[0]", "dom-3"), errors(orphan)
    nested = latest.validate(
        patient(
            contained=[{**org, "contained": [dict(org, id="o2")]}],
            managingOrganization={"reference": "#o1"},
        )
    )
    assert has(nested, "invariant", "Patient.contained[0]", "dom-2"), errors(nested)
    versioned = latest.validate(
        patient(
            contained=[{**org, "meta": {"versionId": "1"}}],
            managingOrganization={"reference": "#o1"},
        )
    )
    assert has(versioned, "invariant", "Patient.contained[0]", "dom-4"), errors(versioned)
    no_text = latest.validate({"resourceType": "Patient"})
    assert no_text.ok and has(no_text, "invariant", "Patient", "dom-6", severity="warning")


def test_narrative_checks(latest: Validator) -> None:
    bad = patient(
        text={
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>',
        }
    )
    result = latest.validate(bad)
    assert has(result, "invariant", "Patient.text.div", "txt-1"), errors(result)
    empty = latest.validate(patient(text={"status": "generated", "div": "<div>  </div>"}))
    assert has(empty, "invariant", "Patient.text.div", "txt-2"), errors(empty)


def test_unknown_resource_type_and_profile(latest: Validator) -> None:
    assert has(
        latest.validate({"resourceType": "Pirate"}),
        "structure",
        "Pirate",
        "Unknown or missing resourceType",
    )
    assert has(
        latest.validate({"id": "x"}), "structure", "Resource", "Unknown or missing resourceType"
    )
    declared = latest.validate(
        patient(meta={"profile": ["http://example.org/StructureDefinition/nope"]})
    )
    assert declared.ok
    assert has(
        declared,
        "not-found",
        "Patient",
        "is not available in the loaded packages",
        severity="information",
    )
    wrong = latest.validate(patient(), CORE + "Observation")
    assert has(wrong, "structure", "Patient", "is for Observation, not Patient"), errors(wrong)


def test_missing_dependency_profiles_are_information(registry: PackageRegistry) -> None:
    """US Core, SDC... are not loaded: their profiles and extensions are information, not errors."""
    dtr = registry.package("hl7.fhir.us.davinci-dtr", "2.0.1")
    crd = registry.package("hl7.fhir.us.davinci-crd", "2.0.1")
    assert dtr is not None and crd is not None
    validator = Validator(registry, dtr)
    practitioner = validator.validate(dtr.load("example/Practitioner-PractitionerExample.json"))
    assert practitioner.ok, practitioner.describe()
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner"
    assert has(
        practitioner,
        "not-found",
        "Practitioner",
        f"Profile {us_core} is not available",
        severity="information",
    )
    patient_example = Validator(registry, crd).validate(crd.load("example/Patient-example.json"))
    assert patient_example.ok, patient_example.describe()
    race = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
    assert has(
        patient_example,
        "not-found",
        "Patient.extension[0]",
        f"Extension {race} is not defined",
        severity="information",
    )


def test_unavailable_code_systems_are_information(
    pas201: Validator, registry: PackageRegistry
) -> None:
    package = registry.package("hl7.fhir.us.davinci-pas", "2.0.1")
    assert package is not None
    result = pas201.validate(package.load("example/Claim-ReferralAuthorizationExample.json"))
    assert result.ok, result.describe()
    info = [i for i in result.issues if i.code == "code-invalid"]
    assert info and all(i.severity == "information" for i in info)
    assert any("https://valueset.x12.org" in i.diagnostics for i in info)
    assert any("icd-10-cm" in i.diagnostics for i in info)


# ------------------------------------------------------------------------------ slicing


def _sliced_patient(registry: PackageRegistry, rules: str, ordered: bool = False) -> Validator:
    sd = derive(
        registry,
        "Patient",
        f"patient-{rules}",
        [
            {
                "id": "Patient.identifier",
                "slicing": {
                    "discriminator": [{"type": "value", "path": "system"}],
                    "rules": rules,
                    "ordered": ordered,
                },
                "min": 1,
            },
            {
                "id": "Patient.identifier:mrn",
                "sliceName": "mrn",
                "min": 1,
                "max": "1",
                "type": [{"code": "Identifier"}],
                "base": {"path": "Patient.identifier", "min": 0, "max": "*"},
            },
            {
                "id": "Patient.identifier:mrn.system",
                "min": 1,
                "max": "1",
                "fixedUri": "urn:mrn",
                "type": [{"code": "uri"}],
            },
            {
                "id": "Patient.identifier:mrn.value",
                "min": 1,
                "max": "1",
                "type": [{"code": "string"}],
            },
            {
                "id": "Patient.identifier:ssn",
                "sliceName": "ssn",
                "min": 0,
                "max": "1",
                "type": [{"code": "Identifier"}],
                "base": {"path": "Patient.identifier", "min": 0, "max": "*"},
            },
            {
                "id": "Patient.identifier:ssn.system",
                "min": 1,
                "max": "1",
                "fixedUri": "urn:ssn",
                "type": [{"code": "uri"}],
            },
        ],
    )
    return validator_with(registry, sd)


MRN = {"system": "urn:mrn", "value": "1"}
SSN = {"system": "urn:ssn", "value": "2"}
OTHER = {"system": "urn:other", "value": "3"}


def test_value_slicing_cardinality(registry: PackageRegistry) -> None:
    validator = _sliced_patient(registry, "open")
    profile = TEST + "patient-open"
    assert validator.validate(patient(identifier=[MRN, OTHER, SSN]), profile).ok
    missing = validator.validate(patient(identifier=[SSN]), profile)
    assert has(
        missing,
        "required",
        "Patient.identifier",
        "Slice 'mrn' of Patient.identifier: minimum required = 1",
    ), errors(missing)
    twice = validator.validate(patient(identifier=[MRN, MRN]), profile)
    assert has(
        twice,
        "structure",
        "Patient.identifier",
        "Slice 'mrn' of Patient.identifier: maximum allowed = 1",
    ), errors(twice)
    inner = validator.validate(patient(identifier=[{"system": "urn:mrn"}]), profile)
    assert has(inner, "required", "Patient.identifier[0].value", "minimum required = 1"), errors(
        inner
    )


def test_closed_slicing(registry: PackageRegistry) -> None:
    validator = _sliced_patient(registry, "closed")
    result = validator.validate(patient(identifier=[MRN, OTHER]), TEST + "patient-closed")
    assert has(result, "structure", "Patient.identifier[1]", "does not match any known slice"), (
        errors(result)
    )
    assert validator.validate(patient(identifier=[MRN, SSN]), TEST + "patient-closed").ok


def test_open_at_end_and_ordered_slicing(registry: PackageRegistry) -> None:
    at_end = _sliced_patient(registry, "openAtEnd")
    assert at_end.validate(patient(identifier=[MRN, SSN, OTHER]), TEST + "patient-openAtEnd").ok
    result = at_end.validate(patient(identifier=[OTHER, MRN]), TEST + "patient-openAtEnd")
    assert has(result, "structure", "Patient.identifier[1]", "must come after the slices"), errors(
        result
    )
    ordered = _sliced_patient(registry, "open", ordered=True)
    assert ordered.validate(patient(identifier=[MRN, SSN]), TEST + "patient-open").ok
    result = ordered.validate(patient(identifier=[SSN, MRN]), TEST + "patient-open")
    assert has(result, "structure", "Patient.identifier[1]", "out of order"), errors(result)


def test_pattern_and_exists_discriminators(registry: PackageRegistry) -> None:
    sd = derive(
        registry,
        "Patient",
        "patient-pattern",
        [
            {
                "id": "Patient.identifier",
                "slicing": {
                    "discriminator": [
                        {"type": "pattern", "path": "type"},
                        {"type": "exists", "path": "period"},
                    ],
                    "rules": "closed",
                },
            },
            {
                "id": "Patient.identifier:current",
                "sliceName": "current",
                "min": 1,
                "max": "1",
                "type": [{"code": "Identifier"}],
                "base": {"path": "Patient.identifier", "min": 0, "max": "*"},
            },
            {
                "id": "Patient.identifier:current.type",
                "min": 1,
                "patternCodeableConcept": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "type": [{"code": "CodeableConcept"}],
            },
            {"id": "Patient.identifier:current.period", "max": "0", "type": [{"code": "Period"}]},
            {
                "id": "Patient.identifier:past",
                "sliceName": "past",
                "min": 0,
                "max": "*",
                "type": [{"code": "Identifier"}],
                "base": {"path": "Patient.identifier", "min": 0, "max": "*"},
            },
            {
                "id": "Patient.identifier:past.type",
                "min": 1,
                "patternCodeableConcept": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "type": [{"code": "CodeableConcept"}],
            },
            {"id": "Patient.identifier:past.period", "min": 1, "type": [{"code": "Period"}]},
        ],
    )
    validator = validator_with(registry, sd)
    mr = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "code": "MR",
                "display": "Medical record number",
            }
        ],
        "text": "MRN",
    }
    current = {"type": mr, "value": "1"}
    past = {"type": mr, "value": "0", "period": {"end": "2020-01-01"}}
    assert validator.validate(
        patient(identifier=[current, past, past]), TEST + "patient-pattern"
    ).ok
    result = validator.validate(patient(identifier=[past]), TEST + "patient-pattern")
    assert has(result, "required", "Patient.identifier", "Slice 'current'"), errors(result)
    other = {
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]
        },
        "value": "9",
    }
    result = validator.validate(patient(identifier=[current, other]), TEST + "patient-pattern")
    assert has(result, "structure", "Patient.identifier[1]", "slicing is closed"), errors(result)


def test_type_and_profile_discriminators(registry: PackageRegistry) -> None:
    adult = derive(registry, "Patient", "adult", [{"id": "Patient.birthDate", "min": 1}])
    bundle_profile = derive(
        registry,
        "Bundle",
        "adult-bundle",
        [
            {
                "id": "Bundle.entry",
                "slicing": {
                    "discriminator": [
                        {"type": "type", "path": "resource"},
                        {"type": "profile", "path": "resource"},
                    ],
                    "rules": "closed",
                },
            },
            {
                "id": "Bundle.entry:adult",
                "sliceName": "adult",
                "min": 1,
                "max": "1",
                "type": [{"code": "BackboneElement"}],
                "base": {"path": "Bundle.entry", "min": 0, "max": "*"},
            },
            {
                "id": "Bundle.entry:adult.resource",
                "min": 1,
                "type": [{"code": "Patient", "profile": [TEST + "adult"]}],
            },
            {
                "id": "Bundle.entry:org",
                "sliceName": "org",
                "min": 0,
                "max": "*",
                "type": [{"code": "BackboneElement"}],
                "base": {"path": "Bundle.entry", "min": 0, "max": "*"},
            },
            {"id": "Bundle.entry:org.resource", "min": 1, "type": [{"code": "Organization"}]},
        ],
    )
    validator = validator_with(registry, adult, bundle_profile)
    org = {
        "fullUrl": "urn:uuid:2c1e6a5e-0d5f-4a4a-9c6b-1e1d7e0f0a01",
        "resource": {"resourceType": "Organization", "name": "x"},
    }
    grown = {
        "fullUrl": "urn:uuid:2c1e6a5e-0d5f-4a4a-9c6b-1e1d7e0f0a02",
        "resource": patient(birthDate="1970-01-01"),
    }
    child = {"fullUrl": "urn:uuid:2c1e6a5e-0d5f-4a4a-9c6b-1e1d7e0f0a03", "resource": patient()}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [org, grown]}
    assert validator.validate(bundle, TEST + "adult-bundle").ok, validator.validate(
        bundle, TEST + "adult-bundle"
    ).describe()
    bundle["entry"] = [org, child]
    result = validator.validate(bundle, TEST + "adult-bundle")
    assert has(result, "structure", "Bundle.entry[1]", "does not match any known slice"), errors(
        result
    )
    assert has(result, "required", "Bundle.entry", "Slice 'adult'"), errors(result)


# ------------------------------------------------------------------------------ bundles


def _entry(full_url: str, resource: Json) -> Json:
    return {"fullUrl": full_url, "resource": resource}


def test_bundle_reference_resolution(latest: Validator) -> None:
    obs: Json = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/p1"},
        "performer": [{"reference": "urn:uuid:7f2b4a9e-6d1c-4f0e-8a3b-5c9d2e1f0a11"}],
    }
    practitioner = {"resourceType": "Practitioner", "id": "pr"}
    bundle: Json = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            _entry("http://example.org/fhir/Observation/o1", obs),
            _entry("http://example.org/fhir/Patient/p1", patient()),
            _entry("urn:uuid:7f2b4a9e-6d1c-4f0e-8a3b-5c9d2e1f0a11", practitioner),
        ],
    }
    assert latest.validate(bundle).ok
    dangling = copy.deepcopy(bundle)
    dangling["entry"][0]["resource"]["subject"]["reference"] = "Patient/p2"
    result = latest.validate(dangling)
    assert result.ok  # a collection need not be closed: a warning
    assert has(
        result,
        "not-found",
        "Bundle.entry[0].resource.subject.reference",
        "cannot be resolved",
        severity="warning",
    )
    dangling["type"] = "document"
    assert has(
        latest.validate(dangling),
        "not-found",
        "Bundle.entry[0].resource.subject.reference",
        "cannot be resolved",
    )
    wrong = copy.deepcopy(bundle)
    wrong["entry"][0]["resource"]["subject"] = {
        "reference": "urn:uuid:7f2b4a9e-6d1c-4f0e-8a3b-5c9d2e1f0a11"
    }
    result = latest.validate(wrong)
    assert has(
        result,
        "structure",
        "Bundle.entry[0].resource.subject.reference",
        "Reference to Practitioner is not allowed",
    ), errors(result)
    typed = copy.deepcopy(bundle)
    typed["entry"][0]["resource"]["subject"]["type"] = "Group"
    assert has(
        latest.validate(typed),
        "structure",
        "Bundle.entry[0].resource.subject.type",
        "does not match the target Patient",
    )


# ------------------------------------------------------------------------------ invariants


def _constrained(registry: PackageRegistry, name: str, expression: str) -> Validator:
    sd = derive(
        registry,
        "Observation",
        name,
        [
            {
                "id": "Observation",
                "constraint": [
                    {"key": name, "severity": "error", "human": name, "expression": expression}
                ],
            }
        ],
    )
    return validator_with(registry, sd)


OBSERVATION: Json = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "valueQuantity": {"value": 72},
    "text": PATIENT["text"],
}


def test_unsupported_function_is_reported_not_skipped(registry: PackageRegistry) -> None:
    validator = _constrained(registry, "tst-1", "code.frobnicate()")
    result = validator.validate(copy.deepcopy(OBSERVATION), TEST + "tst-1")
    assert result.ok
    assert has(
        result,
        "informational",
        "Observation",
        "Invariant tst-1 was not checked",
        severity="information",
    )
    assert any("frobnicate" in i.diagnostics for i in result.issues)


def test_member_of_and_has_value(registry: PackageRegistry) -> None:
    decidable = _constrained(
        registry, "tst-2", "status.memberOf('http://hl7.org/fhir/ValueSet/observation-status')"
    )
    assert decidable.validate(copy.deepcopy(OBSERVATION), TEST + "tst-2").ok
    failing = _constrained(
        registry, "tst-3", "status.memberOf('http://hl7.org/fhir/ValueSet/bundle-type')"
    )
    assert has(
        failing.validate(copy.deepcopy(OBSERVATION), TEST + "tst-3"),
        "invariant",
        "Observation",
        "tst-3",
    )
    undecidable = _constrained(
        registry, "tst-4", "code.memberOf('http://hl7.org/fhir/ValueSet/observation-codes')"
    )
    result = undecidable.validate(copy.deepcopy(OBSERVATION), TEST + "tst-4")
    assert result.ok and has(
        result, "informational", "Observation", "tst-4 cannot be decided", severity="information"
    )
    has_value = _constrained(registry, "tst-5", "status.hasValue() and value.hasValue().not()")
    assert has_value.validate(copy.deepcopy(OBSERVATION), TEST + "tst-5").ok


def test_this_and_singleton_booleans(registry: PackageRegistry) -> None:
    this = _constrained(registry, "tst-6", "$this.status = 'final'")
    assert this.validate(copy.deepcopy(OBSERVATION), TEST + "tst-6").ok
    singleton = _constrained(
        registry, "tst-7", "code.coding.where(code = '8867-4') and status = 'final'"
    )
    assert singleton.validate(copy.deepcopy(OBSERVATION), TEST + "tst-7").ok
    negative = _constrained(
        registry, "tst-8", "code.coding.where(code = 'nope') and status = 'final'"
    )
    assert has(
        negative.validate(copy.deepcopy(OBSERVATION), TEST + "tst-8"),
        "invariant",
        "Observation",
        "tst-8",
    )


def test_resolve_and_conforms_to_inside_a_bundle(registry: PackageRegistry) -> None:
    validator = _constrained(
        registry,
        "tst-9",
        "subject.resolve().is(Patient) and subject.resolve().conformsTo('http://hl7.org/fhir/StructureDefinition/Patient')",
    )
    obs = {
        **copy.deepcopy(OBSERVATION),
        "meta": {"profile": [TEST + "tst-9"]},
        "subject": {"reference": "Patient/p1"},
    }
    bundle: Json = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            _entry("http://example.org/fhir/Observation/o1", obs),
            _entry("http://example.org/fhir/Patient/p1", patient()),
        ],
    }
    assert validator.validate(bundle).ok, validator.validate(bundle).describe()
    bundle["entry"][1] = _entry(
        "http://example.org/fhir/Patient/p1",
        {"resourceType": "Group", "id": "p1", "type": "person", "actual": True},
    )
    result = validator.validate(bundle)
    assert has(result, "invariant", "Bundle.entry[0].resource", "tst-9"), errors(result)
