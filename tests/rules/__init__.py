"""Tests of the coverage rules (topics, loader, engine)."""
