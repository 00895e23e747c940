"""Parsing FHIR search parameters into criteria the repository turns into SQL.

Supported: `_id`, `_lastUpdated` (prefixes eq ne gt lt ge le sa eb, any date precision), token
(`system|code`, `code`, `system|`, `|code`), reference (`123`, `Patient/123`, absolute URLs),
uri (exact), string (case-insensitive prefix). Comma = OR, a repeated parameter = AND. Unknown
parameters are ignored and reported (lenient), or rejected with `Prefer: handling=strict`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from app.fhir.outcomes import FhirError, Issue
from app.registry import RESULT_PARAMS, ResourceSpec, SearchParam
from app.store.indexing import normalize_string, split_reference

DatePrefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]
_DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})"
    r"(:(?P<S>\d{2})(?P<f>\.\d+)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass(frozen=True)
class ValueMatch:
    """One alternative of an index match: system None means any system."""

    value: str
    system: str | None = None
    any_system: bool = True
    system_only: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class IndexCriterion:
    """An index condition: any of `alternatives` for `param` (OR)."""

    param: str
    alternatives: tuple[ValueMatch, ...]


@dataclass(frozen=True)
class DateCriterion:
    """`_lastUpdated` against the half-open range [low, high) of the given precision."""

    prefix: DatePrefix
    low_us: int
    high_us: int


@dataclass
class SearchQuery:
    resource_type: str
    ids: list[tuple[str, ...]] = field(default_factory=list)
    index: list[IndexCriterion] = field(default_factory=list)
    dates: list[DateCriterion] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    summary_count: bool = False
    ignored: list[str] = field(default_factory=list)
    echoed: list[tuple[str, str]] = field(default_factory=list)


def _epoch_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def parse_date_range(text: str, name: str) -> tuple[int, int]:
    """The [low, high) range in epoch microseconds covered by a FHIR date(Time) of any precision."""
    match = _DATE_RE.match(text)
    if not match:
        raise FhirError.single(
            400, "invalid", f"{name}: '{text}' is not a FHIR date or dateTime", name
        )
    g = match.groupdict()
    tz: timezone = UTC
    if g["tz"] and g["tz"] != "Z":
        sign = 1 if g["tz"][0] == "+" else -1
        hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        year = int(g["y"])
        if g["m"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            high = datetime(year + 1, 1, 1, tzinfo=tz)
        elif g["d"] is None:
            month = int(g["m"])
            low = datetime(year, month, 1, tzinfo=tz)
            high = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
        elif g["H"] is None:
            low = datetime(year, int(g["m"]), int(g["d"]), tzinfo=tz)
            high = low + timedelta(days=1)
        else:
            seconds = int(g["S"] or 0)
            fraction = g["f"] or ""
            micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
            low = datetime(
                year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), seconds, micros, tzinfo=tz
            )
            if g["S"] is None:
                step = timedelta(minutes=1)
            elif not fraction:
                step = timedelta(seconds=1)
            else:
                step = timedelta(microseconds=10 ** max(0, 6 - (len(fraction) - 1)))
            high = low + step
    except ValueError as exc:
        raise FhirError.single(400, "invalid", f"{name}: {exc}", name) from None
    return _epoch_us(low), _epoch_us(high)


def _split_prefix(value: str) -> tuple[DatePrefix, str]:
    for prefix in _DATE_PREFIXES:
        if value.startswith(prefix) and len(value) > 2 and value[2].isdigit():
            return prefix, value[2:]  # type: ignore[return-value]
    return "eq", value


def _token_alternative(raw: str) -> ValueMatch:
    if "|" not in raw:
        return ValueMatch(raw)
    system, code = raw.split("|", 1)
    if not code:
        return ValueMatch("", system=system, any_system=False, system_only=True)
    return ValueMatch(code, system=system or None, any_system=False)


def _reference_alternative(raw: str, fhir_base: str, param: SearchParam) -> ValueMatch:
    target, ident = split_reference(raw, fhir_base)
    if param.target and target not in (None, param.target):
        raise FhirError.single(
            400, "invalid", f"{param.name} refers to {param.target}, not {target}", param.name
        )
    if target is None:
        return ValueMatch(ident)
    return ValueMatch(ident, system=target, any_system=False)


def _criterion(param: SearchParam, raw_value: str, fhir_base: str) -> IndexCriterion:
    alternatives: list[ValueMatch] = []
    for raw in (part for part in raw_value.split(",") if part != ""):
        if param.type == "token":
            alternatives.append(_token_alternative(raw))
        elif param.type == "reference":
            alternatives.append(_reference_alternative(raw, fhir_base, param))
        elif param.type == "string":
            alternatives.append(ValueMatch(normalize_string(raw), prefix=True))
        else:
            alternatives.append(ValueMatch(raw))
    if not alternatives:
        raise FhirError.single(400, "invalid", f"{param.name} has no value", param.name)
    return IndexCriterion(param.name, tuple(alternatives))


def _int_param(name: str, raw: str, low: int, high: int) -> int:
    try:
        number = int(raw)
    except ValueError:
        raise FhirError.single(400, "invalid", f"{name} must be a whole number", name) from None
    if number < low:
        raise FhirError.single(400, "invalid", f"{name} must be at least {low}", name)
    return min(number, high)


def parse_search(
    spec: ResourceSpec,
    params: list[tuple[str, str]],
    *,
    fhir_base: str,
    default_count: int,
    max_count: int,
    strict: bool,
) -> SearchQuery:
    """Turn query parameters into a SearchQuery, or raise 400 naming the parameter."""
    query = SearchQuery(spec.type, count=default_count)
    for key, value in params:
        name, _, modifier = key.partition(":")
        if name in RESULT_PARAMS:
            if name == "_count":
                query.count = _int_param("_count", value, 0, max_count)
            elif name == "_offset":
                query.offset = _int_param("_offset", value, 0, 10_000_000)
            elif name == "_summary":
                if value == "count":
                    query.summary_count = True
                elif value != "false":
                    raise FhirError.single(
                        400, "not-supported", f"_summary={value} is not supported", "_summary"
                    )
            continue
        if modifier:
            raise FhirError.single(
                400, "not-supported", f"The modifier :{modifier} is not supported", key
            )
        if name == "_id":
            query.ids.append(tuple(v for v in value.split(",") if v))
        elif name == "_lastUpdated":
            prefix, text = _split_prefix(value)
            low, high = parse_date_range(text, "_lastUpdated")
            query.dates.append(DateCriterion(prefix, low, high))
        else:
            param = spec.param(name)
            if param is None:
                if strict:
                    raise FhirError.single(
                        400,
                        "not-supported",
                        f"{name} is not a search parameter of {spec.type} on this server",
                        name,
                    )
                query.ignored.append(name)
                continue
            query.index.append(_criterion(param, value, fhir_base))
        query.echoed.append((key, value))
    return query


def unknown_parameter_issue(names: list[str], resource_type: str) -> Issue:
    return Issue(
        "warning",
        "not-supported",
        f"Ignored search parameters not supported for {resource_type}: {', '.join(names)}",
        tuple(names),
    )
