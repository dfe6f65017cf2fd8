"""The government (central and local, as one agent): taxes, procurement
budget, support programmes, fiscal cost per lever, and policy evaluation.

Phases: :func:`set_policy` (phase 1), :func:`pay_support` (after production),
:func:`evaluate_policies` (lever 25) and :meth:`Government.close_month`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

import mesa
import numpy as np

from ..kernels import clip, group_sums, minimum, njit, order_statistics, standard_normal, uniform
from ..markets.capital import book_equity
from .administration import empty_cases, open_cases, pending
from .sme import MEDIUM, SMALL, SUPPORT_BITS

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

GRANT_SIZE = 0.05  # CNY m per special-fund grant
EQUITY_TICKET = 1.0  # CNY m per fund-of-funds investment
#: Spending below this (CNY m over an evaluation period) cannot be scored per yuan.
MIN_EVALUATED_COST = 1e-6
#: Family-wise error rate of an evaluation: the chance that any programme with no effect
#: scores above 0 (two-sided 5%, Bonferroni-split over the programmes evaluated).
EVALUATION_ERROR_RATE = 0.05
#: Programmes whose delivery runs the randomised pilot (lever 25). Lever 15's R&D subsidy
#: is paid inside ``sme.produce`` to every innovative firm and is not held back, so it is
#: not evaluated and its budget is not moved.
PILOTED = ("p06_fiscal_funds", "p14_entrepreneurship", "p16_little_giants", "p17_digital_adoption",
           "p19_management_training", "p23_emergency_relief")
_MASK64 = (1 << 64) - 1


class Government(mesa.Agent):
    """Central and local government.

    Attributes:
        fiscal_cost: This step's fiscal cost by lever key (cash spent plus
            revenue forgone), in CNY m.
        budget_weights: Multipliers on budget levers' money parameters, moved by lever 25.
        equity_invested: Money put into SMEs' equity through the SME development
            fund so far (its cost; the stakes' book value is :meth:`fund_equity_value`).
    """

    def __init__(self, model: "SMEEconomy") -> None:
        super().__init__(model)
        self.fiscal_cost: dict[str, float] = defaultdict(float)
        self.fiscal_cost_since_evaluation: dict[str, float] = defaultdict(float)
        self.budget_weights: dict[str, float] = {key: 1.0 for key in SUPPORT_BITS}
        self.equity_invested = 0.0
        #: Support cases waiting for the SME administration (lever 24; :mod:`.administration`).
        self.cases = empty_cases()
        self.tax_paid_small_micro = 0.0
        self.last_scores: dict[str, float] = {}
        # lever 16's review record: giants right after the last review, and pooled over all
        # reviews, giants then and giants still SMEs at the next one (their survival)
        self.giants_after_review = 0
        self.giants_reviewed = 0
        self.giants_surviving = 0
        self.debt = 0.0  # bonds outstanding (face value), the government's record
        self.household_bonds = 0.0  # the households' holdings (banks' are a bank column)
        self.debt_target_ratio = 0.0  # debt to annual output at month 0, the debt-stabilising rule's target
        self.other_spending = model.other_spending if hasattr(model, "other_spending") else 0.0
        # the month's other spending the fiscal rule adds to the plan (negative: cuts), so a
        # lever's net cost can be scored before the closure answers it (sweep/studies.window_metrics)
        self.closure_spending = 0.0

    # -- spending and recording ------------------------------------------
    def spend(self, lever: str, flow: str, amounts: np.ndarray, support_rows: np.ndarray | None,
              payee: str = "smes") -> float:
        """Pay a lever's support and charge it to that lever's fiscal cost.

        Args:
            lever: Lever key the spending belongs to.
            flow: Flow name for the ledger.
            amounts: Amount per recipient (aligned with ``support_rows``, or
                with all SMEs when ``support_rows`` is None).
            support_rows: The SMEs supported; they are flagged as recipients
                of this lever for the evaluation of lever 25.
            payee: Who receives the cash (an SME, or a supplier sector when
                the government pays a supplier on the SME's behalf).
        """
        model = self.model
        if payee == "smes":
            total = model.ledger.pay(flow, "government", "smes", amounts, payee_rows=support_rows)
        else:
            total = model.ledger.pay(flow, "government", payee, amounts)
        self.fiscal_cost[lever] += total
        self.fiscal_cost_since_evaluation[lever] += total
        bit = SUPPORT_BITS.get(lever)
        if bit is not None:
            flag, bits = np.uint8(1 << bit), model.smes.support_bits
            if support_rows is not None:
                bits[support_rows] |= flag
            else:  # every SME paid something is a recipient
                paid = np.asarray(amounts)
                if paid.ndim == 1 and paid.size == bits.size and paid.dtype == np.float64:
                    _flag_paid_kernel(paid, flag, bits)
                else:
                    bits[np.flatnonzero(paid > 0)] |= flag
        return total

    def fund_equity_value(self) -> float:
        """Book value of the SME development fund's stakes: its share of each firm's book equity."""
        smes = self.model.smes
        # widened first: numpy dots a float32 with a float64 array in buffered chunks, 8x slower
        return float(np.dot(smes.public_equity_share.astype(np.float64), book_equity(self.model))) if smes.size else 0.0

    def start_evaluated_run(self) -> None:
        """After a burn-in: lever 25's record starts afresh (weights at 1, nothing spent or
        scored yet), and the debt-stabilising rule steers towards the ratio of debt to
        annual output the economy has reached, the state the run starts from."""
        model = self.model
        self.budget_weights = {key: 1.0 for key in self.budget_weights}
        self.fiscal_cost_since_evaluation = defaultdict(float)
        self.last_scores = {}
        annual_output = 12.0 * (float(model.smes.sales.sum()) + model.large_firm_revenue)
        self.debt_target_ratio = self.debt / annual_output if annual_output > 0 else 0.0

    def record_tax_expenditure(self, lever: str, amount: float) -> None:
        """Charge revenue forgone (or a quasi-fiscal subsidy) to a lever."""
        self.fiscal_cost[lever] += amount
        self.fiscal_cost_since_evaluation[lever] += amount

    def close_month(self) -> None:
        """Other spending (public wages, transfers): its planned level, or under the
        debt-stabilising rule that level less ``debt_feedback`` a year of the debt above
        the month-0 ratio of debt to annual output (a Bohn 1998 fiscal reaction: the primary
        balance rises with debt, which keeps debt to output stationary when the feedback
        exceeds the interest rate less growth).

        During a burn-in the rule is not applied: its target would be the set-up's hand-made
        debt ratio, and steering towards it would run the whole burn-in with other spending
        cut (by a quarter at a feedback of 0.3) and release the cut at month 0, when the
        target moves to the ratio reached (:meth:`start_evaluated_run`), so the evaluated run
        would start out of its own steady state. As the reference user cost follows the
        economy's own during a burn-in, the debt target is the ratio the burn-in reaches."""
        model = self.model
        rule = model.config.government
        plan = model.other_spending * model.wage / model.config.economy.wage  # plans follow pay
        spending = plan
        if rule.fiscal_rule == "debt_stabilising" and not model.burning_in:
            annual_output = 12.0 * (float(model.smes.sales.sum()) + model.large_firm_revenue)
            gap = self.debt - self.debt_target_ratio * annual_output
            spending = max(plan - rule.debt_feedback / 12.0 * gap, 0.0)
        self.other_spending = spending
        self.closure_spending = spending - plan
        model.ledger.pay("government_other_spending", "government", "households", spending)

    def budget_neutral_levy(self) -> float:
        """Under the budget-neutral closure, the month's gross cost of all levers (spending
        and revenue forgone), charged to households as a lump-sum tax; zero otherwise."""
        if self.model.config.government.fiscal_rule != "budget_neutral":
            return 0.0
        return max(math.fsum(self.fiscal_cost.values()), 0.0)


@njit
def _flag_paid_kernel(amounts, bit, support_bits):  # pragma: no cover - compiled
    """Flag every SME paid a positive amount as a recipient, in one pass over all SMEs.
    It replaces selecting the recipients and setting their bit through the selection
    (a third of the firms get the R&D subsidy every month); the numpy it replaced::

        support_bits[flatnonzero(amounts > 0)] |= bit
    """
    for i in range(amounts.size):
        support_bits[i] = support_bits[i] | (bit if amounts[i] > 0 else np.uint8(0))


# ---------------------------------------------------------------------------
# Lever 25's randomised pilots


def evaluation_interval(model: "SMEEconomy") -> int:
    """Months between lever 25's evaluations (at least 1)."""
    return max(int(round(model.policy.p25_decision_support.evaluation_interval_months)), 1)


def pilot_control(model: "SMEEconomy", key: str) -> np.ndarray:
    """Which SMEs programme ``key`` holds back this evaluation period (lever 25's pilot).

    In each evaluation period a random ``p25.control_share`` of firms is the control group
    of each piloted programme: the programme does not serve them until the next period,
    so the firms it serves first and those it has not yet served differ only by chance.
    The draw is a hash of the firm id, the period, the programme and ``model.pilot_key``
    (from the seed the economy was built with, kept in saved states): the same firm stays
    in its group for the whole period, and the draw uses none of the model's random streams. All False when no pilot runs (lever 25 off).
    """
    smes = model.smes
    share = float(model.policy.p25_decision_support.control_share)
    held = np.zeros(smes.size, dtype=bool)
    if share <= 0.0 or key not in PILOTED or smes.size == 0:
        return held
    period = model.month // evaluation_interval(model)
    key_hash = _mix64((int(model.pilot_key) & _MASK64) ^ _mix64(period * 64 + SUPPORT_BITS[key] + 1))
    _control_arm_kernel(smes.firm_id, np.uint64(key_hash), share, held)
    return held


def _mix64(x: int) -> int:
    """splitmix64's finaliser on Python ints (the same arithmetic as :func:`_control_arm_kernel`)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@njit
def _control_arm_kernel(firm_id, key, share, held):  # pragma: no cover - compiled
    """``held[i] = uniform(hash(firm_id[i], key)) < share``, with splitmix64's finaliser
    (``uint64`` arithmetic wraps) and the top 53 bits as the uniform."""
    for i in range(firm_id.size):
        x = np.uint64(firm_id[i]) ^ key
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
        held[i] = float(x >> np.uint64(11)) * (1.0 / 9007199254740992.0) < share


# ---------------------------------------------------------------------------
# Phase 1


def set_policy(model: "SMEEconomy") -> None:
    """Apply the levers in force this month, and reset the month's fiscal record."""
    government = model.government
    government.fiscal_cost = defaultdict(float)
    model.policy.update(model.month, government.budget_weights)
    model.central_bank.set_rates()
    model.rd_intensity = model.config.economy.rd_intensity * np.sqrt(
        model.policy.p22_ip_protection.appropriability / 0.5
        / max(1.0 - model.policy.p15_innovation.rd_subsidy_rate, 0.05)
    )


# ---------------------------------------------------------------------------
# Support programmes (after production)


def true_distress(model: "SMEEconomy") -> np.ndarray:
    """Distress score: negative profit margin plus the share of a month's costs not covered by cash."""
    smes = model.smes
    out = np.empty(smes.size)
    _true_distress_kernel(smes.profit, smes.sales, smes.cash, smes.costs, out)
    return out


@njit
def _true_distress_kernel(profit, sales, cash, costs, out):  # pragma: no cover - compiled
    """:func:`true_distress` in one pass, as the numpy it replaced (see :mod:`sme_abm.kernels`)::

        margin = divide(profit, sales, out=full(n, -1.0), where=sales > 0)
        liquidity = 1.0 - minimum(divide(cash, costs, out=ones(n), where=costs > 0), 1.0)
        distress = -clip(margin, -1.0, 1.0) + liquidity
    """
    for i in range(profit.size):
        margin = profit[i] / sales[i]
        margin = margin if sales[i] > 0 else -1.0
        cover = cash[i] / costs[i]
        cover = cover if costs[i] > 0 else 1.0
        out[i] = -clip(margin, -1.0, 1.0) + (1.0 - minimum(cover, 1.0))


def observed_distress(model: "SMEEconomy", distress: np.ndarray) -> np.ndarray:
    """The government's noisy view of each firm's distress (lever 3 sets the noise)."""
    smes = model.smes
    noise = model.policy.p03_statistical_monitoring.distress_observation_noise
    scale = float(distress.std()) or 1.0
    observed = standard_normal(model.rng, smes.size)
    np.multiply(observed, noise * scale, out=observed)  # distress + noise * scale * draws, in their buffer
    return np.add(distress, observed, out=observed)


def _top(scores: np.ndarray, eligible: np.ndarray, count: int) -> np.ndarray:
    return _top_of(scores, np.flatnonzero(eligible), count)


def _top_of(scores: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` rows among ``rows`` (ascending) with the highest scores, sorted.

    What ``np.sort(rows[np.argpartition(-scores[rows], count - 1)[:count]])`` gives.
    When no tie straddles the cut, that is every row scoring at least the
    ``count``-th highest score, found by :func:`~sme_abm.kernels.order_statistics`
    (about a fifth of the time of ``argpartition`` at 10^5 rows); when one does
    (which of the tied rows ``argpartition`` keeps depends on its algorithm), or a
    score is NaN, ``argpartition`` picks as before.
    """
    count = min(count, rows.size)
    if count <= 0:
        return rows[:0]
    picked = scores[rows]
    if picked.dtype == np.float64 and picked.ndim == 1:
        cut = order_statistics(picked, [picked.size - count])[0]
        chosen = np.flatnonzero(picked >= cut)  # NaN scores are never chosen here (and so fall back)
        if chosen.size == count:
            return np.sort(rows[chosen])
    pick = np.argpartition(-picked, count - 1)[:count]
    return np.sort(rows[pick])


def pay_support(model: "SMEEconomy") -> None:
    """Grants and fund equity (lever 6), little giants (16) and shock relief (23). Grants,
    equity deals and relief open cases that the administration pays when it processes them
    (lever 24, :mod:`.administration`); little giants' standing grants are paid now."""
    smes, p, government = model.smes, model.policy, model.government
    scale = smes.size / 10_000.0
    truth = true_distress(model)
    distress = observed_distress(model, truth)

    # Lever 6: special-fund grants to firms seen as distressed but viable
    budget = p.p06_fiscal_funds.grant_budget * scale
    n_grants = int(budget // GRANT_SIZE)
    fund_held = None  # lever 6's pilot control group, drawn once for grants and equity alike
    if n_grants:
        n_sectors = len(model.sector_names)
        log_a = np.log(smes.productivity)
        sums, counts = np.zeros(n_sectors), np.zeros(n_sectors, dtype=np.int64)
        group_sums(smes.sector, log_a, sums, counts)
        sector_mean = sums / np.maximum(counts, 1)
        viable = np.empty(smes.size, dtype=bool)
        _viable_kernel(log_a, smes.sector, sector_mean, viable)
        fund_held = pilot_control(model, "p06_fiscal_funds")
        viable_rows = np.flatnonzero(viable & ~fund_held)
        rows = _top_of(distress, viable_rows, n_grants)
        truly_neediest = _top_of(truth, viable_rows, n_grants)
        # the share of grantees among the truly neediest (what np.isin(rows, truly_neediest).mean() gives)
        neediest = np.zeros(smes.size, dtype=bool)
        neediest[truly_neediest] = True
        model.step_stats["grant_targeting_accuracy"] = float(neediest[rows].mean()) if rows.size else np.nan
        open_cases(model, "special_fund_grants", GRANT_SIZE, rows)

    # Lever 6: the fund of funds takes equity in fast-growing small and medium firms
    budget = p.p06_fiscal_funds.fund_equity_budget * scale
    n_deals = int(budget // EQUITY_TICKET) + int(model.rng.random() < (budget % EQUITY_TICKET) / EQUITY_TICKET)
    if n_deals:
        growth = np.log((smes.sales + 1e-3) / (smes.sales_at_evaluation + 1e-3))
        score, eligible = np.empty(smes.size), np.empty(smes.size, dtype=bool)
        _fund_equity_kernel(growth, smes.innovative, smes.size_class, smes.profit, score, eligible)
        if fund_held is None:
            fund_held = pilot_control(model, "p06_fiscal_funds")
        eligible &= ~fund_held & ~pending(model, "fund_equity")
        open_cases(model, "fund_equity", EQUITY_TICKET, _top(score, eligible, n_deals))

    # Lever 16: review and certify little giants once a year; pay their monthly grant
    # (lever 25's pilot holds back both from its control group)
    held = pilot_control(model, "p16_little_giants")
    if model.month % 12 == 11:
        review_little_giants(model, held)
    giants = np.flatnonzero(smes.little_giant & ~held)
    government.spend("p16_little_giants", "little_giant_grants",
                     np.full(giants.size, p.p16_little_giants.support_grant / 12.0), giants)

    # Lever 23: relief for shock-hit firms the government sees (lever 3 sets what it sees).
    # A firm's relief is one case per shock (lever 24): once the administration has approved
    # it, the firm is paid each month while the shock lasts; until then its case waits.
    replacement = p.p23_emergency_relief.relief_replacement_rate
    smes.relief_approved &= smes.shock_hit
    if replacement > 0 and smes.shock_hit.any():
        noise = p.p03_statistical_monitoring.distress_observation_noise
        miss = 0.5 * (1.0 - np.exp(-noise))
        seen = smes.shock_hit & (uniform(model.rng, smes.size) >= miss)
        served = smes.shock_hit & ~pilot_control(model, "p23_emergency_relief")
        approved = np.flatnonzero(served & smes.relief_approved)
        government.spend("p23_emergency_relief", "shock_relief", replacement * smes.lost_revenue[approved], approved)
        applying = np.flatnonzero(served & seen & ~smes.relief_approved & ~pending(model, "shock_relief"))
        open_cases(model, "shock_relief", replacement * smes.lost_revenue[applying], applying)


def review_little_giants(model: "SMEEconomy", held: np.ndarray) -> None:
    """Lever 16's yearly review: certifications lapse, and new little giants are certified.

    The certification flow is set so that the stock of giants right after a review is
    ``giant_share`` of the SMEs (the source's stock share) in steady state. At a review each
    giant keeps its status with probability ``1 - 1 / status_years`` (certificates are
    re-reviewed, so status lasts ``status_years`` on average) and giants that grew large
    lose it. Between reviews a share of giants leaves the SME population (exit, listing,
    growth into a large firm): ``survival``, measured from the run itself (giants kept
    since the last review over giants then, pooled over all reviews so far; 1 before the
    first). The stock after a review is then ``S = survival * (1 - 1/status_years) * S + F``,
    and ``F = giant_share * SMEs * (1 - survival * (1 - 1/status_years))`` keeps it at
    ``giant_share * SMEs``.
    """
    smes, lever, government, rng = model.smes, model.policy.p16_little_giants, model.government, model.rng
    is_sme = smes.size_class <= MEDIUM
    giants = np.flatnonzero(smes.little_giant)
    kept = giants[is_sme[giants]]  # giants that left (exits, listings) are no longer in the arrays
    government.giants_reviewed += government.giants_after_review
    government.giants_surviving += kept.size
    survival = government.giants_surviving / government.giants_reviewed if government.giants_reviewed > 0 else 1.0
    keep_share = 1.0 - 1.0 / max(lever.status_years, 1.0)
    smes.little_giant[giants] = False
    smes.little_giant[kept[rng.random(kept.size) < keep_share]] = True
    expected = lever.giant_share * np.count_nonzero(is_sme) * (1.0 - survival * keep_share)
    count = int(expected) + int(rng.random() < expected - int(expected))
    candidates = smes.innovative & ~smes.little_giant & (smes.size_class >= SMALL) & is_sme & ~held
    rows = _top(np.log(smes.productivity) + 0.1 * np.log1p(smes.sales), candidates, count)
    smes.little_giant[rows] = True
    smes.demand_weight[rows] *= 1.0 + lever.demand_boost
    government.giants_after_review = int(np.count_nonzero(smes.little_giant))


@njit
def _viable_kernel(log_a, sector, sector_mean, viable):  # pragma: no cover - compiled
    """Firms at least as productive as their sector's mean, without the gathered temporary;
    the numpy it replaced: ``viable = log_a >= sector_mean[sector]``."""
    for i in range(log_a.size):
        viable[i] = log_a[i] >= sector_mean[sector[i]]


@njit
def _fund_equity_kernel(growth, innovative, size_class, profit, score, eligible):  # pragma: no cover - compiled
    """The fund of funds' ranking score and eligibility in one pass; the numpy it replaced::

        score = growth + 0.5 * innovative
        eligible = (size_class >= SMALL) & (size_class <= 2) & (profit > 0)
    """
    for i in range(growth.size):
        score[i] = growth[i] + 0.5 * (1.0 if innovative[i] else 0.0)
        eligible[i] = (size_class[i] >= SMALL) & (size_class[i] <= 2) & (profit[i] > 0)


def evaluate_policies(model: "SMEEconomy") -> None:
    """Lever 25: score each piloted programme on its randomised pilot and move money
    towards the programmes with a demonstrated effect per yuan.

    Each programme's score is the lower 95% bound of its effect on log sales growth over
    the period, pilot group (served first) against control group (held back; see
    :func:`pilot_control`), over all firms alive at both ends, times 12 months of the pilot
    group's sales, per CNY of the programme's spending: the assignment is random, so no
    selection on the outcome enters the comparison, and an effect that noise could produce
    scores 0. ``reallocation_share`` of the evaluated programmes' spending is then split in
    proportion to the scores; the weights are set so that, at the period's spending per
    unit of weight, each programme's budget is its new share and the total in CNY is
    unchanged. Nothing moves when no programme scores above 0.
    """
    p, government, smes = model.policy, model.government, model.smes
    interval = evaluation_interval(model)
    if model.month % interval != interval - 1:
        return
    share = p.p25_decision_support.reallocation_share
    growth = np.log((smes.sales + 1e-3) / (smes.sales_at_evaluation + 1e-3))
    arms: dict[str, np.ndarray] = {}
    costs: dict[str, float] = {}
    for key in PILOTED:
        cost = government.fiscal_cost_since_evaluation.get(key, 0.0)
        held = pilot_control(model, key)
        n_control = int(np.count_nonzero(held))
        # too little spending to score per yuan (the guard against dividing by ~0), or no pilot
        if not cost > MIN_EVALUATED_COST or n_control < 2 or held.size - n_control < 2:
            continue
        arms[key], costs[key] = held, cost
    z = _normal_quantile(1.0 - EVALUATION_ERROR_RATE / (2.0 * max(len(arms), 1)))
    scores: dict[str, float] = {}
    for key, held in arms.items():
        control, pilot = growth[held], growth[~held]
        effect = pilot.mean() - control.mean()
        se = math.sqrt(pilot.var(ddof=1) / pilot.size + control.var(ddof=1) / control.size)
        gain = max(effect - z * se, 0.0) * 12.0 * float(smes.sales[~held].sum())
        scores[key] = gain / costs[key]
    government.last_scores = scores
    government.budget_weights.update(reallocate(government.budget_weights, costs, scores, share))
    smes.support_bits[:] = 0
    smes.sales_at_evaluation = smes.sales.copy()
    government.fiscal_cost_since_evaluation = defaultdict(float)


def reallocate(weights: dict[str, float], costs: dict[str, float], scores: dict[str, float],
               share: float) -> dict[str, float]:
    """New budget weights of the evaluated programmes, moving money only.

    ``share`` of the evaluated programmes' money is pooled and split in proportion to the
    scores; the rest stays where it is. Budgets move gradually: no programme's money grows
    by more than ``share`` of itself at one evaluation (what a capped programme cannot take
    goes back to the others in proportion to their money), so one lucky score cannot pour
    the pool into a small programme. Each weight scales with its programme's budget at the
    period's spending per unit of weight, so the total budget is the period's spending.

    Args:
        weights: Current budget weights by programme.
        costs: Each evaluated programme's spending over the period (CNY m, > 0).
        scores: Each evaluated programme's score (CNY of sales a year per CNY, >= 0).
        share: Share of the evaluated programmes' money reallocated by score.

    Returns:
        The evaluated programmes' new weights (empty when no score is above 0).
    """
    keys = list(costs)
    positive = np.array([max(scores.get(key, 0.0), 0.0) for key in keys])
    if share <= 0 or not keys or positive.sum() <= 0:
        return {}
    cost = np.array([costs[key] for key in keys])
    total = math.fsum(cost)
    budget = (1.0 - share) * cost + share * total * positive / positive.sum()
    cap = (1.0 + share) * cost
    for _ in range(len(keys)):  # water-filling: each pass caps at least one more programme
        capped = budget >= cap
        excess = float((budget - cap)[capped].sum())
        if excess <= 0:
            break
        budget = np.where(capped, cap, budget)
        free = ~capped
        budget[free] += excess * cost[free] / cost[free].sum()
    budget *= total / budget.sum()  # rounding only: the total in CNY is the period's spending
    return {key: float(weights.get(key, 1.0) * b / c) for key, b, c in zip(keys, budget, cost)}


def _normal_quantile(p: float) -> float:
    """The standard normal quantile (inverse CDF) at ``p``, by bisection on ``math.erf``."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = 0.5 * (low + high)
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
