"""The demo payer's content: one payer, two plans, twelve members and their providers.

`greenlight demo-data` (see `app.demo.loader`) stores what `demo_resources()` returns. The content
is our own, but it reproduces the identities that the Inferno CRD, DTR and PAS test kits and the
Da Vinci IG examples send (patients, member and subscriber ids, NPIs, logical ids), so that a
conformance tester can run those suites against `make serve` and have every member and provider
resolve. `app/demo/DEMO.md` lists which fixture uses which identity.

Rules for the content:
- Fixture identities keep their logical ids, identifiers and NPIs exactly as the fixtures spell
  them, even where an NPI fails its check digit. Where two fixtures give one party different
  identifiers (the PAS 2.0.1 and 2.2.1 kits do), the stored resource carries all of them; the
  older ones have `use: old` or `secondary`. Where two fixtures give one NPI to different
  practitioners, one practitioner per NPI is kept (see DEMO.md).
- Every invented NPI is Luhn-valid (`app.demo.npi`); phone numbers use the fictional 555-01xx range.
- Every Coverage has exactly one member-number identifier (type `MB`, PAS profile-coverage
  `identifier:memberid` 1..1), a `subscriberId` and, when the two differ, a subscriber-number
  identifier (type `SN`) so that `Coverage?identifier=<subscriber id>` finds it; the Patient
  repeats the member-number identifier. Member coverage periods are open-ended (or ended, for the
  cancelled member), so the demo does not expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from app.demo.npi import NPI_SYSTEM

Resource = dict[str, Any]

NAMESPACE = "https://greenlight.example.org/fhir/sid"
MEMBER_ID_SYSTEM = f"{NAMESPACE}/member-id"
SUBSCRIBER_ID_SYSTEM = f"{NAMESPACE}/subscriber-id"
PAYER_ID_SYSTEM = f"{NAMESPACE}/payer-id"
NAIC_SYSTEM = "urn:oid:2.16.840.1.113883.6.300"
EIN_SYSTEM = "http://terminology.hl7.org/NamingSystem/USEIN"
PAS_PAYER_ID_SYSTEM = "http://davinci-pas.org/fhir/payer-id"

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0360 = "http://terminology.hl7.org/CodeSystem/v2-0360"
C4BB_IDENTIFIER_TYPE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
X12_RELATIONSHIP = "https://codesystem.x12.org/005010/1069"
X12_ENTITY_IDENTIFIER = "https://codesystem.x12.org/005010/98"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
NUCC_TAXONOMY = "http://nucc.org/provider-taxonomy"
PLACE_OF_SERVICE = (
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
)
LOCATION_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"

PAYER_ORGANIZATION_ID = "greenlight-health-plan"
PAYER_NAME = "Greenlight Health Plan"

CoverageStatus = Literal["active", "cancelled"]
Relationship = Literal["self", "spouse", "child", "parent"]

# --- small builders -------------------------------------------------------------------------


def coding(system: str, code: str, display: str | None = None) -> Resource:
    result: Resource = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(system: str, code: str, display: str | None = None) -> Resource:
    return {"coding": [coding(system, code, display)]}


def identifier(
    system: str | None,
    value: str,
    *,
    type_code: str | None = None,
    type_system: str = V2_0203,
    type_display: str | None = None,
    use: str | None = None,
) -> Resource:
    """An Identifier; `type_code` is a v2-0203 code unless `type_system` says otherwise."""
    result: Resource = {}
    if use:
        result["use"] = use
    if type_code:
        result["type"] = concept(type_system, type_code, type_display)
    if system:
        result["system"] = system
    result["value"] = value
    return result


def npi(value: str, *, use: str | None = None) -> Resource:
    return identifier(NPI_SYSTEM, value, use=use)


def address(
    line: str | list[str], city: str, state: str, postal_code: str, *, use: str | None = None
) -> Resource:
    result: Resource = {}
    if use:
        result["use"] = use
    result.update(
        {
            "line": [line] if isinstance(line, str) else line,
            "city": city,
            "state": state,
            "postalCode": postal_code,
            "country": "US",
        }
    )
    return result


def phone(value: str, use: str = "work") -> Resource:
    return {"system": "phone", "value": value, "use": use}


def reference(resource_type: str, resource_id: str, display: str | None = None) -> Resource:
    result: Resource = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        result["display"] = display
    return result


def human_name(
    family: str,
    given: list[str],
    *,
    prefix: list[str] | None = None,
    suffix: list[str] | None = None,
    use: str | None = "official",
) -> Resource:
    result: Resource = {}
    if use:
        result["use"] = use
    result["family"] = family
    result["given"] = given
    if prefix:
        result["prefix"] = prefix
    if suffix:
        result["suffix"] = suffix
    return result


def doctor_qualification(code: Literal["MD", "DO"]) -> Resource:
    display = {"MD": "Doctor of Medicine", "DO": "Doctor of Osteopathy"}[code]
    return {"code": {**concept(V2_0360, code, display), "text": display}}


# --- plans ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A benefit plan: `Coverage.class` of type `plan` (value and name) and `Coverage.type`."""

    key: str
    value: str
    name: str
    type_code: str
    type_display: str

    def coverage_class(self) -> Resource:
        return {
            "type": concept(COVERAGE_CLASS, "plan", "Plan"),
            "value": self.value,
            "name": self.name,
        }


