"""Utilization management: review cases, their deadlines and the reviewers' decisions.

Every PAS request opens one case (stored with the request, in the same transaction); pended
cases wait for a clinician, who decides through the `/um` API (`app/api/um.py`).
"""
