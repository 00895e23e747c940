"""Tests of app.fhir.validation: IG examples, broken variants, validator rules."""