GOLD_PPO = Plan(
    "gold", "GL-GOLD-PPO", "Greenlight Gold PPO", "PPO", "preferred provider organization policy"
)
SILVER_HMO = Plan(
    "silver",
    "GL-SILVER-HMO",
    "Greenlight Silver HMO",
    "HMO",
    "health maintenance organization policy",
)
PLANS: tuple[Plan, ...] = (GOLD_PPO, SILVER_HMO)

# --- members -------------------------------------------------------------------------------

_RELATIONSHIP_X12 = {"self": ("18", "Self"), "spouse": ("01", "Spouse"), "child": ("19", "Child")}
_RELATIONSHIP_DISPLAY = {"self": "Self", "spouse": "Spouse", "child": "Child", "parent": "Parent"}


@dataclass(frozen=True)
class Member:
    """A member: the Patient (`patient` holds its demographic elements) and its Coverage.

    `member_id` is the Coverage's one `MB` identifier, repeated on the Patient.
    `source` names the fixtures that use this identity ("" for our own demo members).
    """

    patient_id: str
    coverage_id: str
    display_name: str
    plan: Plan
    member_id: Resource
    subscriber_id: str
    patient: Resource
    period_start: str
    relationship: Relationship = "self"
    subscriber_patient_id: str | None = None
    dependent: str | None = None
    status: CoverageStatus = "active"
    period_end: str | None = None
    group: tuple[str, str] | None = None
    patient_identifiers: tuple[Resource, ...] = ()
    coverage_identifiers: tuple[Resource, ...] = ()
    relationship_x12: tuple[str, str] | None = None
    source: str = ""

    @property
    def member_id_value(self) -> str:
        value: str = self.member_id["value"]
        return value

    def patient_resource(self) -> Resource:
        resource: Resource = {"resourceType": "Patient", "id": self.patient_id}
        resource["identifier"] = [*self.patient_identifiers, dict(self.member_id)]
        resource["active"] = True
        resource.update(self.patient)
        return resource

    def coverage_resource(self) -> Resource:
        identifiers = [dict(self.member_id), *self.coverage_identifiers]
        if self.subscriber_id != self.member_id_value:
            identifiers.append(
                identifier(
                    SUBSCRIBER_ID_SYSTEM,
                    self.subscriber_id,
                    type_code="SN",
                    type_display="Subscriber Number",
                )
            )
        relationship_codings = [
            coding(
                SUBSCRIBER_RELATIONSHIP, self.relationship, _RELATIONSHIP_DISPLAY[self.relationship]
            )
        ]
        x12 = self.relationship_x12 or _RELATIONSHIP_X12.get(self.relationship)
        if x12:
            relationship_codings.append(coding(X12_RELATIONSHIP, *x12))
        period: Resource = {"start": self.period_start}
        if self.period_end:
            period["end"] = self.period_end
        classes = [self.plan.coverage_class()]
        if self.group:
            classes.insert(
                0,
                {
                    "type": concept(COVERAGE_CLASS, "group", "Group"),
                    "value": self.group[0],
                    "name": self.group[1],
                },
            )
        resource: Resource = {
            "resourceType": "Coverage",
            "id": self.coverage_id,
            "identifier": identifiers,
            "status": self.status,
            "type": concept(ACT_CODE, self.plan.type_code, self.plan.type_display),
            "subscriber": reference("Patient", self.subscriber_patient_id or self.patient_id),
            "subscriberId": self.subscriber_id,
            "beneficiary": reference("Patient", self.patient_id, self.display_name),
        }
        if self.dependent:
            resource["dependent"] = self.dependent
        resource.update(
            {
                "relationship": {"coding": relationship_codings},
                "period": period,
                "payor": [reference("Organization", PAYER_ORGANIZATION_ID, PAYER_NAME)],
                "class": classes,
            }
        )
        return resource


def _member_number(value: str, system: str = MEMBER_ID_SYSTEM) -> Resource:
    return identifier(system, value, type_code="MB", type_display="Member Number")


