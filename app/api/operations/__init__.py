"""FHIR operations, one module per operation (`claim_submit`, `claim_inquire`: PAS;
`questionnaire_package`, `next_question`, `log_questionnaire_errors`, `valueset_expand`,
`questionnaire_responses`: DTR). The DTR routers are collected in `dtr_router`.

Include the operation routers before the generic REST router: `POST
/fhir/Questionnaire/$questionnaire-package` would otherwise match `/fhir/{type}/{id}` (a method
it does not allow) and `GET /fhir/ValueSet/$expand` a read of the id `$expand`.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.operations.log_questionnaire_errors import router as log_errors_router
from app.api.operations.next_question import router as next_question_router
from app.api.operations.questionnaire_package import router as package_router
from app.api.operations.questionnaire_responses import router as responses_router
from app.api.operations.valueset_expand import router as expand_router

dtr_router = APIRouter()
for _module_router in (
    package_router,
    next_question_router,
    log_errors_router,
    expand_router,
    responses_router,
):
    dtr_router.include_router(_module_router)
