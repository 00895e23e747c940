"""Tests of tests/support/crd_checks.py against the Inferno CRD test kit's own fixtures."""