_MOUNDS_OK = address("49 Meadow St", "Mounds", "OK", "74047", use="home")

MEMBERS: tuple[Member, ...] = (
    # ---- identities used by the Inferno fixtures and IG examples ----
    Member(
        patient_id="pat015",
        coverage_id="cov015",
        display_name="William Hale Oster",
        plan=GOLD_PPO,
        member_id=_member_number("10A3D58WH456"),
        subscriber_id="10A3D58WH456",
        period_start="2024-01-01",
        patient_identifiers=(
            identifier(
                "http://hl7.org/fhir/sid/us-medicare",
                "0M34355006FW",
                type_code="MR",
                use="usual",
            ),
        ),
        patient={
            "name": [human_name("Oster", ["William", "Hale", "Oster"])],
            "telecom": [phone("(781) 555-5555", "home")],
            "gender": "male",
            "birthDate": "2015-02-23",
            "address": [address("202 Burlington Road", "Buffalo", "NY", "14210", use="home")],
        },
        source="CRD hook requests (context.patientId, coverage prefetch); "
        "DTR $questionnaire-package (payer-server preset, pat015 bundle)",
    ),
    Member(
        patient_id="pat014",
        coverage_id="cov014",
        display_name="Theodor Alan Roosevelt",
        plan=SILVER_HMO,
        member_id=_member_number("10A3D58WH1600"),
        subscriber_id="10A3D58WH1600",
        period_start="2024-01-01",
        patient_identifiers=(
            identifier(
                "http://hl7.org/fhir/sid/us-medicare",
                "0M846129001NF",
                type_code="MR",
                use="usual",
            ),
        ),
        patient={
            "name": [human_name("Roosevelt", ["Theodor", "Alan", "Roosevelt"])],
            "gender": "male",
            "birthDate": "1946-07-04",
            "address": [address("7525 Colshire Dr", "McLean", "VA", "22102", use="home")],
        },
        source="CRD mock-EHR transaction bundle",
    ),
    Member(
        patient_id="SubscriberExample",
        coverage_id="InsuranceExample",
        display_name="Joe Smith",
        plan=SILVER_HMO,
        member_id=_member_number("MEM-1234567", "http://davinci-pas.org/MEMBERID"),
        subscriber_id="12345678901",
        period_start="2020-01-01",
        group=("GRP-001", "ACME GROUP"),
        patient_identifiers=(
            identifier("http://davinci-pas.org/MIN", "12345678901"),
            identifier("https://prior-auth.davinci.hl7.org/MIN", "12345678901", use="secondary"),
            identifier("http://example.org/MIN", "12345678901", use="secondary"),
        ),
        coverage_identifiers=(identifier("http://davinci-pas.org/MIN", "1234567cov"),),
        patient={
            "name": [human_name("SMITH", ["JOE"], prefix=["Mr"], suffix=["PharmD"], use=None)],
            "telecom": [phone("555-555-5555", "home")],
            "gender": "male",
            "birthDate": "1987-02-20",
            "address": [
                {**_MOUNDS_OK, "district": "Meadow"},
            ],
        },
        source="PAS server suites v2.0.1 and v2.2.1 (every $submit and $inquire bundle); "
        "PAS IG examples",
    ),
    Member(
        patient_id="BeneficiaryExample",
        coverage_id="cov-beneficiary-example",
        display_name="Jesse Smith",
        plan=SILVER_HMO,
        member_id=_member_number("12345678902"),
        subscriber_id="12345678901",
        subscriber_patient_id="SubscriberExample",
        relationship="parent",
        relationship_x12=("32", "Mother"),
        dependent="02",
        period_start="2020-01-01",
        group=("GRP-001", "ACME GROUP"),
        patient_identifiers=(identifier("http://example.org/MIN", "12345678902"),),
        patient={
            "name": [human_name("SMITH", ["JESSE"], use=None)],
            "gender": "female",
            "birthDate": "1947-01-18",
            "address": [_MOUNDS_OK],
        },
        source="PAS IG examples (DeviceRequest, MedicationRequest, NutritionOrder, Task)",
    ),
    Member(
        patient_id="examplepatient",
        coverage_id="CoverageExample",
        display_name="(anonymous DTR example patient)",
        plan=GOLD_PPO,
        member_id=_member_number("PFP123450000"),
        subscriber_id="PFP123450000",
        period_start="2022-01-01",
        patient={
            "gender": "male",
            "birthDate": "1996-12-23",
            "address": [{"use": "home", "type": "both", "state": "MA", "country": "US"}],
        },
        source="DTR $questionnaire-package inputs (Postman static/adaptive dinner, respiratory; "
        "conformant input); DTR IG examples",
    ),
    Member(
        patient_id="example",
        coverage_id="example",
        display_name="Amy V. Baxter (Shaw)",
        plan=GOLD_PPO,
        member_id=_member_number("12345", "http://example.com/fhir/NampingSystem/certificate"),
        subscriber_id="12345",
        period_start="2023-01-01",
        group=("CB135", "Corporate Baker's Inc. Local #35"),
        patient_identifiers=(
            identifier("http://hospital.smarthealthit.org", "1032702", type_code="MR", use="usual"),
        ),
        patient={
            "name": [
                {"family": "Shaw", "given": ["Amy", "V."], "period": {"end": "2020-07-22"}},
                {
                    "use": "official",
                    "family": "Baxter",
                    "given": ["Amy", "V."],
                    "suffix": ["PharmD"],
                    "period": {"start": "2020-07-22"},
                },
            ],
            "telecom": [
                phone("555-555-5555", "home"),
                {"system": "email", "value": "amy.shaw@example.com"},
            ],
            "gender": "female",
            "birthDate": "1987-02-20",
            "address": [address("183 Mountain View St", "Mounds", "OK", "74048", use="home")],
        },
        source="CRD hook unit fixtures (context.patientId=example); CRD IG examples",
    ),
    # ---- our own demo members ----
    Member(
        patient_id="alvarez-maria",
        coverage_id="cov-alvarez-maria",
        display_name="Maria Elena Alvarez",
        plan=GOLD_PPO,
        member_id=_member_number("GLH40021871"),
        subscriber_id="GLH40021871",
        period_start="2024-01-01",
        group=("GRP-40021", "Badger State Credit Union"),
        patient={
            "name": [human_name("Alvarez", ["Maria", "Elena"])],
            "telecom": [phone("608-555-0134", "mobile")],
            "gender": "female",
            "birthDate": "1979-04-12",
            "address": [address("2417 Monroe St", "Madison", "WI", "53711", use="home")],
        },
    ),
    Member(
        patient_id="alvarez-daniel",
        coverage_id="cov-alvarez-daniel",
        display_name="Daniel Jose Alvarez",
        plan=GOLD_PPO,
        member_id=_member_number("GLH40021871-02"),
        subscriber_id="GLH40021871",
        subscriber_patient_id="alvarez-maria",
        relationship="spouse",
        dependent="02",
        period_start="2024-01-01",
        group=("GRP-40021", "Badger State Credit Union"),
        patient={
            "name": [human_name("Alvarez", ["Daniel", "Jose"])],
            "telecom": [phone("608-555-0135", "mobile")],
            "gender": "male",
            "birthDate": "1977-09-30",
            "address": [address("2417 Monroe St", "Madison", "WI", "53711", use="home")],
        },
    ),
    Member(
        patient_id="alvarez-sofia",
        coverage_id="cov-alvarez-sofia",
        display_name="Sofia Isabel Alvarez",
        plan=GOLD_PPO,
        member_id=_member_number("GLH40021871-03"),
        subscriber_id="GLH40021871",
        subscriber_patient_id="alvarez-maria",
        relationship="child",
        dependent="03",
        period_start="2024-01-01",
        group=("GRP-40021", "Badger State Credit Union"),
        patient={
            "name": [human_name("Alvarez", ["Sofia", "Isabel"])],
            "gender": "female",
            "birthDate": "2012-06-05",
            "address": [address("2417 Monroe St", "Madison", "WI", "53711", use="home")],
        },
    ),
    Member(
        patient_id="chen-robert",
        coverage_id="cov-chen-robert",
        display_name="Robert James Chen",
        plan=SILVER_HMO,
        member_id=_member_number("GLH50873304"),
        subscriber_id="GLH50873304",
        period_start="2023-07-01",
        patient={
            "name": [human_name("Chen", ["Robert", "James"])],
            "telecom": [phone("608-555-0147", "home")],
            "gender": "male",
            "birthDate": "1958-11-02",
            "address": [address("815 E Johnson St", "Madison", "WI", "53703", use="home")],
        },
    ),
    Member(
        patient_id="okafor-linda",
        coverage_id="cov-okafor-linda",
        display_name="Linda Marie Okafor",
        plan=SILVER_HMO,
        member_id=_member_number("GLH50911562"),
        subscriber_id="GLH50911562",
        period_start="2024-01-01",
        patient={
            "name": [human_name("Okafor", ["Linda", "Marie"])],
            "telecom": [phone("608-555-0162", "home")],
            "gender": "female",
            "birthDate": "1949-03-27",
            "address": [address("6610 University Ave", "Middleton", "WI", "53562", use="home")],
        },
    ),
    Member(
        patient_id="brennan-kevin",
        coverage_id="cov-brennan-kevin",
        display_name="Kevin Patrick Brennan",
        plan=SILVER_HMO,
        member_id=_member_number("GLH50744219"),
        subscriber_id="GLH50744219",
        status="cancelled",
        period_start="2025-01-01",
        period_end="2025-06-30",
        patient={
            "name": [human_name("Brennan", ["Kevin", "Patrick"])],
            "telecom": [phone("608-555-0171", "mobile")],
            "gender": "male",
            "birthDate": "1990-01-18",
            "address": [address("1208 Williamson St", "Madison", "WI", "53703", use="home")],
        },
    ),
)

