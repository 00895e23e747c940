"""A stored CRD answer is reused for the same inputs under the same rules only (CRD resp-36 reuse,
bounded by `TopicSet.version`): when the payer changes a topic file and restarts, the next call
for an unchanged order is decided again under the new rules. Real HTTP on loopback, one database
kept across the restart.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.auth.smart_client import JwksHost
from tests.conftest import DatabaseFactory, SettingsFactory
from tests.crd.conftest import CrdServer, crd_payer
from tests.crd.hook_requests import coverage_information, order_sign

PROJECT_TOPICS = Path(__file__).resolve().parents[2] / "questionnaires"
SERVICE = "order-sign-crd"
SILVER_MEMBER = "10A3D58WH456"


def _assertion_id(crd: CrdServer) -> str:
    response = crd.call(SERVICE, order_sign(SILVER_MEMBER, "72148"))
    assert response.status_code == 200, response.text
    (info,) = coverage_information(response.json())
    return str(info["coverage-assertion-id"][0])


def test_changed_rules_are_not_answered_from_an_earlier_assertion(
    tmp_path: Path,
    jwks_host: JwksHost,
    new_database_url: DatabaseFactory,
    make_settings: SettingsFactory,
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_TOPICS, rules)
    payer = crd_payer(jwks_host, make_settings, new_database_url("sqlite"), rules_dir=rules)
    with payer.serve() as crd:
        first = _assertion_id(crd)
        assert _assertion_id(crd) == first, "same inputs, same rules: reused"

    topic = rules / "lumbar-mri" / "topic.yaml"
    topic.write_text(topic.read_text(encoding="utf-8") + "\n# policy revised\n", encoding="utf-8")
    with payer.serve() as crd:
        revised = _assertion_id(crd)
        assert revised != first, "the rules changed: decided again"
        assert _assertion_id(crd) == revised, "and reused under the new rules"
