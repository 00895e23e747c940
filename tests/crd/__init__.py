"""Tests of CRD: CDS Hooks discovery and services, against live servers with the demo payer."""