# --- the payer -----------------------------------------------------------------------------


def payer_organization() -> Resource:
    """The one payer. Its `alias` and secondary identifiers are the fixtures' insurer identities.

    PAS 2.0.1 and 2.2.1 name the insurer "MARYLAND CAPITAL INSURANCE COMPANY" (Organization/
    InsurerExample) with NPI 789312, 1234567893 or 7893120007 depending on the bundle; the DTR
    inputs name it "Insurance Company" (contained OrgExample, NPI 1234567893).
    """
    payer_id_type = {"type_code": "payerid", "type_system": C4BB_IDENTIFIER_TYPE}
    return {
        "resourceType": "Organization",
        "id": PAYER_ORGANIZATION_ID,
        "identifier": [
            identifier(
                NAIC_SYSTEM,
                "99871",
                type_code="NIIP",
                type_display="National Insurance Payor Identifier (Payor)",
                use="official",
            ),
            identifier(PAYER_ID_SYSTEM, "GLHP1", use="official", **payer_id_type),
            npi("1234567893", use="secondary"),
            npi("7893120007", use="secondary"),
            npi("789312", use="old"),
            identifier(EIN_SYSTEM, "7239994834", use="secondary"),
            identifier(PAS_PAYER_ID_SYSTEM, "PI-InsurerExample", use="secondary", **payer_id_type),
            identifier(PAS_PAYER_ID_SYSTEM, "PI-Insurer", use="secondary", **payer_id_type),
        ],
        "active": True,
        "type": [
            concept(ORGANIZATION_TYPE, "pay", "Payer"),
            concept(X12_ENTITY_IDENTIFIER, "PR", "Payer"),
        ],
        "name": PAYER_NAME,
        "alias": ["MARYLAND CAPITAL INSURANCE COMPANY", "Insurance Company"],
        "telecom": [
            phone("800-555-0199"),
            {"system": "url", "value": "https://greenlight.example.org", "use": "work"},
        ],
        "address": [
            address(["500 Regent Street", "Suite 300"], "Madison", "WI", "53715", use="work")
        ],
    }


