"""Fixtures for the package and validation tests: the shared IG packages, loaded once."""

from __future__ import annotations

import pytest

from app.fhir.packages import PackageRegistry, load_registry
from app.fhir.validation import Validator, validator_for
from tests.conftest import FHIR_PACKAGES

PAS_201 = "hl7.fhir.us.davinci-pas#2.0.1"
PAS_221 = "hl7.fhir.us.davinci-pas#2.2.1"
CRD_201 = "hl7.fhir.us.davinci-crd#2.0.1"
DTR_201 = "hl7.fhir.us.davinci-dtr#2.0.1"


@pytest.fixture(scope="session")
def registry() -> PackageRegistry:
    """The five packages of ../shared/fhir-packages (cached for the process)."""
    return load_registry(FHIR_PACKAGES)


@pytest.fixture(scope="session")
def pas201() -> Validator:
    return validator_for(FHIR_PACKAGES, PAS_201)


@pytest.fixture(scope="session")
def latest() -> Validator:
    """The server's default: unversioned canonicals resolve to the latest loaded version."""
    return validator_for(FHIR_PACKAGES)
