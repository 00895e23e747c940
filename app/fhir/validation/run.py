"""The state of one validation call, and the result it hands back.

A `Run` collects the issues (deduplicated, or only counted when it probes whether something
conforms) and the context the walk is in: the Bundles, entries and resources it has entered.
`Item` is one instance value the walk reaches, `ResCtx` the resource it belongs to, and
`ValidationResult` what `Validator.validate` returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.fhir.outcomes import Issue, Severity, operation_outcome
from app.fhir.validation.bundles import BundleIndex
from app.fhir.validation.structure import TypeRef


@dataclass
class ValidationResult:
    """Issues found, as OperationOutcome issues; `ok` when none is an error."""

    issues: list[Issue]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity in ("error", "fatal")]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    def describe(self, severities: Iterable[str] = ("fatal", "error")) -> str:
        wanted = set(severities)
        return "\n".join(
            f"{i.severity} [{i.code}] {', '.join(i.expression)}: {i.diagnostics}"
            for i in self.issues
            if i.severity in wanted
        )


@dataclass
class Item:
    """One instance value found under an element: value, `_x` companion, type, path."""

    value: Any
    ext: Any
    type: TypeRef | None
    path: str


@dataclass
class ResCtx:
    """The resource being walked (`%resource`) and its root (`%rootResource`)."""

    resource: dict[str, Any]
    root: dict[str, Any]
    contained: bool = False


@dataclass
class Run:
    """The state of one validation call (the Validator itself only holds caches)."""

    silent: bool = False
    issues: list[Issue] = field(default_factory=list)
    seen: set[tuple[str, str, str, str]] = field(default_factory=set)
    errors: int = 0
    bundles: list[BundleIndex] = field(default_factory=list)
    full_urls: list[str | None] = field(default_factory=list)
    resources: list[ResCtx] = field(default_factory=list)

    def add(self, severity: Severity, code: str, path: str, message: str) -> None:
        if severity in ("error", "fatal"):
            self.errors += 1
        if self.silent:
            return
        key = (severity, code, path, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.issues.append(Issue(severity, code, message, (path,)))

    def probe(self) -> Run:
        """A silent run in the same context, to count the errors of a trial walk."""
        return Run(
            silent=True,
            bundles=list(self.bundles),
            full_urls=list(self.full_urls),
            resources=list(self.resources),
        )