# --- providers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """A provider row for the load report: a Practitioner or provider Organization."""

    resource_type: str
    id: str
    name: str
    npis: tuple[str, ...]
    note: str = ""


# The ordering practitioners whose requests later rules treat as gold-carded (exempt from prior
# authorization for the topics they qualify for). Data only, for now.
GOLD_CARDED_NPIS: frozenset[str] = frozenset({"1304582715"})  # Dr. Priya Raman


def _practitioner(
    resource_id: str,
    name: Resource,
    npis: list[Resource],
    *,
    qualification: Literal["MD", "DO"] | None = None,
    telecom: list[Resource] | None = None,
    addresses: list[Resource] | None = None,
    extra_identifiers: list[Resource] | None = None,
) -> Resource:
    resource: Resource = {
        "resourceType": "Practitioner",
        "id": resource_id,
        "identifier": [*npis, *(extra_identifiers or [])],
        "active": True,
        "name": [name],
    }
    if telecom:
        resource["telecom"] = telecom
    if addresses:
        resource["address"] = addresses
    if qualification:
        resource["qualification"] = [doctor_qualification(qualification)]
    return resource


_LAKESHORE_ADDRESS = address("1450 Regent Street", "Madison", "WI", "53711", use="work")
_NORTHSIDE_ADDRESS = address("3200 N Sherman Ave", "Madison", "WI", "53704", use="work")
_PRAIRIE_ADDRESS = address("5810 Mineral Point Rd", "Madison", "WI", "53705", use="work")
_SAN_DIEGO = address("111 1ST STREET", "SAN DIEGO", "CA", "92101")


