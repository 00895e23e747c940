"""CRD as CDS Hooks 2.0 services: discovery, one module per hook, cards and coverage information."""
