"""The goods market: who buys from SMEs, how much, and when they pay.

Phase 2 (demand) of a step: household consumption, large firms' supply-chain
orders (paid late), government procurement (with the SME reservation of lever
8) and exports (lever 20) are allocated to SMEs in proportion to their customer
bases (demand weights) times their price relative to their sector's to the power
1 - sigma (CES demand; sigma = ``markets.price_elasticity``); households split their
spending between SMEs and large firms by the SME price index likewise, and open
procurement compares small/micro bids at their price less lever 8's deduction.
Sales are capped by capacity. Household and government spending that
SMEs cannot serve goes to large firms, and so does the rest of the world's; unserved
supply-chain orders are not placed; with ``markets.rationed_demand_search`` a share of it
first looks for the sector's other SMEs with spare capacity (:func:`search_rationed_demand`).
The rest of the world spends on exports the yuan it earned from imports the month before
(balanced trade with a month's lag).
All SMEs are served at once (synchronous allocation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..agents.sme import MEDIUM, inputs_per_unit, monthly_capacity
from ..kernels import bincount_sums, maximum, minimum, njit, standard_normal, take, uniform

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy



def _allocate(total: float, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights`` (zero if all weights are zero)."""
    weight_sum = weights.sum()
    if weight_sum <= 0 or total <= 0:
        return np.zeros_like(weights)
    return total * (weights / weight_sum)


