"""DTR load: the `$questionnaire-package` and `$next-question` request bodies, built at run time.

- `dtr-package` sends the Inferno DTR kit's payer-server request as it is
  (`extracted/initial_static_questionnaire_request.json`: DeviceRequest E0424 for pat015 under
  cov015); the demo payer's coverage rules map it to the home oxygen Questionnaire, so Greenlight
  matches the member, decides the order and packages the form, its CQL Libraries and value sets.
- `dtr-next-question` sends a **follow-up** step of the adaptive lumbar spine MRI form
  (`questionnaires/lumbar-mri/adaptive.yaml`). While seeding, the harness asks for the adaptive
  package (the IG's conformant input's Coverage + the adaptive Questionnaire's canonical, as
  `app/demo/inferno/dtr_adaptive_questionnaire_request.json` does for Inferno's adaptive group;
  the input's own order, a blood gas panel, has a static form of its own), sends the draft
  response to `$next-question` (step 1: the presentation questions), answers those questions
  (no red flag) and sends that: the request loaded is the last one, and Greenlight answers it
  with the conservative therapy and prior imaging questions added.

The fixtures are read from the shared Inferno kit next to the repository, never copied here.
`$next-question` keeps no state (the response carries it all), so the same follow-up request can
be sent over and over.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from bench.crd import SHARED

KIT = SHARED / "fixtures" / "inferno" / "davinci-dtr-test-kit"
PACKAGE_FIXTURE = KIT / "extracted" / "initial_static_questionnaire_request.json"
CONFORMANT_FIXTURE = (
    KIT / "spec" / "fixtures" / "questionnaire_package_input_params_conformant.json"
)
ADAPTIVE_FLOW = (
    Path(__file__).resolve().parents[1] / "questionnaires" / "lumbar-mri" / "adaptive.yaml"
)

PACKAGE_PATH = "/fhir/Questionnaire/$questionnaire-package"
NEXT_QUESTION_PATH = "/fhir/Questionnaire/$next-question"
FHIR_JSON = "application/fhir+json"
# What the kit's E0424 request must be packaged with: the home oxygen form of the demo payer.
PACKAGE_QUESTIONNAIRE = "home-oxygen"
INFORMATION_ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
# The step-1 questions and the step-2 ones the follow-up must add (no red flag: therapy asked).
STEP1 = ("diagnosis", "symptom-weeks", "red-flags", "neurological-deficit")
STEP2 = ("conservative-therapy-weeks", "prior-imaging-done")


class DtrError(RuntimeError):
    """A fixture is missing, or Greenlight's DTR answers are not what the scenarios measure."""


@dataclass(frozen=True)
class DtrSeed:
    """The request bodies the scenarios send and Greenlight's answers to them (for the bare app)."""

    requests: dict[str, bytes]
    answers: dict[str, bytes]
    # Human-readable facts for the report.
    facts: dict[str, str]


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DtrError(f"cannot read the Inferno DTR fixture {path}: {exc}") from exc
    if not isinstance(loaded, dict) or loaded.get("resourceType") != "Parameters":
        raise DtrError(f"{path}: expected a Parameters resource")
    return loaded


def package_request(fixture: Path = PACKAGE_FIXTURE) -> bytes:
    """The kit's payer-server `$questionnaire-package` request, unchanged."""
    return orjson.dumps(_read(fixture))


def adaptive_canonical(flow: Path = ADAPTIVE_FLOW) -> str:
    """The canonical of the adaptive lumbar MRI Questionnaire, from its step plan."""
    try:
        raw = yaml.safe_load(flow.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DtrError(f"cannot read the adaptive step plan {flow}: {exc}") from exc
    canonical = raw.get("questionnaire") if isinstance(raw, dict) else None
    if not isinstance(canonical, str) or not canonical:
        raise DtrError(f"{flow}: no `questionnaire` canonical")
    return canonical


def adaptive_package_request(fixture: Path = CONFORMANT_FIXTURE) -> bytes:
    """The IG's conformant package input naming the adaptive lumbar MRI Questionnaire instead of
    ordering (its blood gas panel would add that topic's static form to the package)."""
    body = _read(fixture)
    body["parameter"] = [p for p in body["parameter"] if p.get("name") != "order"]
    body["parameter"].append({"name": "questionnaire", "valueCanonical": adaptive_canonical()})
    return orjson.dumps(body)


def next_question_request(response: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": response}],
        }
    )


