"""The credit market (phase 4): applications, screening, guarantees, pricing
and rationing, all as whole-population array operations.

1. SMEs with a financing need (investment, which falls as the loan rate rises through
   the user cost of capital, plus the cash buffer they lack, plus a stand-in partial
   adjustment towards a target leverage, ``banks.leverage_adjustment``) apply, unless discouraged
   (lever 18 sets the application rate) or still waiting after a refusal or a discouraged
   month; a refused firm waits or moves to another lender (:func:`close_episodes`), and
   firms switch banks now and then, taking their deposits and loan facility along.
2. Each bank sees a noisy signal of the applicant's default log-odds (lever 4
   sets the noise) and lends directly if the estimated default probability is
   within its limit (raised for small/micro firms by lever 11) and collateral
   covers the loan (capital, receivables under lever 10, IP under lever 22;
   first loans need less under lever 10).
3. Applicants the bank turns down may get a guarantee (lever 13): the
   guarantor covers all but the bank's share of the loss, for a fee, within
   its leverage limit. Guarantors serve applicants best-first.
4. Banks serve accepted applicants best-first until their capital (risk
   weights from lever 11) or funding (reserve ratios and re-lending, lever 9)
   runs out: that is credit rationing.
5. Loans are priced at the base rate (LPR pass-through, lever 9) plus the
   bank's markup plus expected loss on its own exposure, minus the funding
   saving from re-lending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..agents.bank import LARGE_BANK, NONDEPOSIT_LENDER, risk_weights
from ..agents.guarantor import guarantee_split
from ..agents.sme import _desired_investment, planned_units, user_cost_arguments
from ..kernels import bincount_sums, clip, maximum, minimum, njit, standard_normal, take, uniform

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

MIN_LOAN = 0.005  # CNY m
LITTLE_GIANT_PRIORITY = 0.02  # extra default probability banks accept for little giants


@njit
def default_probability_limit(max_default_probability, npl_bonus, small_micro, little_giant):  # pragma: no cover - compiled
    """The largest estimated default probability at which a bank lends directly: its limit
    (``banks.max_default_probability``), more for small/micro firms (lever 11's
    ``npl_tolerance_bonus``) and for little giants (:data:`LITTLE_GIANT_PRIORITY`). One rule
    for the credit market's screen and the start-up loans' (``demography.screen_startup_loans``);
    takes scalars (in the screening kernel) or arrays of flags."""
    return max_default_probability + small_micro * npl_bonus + little_giant * LITTLE_GIANT_PRIORITY


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, computed in one buffer (same operations, no temporaries)."""
    out = np.negative(np.asarray(x, dtype=float))
    np.exp(out, out=out)
    np.add(1.0, out, out=out)
    return np.divide(1.0, out, out=out)


def default_log_odds(model: "SMEEconomy", rows: np.ndarray | None = None) -> np.ndarray:
    """Annual default log-odds of every SME by the banks' scoring model (what they try to
    estimate from a noisy signal, lever 4). Its level follows realised default rates
    (``model.pd_shift``, :func:`sme_abm.demography.learn_credit_risk`).

    In numpy terms (the kernel does exactly these operations, element by element)::

        leverage = debt / (cash + capital + receivables)   (1 where assets <= 0)
        margin = profit / sales                            (-1 where sales <= 0)
        cover = cash / costs                               (1 where costs <= 0)
        log_odds = (pd_base + pd_shift + pd_leverage * minimum(leverage, 3) + pd_margin * clip(-margin, 0, 1)
                    + pd_liquidity * clip(1 - cover, 0, 1) - 1.0 * (log_a - mean(log_a))
                    + risk_type - 0.3 * trained)

    where ``log_a`` is log productivity; for the firms ``rows`` only if given (the mean is
    still the population's).
    """
    smes, b = model.smes, model.config.banks
    log_a = np.log(smes.productivity)
    mean_log_a = float(log_a.mean())
    if rows is None:
        rows = slice(None)
        out = np.empty(smes.size)
    else:
        out = np.empty(len(rows))
    _default_log_odds_kernel(smes.cash[rows], smes.capital[rows], smes.receivables[rows], smes.debt[rows],
                             smes.profit[rows], smes.sales[rows], smes.costs[rows], log_a[rows],
                             smes.risk_type[rows], smes.trained[rows], mean_log_a,
                             float(b.pd_base + model.pd_shift),  # the level banks have learnt from defaults
                             float(b.pd_leverage), float(b.pd_margin), float(b.pd_liquidity), out)
    return out


@njit
def _default_log_odds_kernel(cash, capital, receivables, debt, profit, sales, costs, log_a, risk_type, trained,
                             mean_log_a, pd_base, pd_leverage, pd_margin, pd_liquidity, out):  # pragma: no cover
    """:func:`default_log_odds` in one pass (numpy's operations and order; see :mod:`sme_abm.kernels`)."""
    for i in range(cash.size):
        assets = cash[i] + capital[i] + receivables[i]
        leverage = debt[i] / assets
        leverage = leverage if assets > 0 else 1.0
        margin = profit[i] / sales[i]
        margin = margin if sales[i] > 0 else -1.0
        cover = cash[i] / costs[i]
        cover = cover if costs[i] > 0 else 1.0
        out[i] = (pd_base
                  + pd_leverage * minimum(leverage, 3.0)
                  + pd_margin * clip(-margin, 0.0, 1.0)
                  + pd_liquidity * clip(1.0 - cover, 0.0, 1.0)
                  - 1.0 * (log_a[i] - mean_log_a)
                  + np.float64(risk_type[i])
                  - 0.3 * (1.0 if trained[i] else 0.0))