def allocate_demand(model: "SMEEconomy") -> None:
    """Phase 2: set each SME's demand and sales by channel, and settle them.

    The element-wise work is done by two numba kernels (:func:`_demand_weights_kernel`,
    :func:`_demand_kernel`) with the operations, and order, of the numpy they
    replaced (shown in their docstrings); the sums stay in numpy.
    """
    smes, p, ledger = model.smes, model.policy, model.ledger
    hh, lf, gov = model.config.households, model.config.large_firms, model.config.government
    n_sectors = len(model.sector_names)
    rng = model.rng
    n = smes.size
    lever = p.p08_procurement

    # competition by price (CES demand, elasticity sigma): a firm's share of a channel's
    # spending is its customer base times its price relative to its sector's to the power
    # 1 - sigma; in open procurement small/micro bids are compared at their price less the
    # preference deduction (lever 8)
    sigma = model.config.markets.price_elasticity
    relative = smes.price / model.sector_price[smes.sector]
    price_factor = np.power(relative, 1.0 - sigma)
    preference = float((1.0 - lever.price_preference) ** (1.0 - sigma))
    transitory = float(model.config.economy.transitory_demand_volatility)
    if transitory > 0.0:
        # the month's orders scatter around the customer base (timing, weather, one-off jobs):
        # a mean-one lognormal factor that leaves the customer base itself alone (7.3)
        price_factor = price_factor * np.exp(transitory * standard_normal(rng, n) - 0.5 * transitory ** 2)

    # who is open for business this month (lever 5: blanket shutdowns); demand weights by channel
    draws = uniform(rng, n)
    weight, small_micro_weight, sme_base_weight, sme_weight, export_weight = (np.empty(n) for _ in range(5))
    sector_weight = np.zeros(n_sectors)
    _demand_weights_kernel(smes.sector, np.asarray(model.can_be_shut_down, dtype=bool), draws,
                           float(p.p05_fair_supervision.shutdown_probability), smes.demand_weight, price_factor,
                           smes.size_class, smes.exporter, preference,
                           smes.shut_down, weight, small_micro_weight, sme_base_weight, sme_weight, export_weight,
                           sector_weight)
    model.step_stats["shutdowns"] = int(smes.shut_down.sum())

    # households
    wealth = ledger.balances["households"] + model.government.household_bonds  # deposits and bonds
    consumption = hh.consumption_from_income * model.household_income + hh.consumption_from_wealth * max(wealth, 0.0)
    imports = hh.import_share * consumption
    # households choose between SMEs' goods and large firms' (priced at 1, the numeraire) by
    # the SME price index, with the same elasticity
    sme_price = float(model.sector_price @ model.sector_demand_share)
    to_smes = (consumption * hh.sme_consumption_share * (1.0 - p.p02_fair_competition.large_firm_demand_bias)
               * sme_price ** (1.0 - sigma))
    sector_budget = to_smes * model.sector_demand_share
    per_weight = np.divide(sector_budget, sector_weight, out=np.zeros(n_sectors), where=sector_weight > 0)

    # large firms' supply-chain orders (paid after payment_days)
    supply_chain = _share(lf.sme_order_share * model.large_firm_revenue, weight)

    # government procurement with the SME reservation and price preference (lever 8)
    budget = model.procurement_budget * model.wage / model.config.economy.wage  # the plan follows pay
    reserved = budget * lever.sme_reserved_share
    procurement_small_micro = _share(reserved * lever.small_micro_share_of_reserved, small_micro_weight)
    procurement_sme = _share(reserved * (1 - lever.small_micro_share_of_reserved), sme_base_weight)
    open_budget = budget - reserved
    base_weight = sme_base_weight.sum()
    share = gov.open_competition_sme_share
    large_firm_weight = base_weight * (1.0 - share) / max(share, 1e-9)
    sme_open = open_budget * sme_weight.sum() / max(sme_weight.sum() + large_firm_weight, 1e-12)
    procurement_open = _share(sme_open, sme_weight)

    # exports (lever 20)
    # exports (lever 20): the rest of the world spends the yuan it holds (its receipts from
    # last month's imports), so trade balances with a month's lag and no foreign claim
    # piles up; SMEs get their share of that spending (lever 20 raises it), large firms the rest
    row_spending = max(ledger.balances["rest_of_world"], 0.0)
    sme_export_share = min(model.sme_export_share * (1.0 + p.p20_international.export_demand_boost), 1.0)
    exports = _share(row_spending * sme_export_share, export_weight)

    # a scheduled demand collapse: SMEs in the hit sectors lose this demand (households and
    # government spend it on large firms' goods instead; orders and exports are not placed);
    # sales are capped by capacity; what a shock costs a firm is the demand it lost, and
    # sales its destroyed capacity cannot serve
    household_sales, export_sales, supply_chain_sales, procurement_sales = (np.empty(n) for _ in range(4))
    # demand the firms could not serve, by sector and channel, summed only if buyers search for it
    # (None compiles the kernel without the sums: numba prunes the branch)
    search = float(model.config.markets.rationed_demand_search)
    unserved = np.zeros((n_sectors, 4)) if search > 0.0 else None
    factor = np.broadcast_to(np.asarray(model.shock_factor, dtype=float), (n,))
    _demand_kernel(smes.sector, weight, per_weight, small_micro_weight, sme_base_weight, sme_weight, export_weight,
                   *supply_chain, *procurement_small_micro, *procurement_sme, *procurement_open, *exports,
                   factor, smes.capital, smes.price, np.asarray(model.capital_output_ratio, dtype=float),
                   smes.shock_hit,
                   smes.demand, smes.sales, smes.lost_revenue, smes.receivables,
                   household_sales, export_sales, supply_chain_sales, procurement_sales, unserved)
    if search > 0.0:
        search_rationed_demand(model, weight, search * unserved,
                               (household_sales, export_sales, supply_chain_sales, procurement_sales))

    model.month_inter_sme_sales = (order_inputs_from_smes(model, weight, factor)
                                   if model.config.markets.sources_from_smes else None)

    # settle: cash now from households and abroad; receivables from large firms and government
    # (each channel's total is summed once: ledger.pay returns the sum it records)
    household_total = ledger.pay("consumption_sme", "households", "smes", household_sales)
    ledger.pay("imports", "households", "rest_of_world", imports)
    ledger.pay("consumption_large_firms", "households", "large_firms", consumption - imports - household_total)
    export_total = ledger.pay("exports", "rest_of_world", "smes", export_sales)
    ledger.pay("exports_large_firms", "rest_of_world", "large_firms", row_spending - export_total)
    supply_chain_total, procurement_total = float(supply_chain_sales.sum()), float(procurement_sales.sum())
    model.payables["large_firms"] += supply_chain_total
    model.payables["government"] += procurement_total
    # the month's invoices, which collect_receivables must not treat as due yet (lever 21)
    model.month_invoices = supply_chain_sales + procurement_sales
    procurement_large_firms = budget - procurement_total
    ledger.pay("procurement_large_firms", "government", "large_firms", procurement_large_firms)

    small_micro = np.flatnonzero(smes.size_class <= 1)
    model.step_stats.update(
        procurement_budget=budget,
        procurement_sme=procurement_total,
        procurement_small_micro=float(procurement_sales[small_micro].sum()),
        credit_sales=float(model.month_invoices.sum()),  # supply_chain_sales + procurement_sales
        household_consumption=consumption,
        export_sales=export_total,
    )


