"""The interleaved 10,000-against-10-topics CRD bench (`bench.topic_scale`): its report and its
arguments. (The servers and the interleaving are `bench.growth`'s, tested there.)"""

from __future__ import annotations

import pytest

from bench import topic_scale
from bench.topic_scale import label
from tests.bench.runs import measured_run

MANY, FEW = label(10_000), label(10)


def test_report_judges_each_scenario_by_the_median_of_its_rounds() -> None:
    runs = [
        measured_run(MANY, 1, 11.0, 1.10),
        measured_run(FEW, 1, 10.0, 1.00),
        measured_run(MANY, 2, 15.0, 1.50),  # one slow slice pair moves the median one place
        measured_run(FEW, 2, 10.0, 1.00),
        measured_run(MANY, 3, 10.0, 1.05),
        measured_run(FEW, 3, 10.0, 1.00),
        *(
            measured_run(target, n, p50, cpu, scenario="crd-order-sign-new")
            for n in (1, 2, 3)
            for target, p50, cpu in ((MANY, 13.0, 1.3), (FEW, 10.0, 1.0))
        ),
    ]
    report = topic_scale.render(runs, 10_000, 10, {"command": "test"})
    order_sign, new_orders = report.split("### crd-order-sign-new")
    assert "### crd-order-sign\n" in order_sign
    assert "| 2 | 15.00 | 10.00 | 1.50x | 22.50 | 15.00 | 1.500 | 1.000 | 1.50x | 0 |" in order_sign
    assert "p50 **1.10x**, CPU per call **1.10x** (target: both within 1.2x): **met**" in order_sign
    assert "p50 **1.30x**, CPU per call **1.30x** (target: both within 1.2x): **NOT met**" in (
        new_orders
    )
    assert report.startswith("# Greenlight benchmark: CRD with 10,000 topics against 10\n")


@pytest.mark.parametrize(
    "argv", [["--few", "0"], ["--few", "20", "--many", "10"], ["--rounds", "0"]]
)
def test_arguments_that_compare_nothing_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        topic_scale.parse_args(argv)
