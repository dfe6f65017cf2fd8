"""The goods market: who buys from SMEs, how much, and when they pay.

Phase 2 (demand) of a step: household consumption, large firms' supply-chain
orders (paid late), government procurement (with the SME reservation of lever
8) and exports (lever 20) are allocated to SMEs in proportion to their demand
weights. Sales are capped by capacity. Household and government spending that
SMEs cannot serve goes to large firms; unserved supply-chain orders and export
demand are not spent.
All SMEs are served at once (synchronous allocation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..agents.sme import MEDIUM, monthly_capacity

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

#: Elasticity of a small/micro bid's winning odds to the price deduction (lever 8).
PRICE_PREFERENCE_ELASTICITY = 3.0


def _allocate(total: float, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights`` (zero if all weights are zero)."""
    weight_sum = weights.sum()
    if weight_sum <= 0 or total <= 0:
        return np.zeros_like(weights)
    return total * (weights / weight_sum)


def allocate_demand(model: "SMEEconomy") -> None:
    """Phase 2: set each SME's demand and sales by channel, and settle them."""
    smes, p, ledger = model.smes, model.policy, model.ledger
    hh, lf, gov = model.config.households, model.config.large_firms, model.config.government
    n_sectors = len(model.sector_names)
    rng = model.rng

    # who is open for business this month (lever 5: blanket shutdowns)
    blanket = model.can_be_shut_down[smes.sector]
    smes.shut_down = blanket & (rng.random(smes.size) < p.p05_fair_supervision.shutdown_probability)
    weight = np.where(smes.shut_down, 0.0, smes.demand_weight)
    model.step_stats["shutdowns"] = int(smes.shut_down.sum())
    is_sme = smes.size_class <= MEDIUM

    # households
    consumption = hh.consumption_from_income * model.household_income + hh.consumption_from_wealth * max(
        ledger.balances["households"], 0.0
    )
    imports = hh.import_share * consumption
    to_smes = consumption * hh.sme_consumption_share * (1.0 - p.p02_fair_competition.large_firm_demand_bias)
    sector_weight = np.bincount(smes.sector, weights=weight, minlength=n_sectors)
    sector_budget = to_smes * model.sector_demand_share
    household_demand = np.divide(sector_budget, sector_weight, out=np.zeros(n_sectors), where=sector_weight > 0)[smes.sector] * weight

    # large firms' supply-chain orders (paid after payment_days)
    supply_chain = _allocate(lf.sme_order_share * model.large_firm_revenue, weight)

    # government procurement with the SME reservation and price preference (lever 8)
    budget = model.procurement_budget
    lever = p.p08_procurement
    reserved = budget * lever.sme_reserved_share
    small_micro = smes.size_class <= 1
    procurement = _allocate(reserved * lever.small_micro_share_of_reserved, weight * small_micro)
    procurement += _allocate(reserved * (1 - lever.small_micro_share_of_reserved), weight * is_sme)
    open_budget = budget - reserved
    sme_weight = weight * is_sme * np.where(small_micro, 1.0 + PRICE_PREFERENCE_ELASTICITY * lever.price_preference, 1.0)
    base_weight = (weight * is_sme).sum()
    share = gov.open_competition_sme_share
    large_firm_weight = base_weight * (1.0 - share) / max(share, 1e-9)
    sme_open = open_budget * sme_weight.sum() / max(sme_weight.sum() + large_firm_weight, 1e-12)
    procurement += _allocate(sme_open, sme_weight)

    # exports (lever 20)
    exports = _allocate(model.export_demand * (1.0 + p.p20_international.export_demand_boost), weight * smes.exporter)

    # a scheduled demand collapse: SMEs in the hit sectors lose this demand (households and
    # government spend it on large firms' goods instead; orders and exports are not placed)
    factor = model.shock_factor
    household_demand *= factor
    supply_chain *= factor
    procurement *= factor
    exports *= factor
    unshocked = (household_demand + supply_chain + procurement + exports) / factor
    demand = household_demand + supply_chain + procurement + exports
    capacity = monthly_capacity(model)
    served = np.divide(np.minimum(demand, capacity), demand, out=np.zeros(smes.size), where=demand > 0)
    smes.demand = demand
    smes.sales = demand * served
    # what a shock costs a firm: demand it lost, and sales its destroyed capacity cannot serve
    smes.lost_revenue = np.where(smes.shock_hit, np.maximum(unshocked - smes.sales, 0.0), 0.0)

    # settle: cash now from households and abroad; receivables from large firms and government
    ledger.pay("consumption_sme", "households", "smes", household_demand * served)
    ledger.pay("imports", "households", "rest_of_world", imports)
    ledger.pay("consumption_large_firms", "households", "large_firms", consumption - imports - float((household_demand * served).sum()))
    ledger.pay("exports", "rest_of_world", "smes", exports * served)
    supply_chain_sales = supply_chain * served
    procurement_sales = procurement * served
    smes.receivables += supply_chain_sales + procurement_sales
    model.payables["large_firms"] += float(supply_chain_sales.sum())
    model.payables["government"] += float(procurement_sales.sum())
    procurement_large_firms = budget - float(procurement_sales.sum())
    ledger.pay("procurement_large_firms", "government", "large_firms", procurement_large_firms)

    model.step_stats.update(
        procurement_budget=budget,
        procurement_sme=float(procurement_sales.sum()),
        procurement_small_micro=float(procurement_sales[small_micro].sum()),
        credit_sales=float((supply_chain_sales + procurement_sales).sum()),
        household_consumption=consumption,
        export_sales=float((exports * served).sum()),
    )


def collect_receivables(model: "SMEEconomy") -> None:
    """Buyers pay SMEs after ``payment_days`` on average (lever 21); a small share
    defaults, of which the SME recovers part through the courts (lever 1)."""
    smes = model.smes
    days = model.policy.p21_payment_arrears.payment_days
    pay_rate = min(30.0 / max(days, 1.0), 1.0)
    default_rate = model.config.government.receivable_default_rate
    recovery = model.policy.p01_legal_system.receivable_recovery_rate
    paid = smes.receivables * pay_rate * (1.0 - default_rate)
    defaulted = smes.receivables * default_rate
    recovered = defaulted * recovery
    written_off = defaulted - recovered
    settle_receivables(model, slice(None), paid + recovered, written_off)
    smes.receivable_writeoff = written_off
    model.step_stats["receivables_written_off"] = float(written_off.sum())


def settle_receivables(model: "SMEEconomy", rows: np.ndarray | slice, paid: np.ndarray, written_off: np.ndarray) -> None:
    """Buyers pay ``paid`` to SMEs ``rows`` (indices, or a slice for all) and ``written_off`` is cancelled.

    Large firms and government share each yuan in proportion to their payables.
    """
    smes, ledger, payables = model.smes, model.ledger, model.payables
    total_payables = payables["large_firms"] + payables["government"]
    lf_share = payables["large_firms"] / total_payables if total_payables > 0 else 1.0
    ledger.pay("receivables_paid_large_firms", "large_firms", "smes", paid * lf_share, payee_rows=rows)
    ledger.pay("receivables_paid_government", "government", "smes", paid * (1 - lf_share), payee_rows=rows)
    settled = paid + written_off
    smes.receivables[rows] -= settled
    total = float(settled.sum())
    payables["large_firms"] -= total * lf_share
    payables["government"] -= total * (1 - lf_share)
