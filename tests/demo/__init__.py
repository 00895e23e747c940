"""Tests of the demo payer (`greenlight demo-data`)."""