def _origin(source: str) -> list[dict[str, Any]]:
    extension: list[dict[str, Any]] = [{"url": "source", "valueCode": source}]
    if source == "manual":
        author = {"url": "practitioner", "valueReference": {"reference": "Practitioner/pra1234"}}
        extension.append({"url": "author", "extension": [author]})
    return [{"url": INFORMATION_ORIGIN, "extension": extension}]


def step1_answers(canonical: str) -> dict[str, list[dict[str, Any]]]:
    """Answers to the presentation questions, as a DTR app gives them (tests/dtr's values):
    two pre-populated by CQL, two by the clinician; no red flag, so therapy is asked next."""
    base = canonical.split("/Questionnaire/")[0]
    flag = {"system": f"{base}/CodeSystem/lumbar-red-flags", "code": "none"}
    return {
        "diagnosis": [
            {"valueCoding": {"system": ICD10, "code": "M51.16"}, "extension": _origin("auto")}
        ],
        "symptom-weeks": [{"valueInteger": 10, "extension": _origin("auto")}],
        "red-flags": [{"valueCoding": flag, "extension": _origin("manual")}],
        "neurological-deficit": [{"valueBoolean": False, "extension": _origin("manual")}],
    }


def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.append(item)
        found.extend(walk(item.get("item") or []))
    return found


def contained_link_ids(response: dict[str, Any]) -> list[str]:
    """The linkIds of the response's contained (adaptive) Questionnaire, in order."""
    contained = response.get("contained") or [{}]
    return [str(item["linkId"]) for item in walk(contained[0].get("item") or [])]


