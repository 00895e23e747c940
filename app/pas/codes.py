"""Canonical URLs and code values the PAS module reads and writes, in one place.

X12 code lists (306 action codes, 901 reject reasons, 889 follow-up actions, 755 report types,
1338 level of service) are licensed; the handful of values used here are the ones the PAS IG
examples and the Inferno PAS kit use, with their published meanings.
"""

from __future__ import annotations

from typing import Literal

PAS_SD = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
PAS_TEMP = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes"
PAS_TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"

PasVersion = Literal["2.0.1", "2.2.1"]
PAS_VERSIONS: tuple[PasVersion, ...] = ("2.0.1", "2.2.1")

# Profiles
REQUEST_BUNDLE = PAS_SD + "profile-pas-request-bundle"
INQUIRY_REQUEST_BUNDLE = PAS_SD + "profile-pas-inquiry-request-bundle"
RESPONSE_BUNDLE = PAS_SD + "profile-pas-response-bundle"
INQUIRY_RESPONSE_BUNDLE = PAS_SD + "profile-pas-inquiry-response-bundle"
CLAIM_RESPONSE = PAS_SD + "profile-claimresponse"
CLAIM_INQUIRY_RESPONSE = PAS_SD + "profile-claiminquiryresponse"
COMMUNICATION_REQUEST = PAS_SD + "profile-communicationrequest"
TASK = PAS_SD + "profile-task"
PAS_SUBSCRIPTION = PAS_SD + "profile-subscription"

# Extensions on the request
EXT_ITEM_TRACE_NUMBER = PAS_SD + "extension-itemTraceNumber"
EXT_AUTHORIZATION_NUMBER = PAS_SD + "extension-authorizationNumber"
EXT_ADMIN_REFERENCE_NUMBER = PAS_SD + "extension-administrationReferenceNumber"
EXT_REQUESTED_SERVICE = PAS_SD + "extension-requestedService"
EXT_CERTIFICATION_TYPE = PAS_SD + "extension-certificationType"
EXT_LEVEL_OF_SERVICE = PAS_SD + "extension-levelOfServiceCode"
EXT_INFO_CANCELLED = PAS_SD + "modifierextension-infoCancelled"
EXT_INFO_CHANGED = PAS_SD + "extension-infoChanged"
EXT_TRANSMISSION_IDENTIFIERS = PAS_SD + "extension-TransmissionIdentifiers"
CRD_COVERAGE_INFORMATION = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)

# Extensions on the response
EXT_REVIEW_ACTION = PAS_SD + "extension-reviewAction"
EXT_REVIEW_ACTION_CODE = PAS_SD + "extension-reviewActionCode"
EXT_ITEM_PREAUTH_ISSUE_DATE = PAS_SD + "extension-itemPreAuthIssueDate"
EXT_ITEM_PREAUTH_PERIOD = PAS_SD + "extension-itemPreAuthPeriod"
EXT_ITEM_REQUESTED_SERVICE_DATE = PAS_SD + "extension-itemRequestedServiceDate"
EXT_ITEM_AUTHORIZED_DETAIL = PAS_SD + "extension-itemAuthorizedDetail"
EXT_ITEM_AUTHORIZED_PROVIDER = PAS_SD + "extension-itemAuthorizedProvider"
EXT_COMMUNICATED_DIAGNOSIS = PAS_SD + "extension-communicatedDiagnosis"
EXT_ERROR_FOLLOWUP = PAS_SD + "extension-errorFollowupAction"
EXT_ERROR_ELEMENT = PAS_SD + "extension-errorElement"
EXT_ERROR_PATH = PAS_SD + "extension-errorPath"
EXT_SERVICE_LINE_NUMBER = PAS_SD + "extension-serviceLineNumber"
EXT_CONTENT_MODIFIER = PAS_SD + "extension-contentModifier"
EXT_PA_LINE_NUMBER = PAS_SD + "extension-paLineNumber"
EXT_CLAIM_RESPONSE_REVIEWER = PAS_SD + "extension-claimResponseReviewer"

# X12 code systems
X12_306 = "https://codesystem.x12.org/005010/306"  # HCR01 action codes
X12_901 = "https://codesystem.x12.org/005010/901"  # AAA03 reject reasons
X12_889 = "https://codesystem.x12.org/005010/889"  # AAA04 follow-up actions
X12_755 = "https://codesystem.x12.org/005010/755"  # PWK01 report types
X12_1322 = "https://codesystem.x12.org/005010/1322"  # certification type
X12_1338 = "https://codesystem.x12.org/005010/1338"  # level of service
X12_886 = "https://codesystem.x12.org/external/886"  # HCR03 review decision reasons
X12_673 = "https://codesystem.x12.org/005010/673"  # quantity units (PAS 2.2 Quantity.code)

ReviewAction = Literal["A1", "A2", "A3", "A4", "A6", "C", "CT", "NA"]
REVIEW_ACTION_DISPLAY: dict[str, str] = {
    "A1": "Certified in total",
    "A2": "Certified - partial",
    "A3": "Not Certified",
    "A4": "Pended",
    "A6": "Modified",
    "C": "Cancelled",
    "CT": "Contact Payer",
    "NA": "No Action Required",
}

#: The code systems of the PAS value set X12278RequestedServiceType (the same in 2.0.1 and 2.2.1):
#: the required binding of a certified service (`addItem.productOrService`, itemAuthorizedDetail).
REQUESTED_SERVICE_SYSTEMS: tuple[str, ...] = (
    "http://terminology.hl7.org/CodeSystem/data-absent-reason",
    "https://codesystem.x12.org/005010/1365",
    "http://www.ama-assn.org/go/cpt",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "http://terminology.hl7.org/CodeSystem/icd9cm",
    "http://www.cms.gov/Medicare/Coding/ICD10",
    "http://hl7.org/fhir/sid/ndc",
)

# AAA03 reject reasons and AAA04 follow-up actions used for administrative errors.
SUBSCRIBER_NOT_FOUND = ("75", "Subscriber/Insured Not Found")
INVALID_SUBSCRIBER_ID = ("72", "Invalid/Missing Subscriber/Insured ID")
CORRECT_AND_RESUBMIT = ("C", "Please Correct and Resubmit")

CERTIFICATION_CANCEL = "3"  # X12 1322: the item (or the whole request) is cancelled
EXPEDITED_LEVELS = frozenset({"U", "03"})  # X12 1338: urgent, emergency

PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
LOINC = "http://loinc.org"
PAYER_QUESTIONNAIRE_LOINC = "102089-0"  # PAS ainfo-2: the payer's questionnaire is needed
NPI = "http://hl7.org/fhir/sid/us-npi"

#: Where each PAS version is served (PAS conf-1: one endpoint per incompatible version): the
#: server's FHIR base speaks PAS 2.0.1 (the version CMS recommends and Inferno tests first), and
#: a second base below it speaks PAS 2.2.1.
BASE_PATHS: dict[str, str] = {"2.0.1": "/fhir", "2.2.1": "/fhir/pas-2.2.1"}


def fhir_base(base_url: str, version: PasVersion) -> str:
    """The FHIR base URL that serves `version` (e.g. `http://host/fhir/pas-2.2.1`)."""
    return f"{base_url.rstrip('/')}{BASE_PATHS[version]}"