def practitioners() -> list[Resource]:
    return [
        # ---- our own ----
        _practitioner(
            "raman-priya",
            human_name("Raman", ["Priya"], prefix=["Dr."], suffix=["MD"]),
            [npi("1304582715")],
            qualification="MD",
            telecom=[phone("608-555-0110")],
            addresses=[_LAKESHORE_ADDRESS],
        ),
        _practitioner(
            "bell-marcus",
            human_name("Bell", ["Marcus"], prefix=["Dr."], suffix=["MD"]),
            [npi("1498720360")],
            qualification="MD",
            telecom=[phone("608-555-0120")],
            addresses=[_NORTHSIDE_ADDRESS],
        ),
        _practitioner(
            "petrova-elena",
            human_name("Petrova", ["Elena"], prefix=["Dr."], suffix=["DO"]),
            [npi("1573098443")],
            qualification="DO",
            telecom=[phone("608-555-0130")],
            addresses=[_PRAIRIE_ADDRESS],
        ),
        _practitioner(
            "whitfield-thomas",
            human_name("Whitfield", ["Thomas"], prefix=["Dr."], suffix=["MD"]),
            [npi("1682453901")],
            qualification="MD",
            telecom=[phone("608-555-0111")],
            addresses=[_LAKESHORE_ADDRESS],
        ),
        _practitioner(
            "ortiz-samuel",
            human_name("Ortiz", ["Samuel"], prefix=["Dr."], suffix=["MD"]),
            [npi("1720935182")],
            qualification="MD",
            telecom=[phone("608-555-0112")],
            addresses=[_LAKESHORE_ADDRESS],
        ),
        # ---- fixture identities ----
        _practitioner(
            "pra1234",
            human_name("Doe", ["Jane", "Betty"], prefix=["Dr."]),
            [npi("1122334455")],
            qualification="MD",
            telecom=[
                phone("716-873-1557"),
                {"system": "email", "value": "jane.betty@myhospital.com", "use": "work"},
            ],
            addresses=[address("840 Seneca St", "Buffalo", "NY", "14210", use="work")],
        ),
        _practitioner(
            "pra-hfairchild",
            human_name("Fairchild", ["Helen"], prefix=["Ms."]),
            [npi("1122334467")],
        ),
        _practitioner(
            "pra-sstrange",
            human_name("Strange", ["Stephen"], prefix=["Dr."]),
            [npi("1122334466")],
        ),
        _practitioner(
            "ReferralPractitionerExample",
            human_name("WATSON", ["SUSAN"], use=None),
            [npi("1234567893"), npi("987654321", use="old")],
            telecom=[phone("4029993456")],
            addresses=[_SAN_DIEGO],
        ),
        _practitioner(
            "example",
            human_name("Careful", ["Adam"], prefix=["Dr"], use=None),
            [npi("9941339108")],
            extra_identifiers=[identifier("http://www.acme.org/practitioners", "25456")],
            addresses=[address("1003 Healthcare Drive", "Amherst", "MA", "01002", use="work")],
        ),
    ]


def _provider_organization(
    resource_id: str,
    name: str,
    identifiers: list[Resource],
    types: list[Resource],
    *,
    telecom: list[Resource] | None = None,
    addresses: list[Resource] | None = None,
    contact: list[Resource] | None = None,
) -> Resource:
    resource: Resource = {
        "resourceType": "Organization",
        "id": resource_id,
        "identifier": identifiers,
        "active": True,
        "type": types,
        "name": name,
    }
    if telecom:
        resource["telecom"] = telecom
    if addresses:
        resource["address"] = addresses
    if contact:
        resource["contact"] = contact
    return resource


_PROVIDER_TYPE = concept(ORGANIZATION_TYPE, "prov", "Healthcare Provider")


