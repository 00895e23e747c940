"""Where validation runs: the `GREENLIGHT_VALIDATION` setting applied to inbound payloads.

    issues = check_inbound(bundle, settings, profile=PAS_REQUEST_BUNDLE, prefer=PAS_V201)

- `off`: nothing is validated; returns [].
- `warn` (the default): the payload is validated and accepted; errors and warnings are logged and
  returned so the caller can add them to its response where the IG allows an OperationOutcome
  (e.g. the DTR `$questionnaire-package` output's `outcome` parameter).
- `enforce`: a payload with errors is rejected with `FhirError(422, issues)`, i.e. HTTP 422 and an
  OperationOutcome naming each element (`Bundle.entry[0].resource.item[0].productOrService`).

Information issues (profiles or code systems that are not in the loaded packages) never reject a
payload and are not returned. If the IG packages cannot be loaded, `warn` logs it and accepts,
`enforce` answers 503: a server told to enforce profiles does not silently stop doing so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from app.config import Settings
from app.fhir.outcomes import FhirError, Issue
from app.fhir.packages import PackageError
from app.fhir.validation import get_validator

log = logging.getLogger("greenlight.validation")

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
DTR = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/"

#: Packages to prefer (`prefer=`) so unversioned `meta.profile` canonicals resolve to the IG
#: version an endpoint serves (PAS conf-1: one endpoint per incompatible PAS version).
PAS_V201 = "hl7.fhir.us.davinci-pas#2.0.1"
PAS_V221 = "hl7.fhir.us.davinci-pas#2.2.1"
DTR_V201 = "hl7.fhir.us.davinci-dtr#2.0.1"

#: Profiles of the inbound payloads, for callers that want to name them explicitly.
PAS_REQUEST_BUNDLE = PAS + "profile-pas-request-bundle"
PAS_INQUIRY_REQUEST_BUNDLE = PAS + "profile-pas-inquiry-request-bundle"
DTR_QPACKAGE_INPUT = DTR + "dtr-qpackage-input-parameters"
DTR_QR_BUNDLE = DTR + "DTR-QRBundle"

UNPROCESSABLE = 422


def validates_inbound(settings: Settings, prefer: str | None = None) -> bool:
    """Whether `check_inbound` really validates (validation on and the packages loadable)."""
    if settings.validation == "off":
        return False
    try:
        get_validator(settings, prefer)
    except (PackageError, LookupError, OSError):
        return False
    return True


def check_inbound(
    resource: dict[str, Any],
    settings: Settings,
    *,
    profile: str | Sequence[str] | None = None,
    prefer: str | None = None,
) -> list[Issue]:
    """Validate an inbound payload per `settings.validation`; see the module docstring."""
    mode = settings.validation
    if mode == "off":
        return []
    try:
        validator = get_validator(settings, prefer)
        result = validator.validate(resource, profile)
    except (PackageError, LookupError, OSError) as exc:
        log.error("profile validation unavailable: %s", exc)
        if mode == "enforce":
            raise FhirError.single(
                503, "exception", "Profile validation is not available on this server"
            ) from exc
        return []
    reported = [i for i in result.issues if i.severity != "information"]
    if not reported:
        return []
    rtype = resource.get("resourceType", "resource")
    if mode == "enforce" and result.errors:
        log.info("rejected inbound %s: %d validation errors", rtype, len(result.errors))
        raise FhirError(UNPROCESSABLE, reported)
    if result.errors:
        log.warning(
            "accepted inbound %s with %d validation errors (GREENLIGHT_VALIDATION=warn): %s",
            rtype,
            len(result.errors),
            "; ".join(f"{', '.join(i.expression)}: {i.diagnostics}" for i in result.errors[:5]),
        )
    return reported
