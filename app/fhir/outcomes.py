"""OperationOutcome factories and the one error type every layer raises.

`FhirError(status, outcome)` is raised anywhere (domain code included) and turned into an HTTP
response by the handlers registered once in `app.api.errors`. Each issue names the element path
in `expression` (FHIRPath-style, e.g. `Bundle.entry[0].resource.patient`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue."""

    severity: Severity
    code: str
    diagnostics: str
    expression: Sequence[str] = field(default_factory=tuple)
    details_text: str | None = None

    def to_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.details_text:
            issue["details"] = {"text": self.details_text}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource (as JSON) holding `issues`."""
    payload = [issue.to_json() for issue in issues]
    if not payload:
        payload = [Issue("information", "informational", "All OK").to_json()]
    return {"resourceType": "OperationOutcome", "issue": payload}


class FhirError(Exception):
    """An error answered with `status` and an OperationOutcome body."""

    def __init__(
        self,
        status: int,
        issues: Issue | Sequence[Issue],
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.issues: tuple[Issue, ...] = (issues,) if isinstance(issues, Issue) else tuple(issues)
        self.headers = headers or {}
        super().__init__(self.issues[0].diagnostics if self.issues else str(status))

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    @classmethod
    def single(
        cls,
        status: int,
        code: str,
        diagnostics: str,
        *expression: str,
        headers: dict[str, str] | None = None,
    ) -> FhirError:
        """An error with one issue of severity `error`."""
        return cls(status, Issue("error", code, diagnostics, expression), headers)


def bad_request(diagnostics: str, *expression: str, code: str = "invalid") -> FhirError:
    return FhirError.single(400, code, diagnostics, *expression)


def not_found(resource_type: str, resource_id: str) -> FhirError:
    return FhirError.single(
        404, "not-found", f"{resource_type}/{resource_id} is not known", resource_type
    )


def gone(resource_type: str, resource_id: str) -> FhirError:
    return FhirError.single(410, "deleted", f"{resource_type}/{resource_id} was deleted")
