"""PAS as the payer: Claim/$submit and $inquire, adjudication by the coverage rules, response
Bundles, subscriptions and their notifications (delivered through the database outbox).

No FastAPI here: the routers in `app/api/operations/claim_*.py` and `app/api/subscriptions.py`
translate HTTP to these functions. `OUTCOMES.md` lists which inputs give approve, deny and pend.
"""
