"""Tests of the HTTP API (real servers on loopback)."""
