"""Coverage rules: topics written once by the payer, answering CRD, DTR and PAS alike."""
