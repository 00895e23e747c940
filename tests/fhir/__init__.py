"""Tests of the FHIR package loader and the IG profile validator."""
