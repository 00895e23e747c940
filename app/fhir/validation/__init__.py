"""IG profile validation: resources and Bundles checked against the loaded FHIR packages.

    from app.fhir.validation import get_validator
    result = get_validator(settings).validate(bundle)          # meta.profile of each resource
    result = validator.validate(claim, PAS_CLAIM_PROFILE)      # or a profile named by the caller
    result.ok, result.errors, result.outcome()                 # an OperationOutcome (JSON)

Validators are cached per package directory and preferred package; a validator compiles each
profile once and keeps it. See `validator.py` for what is checked and `policy.py` for how the
`GREENLIGHT_VALIDATION` setting (off | warn | enforce) applies to inbound payloads.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from app.config import Settings
from app.fhir.packages import PackageError, load_registry
from app.fhir.validation.run import ValidationResult
from app.fhir.validation.validator import Validator
from app.long_lived import freeze_long_lived


@lru_cache(maxsize=16)
def _validator(directory: str, prefer: str | None, freeze: bool) -> Validator:
    registry = load_registry(Path(directory))
    if registry.package("hl7.fhir.r4.core") is None:
        raise PackageError(
            f"{directory} holds no hl7.fhir.r4.core package: nothing to validate with"
        )
    preferred = None
    if prefer:
        name, _, version = prefer.partition("#")
        preferred = registry.package(name, version or None)
        if preferred is None:
            raise LookupError(f"package {prefer} is not in {directory}")
    validator = Validator(registry, preferred)
    if freeze:
        freeze_long_lived()  # the packages stay loaded for the process's life
    return validator


def validator_for(directory: Path, prefer: str | None = None, *, freeze: bool = False) -> Validator:
    """The cached validator over the packages in `directory` (`prefer`: `name#version`);
    `freeze`: then keep the loaded packages out of the cyclic GC (`app.long_lived`)."""
    return _validator(str(directory.resolve()), prefer, freeze)


def get_validator(settings: Settings, prefer: str | None = None) -> Validator:
    """The validator over `settings.ig_packages`."""
    return validator_for(settings.ig_packages, prefer, freeze=settings.gc_freeze)


def clear_validators() -> None:
    _validator.cache_clear()


__all__ = ["ValidationResult", "Validator", "clear_validators", "get_validator", "validator_for"]
