"""The coverage-topic file format, written once per topic in `questionnaires/<topic>/topic.yaml`.

One topic answers CRD (coverage, prior auth, documentation at order time), chooses the DTR
Questionnaires, and states the criteria PAS uses to approve automatically. Unknown fields are
refused so a typo can never silently weaken a rule. Values are the codes of the
`ext-coverage-information` sub-extensions in CRD 2.0.1, the version CMS and Inferno use (value sets
coverageInfo, coveragePaDetail, AdditionalDocumentation, DocReason, informationNeeded).
`satisfied` is not authorable: it comes from an existing authorization.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

Covered = Literal["covered", "not-covered", "conditional"]
PaNeeded = Literal["no-auth", "auth-needed", "performpa", "conditional"]
DocNeeded = Literal["clinical", "admin", "both", "conditional"]
DocPurpose = Literal["withpa", "withclaim", "withorder", "retain-doc", "OTH"]
InfoNeeded = Literal["performer", "location", "timeframe", "contract-window", "OTH"]

ALL_PLANS = "*"


class Strict(BaseModel):
    """Base of every topic-file model: unknown fields are errors, names use dashes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CodeSet(Strict):
    """Billing or clinical codes of one code system: single codes and inclusive ranges."""

    system: str = Field(min_length=1)
    values: tuple[str, ...] = ()
    ranges: tuple[tuple[str, str], ...] = ()
    display: dict[str, str] = Field(default_factory=dict, description="code -> display text")

    @model_validator(mode="after")
    def _not_empty(self) -> CodeSet:
        if not self.values and not self.ranges:
            raise ValueError("a code set needs `values` or `ranges`")
        return self


CRD_TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"


class Reason(Strict):
    """A reason (CRD `coverage-information.reason`, an extensible CodeableConcept): text, and a
    code only where a code system really defines one (CRD 2.0.1: `gold-card`, `detail-code`)."""

    code: str | None = None
    system: str | None = None
    display: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _code_or_text(self) -> Reason:
        if not self.code and not self.text:
            raise ValueError("a reason needs a code or a text")
        if self.code and not self.system:
            raise ValueError("a coded reason needs its system")
        return self

    def codeable_concept(self) -> dict[str, object]:
        concept: dict[str, object] = {}
        if self.code:
            coding: dict[str, str] = {"system": self.system or "", "code": self.code}
            if self.display:
                coding["display"] = self.display
            concept["coding"] = [coding]
        if self.text:
            concept["text"] = self.text
        return concept


class PolicyLink(Strict):
    title: str = Field(min_length=1, max_length=200)
    url: HttpUrl


class Outcome(Strict):
    """What the topic answers for a plan (or when a condition holds)."""

    covered: Covered | None = None
    pa_needed: PaNeeded | None = Field(default=None, alias="pa-needed")
    doc_needed: DocNeeded | None = Field(default=None, alias="doc-needed")
    doc_purpose: tuple[DocPurpose, ...] | None = Field(default=None, alias="doc-purpose")
    info_needed: tuple[InfoNeeded, ...] | None = Field(default=None, alias="info-needed")
    reasons: tuple[Reason, ...] | None = None
    note: str | None = Field(default=None, max_length=500)


class Condition(Strict):
    """An outcome override that applies when the FHIRPath expression `when` is true.

    Expressions see `%order`, `%patient`, `%coverage`, `%practitioner`, `%location`,
    `%encounter`, `%orderingNpi` (string), `%plan` (string) and `%diagnoses` (the order's reason
    codes); the focus is the order.
    """

    name: str = Field(min_length=1)
    when: str = Field(min_length=1)
    then: Outcome


class DiagnosisExemption(Strict):
    """Orders for these diagnoses need no prior authorization."""

    name: str
    codes: CodeSet
    reason: Reason


class Exemptions(Strict):
    gold_card_npis: tuple[str, ...] = Field(default=(), alias="gold-card-npis")
    diagnoses: tuple[DiagnosisExemption, ...] = ()

    @field_validator("gold_card_npis")
    @classmethod
    def _npis(cls, npis: tuple[str, ...]) -> tuple[str, ...]:
        for npi in npis:
            if not (len(npi) == 10 and npi.isdigit()):
                raise ValueError(f"'{npi}' is not a 10-digit NPI")
        return npis


class SiteOfCare(Strict):
    """When `when` holds (e.g. a hospital outpatient setting), propose the service elsewhere."""

    name: str
    when: str = Field(min_length=1)
    propose_location: str = Field(
        alias="propose-location", pattern=r"^Location/[A-Za-z0-9\-.]{1,64}$"
    )
    summary: str = Field(max_length=139)
    detail: str


class Companion(Strict):
    """An order that should accompany this one (a prerequisite such as a screening test),
    proposed to the clinician as a CRD Additional Orders card."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    summary: str = Field(max_length=139)
    detail: str
    system: str
    code: str
    display: str


class ApprovalCriterion(Strict):
    """One way a PAS request can be approved without a clinician: a FHIRPath over the request."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    when: str = Field(min_length=1)


class AutoApproval(Strict):
    """Approve at once when any criterion holds; otherwise pend for a clinician (never deny)."""

    any_of: tuple[ApprovalCriterion, ...] = Field(alias="any-of", min_length=1)


class Documentation(Strict):
    questionnaires: tuple[str, ...] = ()
    instructions: str | None = None


class Topic(Strict):
    """A coverage topic: codes, plans, the default answer, overrides, documentation, approval."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1, max_length=120)
    description: str | None = None
    codes: tuple[CodeSet, ...] = Field(min_length=1)
    plans: tuple[str, ...] = (ALL_PLANS,)
    answer: Outcome
    by_plan: dict[str, Outcome] = Field(default_factory=dict, alias="by-plan")
    conditions: tuple[Condition, ...] = ()
    exemptions: Exemptions = Exemptions()
    documentation: Documentation = Documentation()
    policy: PolicyLink | None = None
    site_of_care: tuple[SiteOfCare, ...] = Field(default=(), alias="site-of-care")
    companions: tuple[Companion, ...] = ()
    auto_approval: AutoApproval | None = Field(default=None, alias="auto-approval")
    valid_days: int = Field(default=90, ge=1, le=730, alias="valid-days")

    @model_validator(mode="after")
    def _consistent(self) -> Topic:
        if self.answer.covered is None:
            raise ValueError("answer.covered is required")
        if self.answer.covered != "not-covered" and self.answer.pa_needed is None:
            raise ValueError("answer.pa-needed is required unless not-covered (CRD crd-ci-q2)")
        for plan in self.by_plan:
            if ALL_PLANS not in self.plans and plan not in self.plans:
                raise ValueError(f"by-plan names plan '{plan}' that is not in plans")
        needs_docs = any(
            o.doc_needed
            for o in (self.answer, *self.by_plan.values(), *(c.then for c in self.conditions))
        )
        if needs_docs and not self.documentation.questionnaires:
            raise ValueError("doc-needed is set but documentation.questionnaires is empty")
        return self

    def applies_to_plan(self, plan: str | None) -> bool:
        return ALL_PLANS in self.plans or (plan is not None and plan in self.plans)
