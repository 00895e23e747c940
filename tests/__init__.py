"""Greenlight's test suite (mirrors the source tree)."""
