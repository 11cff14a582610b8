"""The four sentence labels, in the one order used everywhere.

The order fixes the binarizer columns, the labelling-config choices and their
hotkeys (1-4), and the order of probabilities in every output.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "regulatory_barrier",
    "financing",
    "safety_risk",
    "commercialization",
)

LABEL_NAMES: dict[str, str] = {
    "regulatory_barrier": "Regulatory barrier",
    "financing": "Financing",
    "safety_risk": "Safety risk",
    "commercialization": "Commercialization",
}
"""What annotators read on each choice; the stored value stays the label id."""

LABEL_HINTS: dict[str, str] = {
    "regulatory_barrier": "rules, regulators, approvals, restrictions on what AI may do, data-protection rules, official pricing/insurance policy",
    "financing": "funding, investment, rounds, valuations, IPOs, investor appetite, grants and subsidies as funding",
    "safety_risk": "harm from the AI: wrong or hallucinated output, errors endangering patients, unreliability, misuse, privacy breaches",
    "commercialization": "launches, deployments, customers, adoption, sales, pricing, reimbursement as revenue, business models, competition",
}
