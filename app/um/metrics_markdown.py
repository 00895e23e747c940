"""The metrics report (`app.um.metrics`) as Markdown for the payer's public web page.

CMS-0057-F asks for the metrics on a publicly accessible page of the payer's website; this is the
page's text: the figures of elements (2)-(9) in one table, what was left out and why, and the
element (1) list of items and services that require prior authorization, one section per topic.
A missing figure (no determination) reads "n/a"; an untracked one says "not tracked yet".
"""

from __future__ import annotations

from app.um.metrics import Figure, MetricsReport, PriorityMetrics
from app.um.pa_items import PaItem


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _percent(figure: Figure) -> str:
    if not figure.tracked:
        return f"{figure.percent:.1f}% ({figure.note})"
    if figure.percent is None:
        return "n/a"
    noun = "request" if figure.count == 1 else "requests"
    return f"{figure.percent:.1f}% ({figure.count} {noun})"


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} hours"


def _appeal(metrics: PriorityMetrics) -> str:
    return "-" if metrics.approved_after_appeal is None else _percent(metrics.approved_after_appeal)


def _figures(report: MetricsReport) -> list[str]:
    s, e = report.standard, report.expedited
    rows = [
        ("Requests decided in the period", str(s.determinations), str(e.determinations)),
        ("Approved (2), (6)", _percent(s.approved), _percent(e.approved)),
        ("... of which approved in part", str(s.approved_in_part), str(e.approved_in_part)),
        ("Denied (3), (7)", _percent(s.denied), _percent(e.denied)),
        (
            "... of which denied for administrative reasons at submission",
            str(s.denied_administrative),
            str(e.denied_administrative),
        ),
        (
            "... of which denied after clinical review",
            str(s.denied_on_review),
            str(e.denied_on_review),
        ),
        ("Approved after appeal (4)", _appeal(s), _appeal(e)),
        (
            "Average time from request to decision (8), (9)",
            _hours(s.time_to_determination.average_hours),
            _hours(e.time_to_determination.average_hours),
        ),
        (
            "Median time from request to decision (8), (9)",
            _hours(s.time_to_determination.median_hours),
            _hours(e.time_to_determination.median_hours),
        ),
    ]
    lines = ["| Metric | Standard requests | Expedited requests |", "| --- | --- | --- |"]
    lines += [f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in rows]
    return lines


def _item(item: PaItem) -> list[str]:
    lines = [f"### {item.title}", ""]
    if item.description:
        lines += [item.description, ""]
    lines += [f"- Codes: {'; '.join(group.describe() for group in item.codes)}"]
    required = [p.plans for p in item.plans if p.requirement == "required"]
    conditional = [p.plans for p in item.plans if p.requirement == "conditional"]
    if required:
        lines.append(f"- Prior authorization required: {', '.join(required)}")
    if conditional:
        lines.append(f"- Prior authorization required in some cases: {', '.join(conditional)}")
    if item.conditions:
        lines.append(f"- Required when: {', '.join(item.conditions)}")
    if item.exemptions:
        lines.append(f"- Not required for: {', '.join(item.exemptions)}")
    if item.policy_url:
        lines.append(f"- Policy: [{item.policy_title or item.policy_url}]({item.policy_url})")
    return [*lines, ""]


def render_markdown(report: MetricsReport, payer: str) -> str:
    """The public page (see the module docstring)."""
    period = report.period
    excluded = report.excluded
    lines = [
        f"# {payer}: prior authorization metrics, {period.label}",
        "",
        "Reported under the CMS Interoperability and Prior Authorization final rule (CMS-0057-F), "
        "aggregated for all items and services that require prior authorization (drugs are "
        f"outside the rule). Period: {period.start.isoformat()} to {period.end.isoformat()} "
        "(UTC); a request counts in the period it was decided in. The numbers (1) to (9) are "
        "the metrics as the rule lists them.",
        "",
        "## Prior authorization decisions",
        "",
        *_figures(report),
        "",
        "Requests whose review timeframe was extended and that were approved (5): "
        f"{_percent(report.extended_and_approved)}.",
        "",
        "Not counted above: "
        f"{excluded.pending} request(s) received in the period and not yet decided at its end; "
        f"{excluded.cancelled} cancelled or withdrawn by the requester; "
        f"{excluded.no_authorization_required} for services that need no prior authorization; "
        f"{excluded.drugs} for drugs.",
        "",
        "Times run from the receipt of the request to the decision; requests approved at once "
        "count with the time they took. n/a: no request of that kind was decided in the period.",
        "",
        "## Items and services that require prior authorization (1)",
        "",
    ]
    if not report.items.services:
        lines += ["None.", ""]
    for item in report.items.services:
        lines += _item(item)
    if report.items.drugs:
        lines += [
            "## Drugs that require prior authorization (outside CMS-0057-F, for information)",
            "",
        ]
        for item in report.items.drugs:
            lines += _item(item)
    return "\n".join(lines).rstrip() + "\n"