def pledgeable_value(model: "SMEEconomy", rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """The loan value of what SMEs ``rows`` (all by default) can pledge: capital, receivables
    (lever 10) and IP (lever 22). For all SMEs it is also the credit line an overdraft draws
    on (:mod:`sme_abm.demography`)."""
    smes, p = model.smes, model.policy
    if isinstance(rows, slice) and rows == slice(None):
        out = np.empty(smes.size)
        _pledgeable_value_kernel(smes.capital, smes.receivables, smes.ip_stock, float(model.config.banks.loan_to_value),
                                 float(p.p10_multilevel_finance.receivables_collateral_ratio),
                                 float(p.p22_ip_protection.ip_collateral_ratio), out)
        return out
    return (model.config.banks.loan_to_value * smes.capital[rows]
            + p.p10_multilevel_finance.receivables_collateral_ratio * smes.receivables[rows]
            + p.p22_ip_protection.ip_collateral_ratio * smes.ip_stock[rows])


@njit
def _pledgeable_value_kernel(capital, receivables, ip_stock, loan_to_value, receivables_ratio, ip_ratio,
                             out):  # pragma: no cover - compiled
    """:func:`pledgeable_value` of every SME in one pass instead of five; the numpy it replaced:
    ``loan_to_value * capital + receivables_ratio * receivables + ip_ratio * ip_stock``."""
    for i in range(capital.size):
        out[i] = loan_to_value * capital[i] + receivables_ratio * receivables[i] + ip_ratio * ip_stock[i]


def collateral_value(model: "SMEEconomy", rows: np.ndarray) -> np.ndarray:
    """What SMEs ``rows`` can pledge (:func:`pledgeable_value`); a first loan needs less
    collateral (lever 10)."""
    collateral = pledgeable_value(model, rows)
    first_loan = ~model.smes.has_borrowed[rows]
    relief = model.policy.p10_multilevel_finance.first_loan_collateral_relief
    return np.where(first_loan, collateral / max(1.0 - relief, 0.05), collateral)


@njit
def _applications_kernel(sector, capital_output_ratio, units, capital, debt, quotes, rate_shift, depreciation,
                         expected_inflation, floor, reference, elasticity, investment_speed, thresholds, costs, cash, sales, draws,
                         cash_buffer_months, application_rate, wait_months, debt_to_capital, leverage_adjustment,
                         loss_months, loss_months_to_exit, credit_wait, desired, need,
                         applies):  # pragma: no cover - compiled
    """Every SME's desired investment and financing need, whether it applies for credit,
    and the count-down of refused and discouraged firms' waits. In numpy terms::

        closing = loss_months >= loss_months_to_exit
        desired = where(closing, 0, desired_investment(model))
        refinance = leverage_adjustment * maximum(debt_to_capital * capital - debt, 0)
        need = where(closing, 0, maximum(desired + cash_buffer - cash, 0) + refinance)
        wants = (need > maximum(MIN_LOAN, 0.02 * sales)) & (sales > 0)
        free = credit_wait == 0
        applies = wants & ((free & (draws < application_rate)) | (credit_wait < 0))
        discouraged = wants & free & (draws >= application_rate)
        credit_wait = where(credit_wait > 0, credit_wait - 1, where((credit_wait < 0) & ~applies, 0, credit_wait))
        credit_wait[discouraged] = wait_months

    with :func:`~sme_abm.agents.sme.desired_investment` and
    :func:`~sme_abm.agents.sme.cash_buffer` written out. A firm whose owner closes it this
    month (``loss_months`` has reached ``loss_months_to_exit`` in production; it leaves in
    phase 7) neither invests nor borrows: she does not put new money, or a lender's, into a
    firm she is giving up (before this rule a third of first guarantees went to such firms).
    ``refinance`` is a stand-in
    (``banks.leverage_adjustment``, see :func:`financing_need`). ``credit_wait`` > 0 is a refused
    firm's months still to wait, -1 a firm that moved to another lender after a refusal
    and applies there (its rationing episode goes on; if it no longer wants credit the
    episode ends without a loan). A firm that wants credit but is discouraged (its draw
    against lever 18's application rate fails) does not apply and, expecting a refusal,
    waits as a refused firm does. Returns the numbers of withdrawn searches and of
    discouraged firms.
    """
    ratio = take(capital_output_ratio, sector)  # gathered first, so the loop vectorises
    withdrawn = 0
    discouraged = 0
    for i in range(sales.size):
        investment = _desired_investment(ratio[i], units[i], capital[i], quotes[i], rate_shift, depreciation,
                                         expected_inflation, floor, reference, elasticity, investment_speed,
                                         thresholds[i])
        refinance = leverage_adjustment * maximum(debt_to_capital * capital[i] - debt[i], 0.0)
        amount = maximum(investment + cash_buffer_months * costs[i] - cash[i], 0.0) + refinance
        if loss_months[i] >= loss_months_to_exit:
            investment = 0.0
            amount = 0.0
        desired[i] = investment
        need[i] = amount
        wait = credit_wait[i]
        wants = (amount > maximum(MIN_LOAN, 0.02 * sales[i])) & (sales[i] > 0)
        willing = draws[i] < application_rate
        applying = wants & (((wait == 0) & willing) | (wait < 0))
        applies[i] = applying
        if wait > 0:
            credit_wait[i] = wait - 1
        elif wait < 0 and not applying:
            credit_wait[i] = 0
            withdrawn += 1
        elif wait == 0 and wants and not willing:
            credit_wait[i] = wait_months
            discouraged += 1
    return withdrawn, discouraged


def financing_need(model: "SMEEconomy", draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Phase 4's first step for every SME: desired investment, financing need (investment
    plus the cash buffer it lacks, plus the stand-in ``banks.leverage_adjustment`` times the
    gap to the target debt ``banks.initial_debt_to_capital`` times capital, when the firm is
    below it) and who applies (:func:`_applications_kernel`; ``draws`` are the uniform draws
    against lever 18's application rate). The leverage term stands in for causes of debt the
    model does not yet have: without it firms finance investment from profit and the SME
    loan book shrinks to about an eighth (docs/model.md 7.5). Counts down refused and
    discouraged firms' waits and starts the waits of the newly discouraged (counted in
    ``step_stats["credit_discouraged"]``). Returns ``(desired, need, applies, withdrawn)``."""
    smes, econ, cfg = model.smes, model.config.economy, model.config.banks
    n = smes.size
    desired, need, applies = np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    withdrawn, discouraged = _applications_kernel(
        smes.sector, np.asarray(model.capital_output_ratio, dtype=float), planned_units(model), smes.capital,
        smes.debt, *user_cost_arguments(model), smes.costs, smes.cash, smes.sales, draws,
        float(econ.cash_buffer_months), float(model.policy.p18_service_platforms.credit_application_rate),
        int(cfg.refused_wait_months), float(cfg.initial_debt_to_capital), float(cfg.leverage_adjustment),
        smes.loss_months, int(econ.loss_months_to_exit), smes.credit_wait, desired, need, applies)
    model.step_stats["credit_discouraged"] = int(discouraged)
    return desired, need, applies, int(withdrawn)


def choose_other_lenders(weights: np.ndarray, current: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """For each firm, a lender other than ``current``, drawn with probability proportional
    to ``weights`` (one per lender) among the others, by inverting the cumulative weights
    with the current lender's slice cut out (``draws`` uniform on [0, 1)). A firm whose
    other lenders all weigh nothing keeps ``current``."""
    weights = np.maximum(np.asarray(weights, dtype=float), 0.0)
    cumulative = np.cumsum(weights)
    own = weights[current]
    others = cumulative[-1] - own
    before_own = cumulative[current] - own
    x = draws * others
    x = np.where(x >= before_own, x + own, x)
    chosen = np.minimum(np.searchsorted(cumulative, x, side="right"), weights.size - 1)
    keep = (others <= 0) | (chosen == current) | (weights[chosen] <= 0)
    return np.where(keep, current, chosen).astype(current.dtype)


def client_shares(model: "SMEEconomy") -> np.ndarray:
    """Each lender's share of the clients new firms choose (``SMEEconomy._draw_banks``): large
    banks ``banks.large_bank_client_share`` between them, the rest split between the small
    banks and, in the share lever 10 licenses (``nondeposit_lender_capital_share``), the
    non-deposit lenders; lenders of a kind share equally. So lenders weigh by their size class."""
    banks, b = model.banks, model.config.banks
    nondeposit = banks.kind == NONDEPOSIT_LENDER
    large = banks.kind == LARGE_BANK
    small = ~large & ~nondeposit
    to_nondeposit = model.policy.p10_multilevel_finance.nondeposit_lender_capital_share if nondeposit.any() else 0.0
    rest = 1.0 - b.large_bank_client_share
    total_large = b.large_bank_client_share + (0.0 if small.any() else rest * (1.0 - to_nondeposit))
    shares = np.zeros(banks.size)
    shares[large] = total_large / max(np.count_nonzero(large), 1)
    shares[small] = rest * (1.0 - to_nondeposit) / max(np.count_nonzero(small), 1)
    shares[nondeposit] = rest * to_nondeposit / max(np.count_nonzero(nondeposit), 1)
    return shares


def keep_unfunded_facilities(model: "SMEEconomy", rows: np.ndarray, new_bank: np.ndarray) -> np.ndarray:
    """The lenders ``new_bank`` SMEs ``rows`` (distinct) may move to: a non-deposit lender
    funded by borrowing takes over the facilities of firms moving to it only within its
    funding headroom (:meth:`~sme_abm.agents.bank.BankBook.funding_headroom`), the smallest
    first; a firm whose facility does not fit stays with its lender (a searcher then waits).

    Taking over a facility is lending its outstanding debt (:func:`switch_banks`), so a
    lender held to its borrowing limit cannot take on a book it could not fund: unchecked,
    single facilities of up to 2.6 times a lender's net assets moved in and were borrowed
    at the month's end (3,000 SMEs, seeds 8 and 9). Deposit-taking banks, whose funding is
    their depositors' money and the central bank's standing facility, take every facility."""
    smes, banks = model.smes, model.banks
    if model.config.banks.nondeposit_funding != "borrowing":
        return new_bank
    debt = smes.debt[rows]
    into = np.flatnonzero((new_bank != smes.bank[rows]) & (banks.kind[new_bank] == NONDEPOSIT_LENDER) & (debt > 0))
    if into.size == 0:
        return new_bank
    fits = ration(new_bank[into], debt[into], debt[into], banks.funding_headroom())
    refused = into[~fits]
    new_bank = new_bank.copy()
    new_bank[refused] = smes.bank[rows[refused]]
    return new_bank


def switch_banks(model: "SMEEconomy", rows: np.ndarray, new_bank: np.ndarray) -> tuple[int, float]:
    """Move SMEs ``rows`` (distinct) to the lenders ``new_bank``: the firm's deposits go with
    it (they sit at ``banks.deposit_home[smes.bank]``, so its money moves between banks with
    the reserves behind it, see :mod:`sme_abm.agents.bank`), and a firm with debt moves its
    loan facility: the new lender lends it the outstanding debt and the firm repays the old
    one with it (two ledger flows, so the loan books of both banks and the accounting
    identities hold). The facility keeps its rate, schedule and guarantee (guarantor and
    guaranteed amount). Returns the number of firms that moved and the debt moved."""
    smes, banks, ledger = model.smes, model.banks, model.ledger
    moving = new_bank != smes.bank[rows]
    rows, new_bank = rows[moving], new_bank[moving]
    debt = smes.debt[rows]
    with_debt = np.flatnonzero(debt > 0)
    debtors, amount = rows[with_debt], debt[with_debt]
    old, new = smes.bank[debtors], new_bank[with_debt]
    lent = bincount_sums(new, weights=amount, minlength=banks.size)
    repaid = bincount_sums(old, weights=amount, minlength=banks.size)
    ledger.pay("facility_moved_in", "banks", "smes", amount, payer_rows=new, payee_rows=debtors, payer_sums=lent)
    moved = ledger.pay("facility_moved_out", "smes", "banks", amount, payer_rows=debtors, payee_rows=old,
                       payee_sums=repaid)
    banks.loans += lent - repaid
    # the risk-weighted assets follow the facilities (what update_risk_weighted_assets would sum)
    weighted = amount * risk_weights(model, smes.size_class[debtors], amount, smes.guaranteed[debtors])
    banks.risk_weighted_assets += (bincount_sums(new, weights=weighted, minlength=banks.size)
                                   - bincount_sums(old, weights=weighted, minlength=banks.size))
    smes.bank[rows] = new_bank
    return int(rows.size), moved


@njit
def _screen_kernel(rows, amount, estimated_pd, size_class, little_giant, capital, receivables, ip_stock, has_borrowed,
                   debt, firm_id, guarantor, guaranteed, focused, general, max_default_probability, npl_bonus,
                   loan_to_value, receivables_ratio, ip_ratio, first_loan_divisor, guarantor_max_pd, bank_share,
                   small_micro, bank_limit, collateral, room, direct, candidates, guarantor_of):  # pragma: no cover
    """Screening of the applicants ``rows``, element by element as the numpy it replaced::

        small_micro = size_class <= 1
        bank_limit = max_default_probability + small_micro * npl_bonus + little_giant * LITTLE_GIANT_PRIORITY
        collateral = collateral_value(model, rows)
        room = maximum(collateral - debt, 0)
        direct = (estimated_pd <= bank_limit) & (amount <= room)
        guarantor_of = where((guarantor >= 0) & (guaranteed > 0), guarantor,
                             GuarantorBook.assign(firm_id, small_micro))
        candidates = (~direct & (estimated_pd <= guarantor_max_pd)
                      & (estimated_pd * bank_share <= bank_limit) & (amount * bank_share <= room))
    """
    for j in range(rows.size):
        i = rows[j]
        sm = size_class[i] <= 1
        limit = default_probability_limit(max_default_probability, npl_bonus, 1.0 if sm else 0.0,
                                          1.0 if little_giant[i] else 0.0)
        value = loan_to_value * capital[i] + receivables_ratio * receivables[i] + ip_ratio * ip_stock[i]
        relieved = value / first_loan_divisor
        value = value if has_borrowed[i] else relieved
        free = maximum(value - debt[i], 0.0)
        pd = estimated_pd[j]
        a = amount[j]
        is_direct = (pd <= limit) & (a <= free)
        current = guarantor[i]
        fid = firm_id[i]
        assigned = focused[fid % focused.size] if sm else general[fid % general.size]
        guarantor_of[j] = current if (current >= 0) & (guaranteed[i] > 0) else assigned
        small_micro[j] = sm
        bank_limit[j] = limit
        collateral[j] = value
        room[j] = free
        direct[j] = is_direct
        candidates[j] = ((not is_direct) & (pd <= guarantor_max_pd) & (pd * bank_share <= limit)
                         & (a * bank_share <= free))


@njit
def _capital_use_kernel(acc, rows, size_class, amount, guaranteed, small_micro_weight,
                        capital_use):  # pragma: no cover - compiled
    """Risk-weighted size of each accepted request ``acc`` (indices into the applicants ``rows``);
    the numpy it replaced::

        weights = risk_weights(model, size_class[rows][acc], amount[acc], where(guaranteed[acc], amount[acc], 0.0))
        capital_use = amount[acc] * weights
    """
    for j in range(acc.size):
        k = acc[j]
        a = amount[k]
        base = small_micro_weight if size_class[rows[k]] <= 1 else 1.0
        covered = (a if guaranteed[k] else 0.0) / a
        covered = covered if a > 0 else 0.0
        capital_use[j] = a * (base * (1.0 - 0.5 * minimum(covered, 1.0)))


def queue_order(groups: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Requests sorted by group, then priority (ties keep their order): ``np.lexsort((priority, groups))``.

    The second, stable pass sorts small integers (a radix sort), which is
    several times faster than lexsort and gives the same permutation.
    """
    order = np.argsort(priority, kind="stable")
    return order[np.argsort(groups[order], kind="stable")]


def ration(groups: np.ndarray, priority: np.ndarray, size: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Serve requests best-first (lowest priority value) within each group's capacity.

    A request is granted when the cumulative size of its group's requests up
    to and including it fits in the group's capacity (strict queue order).

    Only the requests of groups whose total demand exceeds their capacity
    need to be queued; in every other group all requests are granted, so the
    sort is skipped for them (same result, much less work when few lenders
    are constrained).

    Args:
        groups: Group (lender) index of each request.
        priority: Sort key; lower is served first.
        size: Amount each request uses.
        capacity: Capacity per group.

    Returns:
        Boolean mask of granted requests.
    """
    granted = np.ones(groups.size, dtype=bool)
    if groups.size == 0:
        return granted
    capacity = np.asarray(capacity, dtype=float)
    limit = capacity * (1 + 1e-12)
    totals = bincount_sums(groups, weights=size, minlength=capacity.size)
    binding = totals > limit
    if not binding.any():
        return granted
    queued = np.flatnonzero(binding[groups])
    granted[queued] = _serve_in_order(groups[queued], priority[queued], size[queued], limit)
    return granted


def _serve_in_order(groups: np.ndarray, priority: np.ndarray, size: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Which queued requests fit, served in :func:`queue_order`: :func:`_serve_in_order_kernel`,
    or the numpy it replaced (:func:`_serve_in_order_numpy`) for inputs it does not take."""
    granted = np.empty(groups.size, dtype=bool)
    # the kernel adds and compares in float64, as numpy does for float64 sizes and limits
    float64 = np.dtype(np.float64)
    limit = np.asarray(limit)
    if (groups.ndim == 1 and groups.dtype.kind in "iu" and priority.shape == groups.shape == size.shape
            and priority.dtype == float64 and size.dtype == float64 and limit.ndim == 1 and limit.dtype == float64
            and _serve_in_order_kernel(groups, priority, size, limit, granted)):
        return granted
    return _serve_in_order_numpy(groups, priority, size, limit)


@njit
def _sort_keys(priority):  # pragma: no cover - compiled
    """Unsigned integers in the order numpy sorts ``priority`` in: -0.0 and 0.0 equal,
    every NaN equal and after +inf; otherwise the IEEE bits, flipped so that they
    compare as the numbers do."""
    keys = np.empty(priority.size, dtype=np.uint64)
    bits = priority.view(np.uint64)
    sign = np.uint64(1) << np.uint64(63)
    for i in range(priority.size):
        x = priority[i]
        b = bits[i]
        key = ~b if b & sign else b | sign
        key = sign if x == 0.0 else key
        keys[i] = np.uint64(0xFFFFFFFFFFFFFFFF) if x != x else key
    return keys


@njit
def _serve_in_order_kernel(groups, priority, size, limit, granted):  # pragma: no cover - compiled
    """:func:`_serve_in_order_numpy` in one compiled pass; False (``granted`` unusable) if a
    group is outside ``limit``.

    The queue order is a stable least-significant-digit radix sort of the priorities'
    :func:`_sort_keys` (8 bits a pass, skipping passes in which all keys share the
    digit), then a stable counting sort by group: the permutation
    ``np.lexsort((priority, groups))`` gives, which is unique (ties keep their
    order), found several times faster than numpy's stable comparison sort. The
    running totals are added in queue order as ``np.cumsum`` does, and each
    group's total is taken as the numpy did, so the comparisons see the same bits.
    """
    n = groups.size
    n_groups = limit.size
    for i in range(n):
        if groups[i] < 0 or groups[i] >= n_groups:
            return False
    if n == 0:
        return True
    keys = _sort_keys(priority)
    order = np.arange(n)
    spare = np.empty(n, dtype=np.int64)
    counts = np.empty(257, dtype=np.int64)
    for shift in range(0, 64, 8):
        digit_shift = np.uint64(shift)
        counts[:] = 0
        for i in range(n):
            counts[((keys[i] >> digit_shift) & np.uint64(255)) + np.uint64(1)] += 1
        if counts.max() == n:
            continue  # every key has the same digit here: the pass would not move anything
        for d in range(256):
            counts[d + 1] += counts[d]
        for i in range(n):
            j = order[i]
            d = (keys[j] >> digit_shift) & np.uint64(255)
            spare[counts[d]] = j
            counts[d] += 1
        order, spare = spare, order
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(n):
        starts[groups[i] + 1] += 1
    for g in range(n_groups):
        starts[g + 1] += starts[g]
    first = starts[:n_groups].copy()  # where each group's requests begin in the queue
    for i in range(n):
        j = order[i]
        g = groups[j]
        spare[starts[g]] = j
        starts[g] += 1
    order = spare
    running = np.empty(n)
    running[0] = size[order[0]]
    for i in range(1, n):
        running[i] = running[i - 1] + size[order[i]]
    for i in range(n):
        j = order[i]
        g = groups[j]
        head = first[g]
        within_group = running[i] - (running[head] - size[order[head]])
        granted[j] = within_group <= limit[g]
    return True


def _serve_in_order_numpy(groups: np.ndarray, priority: np.ndarray, size: np.ndarray,
                          limit: np.ndarray) -> np.ndarray:
    order = queue_order(groups, priority)
    sorted_groups = groups[order]
    sorted_size = size[order]
    running = np.cumsum(sorted_size)
    starts = np.cumsum(np.bincount(sorted_groups)) - np.bincount(sorted_groups)
    first = starts[sorted_groups]
    within_group = running - (running[first] - sorted_size[first])
    granted = np.empty(groups.size, dtype=bool)
    granted[order] = within_group <= limit[sorted_groups]
    return granted


def licensed_capital_headroom(model: "SMEEconomy") -> np.ndarray:
    """Each lender's capital headroom, with non-deposit lenders held to the capital that
    lever 10 in force licenses them to lend against.

    The month-0 economy is the same under any lever setting, so lever 10 cannot act by
    giving non-deposit lenders capital at set-up: it acts by licensing them to lend against
    ``nondeposit_lender_capital_share`` of the deposit-taking banks' equity (split evenly
    among them), and never beyond their own equity. With the lever off (share 0) they book
    no new loans and their book runs off; at the baseline the licence is about their own
    equity, so it does not bind.
    """
    banks = model.banks
    headroom = banks.capital_headroom()
    nondeposit = banks.kind == NONDEPOSIT_LENDER
    n_nondeposit = int(np.count_nonzero(nondeposit))
    if n_nondeposit == 0:
        return headroom
    share = model.policy.p10_multilevel_finance.nondeposit_lender_capital_share
    licensed = share * float(banks.equity[~nondeposit].sum()) / n_nondeposit
    capital = np.minimum(np.maximum(banks.equity, 0.0), licensed)
    licensed_headroom = np.maximum(capital / model.config.banks.min_capital_ratio - banks.risk_weighted_assets, 0.0)
    return np.where(nondeposit, np.minimum(headroom, licensed_headroom), headroom)


def loan_rate(model: "SMEEconomy", bank_of: np.ndarray, expected_loss: np.ndarray,
              relending_saving: float = 0.0) -> np.ndarray:
    """Annual rate on new loans: the SME base rate, the lending bank's markup, a premium of
    ``banks.risk_premium_share`` times the expected loss on the bank's retained exposure at
    the loss given default it has realised, less what central-bank re-lending saves it."""
    return (model.sme_base_rate + model.banks.markup_of(bank_of)
            + model.config.banks.risk_premium_share * model.loss_given_default() * expected_loss - relending_saving)


def run_credit_market(model: "SMEEconomy") -> None:
    """Phase 4: SMEs apply, banks and guarantors screen, price and ration, loans are booked."""
    smes, banks, guarantors, p, rng = model.smes, model.banks, model.guarantors, model.policy, model.rng
    cfg = model.config.banks
    n = smes.size
    banks.update_risk_weighted_assets(model)

    # firms borrow for investment (desired capital falls with the user cost of capital) and
    # for the cash buffer they lack; refused firms still waiting do not apply
    draws = uniform(rng, n)
    model.month_adjustment_draws = None  # this month's fixed adjustment costs are drawn afresh
    desired, need, applies, withdrawn = financing_need(model, draws)
    model.month_desired_investment = desired
    rows = np.flatnonzero(applies)
    amount = need[rows]
    count = rows.size
    # applicants still searching after a refusal at another lender continue their episode
    continuing = smes.credit_wait[rows] < 0

    true_log_odds = default_log_odds(model)[rows]
    noise = p.p04_credit_information.signal_noise
    signal = standard_normal(rng, rows.size)
    np.multiply(signal, noise, out=signal)  # true_log_odds + noise * draws, in the draws' buffer
    estimated_pd = sigmoid(np.add(true_log_odds, signal, out=signal))

    g = p.p13_financing_guarantee
    bank_share = guarantee_split(model).bank_share
    finance = p.p10_multilevel_finance
    small_micro = np.empty(count, dtype=bool)
    bank_limit, collateral, room = np.empty(count), np.empty(count), np.empty(count)
    direct, candidates = np.empty(count, dtype=bool), np.empty(count, dtype=bool)
    guarantor_of = np.empty(count, dtype=np.int16)
    focused, general = guarantors.assignment_pools()
    _screen_kernel(rows, amount, estimated_pd, smes.size_class, smes.little_giant, smes.capital, smes.receivables,
                   smes.ip_stock, smes.has_borrowed, smes.debt, smes.firm_id, smes.guarantor, smes.guaranteed,
                   focused, general, float(cfg.max_default_probability),
                   float(p.p11_differentiated_supervision.npl_tolerance_bonus), float(cfg.loan_to_value),
                   float(finance.receivables_collateral_ratio), float(p.p22_ip_protection.ip_collateral_ratio),
                   float(max(1.0 - finance.first_loan_collateral_relief, 0.05)),
                   float(model.config.guarantors.max_default_probability), float(bank_share),
                   small_micro, bank_limit, collateral, room, direct, candidates, guarantor_of)

    # guarantees for those the bank would not take alone (lever 13): small and micro
    # firms go to the guarantors that mainly serve them (when there are any), and a
    # firm that already has guaranteed debt stays with its guarantor (see _screen_kernel)
    cand = np.flatnonzero(candidates)
    guaranteed = np.zeros(rows.size, dtype=bool)
    guaranteed[cand] = ration(guarantor_of[cand], estimated_pd[cand], amount[cand], guarantors.capacity())
    accepted = direct | guaranteed

    # bank rationing under capital and funding limits
    acc = np.flatnonzero(accepted)
    bank_of = smes.bank[rows]
    relending_share = p.p09_monetary_transmission.relending_share
    capital_use = np.empty(acc.size)
    _capital_use_kernel(acc, rows, smes.size_class, amount, guaranteed,
                        float(p.p11_differentiated_supervision.small_micro_risk_weight), capital_use)
    expected_loss = estimated_pd * np.where(guaranteed, bank_share, 1.0)
    capital_headroom, funding_headroom = licensed_capital_headroom(model), banks.funding_headroom()
    funding_use = amount[acc] * (1.0 - relending_share)
    acc_banks, acc_loss = bank_of[acc], expected_loss[acc]
    fits_capital = ration(acc_banks, acc_loss, capital_use, capital_headroom)
    fits_funding = ration(acc_banks, acc_loss, funding_use, funding_headroom)
    served = fits_capital & fits_funding
    granted = np.zeros(rows.size, dtype=bool)
    granted[acc] = served
    served_banks = acc_banks[served]
    used_capital = bincount_sums(served_banks, weights=capital_use[served], minlength=banks.size)
    used_funding = bincount_sums(served_banks, weights=funding_use[served], minlength=banks.size)
    model.step_stats["bank_capital_breach"] = float(np.max(used_capital - capital_headroom, initial=0.0))
    model.step_stats["bank_funding_breach"] = float(np.max(used_funding - funding_headroom, initial=0.0))

    # pricing and booking: the expected loss on the bank's retained exposure, at the loss
    # given default it has realised
    lgd = model.loss_given_default()
    relending_saving = relending_share * max(cfg.funding_cost - p.p09_monetary_transmission.relending_rate, 0.0)
    booked = np.flatnonzero(granted)
    booked_banks = bank_of[booked]
    # priced for the loans booked only: element by element, so the same rates as pricing every applicant
    booked_loss = expected_loss[booked]
    rate = loan_rate(model, booked_banks, booked_loss, relending_saving)
    loan_rows, loan_amount = rows[booked], amount[booked]
    banks.lend(model, loan_rows, loan_amount, rate)
    relent = model.central_bank.relend(booked_banks, loan_amount * relending_share)
    with_guarantee = booked[guaranteed[booked]]
    g_rows = rows[with_guarantee]
    fee_rate = guarantee_fees(model, estimated_pd[with_guarantee], amount[with_guarantee], lgd)
    old_guaranteed = smes.guaranteed[g_rows]
    new_guaranteed = old_guaranteed + amount[with_guarantee]
    smes.guarantee_fee_rate[g_rows] = (smes.guarantee_fee_rate[g_rows] * old_guaranteed
                                       + fee_rate * amount[with_guarantee]) / new_guaranteed
    smes.guaranteed[g_rows] = new_guaranteed
    smes.guarantor[g_rows] = guarantor_of[with_guarantee]
    issued = bincount_sums(guarantor_of[with_guarantee], weights=amount[with_guarantee], minlength=guarantors.size)
    guarantors.outstanding += issued
    # a guarantor may end above its limit when losses shrink its capital or the limit
    # tightens, but then it writes nothing new: this is how far any issuer went past it
    over = guarantors.leverage() - guarantors.leverage_limit()
    model.step_stats["guarantor_issuance_over_limit"] = float(np.max(over[issued > 0], initial=0.0))
    smes.has_borrowed[loan_rows] = True
    banks.update_risk_weighted_assets(model)

    if model.recorder.application_rows is not None:
        log_applications(model, rows, amount, estimated_pd, direct, guaranteed, granted, booked, rate)

    creditworthy = sigmoid(true_log_odds) <= cfg.max_default_probability
    pd_ok = estimated_pd <= bank_limit
    demanded, granted_total = amount.sum(), loan_amount.sum()
    booked_small_micro = small_micro[booked]
    episodes = close_episodes(model, rows, granted, capital_headroom)
    ended = granted | episodes["waits"]  # the episode ends with a loan, or refused (the firm waits)
    refused_ended = ended & ~granted
    model.step_stats.update(
        credit_episodes_started=int(np.count_nonzero(~continuing)),
        credit_episodes_ended=int(np.count_nonzero(ended)),
        credit_episodes_refused=int(np.count_nonzero(refused_ended)),
        credit_episodes_withdrawn=withdrawn,
        credit_refusals=int(rows.size - booked.size),
        credit_demanded_episodes=float(amount[ended].sum()),
        creditworthy_episodes=int(np.count_nonzero(creditworthy & ended)),
        creditworthy_episodes_refused=int(np.count_nonzero(creditworthy & refused_ended)),
        credit_waiting=episodes["waiting"],
        bank_switches=episodes["switches"],
        bank_switches_after_refusal=episodes["searches"],
        facilities_moved=episodes["moved"],
    )
    model.step_stats.update(
        credit_applications=int(rows.size),
        credit_approved=int(booked.size),
        credit_demanded=float(demanded),
        credit_granted=float(granted_total),
        credit_rationed=float(amount[refused_ended].sum()),
        credit_guaranteed=float(amount[with_guarantee].sum()),
        credit_granted_small_micro=float(loan_amount[booked_small_micro].sum()),
        creditworthy_applicants=int(np.count_nonzero(creditworthy)),
        creditworthy_refused=int(np.count_nonzero(creditworthy & ~granted)),
        creditworthy_misjudged=int(np.count_nonzero(creditworthy & ~pd_ok)),
        collateral_constrained=int(np.count_nonzero(pd_ok & (amount > room))),
        collateral_per_applicant=float(collateral.mean()) if rows.size else 0.0,
        credit_granted_nondeposit=float(loan_amount[banks.kind[booked_banks] == NONDEPOSIT_LENDER].sum()),
        applications_small_micro=int(np.count_nonzero(small_micro)),
        approved_small_micro=int(np.count_nonzero(granted & small_micro)),
        approved_small_micro_unguaranteed=int(np.count_nonzero(granted & small_micro & ~guaranteed)),
        new_loan_rate=float(np.average(rate, weights=loan_amount)) if booked.size else float("nan"),
        new_loan_rate_small_micro=float(np.average(rate[booked_small_micro], weights=loan_amount[booked_small_micro]))
        if booked_small_micro.any() else float("nan"),
        new_loan_rates=rate,
        new_loan_guaranteed=guaranteed[booked],
        relending_granted=relent,  # the sum of loan_amount * relending_share
        priced_loss_rate=float(np.average(lgd * booked_loss, weights=loan_amount)) if booked.size
        else float("nan"),
        new_guarantee_fee=float(np.average(fee_rate, weights=amount[with_guarantee])) if with_guarantee.size
        else float("nan"),
    )


def log_applications(model: "SMEEconomy", rows: np.ndarray, amount: np.ndarray, estimated_pd: np.ndarray,
                     direct: np.ndarray, guaranteed: np.ndarray, granted: np.ndarray, booked: np.ndarray,
                     rate: np.ndarray) -> None:
    """Hand the month's applications to the recorder, one row each: the firm, what the bank
    estimated, whether the firm was under the guarantors' default-probability ceiling (the
    eligibility cut-off of the regression-discontinuity design in
    :mod:`sme_abm.quasi_experiments`), what was decided and the rate charged (NaN if refused)."""
    smes = model.smes
    charged = np.full(rows.size, np.nan)
    charged[booked] = rate
    model.recorder.log_applications({
        "firm_id": smes.firm_id[rows], "size_class": smes.size_class[rows], "sector": smes.sector[rows],
        "estimated_pd": estimated_pd.copy(), "amount": amount.copy(), "direct": direct.copy(),
        "eligible": estimated_pd <= model.config.guarantors.max_default_probability,
        "guaranteed": guaranteed & granted, "granted": granted.copy(), "rate": charged,
    })


def close_episodes(model: "SMEEconomy", rows: np.ndarray, granted: np.ndarray, capital_headroom: np.ndarray) -> dict:
    """After the month's lending: the applicants ``rows`` refused (``~granted``) either look
    for another lender, with probability ``banks.refused_search_probability`` (they move there
    and apply the next month, the same rationing episode), or wait
    ``banks.refused_wait_months`` before they apply again (their episode ends refused);
    granted applicants' episodes end. Then any firm moves to another lender with
    probability ``banks.bank_switch_rate`` a month. New lenders are drawn as new firms draw
    theirs, by the lenders' size classes (:func:`client_shares`), among those with capital
    headroom (:func:`choose_other_lenders`), so the clients' spread over lenders stays that of
    entry; the move is booked by :func:`switch_banks`. (Drawn by loan book instead, the
    lenders' books drifted apart like a Polya urn: one bank held 43% of the loans after 240
    months.)

    Returns the refused applicants who wait (a mask over ``rows``) and the month's counts:
    firms waiting, switches, switches after a refusal and the debt moved."""
    smes, banks, rng, cfg = model.smes, model.banks, model.rng, model.config.banks
    refused = np.flatnonzero(~granted)
    searches = rng.random(refused.size) < cfg.refused_search_probability
    waits = np.zeros(rows.size, dtype=bool)
    waits[refused[~searches]] = True
    smes.credit_wait[rows[granted]] = 0
    smes.credit_wait[rows[waits]] = cfg.refused_wait_months
    weights = np.where(capital_headroom > 0, client_shares(model), 0.0)
    searching = rows[refused[searches]]
    # firms that move for reasons of their own: a binomial count of distinct firms, drawn
    # without a uniform draw per firm (the same law as one Bernoulli draw each)
    n = smes.size
    count = int(rng.binomial(n, min(max(cfg.bank_switch_rate, 0.0), 1.0))) if n else 0
    movers = np.setdiff1d(rng.choice(n, size=count, replace=False) if count else np.empty(0, dtype=np.int64),
                          searching)
    switching = np.concatenate([searching, movers])
    new_bank = choose_other_lenders(weights, smes.bank[switching], rng.random(switching.size))
    new_bank = keep_unfunded_facilities(model, switching, new_bank)
    found = new_bank[: searching.size] != smes.bank[searching]
    # a searcher with nowhere to go waits instead
    smes.credit_wait[searching[found]] = -1
    stuck = searching[~found]
    smes.credit_wait[stuck] = cfg.refused_wait_months
    waits[np.isin(rows, stuck)] = True
    switched, moved = switch_banks(model, switching, new_bank)
    return {"waits": waits, "waiting": int(np.count_nonzero(smes.credit_wait > 0)), "switches": switched,
            "searches": int(np.count_nonzero(found)), "moved": moved}


def guarantee_fees(model: "SMEEconomy", estimated_pd: np.ndarray, amount: np.ndarray, lgd: float) -> np.ndarray:
    """Annual fee rate of each new guarantee: risk-based, within lever 13's cap on the average.

    A guarantor prices its operating cost plus the loss it expects to bear itself (its
    net share of the guaranteed loss, what the bank, the re-guarantee fund and the local
    government do not bear, times default probability and loss given default). The policy caps the average fee (at most 1% a year,
    National Financing Guarantee Fund), not each fee, so when the amount-weighted average
    of these prices exceeds the cap every fee is scaled down by the same factor: riskier
    firms still pay more, and the average fee is an outcome, at the cap only when risk
    prices exceed it. What the cap leaves uncovered shows up as guarantor losses, and as
    the government's recapitalisations (a fiscal cost of lever 13).
    """
    g = model.policy.p13_financing_guarantee
    price = model.config.guarantors.operating_cost + guarantee_split(model).guarantor_share * estimated_pd * lgd
    if amount.size == 0:
        return price
    average = float(np.average(price, weights=amount))
    return price * min(1.0, g.fee_cap / average) if average > 0 else price