def search_rationed_demand(model: "SMEEconomy", weight: np.ndarray, pool: np.ndarray,
                           channel_sales: tuple[np.ndarray, ...]) -> None:
    """Buyers an SME turned away look for the good at the sector's other SMEs before they
    turn to large firms (``markets.rationed_demand_search``; docs/model.md 7.3).

    CATS consumers who find their firm sold out visit the next firm on their list
    (Delli Gatti et al. 2011, *Macroeconomics from the Bottom-up*, ch. 3; Assenza, Delli
    Gatti and Grazzini 2015, JEDC 50; ABCredit.jl's goods market). Here, in one round of
    search, the ``pool`` of each sector's unserved demand by channel (households, exports,
    large firms' orders, procurement) is offered to the sector's SMEs with spare capacity
    in proportion to their demand weights (customer base times relative price, so closed
    firms get none), and each takes what its spare capacity serves; what no one serves goes,
    as before, to large firms or is not placed. The sales are a firm's but its demand is not:
    the buyers are another firm's customers, so they count neither in the firm's planned
    capital nor in the share of its own demand it served (:func:`~sme_abm.agents.sme.evolve_demand`).
    Each channel's sales are settled as that channel's (cash, or receivables).
    """
    smes = model.smes
    totals = pool.sum(axis=1)
    if not totals.sum() > 0.0:
        return
    spare = np.maximum(monthly_capacity(model) - smes.sales, 0.0)
    searched = np.where(spare > 0.0, weight, 0.0)
    sector_weight = bincount_sums(smes.sector, searched, totals.size)
    per_weight = np.divide(totals, sector_weight, out=np.zeros_like(totals), where=sector_weight > 0)
    found = np.minimum(per_weight[smes.sector] * searched, spare)
    mix = np.divide(pool, totals[:, None], out=np.zeros_like(pool), where=totals[:, None] > 0)[smes.sector]
    for channel, sales in enumerate(channel_sales):
        sales += found * mix[:, channel]
    smes.sales += found
    smes.receivables += found * (mix[:, 2] + mix[:, 3])  # large firms' orders and procurement are paid late
    model.step_stats["searched_sales"] = float(found.sum())


