"""Greenlight: a payer-side HL7 Da Vinci prior authorization server (CRD, DTR, PAS)."""

__version__ = "0.1.0"