def answer(response: dict[str, Any], answers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """`response` with `answers` to the questions of its contained Questionnaire (its groups
    mirrored, earlier answers kept), as tests/dtr/test_next_question.py builds them."""
    updated = copy.deepcopy(response)
    given = {i["linkId"]: i["answer"] for i in walk(updated.get("item") or []) if i.get("answer")}
    given.update(answers)

    def build(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            if item["type"] == "group":
                children = build(item.get("item") or [])
                if children:
                    out.append({"linkId": item["linkId"], "text": item["text"], "item": children})
            elif item["type"] != "display" and given.get(item["linkId"]):
                entry = {"linkId": item["linkId"], "text": item["text"]}
                out.append({**entry, "answer": given[item["linkId"]]})
        return out

    updated["item"] = build(updated["contained"][0].get("item") or [])
    return updated


def _bundles(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        p["resource"]
        for p in parameters.get("parameter") or []
        if p.get("name") == "PackageBundle" and isinstance(p.get("resource"), dict)
    ]


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    entries = bundle.get("entry") or []
    return [e["resource"] for e in entries if e.get("resource", {}).get("resourceType") == kind]


def _errors(parameters: dict[str, Any]) -> list[str]:
    outcomes = [
        p["resource"]
        for p in parameters.get("parameter") or []
        if p.get("name") == "operationOutcome"
    ]
    return [
        str(issue.get("diagnostics"))
        for outcome in outcomes
        for issue in outcome.get("issue") or []
        if issue.get("severity") in ("error", "fatal")
    ]


def _post(client: httpx.Client, path: str, body: bytes, what: str) -> dict[str, Any]:
    response = client.post(path, content=body, headers={"Content-Type": FHIR_JSON})
    if response.status_code != 200:
        raise DtrError(f"{what}: expected 200, got {response.status_code}: {response.text[:500]}")
    parsed: dict[str, Any] = response.json()
    return parsed


def seed(client: httpx.Client) -> DtrSeed:
    """Build both scenarios' requests against Greenlight (`client`: its base URL, Accept and
    token), check its answers are the ones measured, and capture them."""
    # dtr-package: the kit's E0424 request gets the home oxygen package.
    package_body = package_request()
    package_response = client.post(
        PACKAGE_PATH, content=package_body, headers={"Content-Type": FHIR_JSON}
    )
    if package_response.status_code != 200:
        raise DtrError(
            f"seeding POST {PACKAGE_PATH}: expected 200, got {package_response.status_code}: "
            f"{package_response.text[:500]}"
        )
    package = package_response.json()
    bundles = _bundles(package)
    forms = [q.get("id") for b in bundles for q in _resources(b, "Questionnaire")]
    if forms != [PACKAGE_QUESTIONNAIRE] or _errors(package):
        raise DtrError(
            f"$questionnaire-package for the kit's E0424 request packaged {forms} (errors: "
            f"{_errors(package)}), expected [{PACKAGE_QUESTIONNAIRE!r}] (is the demo payer loaded?)"
        )
    libraries = len(_resources(bundles[0], "Library"))
    valuesets = len(_resources(bundles[0], "ValueSet"))

    # dtr-next-question: adaptive package -> step 1 -> answered step 1 (the request loaded).
    adaptive = _post(client, PACKAGE_PATH, adaptive_package_request(), "the adaptive package")
    drafts = [r for b in _bundles(adaptive) for r in _resources(b, "QuestionnaireResponse")]
    if len(drafts) != 1 or not str(drafts[0].get("questionnaire", "")).startswith("#"):
        raise DtrError(f"the adaptive package holds {len(drafts)} draft responses, expected one")
    step1 = _post(client, NEXT_QUESTION_PATH, next_question_request(drafts[0]), "$next-question 1")
    if step1.get("resourceType") != "QuestionnaireResponse" or not set(STEP1) <= set(
        contained_link_ids(step1)
    ):
        raise DtrError(f"$next-question step 1 asked {contained_link_ids(step1)}, expected {STEP1}")
    follow_up = next_question_request(answer(step1, step1_answers(adaptive_canonical())))
    step2_response = client.post(
        NEXT_QUESTION_PATH, content=follow_up, headers={"Content-Type": FHIR_JSON}
    )
    if step2_response.status_code != 200:
        raise DtrError(
            f"seeding the follow-up $next-question: expected 200, got "
            f"{step2_response.status_code}: {step2_response.text[:500]}"
        )
    step2 = step2_response.json()
    asked = contained_link_ids(step2)
    answered = {i["linkId"] for i in walk(step2.get("item") or []) if i.get("answer")}
    if (
        step2.get("resourceType") != "QuestionnaireResponse"
        or step2.get("status") != "in-progress"
        or not set(STEP2) <= set(asked)
        or not set(STEP1) <= answered
    ):
        raise DtrError(
            f"the follow-up $next-question answered a {step2.get('resourceType')} "
            f"({step2.get('status')}) asking {asked} with {sorted(answered)} answered; expected "
            f"the step-1 answers kept and {STEP2} asked"
        )
    new = [link for link in asked if link not in contained_link_ids(step1)]
    return DtrSeed(
        requests={"dtr-package": package_body, "dtr-next-question": follow_up},
        answers={
            "dtr-package": package_response.content,
            "dtr-next-question": step2_response.content,
        },
        facts={
            "dtr-package": (
                f"the Inferno DTR kit's payer-server request (E0424, pat015/cov015; "
                f"{len(package_body):,} B) -> the {PACKAGE_QUESTIONNAIRE} package "
                f"(1 Questionnaire, {libraries} Libraries, {valuesets} ValueSets; "
                f"{len(package_response.content):,} B)"
            ),
            "dtr-next-question": (
                f"lumbar-mri adaptive, follow-up step: the step-1 response with its "
                f"{len(STEP1)} questions answered (no red flag; {len(follow_up):,} B) -> "
                f"{len(new)} items added ({', '.join(new)}; {len(step2_response.content):,} B)"
            ),
        },
    )
