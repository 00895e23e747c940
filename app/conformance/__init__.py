"""Conformance bookkeeping: which IG requirement statements the test suite proves."""