def provider_organizations() -> list[Resource]:
    payer_id_type = {"type_code": "payerid", "type_system": C4BB_IDENTIFIER_TYPE}
    return [
        _provider_organization(
            "lakeshore-regional",
            "Lakeshore Regional Medical Center",
            [npi("1209487630"), identifier(EIN_SYSTEM, "391874520")],
            [_PROVIDER_TYPE, concept(NUCC_TAXONOMY, "282N00000X", "General Acute Care Hospital")],
            telecom=[phone("608-555-0100")],
            addresses=[_LAKESHORE_ADDRESS],
        ),
        _provider_organization(
            "northside-imaging",
            "Northside Imaging Center",
            [npi("1938472655"), identifier(EIN_SYSTEM, "391220847")],
            [_PROVIDER_TYPE, concept(NUCC_TAXONOMY, "261QR0200X", "Radiology Clinic/Center")],
            telecom=[phone("608-555-0121")],
            addresses=[_NORTHSIDE_ADDRESS],
        ),
        _provider_organization(
            "prairie-family-medicine",
            "Prairie Family Medicine",
            [npi("1455209878"), identifier(EIN_SYSTEM, "391559032")],
            [_PROVIDER_TYPE, concept(NUCC_TAXONOMY, "261QP2300X", "Primary Care Clinic/Center")],
            telecom=[phone("608-555-0131")],
            addresses=[_PRAIRIE_ADDRESS],
        ),
        # ---- fixture identities ----
        _provider_organization(
            "UMOExample",
            "DR. JOE SMITH CORPORATION",
            [
                npi("8189991234"),
                identifier(EIN_SYSTEM, "8189948234"),
                identifier(PAS_PAYER_ID_SYSTEM, "PI-UMOExample", **payer_id_type),
                identifier(PAS_PAYER_ID_SYSTEM, "PI-UMO", use="secondary", **payer_id_type),
            ],
            [
                _PROVIDER_TYPE,
                concept(X12_ENTITY_IDENTIFIER, "X3", "Utilization Management Organization"),
            ],
            telecom=[phone("4029993456")],
            addresses=[_SAN_DIEGO],
            contact=[
                {
                    "name": {"family": "WATSON", "given": ["SUSAN"]},
                    "telecom": [{"system": "other", "value": "http://hl7.org/fhir"}],
                }
            ],
        ),
        _provider_organization(
            "example",
            "University Medical Center",
            [npi("12345678")],
            [_PROVIDER_TYPE],
            telecom=[
                {"system": "phone", "value": "+1 555 234 3523", "use": "work"},
                {"system": "email", "value": "info@acme.org", "use": "work"},
            ],
            addresses=[address("Galapagosweg 91", "San Francisco", "CA", "94107", use="work")],
        ),
    ]


def _location(
    resource_id: str,
    name: str,
    types: list[Resource],
    location_address: Resource,
    *,
    managing_organization: str | None,
    description: str | None = None,
    physical_type: str = "bu",
    telecom: list[Resource] | None = None,
    identifiers: list[Resource] | None = None,
    alias: list[str] | None = None,
) -> Resource:
    resource: Resource = {"resourceType": "Location", "id": resource_id}
    if identifiers:
        resource["identifier"] = identifiers
    resource.update({"status": "active", "name": name})
    if alias:
        resource["alias"] = alias
    if description:
        resource["description"] = description
    resource["mode"] = "instance"
    if types:
        resource["type"] = types
    if telecom:
        resource["telecom"] = telecom
    resource["address"] = location_address
    physical_display = {"bu": "Building", "wi": "Wing"}[physical_type]
    resource["physicalType"] = concept(LOCATION_PHYSICAL_TYPE, physical_type, physical_display)
    if managing_organization:
        resource["managingOrganization"] = reference("Organization", managing_organization)
    return resource


# Location ids by site of care, for later site-of-care suggestions.
HOSPITAL_OUTPATIENT_LOCATION_ID = "lakeshore-outpatient"
FREESTANDING_IMAGING_LOCATION_ID = "northside-imaging-center"


def locations() -> list[Resource]:
    return [
        _location(
            HOSPITAL_OUTPATIENT_LOCATION_ID,
            "Lakeshore Regional Medical Center - Outpatient Imaging and Procedures",
            [
                concept(ROLE_CODE, "HOSP", "Hospital"),
                concept(PLACE_OF_SERVICE, "22", "On Campus-Outpatient Hospital"),
            ],
            _LAKESHORE_ADDRESS,
            managing_organization="lakeshore-regional",
            description="Hospital outpatient department (on campus): MRI, CT, PET, "
            "interventional procedures",
            telecom=[phone("608-555-0102")],
        ),
        _location(
            FREESTANDING_IMAGING_LOCATION_ID,
            "Northside Imaging Center",
            [
                concept(ROLE_CODE, "RADDX", "Radiology diagnostics or therapeutics unit"),
                concept(PLACE_OF_SERVICE, "11", "Office"),
            ],
            _NORTHSIDE_ADDRESS,
            managing_organization="northside-imaging",
            description="Freestanding (non-hospital) imaging center: MRI, CT, ultrasound, X-ray",
            telecom=[phone("608-555-0122")],
        ),
        _location(
            "prairie-family-medicine-clinic",
            "Prairie Family Medicine - Mineral Point Clinic",
            [
                concept(ROLE_CODE, "PC", "Primary care clinic"),
                concept(PLACE_OF_SERVICE, "11", "Office"),
            ],
            _PRAIRIE_ADDRESS,
            managing_organization="prairie-family-medicine",
            telecom=[phone("608-555-0132")],
        ),
        # ---- fixture identities ----
        _location(
            "ReferralLocationExample",
            "REFERRAL CLINIC",
            [],
            _SAN_DIEGO,
            managing_organization="UMOExample",
        ),
        _location(
            "example",
            "South Wing, second floor",
            [],
            address("Galapagosweg 91, Building A", "San Francisco", "CA", "94107", use="work"),
            managing_organization="example",
            identifiers=[identifier(None, "B1-S.F2")],
            alias=["MC, SW, F2", "University Medical Center, South Wing, second floor"],
            description="Second floor of the Old South Wing, formerly in use by Psychiatry",
            physical_type="wi",
        ),
    ]