def order_inputs_from_smes(model: "SMEEconomy", weight: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """SMEs' orders from other SMEs (``markets.sme_input_sourcing`` "proportional" or
    "proportional_all"); returns each seller's sales on them, which it adds to its demand and sales.

    Buyers source in proportion to supply: they order SMEs' share of last month's enterprise
    revenue (``model.sme_revenue_share``) of their purchases. With "proportional" the purchases
    are the materials the month's other orders take; with "proportional_all" they are all the
    goods and services SMEs buy for production (materials, the overhead and the SG&A bill of
    docs/model.md 7.4a), including the materials the orders themselves take, so that every
    buyer's share from SMEs is that revenue share (docs/model.md 7.3b). The orders are
    allocated among SMEs as large firms' are (customer base times relative price) and served
    from the capacity the other channels leave; :func:`sme_abm.agents.sme.produce` pays for
    them out of the month's bill.
    """
    smes = model.smes
    share = model.sme_revenue_share
    per_unit = inputs_per_unit(model, smes.sector, smes.productivity)
    purchases = float((per_unit * (smes.sales / smes.price)).sum())
    if model.config.markets.sme_input_sourcing == "proportional_all":
        purchases += month_services_bill(model)
        per_yuan = per_unit / smes.price  # the materials a yuan of sales takes
        # the orders take materials too, and SMEs' share of those is ordered from SMEs as
        # well: total orders O solve O = share * (purchases + a * O), with a the materials a
        # yuan of the sellers' sales takes (the Leontief inverse of one aggregate supplier)
        weight_total = float(weight.sum())
        if weight_total > 0:
            materials_per_order = float(per_yuan @ weight) / weight_total
            purchases /= max(1.0 - share * materials_per_order, 1e-9)
    orders, weight_sum = _share(share * purchases, weight)
    demand = orders * (weight / weight_sum) * factor
    sold = np.minimum(demand, np.maximum(monthly_capacity(model) - smes.sales, 0.0))
    smes.demand += demand
    smes.sales += sold
    model.step_stats["inter_sme_sales"] = float(sold.sum())
    return sold


def month_services_bill(model: "SMEEconomy") -> float:
    """The month's overhead and SG&A, known before production: each firm pays the fixed
    overhead and the SG&A it carries into the month (agents/sme.produce; without SG&A,
    ``economy.sga_share`` = 0, the carried SG&A is 0)."""
    return float(model.smes.size * model.overhead_cost() + model.smes.sga.sum())


def _share(total: float, weights: np.ndarray) -> tuple[float, float]:
    """``(total, weight_sum)`` for the kernel, which computes :func:`_allocate`'s
    ``total * (weights / weight_sum)``; ``(0, 1)`` where :func:`_allocate` gives zeros."""
    weight_sum = weights.sum()
    if weight_sum <= 0 or total <= 0:
        return 0.0, 1.0
    return float(total), float(weight_sum)


@njit
def _demand_weights_kernel(sector, can_be_shut_down, draws, shutdown_probability, demand_weight, price_factor,
                           size_class, exporter, price_preference, shut_down, weight, small_micro_weight, sme_base_weight,
                           sme_weight, export_weight, sector_weight):  # pragma: no cover - compiled
    """Demand weights by channel; the numpy it replaced::

        shut_down = can_be_shut_down[sector] & (draws < shutdown_probability)
        weight = where(shut_down, 0.0, demand_weight * price_factor)
        small_micro_weight = weight * (size_class <= 1)
        sme_base_weight = weight * (size_class <= MEDIUM)
        sme_weight = sme_base_weight * where(size_class <= 1, price_preference, 1.0)
        export_weight = weight * exporter
        sector_weight = bincount(sector, weights=weight)   (summed in row order, as bincount does)
    """
    can_close = take(can_be_shut_down, sector)  # gathered first, so the loop vectorises
    for i in range(sector.size):
        closed = can_close[i] & (draws[i] < shutdown_probability)
        shut_down[i] = closed
        w = 0.0 if closed else demand_weight[i] * price_factor[i]
        weight[i] = w
        small_micro = size_class[i] <= 1
        small_micro_weight[i] = w * (1.0 if small_micro else 0.0)
        base = w * (1.0 if size_class[i] <= MEDIUM else 0.0)
        sme_base_weight[i] = base
        sme_weight[i] = base * (price_preference if small_micro else 1.0)
        export_weight[i] = w * (1.0 if exporter[i] else 0.0)
    for i in range(sector.size):
        sector_weight[sector[i]] += weight[i]


@njit
def _demand_kernel(sector, weight, per_weight, small_micro_weight, sme_base_weight, sme_weight, export_weight,
                   supply_total, supply_sum, small_micro_total, small_micro_sum, sme_total, sme_sum, open_total,
                   open_sum, export_total, export_sum, factor, capital, price, capital_output_ratio, shock_hit,
                   demand, sales, lost_revenue, receivables, household_sales, export_sales, supply_chain_sales,
                   procurement_sales, unserved):  # pragma: no cover - compiled
    """Each SME's demand by channel, sales, lost revenue and new receivables; the numpy it replaced::

        household = per_weight[sector] * weight * factor
        supply_chain = supply_total * (weight / supply_sum) * factor      (likewise each _allocate)
        procurement = (small_micro_part + sme_part + open_part) * factor
        exports = export_total * (export_weight / export_sum) * factor
        unshocked = (household + supply_chain + procurement + exports) / factor
        demand = household + supply_chain + procurement + exports
        capacity = price * 1.2 * capital / (12.0 * capital_output_ratio[sector])     (monthly_capacity)
        served = divide(minimum(demand, capacity), demand, out=zeros, where=demand > 0)
        sales = demand * served
        lost_revenue = where(shock_hit, maximum(unshocked - sales, 0.0), 0.0)
        receivables += supply_chain * served + procurement * served
        unserved[sector, channel] += channel_demand * (1 - served)   (unless unserved is None)
    """
    # the per-sector values gathered first, so the loop vectorises
    firm_per_weight, ratio = take(per_weight, sector), take(capital_output_ratio, sector)
    for i in range(sector.size):
        f = factor[i]
        household = firm_per_weight[i] * weight[i] * f
        supply_chain = supply_total * (weight[i] / supply_sum) * f
        procurement = small_micro_total * (small_micro_weight[i] / small_micro_sum)
        procurement = procurement + sme_total * (sme_base_weight[i] / sme_sum)
        procurement = (procurement + open_total * (sme_weight[i] / open_sum)) * f
        exports = export_total * (export_weight[i] / export_sum) * f
        unshocked = (household + supply_chain + procurement + exports) / f
        total = household + supply_chain + procurement + exports
        capacity = price[i] * (1.2 * capital[i] / (12.0 * ratio[i]))
        served = minimum(total, capacity) / total
        served = served if total > 0 else 0.0
        sold = total * served
        demand[i] = total
        sales[i] = sold
        lost = maximum(unshocked - sold, 0.0)
        lost_revenue[i] = lost if shock_hit[i] else 0.0
        household_sales[i] = household * served
        export_sales[i] = exports * served
        chain_sold = supply_chain * served
        procured = procurement * served
        supply_chain_sales[i] = chain_sold
        procurement_sales[i] = procured
        receivables[i] += chain_sold + procured
        if unserved is not None:
            s = sector[i]
            unserved[s, 0] += household - household_sales[i]
            unserved[s, 1] += exports - export_sales[i]
            unserved[s, 2] += supply_chain - chain_sold
            unserved[s, 3] += procurement - procured


def collection_shares(days: float, default_rate: float) -> tuple[float, float]:
    """How buyers settle SMEs' receivables in a month so that they pay after ``days`` on average.

    An invoice is outstanding at the end of the month it is issued in, so with a monthly
    settlement share ``s`` of the stock carried from earlier months the stationary stock
    is ``new invoices / s`` and the measured payment days (stock over monthly credit
    sales, times 30) are ``30 / s``. Hence ``s = 30 / days`` for ``days >= 30``; the
    month's default share (``default_rate`` of the carried stock) counts towards ``s``,
    so buyers pay ``(s - default_rate) / (1 - default_rate)`` of what does not default.
    Below 30 days even the stock carried over is not enough: the whole carried stock is
    settled and ``1 - days / 30`` of the month's new invoices are paid within the month.

    Args:
        days: Average days buyers take to pay (lever 21).
        default_rate: Monthly share of the carried stock that buyers fail to pay.

    Returns:
        ``(pay_rate, early_share)``: the share of the carried, non-defaulted stock paid
        this month, and the share of this month's invoices paid within the month.
    """
    days = max(days, 1.0)
    settled = min(30.0 / days, 1.0)
    pay_rate = (settled - default_rate) / (1.0 - default_rate) if default_rate < 1.0 else 0.0
    early_share = max(1.0 - days / 30.0, 0.0)
    return min(max(pay_rate, 0.0), 1.0), early_share


def collect_receivables(model: "SMEEconomy") -> None:
    """Buyers pay SMEs after ``payment_days`` on average (lever 21); a small share
    defaults, of which the SME recovers part through the courts (lever 1).

    The month's new invoices (added by :func:`allocate_demand`, kept in
    ``model.month_invoices``) are not yet due: only the stock carried from earlier
    months is collected at the rate :func:`collection_shares` sets, so in steady state
    the receivables are ``payment_days / 30`` months of credit sales. Called without
    this month's invoices (a test calling it alone), the whole stock counts as carried.
    """
    smes = model.smes
    days = model.policy.p21_payment_arrears.payment_days
    default_rate = model.config.government.receivable_default_rate
    pay_rate, early_share = collection_shares(days, default_rate)
    recovery = model.policy.p01_legal_system.receivable_recovery_rate
    n = smes.size
    invoices = model.month_invoices
    if invoices is None or invoices.size != n:
        invoices = np.zeros(n)
    model.month_invoices = None  # scratch of this month only: never reused in a later step
    # settle_receivables for all SMEs, with the per-firm arithmetic in one kernel pass
    ledger, payables = model.ledger, model.payables
    lf_share = large_firm_share(payables)
    paid_large_firms, paid_government, settled = np.empty(n), np.empty(n), np.empty(n)
    _collect_receivables_kernel(smes.receivables, invoices, float(pay_rate), float(early_share),
                                float(1.0 - default_rate), float(default_rate), float(recovery), float(lf_share),
                                float(1 - lf_share), smes.receivable_writeoff, paid_large_firms, paid_government,
                                settled)
    ledger.pay("receivables_paid_large_firms", "large_firms", "smes", paid_large_firms)
    ledger.pay("receivables_paid_government", "government", "smes", paid_government)
    total = float(settled.sum())
    payables["large_firms"] -= total * lf_share
    payables["government"] -= total * (1 - lf_share)
    model.step_stats["receivables_written_off"] = float(smes.receivable_writeoff.sum())


@njit
def _collect_receivables_kernel(receivables, invoices, pay_rate, early_share, not_defaulted, default_rate, recovery,
                                lf_share, government_share, written_off, paid_large_firms, paid_government,
                                settled):  # pragma: no cover - compiled
    """This month's collections, per firm; in numpy (with :func:`settle_receivables`)::

        carried = receivables - invoices                       (invoices: this month's, not yet due)
        paid = carried * pay_rate * not_defaulted + invoices * early_share
        defaulted = carried * default_rate                     (not_defaulted = 1.0 - default_rate)
        recovered = defaulted * recovery
        written_off = defaulted - recovered
        paid = paid + recovered
        paid_large_firms = paid * lf_share; paid_government = paid * government_share
        settled = paid + written_off
        receivables -= settled
    """
    for i in range(receivables.size):
        r = receivables[i]
        carried = r - invoices[i]
        defaulted = carried * default_rate
        recovered = defaulted * recovery
        lost = defaulted - recovered
        paid = carried * pay_rate * not_defaulted + invoices[i] * early_share + recovered
        written_off[i] = lost
        paid_large_firms[i] = paid * lf_share
        paid_government[i] = paid * government_share
        total = paid + lost
        settled[i] = total
        receivables[i] = r - total


def large_firm_share(payables: dict[str, float]) -> float:
    """Large firms' share of what buyers owe SMEs (1 when nothing is owed)."""
    total_payables = payables["large_firms"] + payables["government"]
    return payables["large_firms"] / total_payables if total_payables > 0 else 1.0


def settle_receivables(model: "SMEEconomy", rows: np.ndarray | slice, paid: np.ndarray, written_off: np.ndarray) -> None:
    """Buyers pay ``paid`` to SMEs ``rows`` (indices, or a slice for all) and ``written_off`` is cancelled.

    Large firms and government share each yuan in proportion to their payables.
    """
    smes, ledger, payables = model.smes, model.ledger, model.payables
    lf_share = large_firm_share(payables)
    ledger.pay("receivables_paid_large_firms", "large_firms", "smes", paid * lf_share, payee_rows=rows)
    ledger.pay("receivables_paid_government", "government", "smes", paid * (1 - lf_share), payee_rows=rows)
    settled = paid + written_off
    smes.receivables[rows] -= settled
    total = float(settled.sum())
    payables["large_firms"] -= total * lf_share
    payables["government"] -= total * (1 - lf_share)
