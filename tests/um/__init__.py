"""Tests of utilization management: review cases, deadlines and the reviewer API."""