def _role(
    resource_id: str,
    practitioner_id: str,
    organization_id: str | None,
    location_ids: list[str],
    specialty: Resource | None,
    *,
    telecom: list[Resource] | None = None,
    identifiers: list[Resource] | None = None,
) -> Resource:
    resource: Resource = {"resourceType": "PractitionerRole", "id": resource_id}
    if identifiers:
        resource["identifier"] = identifiers
    resource["active"] = True
    resource["practitioner"] = reference("Practitioner", practitioner_id)
    if organization_id:
        resource["organization"] = reference("Organization", organization_id)
    resource["code"] = [concept(PRACTITIONER_ROLE, "doctor", "Doctor")]
    if specialty:
        resource["specialty"] = [specialty]
    if location_ids:
        resource["location"] = [reference("Location", loc) for loc in location_ids]
    if telecom:
        resource["telecom"] = telecom
    return resource


def practitioner_roles() -> list[Resource]:
    return [
        _role(
            "raman-priya-lakeshore",
            "raman-priya",
            "lakeshore-regional",
            [HOSPITAL_OUTPATIENT_LOCATION_ID],
            concept(NUCC_TAXONOMY, "207X00000X", "Orthopaedic Surgery"),
        ),
        _role(
            "bell-marcus-northside",
            "bell-marcus",
            "northside-imaging",
            [FREESTANDING_IMAGING_LOCATION_ID],
            concept(NUCC_TAXONOMY, "2085R0202X", "Diagnostic Radiology"),
        ),
        _role(
            "petrova-elena-prairie",
            "petrova-elena",
            "prairie-family-medicine",
            ["prairie-family-medicine-clinic"],
            concept(NUCC_TAXONOMY, "207Q00000X", "Family Medicine"),
        ),
        _role(
            "whitfield-thomas-lakeshore",
            "whitfield-thomas",
            "lakeshore-regional",
            [HOSPITAL_OUTPATIENT_LOCATION_ID],
            concept(NUCC_TAXONOMY, "207RC0000X", "Cardiovascular Disease"),
        ),
        _role(
            "ortiz-samuel-lakeshore",
            "ortiz-samuel",
            "lakeshore-regional",
            [HOSPITAL_OUTPATIENT_LOCATION_ID],
            concept(NUCC_TAXONOMY, "2084N0400X", "Neurology"),
        ),
        # ---- fixture identities ----
        _role(
            "ReferralPractitionerRoleExample",
            "ReferralPractitionerExample",
            "UMOExample",
            ["ReferralLocationExample"],
            concept("http://snomed.info/sct", "408443003", "General medical practice"),
            telecom=[phone("4029993456")],
        ),
        _role(
            "example",
            "example",
            None,
            [],
            None,
            identifiers=[
                npi("9941339108"),
                identifier("http://www.acme.org/practitioners", "25456"),
            ],
        ),
    ]


# --- everything ----------------------------------------------------------------------------


def demo_resources() -> list[Resource]:
    """Every resource of the demo payer, referenced resources first."""
    return [
        payer_organization(),
        *provider_organizations(),
        *locations(),
        *practitioners(),
        *practitioner_roles(),
        *(member.patient_resource() for member in MEMBERS),
        *(member.coverage_resource() for member in MEMBERS),
    ]


def _display_name(name: Resource) -> str:
    parts = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
    return " ".join(part for part in parts if part)


def provider_rows() -> list[Provider]:
    """Practitioners and provider Organizations with their NPIs (for the report and DEMO.md)."""
    rows: list[Provider] = []
    for resource in practitioners():
        npis = tuple(i["value"] for i in resource["identifier"] if i.get("system") == NPI_SYSTEM)
        gold = any(value in GOLD_CARDED_NPIS for value in npis)
        rows.append(
            Provider(
                "Practitioner",
                resource["id"],
                _display_name(resource["name"][0]),
                npis,
                "gold-carded" if gold else "",
            )
        )
    for resource in provider_organizations():
        npis = tuple(i["value"] for i in resource["identifier"] if i.get("system") == NPI_SYSTEM)
        rows.append(Provider("Organization", resource["id"], resource["name"], npis))
    return rows
