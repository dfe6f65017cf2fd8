"""Invariants an economy must satisfy after every step, whatever the levers.

Used by the property-based tests (tests/test_reliability.py) and available
to users who want to check their own scenarios: ``check_invariants(model)``
returns the list of violations (empty when all hold).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .accounting import TOLERANCE, check_identities
from .agents.bank import NONDEPOSIT_LENDER

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy

#: The population is a finite count, never negative. Its edges are economic outcomes, not
#: faults, and the summary reports them: every SME exiting (hostile settings: most demand
#: diverted to large firms, 20% compliance costs) sets ``extinct`` and ``extinct_month``;
#: growth past POPULATION_BOUND x the start (``entry_rate`` near 1) shows in
#: ``sme_count_ratio_max``, and ``sme-abm run`` prints a warning line for either.
POPULATION_BOUND = 5.0
NON_NEGATIVE_SME_STOCKS = ("capital", "debt", "guaranteed", "receivables", "employment", "ip_stock", "sales")


#: Outputs that are averages over something that may be empty in a month (no new loans,
#: no new guarantees, no borrowers...): NaN then, by definition, not by error.
UNDEFINED_WHEN_EMPTY = ("new_loan_rate", "new_loan_rate_small_micro", "spread_vs_large_firms", "payment_days",
                        "grant_targeting_accuracy", "avg_loan_rate", "loan_rate_spread", "bank_capital_ratio_min",
                        "priced_loss_rate", "guarantee_fee", "new_guarantee_fee", "realised_default_rate",
                        "predicted_default_rate", "case_wait_months", "first_month_employment",
                        "first_year_employment")


def check_invariants(model: "SMEEconomy") -> list[str]:
    """Every invariant that fails for ``model`` in its current state."""
    failures: list[str] = []
    smes, banks, guarantors = model.smes, model.banks, model.guarantors
    scale = 1e-9 * max(1.0, float(smes.capital.sum()))
    last = model.recorder.rows[-1] if model.recorder.rows else {}
    for name, value in last.items():
        if isinstance(value, float) and np.isinf(value):
            failures.append(f"output {name} is infinite")
    nan_allowed = set(UNDEFINED_WHEN_EMPTY)
    if smes.size == 0:  # no firms: their moments are undefined
        nan_allowed |= {"productivity_mean", "productivity_dispersion"}
    for name, value in last.items():
        if isinstance(value, float) and np.isnan(value) and name not in nan_allowed:
            failures.append(f"output {name} is NaN")
    for column in smes.columns:
        values = smes.column(column)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            failures.append(f"SME column {column} has NaN or infinity")
    for column in NON_NEGATIVE_SME_STOCKS:
        low = smes.column(column).min(initial=0.0)
        if low < -scale:
            failures.append(f"SME {column} negative ({low:.3g})")
    if smes.cash.min(initial=0.0) < -scale:
        failures.append(f"SME cash negative after settlement ({smes.cash.min():.3g})")
    # a bank's deposits are its depositors' net balances; an aggregate sector may be overdrawn
    for name, values in (("bank loans", banks.loans), ("bank reserves", banks.reserves[banks.kind != NONDEPOSIT_LENDER]),
                         ("guarantees outstanding", guarantors.outstanding)):
        if values.min(initial=0.0) < -scale:
            failures.append(f"{name} negative ({values.min():.3g})")
    residual = check_identities(model, raise_on_failure=False) if model.recorder.rows else 0.0
    if not residual <= TOLERANCE:
        failures.append(f"accounting residual {residual:.3g} above {TOLERANCE:g}")
    if smes.size < 0:
        failures.append(f"population {smes.size} negative")
    # losses or a tighter limit may leave a guarantor above its limit; writing new guarantees
    # past it is the breach
    over = model.step_stats.get("guarantor_issuance_over_limit", 0.0)
    if over > 1e-6:
        failures.append(f"a guarantor wrote guarantees past its leverage limit by {over:.3g}")
    for rule in ("bank_capital_breach", "bank_funding_breach"):
        if model.step_stats.get(rule, 0.0) > 1e-9 * max(1.0, float(banks.loans.sum())):
            failures.append(f"{rule}: a bank lent beyond its headroom")
    return failures
