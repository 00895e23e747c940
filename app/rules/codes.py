"""Code systems and code ranges: canonical system URIs (tolerating the spellings EHRs send,
CRD found-10) and expansion of ranges such as CPT 99202-99215 or HCPCS E0424-E0439.
"""

from __future__ import annotations

import re

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
NPI = "http://hl7.org/fhir/sid/us-npi"

_ALIASES: dict[str, str] = {
    "http://www.ama-assn.org/go/cpt/": CPT,
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    "https://www.cms.gov/medicare/coding/hcpcsreleasecodesets": HCPCS,
    "http://www.cms.gov/medicare/coding/hcpcsreleasecodesets": HCPCS,
    "http://terminology.hl7.org/codesystem/hcpcs": HCPCS,
    "urn:oid:2.16.840.1.113883.6.285": HCPCS,
    "http://hl7.org/fhir/sid/hcpcs": HCPCS,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "http://www.nlm.nih.gov/research/umls/rxnorm/": RXNORM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10_CM,
    "http://hl7.org/fhir/sid/icd-10": ICD10_CM,
}

MAX_RANGE_SIZE = 20_000
_SPLIT = re.compile(r"^(?P<prefix>[A-Za-z]*)(?P<number>\d+)(?P<suffix>[A-Za-z]*)$")


def canonical_system(system: str | None) -> str:
    """The system URI Greenlight indexes under (known aliases folded, case-insensitively)."""
    if not system:
        return ""
    return _ALIASES.get(system.strip().lower(), system.strip())


def normalize_code(system: str, code: str) -> str:
    """Codes compare exactly, except that ICD-10 is matched without its dot (M54.16 = M5416)."""
    code = code.strip()
    if system == ICD10_CM:
        return code.replace(".", "").upper()
    if system == HCPCS:
        return code.upper()
    return code


def expand_range(low: str, high: str) -> list[str]:
    """Every code from `low` to `high` inclusive: same letters around a number of fixed width."""
    first, last = _SPLIT.match(low), _SPLIT.match(high)
    if not first or not last:
        raise ValueError(f"range {low}-{high}: codes must be letters around a number")
    if (first["prefix"].upper(), first["suffix"].upper()) != (
        last["prefix"].upper(),
        last["suffix"].upper(),
    ):
        raise ValueError(f"range {low}-{high}: both ends need the same letters")
    if len(first["number"]) != len(last["number"]):
        raise ValueError(f"range {low}-{high}: both ends need the same number of digits")
    start, stop = int(first["number"]), int(last["number"])
    if stop < start:
        raise ValueError(f"range {low}-{high} runs backwards")
    if stop - start + 1 > MAX_RANGE_SIZE:
        raise ValueError(f"range {low}-{high} is larger than {MAX_RANGE_SIZE} codes")
    width = len(first["number"])
    return [f"{first['prefix']}{n:0{width}d}{first['suffix']}" for n in range(start, stop + 1)]
