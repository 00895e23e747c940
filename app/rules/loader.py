"""Loading coverage topics from `questionnaires/<topic>/topic.yaml`, validated and compiled once.

A malformed topic raises `TopicLoadError` naming the file and the field, so start-up stops with a
message the payer's analyst can act on. FHIRPath conditions are compiled here, never per call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import fhirpathpy
import yaml
from fhirpathpy.models import models
from pydantic import ValidationError

from app.rules.codes import canonical_system, expand_range, normalize_code
from app.rules.topic import ApprovalCriterion, CodeSet, Condition, SiteOfCare, Topic

TOPIC_FILE = "topic.yaml"
# libyaml's safe loader when PyYAML was built with it (about twice as fast), else the Python one
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Compiled = Callable[[Any, dict[str, Any]], list[Any]]
FHIR_R4 = models["r4"]


class TopicLoadError(Exception):
    """A topic file that cannot be used; the message names the file and the field."""

    def __init__(self, source: Path, field_path: str, message: str) -> None:
        self.source = source
        self.field_path = field_path
        super().__init__(f"{source}: {field_path}: {message}")


@dataclass(frozen=True)
class CompiledTopic:
    """A validated topic with its expressions compiled and its codes expanded."""

    topic: Topic
    source: Path
    codes: frozenset[tuple[str, str]]
    conditions: tuple[tuple[Condition, Compiled], ...]
    site_of_care: tuple[tuple[SiteOfCare, Compiled], ...]
    approval: tuple[tuple[ApprovalCriterion, Compiled], ...]
    exempt_diagnoses: tuple[tuple[str, frozenset[tuple[str, str]]], ...]

    @property
    def id(self) -> str:
        return self.topic.id


def code_keys(code_set: CodeSet) -> set[tuple[str, str]]:
    """(canonical system, normalized code) of every code a set names, ranges expanded."""
    system = canonical_system(code_set.system)
    keys = {(system, normalize_code(system, value)) for value in code_set.values}
    for low, high in code_set.ranges:
        keys.update((system, normalize_code(system, value)) for value in expand_range(low, high))
    return keys


# The environment variables a topic expression may use. Order-time expressions (conditions,
# site-of-care) see the first group; PAS approval criteria also see the submitted request.
ORDER_VARIABLES = (
    "order",
    "patient",
    "coverage",
    "practitioner",
    "location",
    "encounter",
    "orderingNpi",
    "plan",
    "diagnoses",
)
REQUEST_VARIABLES = (*ORDER_VARIABLES, "claim", "bundle", "questionnaireResponse")


@lru_cache(maxsize=4096)
def _compiled(expression: str, variables: tuple[str, ...]) -> Compiled:
    """Compile once, then evaluate once on empty inputs: fhirpathpy parses leniently and reports
    many errors (unknown functions, wrong arity, undefined variables) only when evaluating.
    Cached by text: many topics share expressions, and fhirpathpy's parser is pure Python."""
    function: Compiled = fhirpathpy.compile(expression, FHIR_R4)
    function({}, dict.fromkeys(variables))
    return function


def _compile(
    expression: str, source: Path, field_path: str, variables: tuple[str, ...] = ORDER_VARIABLES
) -> Compiled:
    try:
        return _compiled(expression, variables)
    except Exception as exc:  # fhirpathpy raises bare Exceptions for these
        raise TopicLoadError(
            source, field_path, f"not a usable FHIRPath expression: {exc}"
        ) from None


def _field_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(file)"


def compile_topic(raw: Any, source: Path) -> CompiledTopic:
    """Validate one topic document and compile it."""
    if not isinstance(raw, dict):
        raise TopicLoadError(source, "(file)", "a topic file must hold a mapping")
    try:
        topic = Topic.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TopicLoadError(source, _field_path(first["loc"]), first["msg"]) from None
    codes: set[tuple[str, str]] = set()
    for index, code_set in enumerate(topic.codes):
        try:
            codes |= code_keys(code_set)
        except ValueError as exc:
            raise TopicLoadError(source, f"codes[{index}].ranges", str(exc)) from None
    exempt = []
    for index, exemption in enumerate(topic.exemptions.diagnoses):
        try:
            exempt.append((exemption.name, frozenset(code_keys(exemption.codes))))
        except ValueError as exc:
            raise TopicLoadError(source, f"exemptions.diagnoses[{index}].codes", str(exc)) from None
    approval = topic.auto_approval.any_of if topic.auto_approval else ()
    return CompiledTopic(
        topic=topic,
        source=source,
        codes=frozenset(codes),
        conditions=tuple(
            (c, _compile(c.when, source, f"conditions[{i}].when"))
            for i, c in enumerate(topic.conditions)
        ),
        site_of_care=tuple(
            (s, _compile(s.when, source, f"site-of-care[{i}].when"))
            for i, s in enumerate(topic.site_of_care)
        ),
        approval=tuple(
            (a, _compile(a.when, source, f"auto-approval.any-of[{i}].when", REQUEST_VARIABLES))
            for i, a in enumerate(approval)
        ),
        exempt_diagnoses=tuple(exempt),
    )


@dataclass
class TopicSet:
    """All loaded topics and the index from (system, code) to the topics that name the code.

    `version` names the rules as loaded (a digest of every topic file's name and bytes): a CRD
    answer stored under other rules is not reused (`cds_hooks.respond`).
    """

    topics: dict[str, CompiledTopic] = field(default_factory=dict)
    by_code: dict[tuple[str, str], list[CompiledTopic]] = field(default_factory=dict)
    version: str = ""

    def add(self, compiled: CompiledTopic) -> None:
        if compiled.id in self.topics:
            other = self.topics[compiled.id].source
            raise TopicLoadError(
                compiled.source, "id", f"topic id '{compiled.id}' is also used by {other}"
            )
        self.topics[compiled.id] = compiled
        for key in compiled.codes:
            self.by_code.setdefault(key, []).append(compiled)

    def for_code(self, system: str | None, code: str) -> list[CompiledTopic]:
        """The topics naming this code (O(1) whatever the number of topics)."""
        canonical = canonical_system(system)
        return self.by_code.get((canonical, normalize_code(canonical, code)), [])


def load_topic_file(path: Path, text: str | None = None) -> CompiledTopic:
    """The topic in `path` (its `text` when already read), validated and compiled."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise TopicLoadError(path, where, f"not valid YAML: {exc}") from None
    compiled = compile_topic(raw, path)
    if compiled.id != path.parent.name:
        raise TopicLoadError(
            path, "id", f"'{compiled.id}' must equal its folder name '{path.parent.name}'"
        )
    return compiled


def load_topics(directory: Path) -> TopicSet:
    """Every `<directory>/<topic>/topic.yaml`, validated; TopicLoadError on the first bad one."""
    if not directory.is_dir():
        raise TopicLoadError(directory, "(directory)", "the rules directory does not exist")
    topics = TopicSet()
    version = hashlib.sha256()
    for path in sorted(directory.glob(f"*/{TOPIC_FILE}")):
        content = path.read_bytes()
        version.update(b"%s\0%d\0" % (path.parent.name.encode(), len(content)))
        version.update(content)
        topics.add(load_topic_file(path, content.decode("utf-8")))
    topics.version = version.hexdigest()[:32]
    return topics
