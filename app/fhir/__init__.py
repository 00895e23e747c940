"""FHIR R4 plumbing: models, OperationOutcomes, JSON, content negotiation, capability."""
