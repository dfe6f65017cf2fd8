"""SMEs: column-wise state, the Mesa agent that reads its row, and the SME
phases of a step (production, investment, innovation).

All SME behaviour is whole-population array code; there is no Python loop
over SMEs. Every phase here updates all SMEs at once (synchronously).
"""

from __future__ import annotations

import weakref

from typing import TYPE_CHECKING

import mesa
import numpy as np

from ..kernels import bincount_sums, group_sums, inline, maximum, minimum, njit, standard_normal, take, uniform
from .columns import ColumnStore, add_row_properties

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

MICRO, SMALL, MEDIUM, LARGE = 0, 1, 2, 3
#: MIIT 2011 thresholds on annual sales (CNY m): micro below the first, medium from the second
#: (with 300 workers), large from the third (or 1,000 workers). Module constants, so the set-up's
#: classification and the production kernel's read the same numbers.
MICRO_SALES, MEDIUM_SALES, LARGE_SALES = 3.0, 20.0, 400.0
SIZE_CLASSES = ("micro", "small", "medium", "large")

#: Column name -> dtype. Money in CNY m, time in months.
SME_SCHEMA: dict[str, object] = {
    "firm_id": np.int64,
    "sector": np.int8,
    "size_class": np.int8,
    "age": np.int32,
    "bank": np.int16,
    "guarantor": np.int16,
    "productivity": np.float64,
    "price": np.float64,
    "risk_type": np.float32,
    "demand_weight": np.float64,
    "customer_gap": np.float32,  # log points between the mature customer base and the current one
    "capital": np.float64,
    "cash": np.float64,
    "debt": np.float64,
    "guaranteed": np.float64,
    "guarantee_fee_rate": np.float32,  # annual fee on the guaranteed debt (risk-based, lever 13)
    "loan_rate": np.float64,
    "receivables": np.float64,
    "ip_stock": np.float64,
    "employment": np.float64,
    "demand": np.float64,
    "sales": np.float64,
    "costs": np.float64,
    "sga": np.float64,  # selling, general and administrative expenses a month (sticky, 7.4a)
    "profit": np.float64,
    "sales_at_evaluation": np.float64,
    "equity_raised": np.float64,
    "public_equity_share": np.float32,  # share of the firm the SME development fund owns (lever 6)
    "venture_equity_share": np.float32,  # share venture funds own (lever 12)
    "lost_revenue": np.float64,
    "receivable_writeoff": np.float64,
    "loss_months": np.int16,
    "overdraft_months": np.int16,
    "credit_wait": np.int8,
    "support_bits": np.uint8,
    "innovative": np.bool_,
    "digital": np.bool_,
    "trained": np.bool_,
    "exporter": np.bool_,
    "little_giant": np.bool_,
    "has_borrowed": np.bool_,
    "shock_hit": np.bool_,
    "shut_down": np.bool_,
    "relief_approved": np.bool_,  # lever 23: relief approved for the current shock (lever 24 processed it)
    "high_growth": np.bool_,  # in a high-growth phase: its market keeps widening (7.6)
}

#: Bits of ``support_bits``: which budget levers supported a firm since the last evaluation.
SUPPORT_BITS = {"p06_fiscal_funds": 0, "p14_entrepreneurship": 1, "p15_innovation": 2,
                "p16_little_giants": 3, "p17_digital_adoption": 4, "p19_management_training": 5,
                "p23_emergency_relief": 6}


class SMEPopulation(ColumnStore):
    """All SMEs' state, one numpy array per attribute, plus an id-to-row index.

    Rows are compacted when firms exit, so a firm's row can change;
    ``row_of_id`` maps each firm id to its current row (-1 once it has exited).
    """

    def __init__(self, size: int = 0, with_agents: bool = False) -> None:
        super().__init__(SME_SCHEMA, size)
        if with_agents:
            # Each row's Mesa agent, moved with its row on exit; outside the schema, so
            # tables and panels never see it. 8 bytes a row instead of a dict entry per firm.
            self._buffers["agent"] = np.full(self.allocated_rows(), None, dtype=object)
        self.row_of_id = np.full(0, -1, dtype=np.int32)  # rows fit in 32 bits; one entry per firm ever
        self.next_id = 0

    def add_firms(self, values: dict, count: int) -> np.ndarray:
        """Append ``count`` new firms with fresh ids; returns their rows."""
        ids = np.arange(self.next_id, self.next_id + count, dtype=np.int64)
        self.next_id += count
        rows = self.append({**values, "firm_id": ids}, count)
        grow = self.next_id - self.row_of_id.size
        if grow > 0:
            self.row_of_id = np.concatenate([self.row_of_id, np.full(max(grow, self.row_of_id.size // 2), -1, dtype=np.int32)])
        self.row_of_id[ids] = rows
        return rows

    def remove_firms(self, leaving: np.ndarray) -> None:
        """Drop the firms flagged in the boolean mask ``leaving`` (rows from the
        end move into their places, so other firms' rows can change)."""
        self.row_of_id[self.firm_id[leaving]] = -1
        holes, _ = self.remove_rows(leaving)
        self.row_of_id[self.firm_id[holes]] = holes

    def row_of(self, firm_id: int) -> int:
        row = int(self.row_of_id[firm_id]) if firm_id < self.row_of_id.size else -1
        if row < 0:
            raise LookupError(f"SME {firm_id} has exited")
        return row

    # -- derived quantities ------------------------------------------------
    def classify_size(self) -> None:
        """MIIT 2011 industry thresholds on annualised sales and employment."""
        annual_sales = 12.0 * self.sales
        emp = self.employment
        size = np.full(self.size, SMALL, dtype=np.int8)
        size[(emp < 20) | (annual_sales < MICRO_SALES)] = MICRO
        size[(emp >= 300) & (annual_sales >= MEDIUM_SALES)] = MEDIUM
        size[(emp >= 1000) | (annual_sales >= LARGE_SALES)] = LARGE
        self.size_class = size

    def small_or_micro(self) -> np.ndarray:
        return self.size_class <= SMALL


class SME(mesa.Agent):
    """One SME. Its state is its row in :class:`SMEPopulation`; every column
    is readable and writable as an attribute (``sme.cash``, ``sme.debt``...).

    Args:
        model: The economy.
        firm_id: The firm's id in the population arrays.
    """

    def __init__(self, model: "SMEEconomy", firm_id: int) -> None:
        super().__init__(model)
        self.firm_id = int(firm_id)

    # The agents live in an object column of the population (a numpy array, which
    # Python's garbage collector cannot look into), so an agent holding its model
    # strongly makes a cycle the collector never sees: every model ever built stayed
    # in memory (a dashboard session's 10,000-SME model, each run of a sweep worker).
    # The agent therefore refers to its model weakly; the model owns its agents.
    @property  # type: ignore[override]
    def model(self) -> "SMEEconomy":
        return self._model_ref()  # type: ignore[return-value]

    @model.setter
    def model(self, value: "SMEEconomy") -> None:
        self._model_ref = weakref.ref(value)

    @property
    def _store(self) -> SMEPopulation:
        # read through the model rather than kept per agent: a million SMEs, one pointer fewer each
        return self.model.smes

    @property
    def row(self) -> int:
        """This firm's current row in the population arrays."""
        return self._store.row_of(self.firm_id)

    @property
    def size_name(self) -> str:
        return SIZE_CLASSES[self.size_class]

    @property
    def sector_name(self) -> str:
        return self.model.sector_names[self.sector]


add_row_properties(SME, [c for c in SME_SCHEMA if c != "firm_id"])


# ---------------------------------------------------------------------------
# Phase 2: prices (all SMEs at once, before demand is allocated)


def unit_cost(model: "SMEEconomy") -> np.ndarray:
    """Variable cost of one unit of output of every SME (:func:`unit_variable_cost`)."""
    return unit_variable_cost(model, model.smes.sector, model.smes.productivity)


def unit_variable_cost(model: "SMEEconomy", sector: np.ndarray, productivity: np.ndarray) -> np.ndarray:
    """Variable cost of one unit of output (at prices of 1 at month 0) for firms of ``sector``
    and ``productivity``: bought-in inputs plus the wages of the workers it takes, compliance
    time included (lever 5)."""
    compliance = model.policy.p05_fair_supervision.compliance_time_share
    labour = 12.0 * model.wage / (model.revenue_per_worker[sector] * productivity)
    return inputs_per_unit(model, sector, productivity) + labour / (1.0 - compliance)  # as _price_kernel's floor


def inputs_per_unit(model: "SMEEconomy", sector: np.ndarray, productivity: np.ndarray) -> np.ndarray:
    """Bought-in inputs one unit of output takes (at month-0 prices): the sector's materials
    share, divided by the firm's productivity when productivity is total factor productivity
    (``economy.productivity_saves_inputs``)."""
    if model.config.economy.productivity_saves_inputs:
        return model.materials_share[sector] / productivity
    return model.materials_share[sector]


def normal_markups(config) -> np.ndarray:
    """Per sector, the markup over unit variable cost that the cost calibration implies
    (``markets.pricing = "markup"``): the one at which a firm of productivity 1 at the month-0
    wage would price at 1 if none of its time went to compliance. Compliance time (lever 5)
    is left out so that the markup, a constant of the economy, does not depend on a lever's
    setting; with lever 5's 2.5% such a firm prices about 0.4% above 1."""
    econ = config.economy
    unit = np.asarray(econ.materials_share) + 12.0 * econ.wage / np.asarray(econ.revenue_per_worker)
    return 1.0 / unit - 1.0


def set_prices(model: "SMEEconomy") -> None:
    """Every SME reviews its price on last month's market, by the rule of the CATS model
    (Assenza, Delli Gatti and Grazzini 2015, JEDC 50, Section 2.3; ABCredit.jl's
    ``firm_decides_price_quantity!``), with capacity in place of inventories: a firm whose
    demand exceeded its capacity raises its price by a random share up to
    ``markets.price_adjustment`` if it is cheaper than its sector's average, and a firm
    with spare capacity (utilisation under ``markets.normal_utilisation``) cuts it likewise
    if it is dearer; otherwise it adjusts quantity only. No firm prices below its unit
    variable cost. Under ``markets.pricing = "markup"`` (the baseline) a firm resets to its
    sector's markup over its own unit cost at Calvo dates instead, and with
    ``markets.scarcity_pricing`` it also takes a scarcity premium while its capacity falls
    short and gives it back once capacity is idle (docs/model.md 7.3a). "Its market's price"
    is that of the goods it competes with: its sector's SME price index and large firms'
    price, weighted by SMEs' share of household spending (:func:`market_price`); so SMEs'
    prices are anchored by large firms' as well as by each other's. Then the sector price
    indices (demand-weighted means) are updated."""
    smes, markets = model.smes, model.config.markets
    draws = uniform(model.rng, smes.size)
    n_sectors = len(model.sector_names)
    weights, valued = np.zeros(n_sectors), np.zeros(n_sectors)
    compliance = float(model.policy.p05_fair_supervision.compliance_time_share)
    index_exponent = 1.0 - float(markets.price_elasticity) if markets.price_index == "ces" else 1.0
    _price_kernel(smes.price, smes.demand, smes.capital, smes.sector, smes.productivity, smes.demand_weight,
                  np.asarray(model.capital_output_ratio, dtype=float), market_price(model),
                  np.asarray(model.materials_share, dtype=float), np.asarray(model.revenue_per_worker, dtype=float),
                  float(12.0 * model.wage), 1.0 - compliance, draws, float(markets.price_adjustment),
                  float(markets.normal_utilisation), markets.pricing == "markup", model.normal_markup,
                  float(markets.price_reset_probability), float(markets.scarcity_pricing),
                  bool(model.config.economy.productivity_saves_inputs), index_exponent, weights, valued)
    # the sector price indices (customer-base weighted power means), summed in the kernel in row order
    mean = np.divide(valued, weights, out=np.ones(n_sectors), where=weights > 0)
    model.sector_price = mean if index_exponent == 1.0 else mean ** (1.0 / index_exponent)


def market_price(model: "SMEEconomy") -> np.ndarray:
    """Per sector, the price of the goods an SME competes with: the sector's SME price index
    and large firms' price, weighted by SMEs' share of household spending."""
    share = model.config.households.sme_consumption_share * (1.0 - model.policy.p02_fair_competition.large_firm_demand_bias)
    return share * np.asarray(model.sector_price, dtype=float) + (1.0 - share) * model.large_firm_price


@njit
def _price_kernel(price, demand, capital, sector, productivity, demand_weight, capital_output_ratio, reference,
                  materials_share, revenue_per_worker, annual_wage, productive_time, draws, adjustment,
                  normal_utilisation, markup_pricing, markup, reset_probability, scarcity, saves_inputs,
                  index_exponent, weights, valued):  # pragma: no cover - compiled
    """The price rule of :func:`set_prices`, one firm at a time (no firm's price depends on
    another's this month), with the unit variable cost :func:`unit_cost` written out::

        floor = inputs + annual_wage / (revenue_per_worker[sector] * productivity) / productive_time

    (``inputs`` the materials share, over productivity if ``saves_inputs``). The CATS rule
    keeps ``max(price, floor)``; with ``markup_pricing`` a firm whose draw is below
    ``reset_probability`` sets ``(1 + markup[sector]) * floor`` and the others keep their
    price; with ``scarcity`` above 0 a firm whose demand exceeded its capacity then raises
    that price by ``scarcity`` times a uniform share, and a firm under ``normal_utilisation``
    priced above its normal price cuts it by as much, not below the normal price: the same
    draw, rescaled to [0, 1) within the reset or the keep branch, so the option draws nothing
    more. Then the sector sums of the price index, ``bincount(sector, demand_weight)`` and
    ``bincount(sector, demand_weight * price ** index_exponent)``, in row order as bincount
    adds them (``index_exponent`` 1 for the arithmetic mean, 1 - sigma for the CES index)."""
    ratio, average = take(capital_output_ratio, sector), take(reference, sector)
    inputs, per_worker = take(materials_share, sector), take(revenue_per_worker, sector)
    for i in range(price.size):
        p = price[i]
        material = inputs[i] / productivity[i] if saves_inputs else inputs[i]
        floor = material + annual_wage / (per_worker[i] * productivity[i]) / productive_time
        if markup_pricing:
            # Calvo: a firm resets to its normal price with the month's probability
            reset = draws[i] < reset_probability
            normal = (1.0 + markup[sector[i]]) * floor
            p = normal if reset else p
            if scarcity > 0.0:  # capacity only read when on: the baseline's path does no more work
                capacity = 1.2 * capital[i] / (12.0 * ratio[i])
                wanted = demand[i] / price[i]  # units asked at last month's price
                share = draws[i] / reset_probability if reset else (
                    (draws[i] - reset_probability) / (1.0 - reset_probability))
                if wanted > capacity:
                    p = p * (1.0 + scarcity * share)
                elif (wanted < normal_utilisation * capacity) & (p > normal):
                    p = maximum(p * (1.0 - scarcity * share), normal)  # the premium goes with the shortage
            price[i] = p
            continue
        capacity = 1.2 * capital[i] / (12.0 * ratio[i])
        wanted = demand[i] / p
        step = adjustment * draws[i]
        raised = p * (1.0 + step)
        cut = p * (1.0 - step)
        p = raised if (wanted > capacity) & (p < average[i]) else p
        p = cut if (wanted < normal_utilisation * capacity) & (p > average[i]) else p
        price[i] = maximum(p, floor)
    for i in range(price.size):
        weights[sector[i]] += demand_weight[i]
        valued[sector[i]] += demand_weight[i] * (price[i] if index_exponent == 1.0 else price[i] ** index_exponent)


# ---------------------------------------------------------------------------
# Phase 3: production, costs, taxes (all SMEs at once)


def monthly_capacity(model: "SMEEconomy") -> np.ndarray:
    """Sales (at its price) a firm can serve this month with its capital."""
    smes = model.smes
    kappa = model.capital_output_ratio[smes.sector]
    return smes.price * 1.2 * smes.capital / (12.0 * kappa)


_PRODUCE_OUTPUTS = ("wages", "materials", "compliance", "fees", "interest", "guarantee_fees", "rd", "rd_subsidy",
                    "vat", "taxable", "cit", "overhead")


@njit
def _produce_kernel(sales, price, sector, productivity, revenue_per_worker, materials_share, loan_rate, debt, guaranteed,
                    guarantee_fee_rate, innovative, receivable_writeoff, capital, loss_months, customer_gap, employment,
                    size_class, wage, compliance_share, admin_fee_share, exemption, rd_intensity,
                    depreciation_rate, rd_subsidy_rate, vat_small_micro, vat_rate, cit_small_micro, cit_standard,
                    overhead, sga, sga_share, sga_up, sga_down, outside_option, wages, materials, compliance, fees, interest,
                    guarantee_fees, rd, rd_subsidy, vat, taxable, cit, overheads, profit, costs,
                    saves_inputs, sees_costs_adjust, capital_output_ratio,
                    threshold_scale):  # pragma: no cover - compiled
    """Every SME's production accounts in one pass, with the same operations in the
    same order as the numpy expressions it replaced (see :mod:`sme_abm.kernels`), e.g.
    ``cash_costs = wages + materials + compliance + fees + interest + guarantee_fees + rd + overheads``,
    with ``overheads = overhead + sga`` (the fixed cost and the month's sticky SG&A, which then
    move towards ``sga_share * sales`` at ``sga_up`` or ``sga_down``, docs/model.md 7.4a),
    ``pretax = sales - cash_costs - depreciation - vat + rd_subsidy - receivable_writeoff``.

    Sets employment, size class (MIIT thresholds, as :meth:`SMEPopulation.classify_size`, the sales
    thresholds times ``threshold_scale``, :meth:`SMEEconomy.size_threshold_scale`),
    profit, costs, depreciated capital and months of losses; fills the flow arrays.

    A month counts towards closure when the firm's profit *with the customers it is still
    winning* falls short of the owner's outside option: the owner expects the customers of
    its remaining gap (``exp(customer_gap) - 1`` times its sales) to bring the gross margin
    (sales less wages and materials) its customers bring now. An owner values the firm going
    forward (Hopenhayn 1992), and a young firm's value lies in the demand it is still
    building (Foster, Haltiwanger and Syverson 2016), so new firms are not closed for being
    young; with no gap this is the month's profit. With ``sees_costs_adjust`` the owner judges
    the month at the costs the firm is adjusting to: SG&A at the level the month's sales will
    bring them to (``sga_share * sales``), not at the sticky level it still carries, and
    depreciation only on the capital those sales need (at the accelerator's 1/1.1
    utilisation), since capital beyond it is sunk and is shed by not replacing it.
    """
    for i in range(sales.size):
        s = sales[i]
        k = sector[i]
        q = s / price[i]  # output in units (month-0 prices)
        # workers to make q, and the compliance staff that make nothing (lever 5: red tape is
        # a resource cost, labour time taken from production, not a payment for nothing)
        producing = 12.0 * q / (revenue_per_worker[k] * productivity[i])
        emp = producing / (1.0 - compliance_share)
        emp = emp if s > 0 else 0.0
        employment[i] = emp
        annual = 12.0 * s
        size = MICRO if (emp < 20) | (annual < MICRO_SALES * threshold_scale) else SMALL
        size = MEDIUM if (emp >= 300) & (annual >= MEDIUM_SALES * threshold_scale) else size
        size = LARGE if (emp >= 1000) | (annual >= LARGE_SALES * threshold_scale) else size
        size_class[i] = size
        small_micro = size <= SMALL
        w = wage * emp
        m = materials_share[k] * q / productivity[i] if saves_inputs else materials_share[k] * q
        c = w * compliance_share  # the wages of compliance time (inside w; reported, not paid twice)
        f = admin_fee_share * s
        f = f * (1.0 - exemption * (1.0 if small_micro else 0.0)) if exemption else f
        r = loan_rate[i] / 12.0 * debt[i]
        g = np.float64(guarantee_fee_rate[i]) / 12.0 * guaranteed[i]
        d = (rd_intensity * s) * (1.0 if innovative[i] else 0.0)
        dep = depreciation_rate * capital[i]
        # depreciation on capital beyond what the month's sales need (the accelerator's target)
        excess_dep = (depreciation_rate * maximum(capital[i] - 12.0 * capital_output_ratio[k] * q / 1.2 * 1.1, 0.0)
                      if sees_costs_adjust else 0.0)
        sub = rd_subsidy_rate * d
        v_small = vat_small_micro * s
        v_other = vat_rate * maximum(s - m, 0.0)
        v = v_small if small_micro else v_other
        oh = overhead + sga[i]
        cc = w + m + f + r + g + d + oh
        pt = s - cc - dep - v + sub - receivable_writeoff[i]
        tx = maximum(pt, 0.0)
        ct = (cit_small_micro if small_micro else cit_standard) * tx
        wages[i] = w
        materials[i] = m
        compliance[i] = c
        fees[i] = f
        interest[i] = r
        guarantee_fees[i] = g
        rd[i] = d
        rd_subsidy[i] = sub
        vat[i] = v
        taxable[i] = tx
        cit[i] = ct
        overheads[i] = oh
        gap = sga_share * s - sga[i]
        excess_sga = -gap if sees_costs_adjust else 0.0
        sga[i] += (sga_up if gap > 0 else sga_down) * gap
        pr = pt - ct
        profit[i] = pr
        costs[i] = cc
        capital[i] -= dep
        prospective = pr + (np.exp(np.float64(customer_gap[i])) - 1.0) * (s - w - m) + excess_sga + excess_dep
        loss_months[i] = loss_months[i] + 1 if prospective < outside_option else 0  # wraps like numpy's int16


def produce(model: "SMEEconomy") -> None:
    """Serve demand up to capacity, hire, pay wages, inputs, interest, fees and taxes.

    Sales and revenue channels were set by :func:`sme_abm.markets.goods.allocate_demand`.
    """
    smes, ledger, p = model.smes, model.ledger, model.policy
    econ = model.config.economy
    gov = model.config.government
    sales = smes.sales
    n = smes.size
    admin_fee_share = gov.admin_fee_share
    exemption = p.p07_tax_relief.fee_exemption_share
    vat_sm = p.p07_tax_relief.small_micro_vat_rate
    cit_standard = gov.cit_rate
    cit_small_micro = p.p07_tax_relief.small_micro_cit_rate
    out = {name: np.empty(n) for name in _PRODUCE_OUTPUTS}
    wages, materials, compliance, fees = out["wages"], out["materials"], out["compliance"], out["fees"]
    interest, guarantee_fees, rd, rd_subsidy = out["interest"], out["guarantee_fees"], out["rd"], out["rd_subsidy"]
    vat, taxable, cit = out["vat"], out["taxable"], out["cit"]
    _produce_kernel(
        sales, smes.price, smes.sector, smes.productivity, np.asarray(model.revenue_per_worker, dtype=float),
        np.asarray(model.materials_share, dtype=float), smes.loan_rate, smes.debt, smes.guaranteed,
        smes.guarantee_fee_rate, smes.innovative,
        smes.receivable_writeoff, smes.capital, smes.loss_months, smes.customer_gap, smes.employment, smes.size_class,
        float(model.wage), float(p.p05_fair_supervision.compliance_time_share), float(admin_fee_share),
        float(exemption), float(model.rd_intensity),
        float(econ.depreciation_rate / 12.0), float(p.p15_innovation.rd_subsidy_rate), float(vat_sm),
        float(gov.vat_rate), float(cit_small_micro), float(cit_standard), float(model.overhead_cost()),
        smes.sga, float(econ.sga_share), float(econ.sga_adjustment_up), float(econ.sga_adjustment_down),
        float(econ.owner_outside_wages * model.wage), wages, materials, compliance, fees, interest, guarantee_fees, rd, rd_subsidy, vat, taxable, cit,
        out["overhead"], smes.profit, smes.costs, bool(econ.productivity_saves_inputs),
        bool(econ.owner_sees_costs_adjust), model.capital_output_ratio, float(model.size_threshold_scale()),
    )
    small_micro = smes.small_or_micro()

    ledger.pay("wages", "smes", "households", wages)
    pay_suppliers(model, materials, out["overhead"] if econ.sga_share > 0 else model.overhead_cost())
    model.step_stats["compliance_wages"] = float(compliance.sum())
    ledger.pay("admin_fees", "smes", "government", fees)
    ledger.pay("rd_spending", "smes", "households", rd)
    model.banks.receive_interest("loan_interest", smes.bank, interest)
    model.guarantors.receive_fees(smes.guarantor, guarantee_fees)

    model.government.spend("p15_innovation", "rd_subsidy", rd_subsidy, support_rows=None)

    # revenue forgone through lever 7 is a scalar per step: no per-firm temporaries needed
    sales_small_micro = float(np.sum(sales, where=small_micro))
    fees_forgone = admin_fee_share * exemption * sales_small_micro

    vat_forgone = (model.vat_levy_standard - vat_sm) * sales_small_micro

    cit_forgone = (cit_standard - cit_small_micro) * float(np.sum(taxable, where=small_micro))
    ledger.pay("vat", "smes", "government", vat)
    ledger.pay("corporate_income_tax", "smes", "government", cit)
    model.government.record_tax_expenditure("p07_tax_relief", fees_forgone + vat_forgone + cit_forgone)
    model.government.tax_paid_small_micro = float(np.sum(vat, where=small_micro) + np.sum(cit, where=small_micro))
    # NBS's profit-and-loss ratios for enterprises (revenue net of VAT; profit before income tax)
    net_revenue = float(sales.sum() - vat.sum())
    expenses = float(out["overhead"].sum() + fees.sum() + rd.sum() + interest.sum() + guarantee_fees.sum())
    model.step_stats["sme_profit_margin"] = float(smes.profit.sum() + cit.sum()) / net_revenue if net_revenue > 0 else 0.0
    model.step_stats["sme_expense_ratio"] = expenses / net_revenue if net_revenue > 0 else 0.0

    model.banks.collect_principal(model)
    model.banks.grant_overdrafts(model)


def pay_suppliers(model: "SMEEconomy", materials: np.ndarray, services: np.ndarray | float) -> None:
    """Pay the month's materials and services (overhead, SG&A): to the SMEs that sold them
    (markets/goods.order_inputs_from_smes), each buyer the same share of its bill, and the
    rest to large firms. Under "proportional" sourcing only materials are bought from SMEs;
    under "proportional_all" services too (docs/model.md 7.3b)."""
    ledger = model.ledger
    sold_to_smes = model.month_inter_sme_sales
    if sold_to_smes is None:
        ledger.pay("materials", "smes", "large_firms", materials)
        ledger.pay("overhead", "smes", "large_firms", services)
        return
    sold = float(sold_to_smes.sum())
    materials_total = float(materials.sum())
    if model.config.markets.sme_input_sourcing == "proportional_all":
        services = np.broadcast_to(np.asarray(services, dtype=np.float64), materials.shape)
        bill = materials_total + float(services.sum())
        share = min(sold / max(bill, 1e-300), 1.0)
        from_smes, services_from_smes = share * materials, share * services
        # the sellers' receipts split between the two flows as the buyers' payments do
        materials_part = share * materials_total / sold if sold > 0 else 0.0
        ledger.transfer_within("materials_from_smes", "smes", from_smes, materials_part * sold_to_smes)
        ledger.transfer_within("services_from_smes", "smes", services_from_smes, (1.0 - materials_part) * sold_to_smes)
        ledger.pay("materials", "smes", "large_firms", materials - from_smes)
        ledger.pay("overhead", "smes", "large_firms", services - services_from_smes)
        return
    share = min(sold / max(materials_total, 1e-300), 1.0)
    from_smes = share * materials
    ledger.transfer_within("materials_from_smes", "smes", from_smes, sold_to_smes)
    ledger.pay("materials", "smes", "large_firms", materials - from_smes)
    # rent, administration and selling services are bought from the large-firm sector
    ledger.pay("overhead", "smes", "large_firms", services)


# ---------------------------------------------------------------------------
# Phase 5: investment, R&D, digital adoption, training


def cash_buffer(model: "SMEEconomy") -> np.ndarray:
    """Cash a firm wants to hold: some months of its cash costs (working capital that
    follows the production plan)."""
    return model.config.economy.cash_buffer_months * model.smes.costs


#: The risk premium over the base rate and markup that the set-up gives every firm's loan
#: rate, per year, and so the set-up's reference user cost (about the expected loss banks
#: price at the set-up's assumed loss given default: risk_premium_share x 0.55 x default
#: probability); a burn-in replaces the reference by the economy's own (normal_user_cost).
TYPICAL_RISK_PREMIUM = 0.01


def reference_user_cost(model: "SMEEconomy") -> float:
    """The user cost of capital at the calibrated set-up (per year): the set-up's loan rate
    (base rate at month 0 under the baseline policy, plus the markup and the typical risk
    premium) plus depreciation, less the inflation the central bank aims at. At this user
    cost desired capital is the accelerator target itself, so the month-0 economy is the one
    calibrated without a cost of capital."""
    cfg = model.config
    cb = cfg.central_bank
    lever = model.registry.by_key("p09_monetary_transmission")
    pass_through = lever.parameters["lpr_pass_through"].default
    base = cb.benchmark_rate + pass_through * (cb.loan_prime_rate - cb.benchmark_rate)
    return base + cfg.banks.markup + TYPICAL_RISK_PREMIUM + cfg.economy.depreciation_rate - cb.inflation_target


def normal_user_cost(model: "SMEEconomy") -> float:
    """The economy's own normal user cost of capital: the one at which the firms' desired
    capital adds up to their accelerator targets,
    ``(sum(a_i u_i^-s) / sum(a_i))^(-1/s)`` with ``a_i`` the accelerator target and ``u_i``
    the user cost of firm ``i`` (:func:`desired_investment`). During the burn-in the
    reference user cost follows it month by month (``SMEEconomy.user_cost_reference``), so
    the burned-in economy keeps the calibrated capacity cushion at the loan rates it
    reaches; from month 0 the reference stays, and changes in the cost of credit move
    desired capital. (The set-up's reference prices a 1% risk premium at the assumed loss
    given default of 0.55; banks that learn the realised loss given default, about 6%,
    charge about a point less, so against the set-up's reference the burned-in firms held
    capital their demand did not need: idle capacity, utilisation 0.90-0.91 against
    main's 0.92-0.93 at 10,000 SMEs, that costs depreciation and interest.)"""
    smes, econ = model.smes, model.config.economy
    elasticity = float(econ.user_cost_elasticity)
    if smes.size == 0 or elasticity <= 0:
        return float(model.user_cost_reference)
    rate = expected_loan_quotes(model) + expected_rate_shift(model)
    user_cost = np.maximum(rate + econ.depreciation_rate - model.central_bank.inflation, econ.user_cost_floor)
    target = np.asarray(model.capital_output_ratio, dtype=float)[smes.sector] * (smes.demand / smes.price)
    if target.sum() <= 0:
        return float(model.user_cost_reference)
    return float((np.sum(target * user_cost ** -elasticity) / target.sum()) ** (-1.0 / elasticity))


def expected_loan_quotes(model: "SMEEconomy") -> np.ndarray:
    """Per firm, the annual rate it expects to pay on more credit: what its bank would charge
    it now (:func:`~sme_abm.markets.credit.loan_rate`: base rate, the bank's markup and the
    premium on the expected loss at the firm's default probability by the banks' scoring
    model, without the noise of their signal, and at most ``banks.max_default_probability``,
    the highest they lend at: a riskier firm is refused, not priced). The marginal rate, not the rate on its
    facility: that blends loans booked long ago (the set-up's facilities at base + markup
    + 1% were still on the books 20 years later with a small balance, so firms kept
    reckoning with rates a point above what banks charge)."""
    from ..markets.credit import default_log_odds, loan_rate, sigmoid

    smes = model.smes
    pd = np.minimum(sigmoid(default_log_odds(model)), model.config.banks.max_default_probability)
    return np.asarray(loan_rate(model, smes.bank, pd), dtype=float)


def expected_rate_shift(model: "SMEEconomy") -> float:
    """How far the loan rate a firm expects to pay over the life of its capital lies from
    today's (per year, added to its rate in the user cost): the LPR's distance from its
    neutral level, ``central_bank.loan_prime_rate``, passed through to SME loans (lever 9),
    is expected to decay at the Taylor rule's smoothing ``rho`` a month, so over an asset
    life of ``H = 12 / depreciation_rate`` months only the share
    ``w = (1 - rho^H) / (H (1 - rho))`` of it remains on average (0.067 at rho 0.9 and 8%
    depreciation); the shift is ``-(1 - w)`` times the passed-through distance. The cost of
    funds in the user cost is the expected one over the investment's life (Hall and
    Jorgenson 1967), not the policy rate of the month; a firm's own spread (markup, risk
    premium, re-lending) and lever 9's pass-through persist and count in full."""
    cb, econ = model.config.central_bank, model.config.economy
    rho = float(cb.rate_smoothing)
    horizon = 12.0 / max(float(econ.depreciation_rate), 1e-9)
    remaining = 1.0 if rho >= 1.0 else (1.0 - rho ** horizon) / (horizon * (1.0 - rho))
    pass_through = model.policy.p09_monetary_transmission.lpr_pass_through
    return -(1.0 - remaining) * pass_through * (model.central_bank.loan_prime_rate - cb.loan_prime_rate)


def investment_thresholds(model: "SMEEconomy") -> np.ndarray:
    """Per firm, this month's spike threshold: the share of its desired capital its capital
    gap must exceed before it closes the whole gap at once (0: the smooth rule). Fixed costs
    of adjustment are random, drawn afresh each month (Caballero and Engel 1999,
    *Econometrica* 67; Khan and Thomas 2008, *Econometrica* 76), so the threshold is uniform
    on ``[0, 2 * economy.investment_inaction_band]``: a common shock then moves a few firms
    over their thresholds, not all of them at once. With one threshold for every firm the
    spikes bunched into economy-wide investment waves (investment up 11-fold in a month,
    output up 10%; 5,000 SMEs, seed 1). The draws are made once a month, when the credit
    market first asks for them (:attr:`SMEEconomy.month_adjustment_draws`), and reused for
    the same firms within the month."""
    band = float(model.config.economy.investment_inaction_band)
    n = model.smes.size
    if band <= 0.0:
        return np.zeros(n)
    draws = model.month_adjustment_draws
    if draws is None or draws.size != n:
        draws = model.month_adjustment_draws = uniform(model.rng, n)
    return 2.0 * band * draws


def user_cost_arguments(model: "SMEEconomy") -> tuple:
    """The arrays and scalars :func:`_desired_investment` takes after a firm's own columns:
    the firms' quotes (:func:`expected_loan_quotes`), the expected rate shift (:func:`expected_rate_shift`), depreciation,
    expected inflation, the floor, the reference user cost, the elasticity, the
    investment speed and the firms' spike thresholds (:func:`investment_thresholds`)."""
    econ = model.config.economy
    return (np.asarray(expected_loan_quotes(model), dtype=float), float(expected_rate_shift(model)),
            float(econ.depreciation_rate),
            float(model.central_bank.inflation), float(econ.user_cost_floor), float(model.user_cost_reference),
            float(econ.user_cost_elasticity), float(econ.investment_speed), investment_thresholds(model))


@inline
def _desired_capital(ratio, units, quote, rate_shift, depreciation, expected_inflation, floor, reference,
                     elasticity):  # pragma: no cover - compiled
    """One firm's desired capital at the user cost of buying it (:func:`desired_investment`)."""
    rate = quote + rate_shift
    user_cost = maximum(rate + depreciation - expected_inflation, floor)
    factor = np.float32(reference / user_cost) ** np.float32(elasticity)
    return 12.0 * ratio * units / 1.2 * 1.1 * np.float64(factor)


@inline
def _desired_investment(ratio, units, capital, quote, rate_shift, depreciation, expected_inflation, floor, reference,
                        elasticity, speed, threshold):  # pragma: no cover - compiled
    """One firm's desired investment (:func:`desired_investment`), inlined into the kernels."""
    target = _desired_capital(ratio, units, quote, rate_shift, depreciation, expected_inflation, floor, reference,
                              elasticity)
    gap = maximum(target - capital, 0.0)
    return gap if (threshold > 0.0) & (gap > threshold * target) else speed * gap


@njit
def _desired_investment_kernel(sector, capital_output_ratio, units, capital, quotes, rate_shift, depreciation,
                               expected_inflation, floor, reference, elasticity, speed, thresholds,
                               out):  # pragma: no cover - compiled
    """:func:`desired_investment` for every firm."""
    ratio = take(capital_output_ratio, sector)  # gathered first, so the loop vectorises
    for i in range(sector.size):
        out[i] = _desired_investment(ratio[i], units[i], capital[i], quotes[i], rate_shift, depreciation,
                                     expected_inflation, floor, reference, elasticity, speed, thresholds[i])


def planned_units(model: "SMEEconomy") -> np.ndarray:
    """Demand, in units, a firm plans its capital for: this month's, grown by the customers it
    expects to win over the next year, ``exp(customer_gap * (1 - (1 - customer_accumulation)**12))``
    (7.6). A young firm builds capacity ahead of the demand it is winning, as its owner counts
    those customers in judging it (:func:`_produce_kernel`); without a gap, this month's demand."""
    smes, econ = model.smes, model.config.economy
    units = smes.demand / smes.price
    if econ.customer_gap_at_entry <= 0 and econ.customer_gap_dispersion <= 0 and not econ.gains_won_gradually:
        return units  # no firm has a gap (the month-0 population's follows the entrants')
    won = 1.0 - (1.0 - econ.customer_accumulation) ** econ.capacity_plan_months
    return units * np.exp(won * smes.customer_gap.astype(np.float64))


def desired_investment(model: "SMEEconomy") -> np.ndarray:
    """Capital a firm wants to add this month: ``investment_speed`` of the gap between its
    desired capital and its capital.

    Desired capital is the accelerator target (the capital that serves this month's demand
    in units at a utilisation of 1/1.1) scaled by the user cost of capital (Jorgenson 1963;
    Hall and Jorgenson 1967), in numpy terms::

        rate = expected_loan_quotes(model) + rate_shift
        user_cost = maximum(rate + depreciation_rate - expected_inflation, user_cost_floor)
        factor = (user_cost_reference / user_cost).astype(float32) ** float32(user_cost_elasticity)
        target = 12 * kappa * demand / price / 1.2 * 1.1 * factor

    ``rate`` is the rate the firm expects to pay for more credit over the life of the
    capital: what its bank would charge it now (:func:`expected_loan_quotes`), less the part of
    the LPR's distance from its neutral level that it expects to fade
    (:func:`expected_rate_shift`; without it the user cost and the Taylor rule, which reads
    the idle capacity a low rate brings as slack, formed a loop with a gain above 1 that
    swung the LPR between 1.4% and 4.7% over 20 years); expected inflation is the 12-month SME inflation
    the central bank reads (adaptive expectations). The factor is 1 at the reference user
    cost (:func:`reference_user_cost`), so the calibrated set-up is unchanged; it is
    computed in single precision (a behavioural rule; about half the time of a double
    power at 10^6 firms).
    """
    smes = model.smes
    out = np.empty(smes.size)
    _desired_investment_kernel(smes.sector, np.asarray(model.capital_output_ratio, dtype=float),
                               planned_units(model), smes.capital, *user_cost_arguments(model), out)
    return out


def invest(model: "SMEEconomy") -> None:
    """Buy capital from large firms with cash above a minimal buffer.

    The desired investment is the one the credit market computed this month for the
    firms' applications (:attr:`SMEEconomy.month_desired_investment`: the same firms, rows
    and state), or computed here if the credit market has not run."""
    smes, econ = model.smes, model.config.economy
    desired = model.month_desired_investment
    if desired is None or desired.size != smes.size:
        desired = desired_investment(model)
    model.month_desired_investment = None
    investment = np.empty(smes.size)
    _investment_kernel(desired, smes.cash, smes.costs, float(econ.cash_buffer_months), investment)
    model.ledger.pay("investment", "smes", "large_firms", investment)
    smes.capital += investment
    model.step_investment = float(investment.sum())
    model.step_capital_sold = sell_excess_capital(model) if econ.capital_resale else 0.0


def sell_excess_capital(model: "SMEEconomy") -> float:
    """Capital a firm no longer needs, sold (``economy.capital_resale``; docs/model.md 7.6).

    Capital is partly irreversible: a firm buys it at 1 and can sell it only at the price a
    liquidation fetches, ``p`` = lever 1's ``loan_recovery_rate`` (0.45; Kermani and Ma 2023
    find about 35% of net book value). A unit it could sell costs it ``p`` times the user
    cost to keep, so it keeps capital up to its desired capital at that lower user cost,
    ``K* p^(-elasticity)``, and sells ``investment_speed`` of what it holds beyond that a
    month: between ``K*`` and that edge it neither buys nor sells, the band of inaction of
    costly reversibility (Abel and Eberly 1994, *AER* 84; Cooper and Haltiwanger 2006,
    *REStud* 73, whose US plants sell more than they buy in 10.4% of years). Large firms
    (the capital-goods sector) buy it (flow ``capital_sales``, as a closing firm's). Returns
    the book value sold."""
    smes = model.smes
    price = float(model.policy.p01_legal_system.loan_recovery_rate)
    if price <= 0.0:  # capital that fetches nothing is not sold
        return 0.0
    sold = np.empty(smes.size)
    _capital_sales_kernel(smes.sector, np.asarray(model.capital_output_ratio, dtype=float), planned_units(model),
                          smes.capital, *user_cost_arguments(model), price, sold)
    model.ledger.pay("capital_sales", "large_firms", "smes", price * sold)
    smes.capital -= sold
    return float(sold.sum())


@njit
def _capital_sales_kernel(sector, capital_output_ratio, units, capital, quotes, rate_shift, depreciation,
                          expected_inflation, floor, reference, elasticity, speed, thresholds, price,
                          sold):  # pragma: no cover - compiled
    """:func:`sell_excess_capital`'s book value sold per firm (``thresholds``, the spike
    draws of buying, play no part in selling)."""
    ratio = take(capital_output_ratio, sector)
    edge = price ** -elasticity
    for i in range(sector.size):
        target = _desired_capital(ratio[i], units[i], quotes[i], rate_shift, depreciation, expected_inflation, floor,
                                  reference, elasticity)
        sold[i] = speed * maximum(capital[i] - edge * target, 0.0)


@njit
def _investment_kernel(desired, cash, costs, cash_buffer_months, investment):  # pragma: no cover - compiled
    """The numpy it replaced (:func:`cash_buffer` written out)::

        spendable = maximum(cash - 0.5 * (cash_buffer_months * costs), 0.0)
        investment = minimum(desired_investment, spendable)

    (demand in units, ``demand / price``, divided here rather than in a temporary array)
    """
    for i in range(cash.size):
        spendable = maximum(cash[i] - 0.5 * (cash_buffer_months * costs[i]), 0.0)
        investment[i] = minimum(desired[i], spendable)


def innovate(model: "SMEEconomy") -> None:
    """R&D outcomes, digital adoption and management training.

    The draws are made up front, in the order and sizes the steps below use
    them; the per-firm arithmetic is done by :func:`_innovation_kernel` and
    :func:`_productivity_kernel` (the numpy they replaced is in their docstrings).
    """
    smes, p, rng, econ = model.smes, model.policy, model.rng, model.config.economy
    n = smes.size
    n_sectors = len(model.sector_names)
    draws = uniform(rng, 3 * n)  # rng.random(n) three times: the same numbers
    rd_draws, adoption_draws, training_draws = draws[:n], draws[n:2 * n], draws[2 * n:]
    noise = standard_normal(rng, n)
    log_a = np.log(smes.productivity)

    # R&D: success raises productivity; imitators capture the unappropriated part.
    # Digital adoption: a subsidy lowers its cost and so raises the adoption rate.
    # Management training is paid by government.
    success_p = econ.rd_success_probability * (1.0 + p.p15_innovation.rd_success_boost)
    if econ.rd_success_elasticity > 0:
        # successes arrive at a rate that rises with R&D effort per unit of size (Klette and
        # Kortum 2004): the rate at the no-lever intensity, scaled by the effort's ratio to it
        effort = (model.rd_intensity / econ.rd_intensity) ** econ.rd_success_elasticity if econ.rd_intensity > 0 else 0.0
        success_p = 1.0 - (1.0 - min(success_p, 1.0)) ** effort
    subsidy = p.p17_digital_adoption.adoption_subsidy_share
    adopt_p = econ.digital_adoption_probability * (1.0 + 3.0 * subsidy)
    cost = econ.digital_adoption_cost
    train_p = p.p19_management_training.training_probability
    success, adopt, trained = np.empty(n, dtype=bool), np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    successes, firms = np.zeros(n_sectors, dtype=np.int64), np.zeros(n_sectors, dtype=np.int64)
    _innovation_kernel(smes.sector, smes.innovative, smes.sales, smes.digital, smes.cash, smes.trained, rd_draws,
                       adoption_draws, training_draws, float(success_p), float(adopt_p), float(cost),
                       float(train_p), float(model.rd_intensity), smes.ip_stock, success, adopt, trained,
                       successes, firms)
    keep = p.p22_ip_protection.appropriability
    jump = econ.rd_productivity_jump
    leaked = successes * np.log1p(jump * (1 - keep))
    per_firm = leaked / np.maximum(firms, 1)
    model.step_innovations = int(np.count_nonzero(success))

    # lever 25's pilots: the adoption subsidy's control group adopts at the unsubsidised
    # rate and pays the full cost; the training programme's control group is not trained
    from .administration import open_cases, pending  # late: administration imports this module's package
    from .government import pilot_control  # late: government imports this module

    held = pilot_control(model, "p17_digital_adoption")
    if held.any():
        adopt &= ~held | (adoption_draws < econ.digital_adoption_probability)
    rows = np.flatnonzero(adopt)
    held_rows = held[rows]
    # adopters pay the supplier in full; the subsidy is a case the administration
    # reimburses when it processes it (lever 24)
    model.ledger.pay("digital_adoption", "smes", "large_firms", cost, payer_rows=rows)
    open_cases(model, "adoption_subsidy", cost * subsidy, rows[~held_rows])
    smes.digital[rows] = True

    # applicants for training open a case; the training (and its productivity gain) is
    # given when the administration processes it (lever 24, administration._serve)
    applicants = trained & ~pilot_control(model, "p19_management_training") & ~pending(model, "training")
    open_cases(model, "training", p.p19_management_training.training_cost, np.flatnonzero(applicants))
    trained[:] = False

    # idiosyncratic productivity noise keeps dispersion from collapsing
    _productivity_kernel(log_a, smes.sector, success, adopt, trained, per_firm, noise,
                         float(np.log1p(jump * keep)),
                         float(np.log1p(p.p17_digital_adoption.digital_productivity_uplift)),
                         float(np.log1p(p.p19_management_training.training_productivity_gain)))
    smes.productivity = np.exp(log_a)


@njit
def _innovation_kernel(sector, innovative, sales, digital, cash, trained, rd_draws, adoption_draws, training_draws,
                       success_p, adopt_p, adoption_cost, train_p, rd_intensity, ip_stock, success, adopt,
                       newly_trained, successes, firms):  # pragma: no cover - compiled
    """Who innovates, adopts digital tools and is trained; IP stocks. The numpy it replaced::

        success = innovative & (rd_draws < success_p) & (sales > 0)
        successes = bincount(sector[success]); firms = bincount(sector)
        ip_stock = 0.99 * ip_stock + where(innovative, rd_intensity * sales, 0.0)
        adopt = ~digital & (adoption_draws < adopt_p) & (cash > adoption_cost)
        newly_trained = ~trained & (training_draws < train_p)
    """
    # the per-firm outcomes in a loop LLVM vectorises, then the counts per sector: counting
    # in the first loop (additions scattered by sector) kept it from vectorising, at twice the time
    for i in range(sector.size):
        success[i] = innovative[i] & (rd_draws[i] < success_p) & (sales[i] > 0)
        ip_stock[i] = 0.99 * ip_stock[i] + (rd_intensity * sales[i] if innovative[i] else 0.0)
        adopt[i] = (not digital[i]) & (adoption_draws[i] < adopt_p) & (cash[i] > adoption_cost)
        newly_trained[i] = (not trained[i]) & (training_draws[i] < train_p)
    for i in range(sector.size):
        successes[sector[i]] += 1 if success[i] else 0
        firms[sector[i]] += 1


@njit
def _productivity_kernel(log_a, sector, success, adopt, trained, per_firm, noise, rd_gain, digital_gain,
                         training_gain):  # pragma: no cover - compiled
    """Log productivity after R&D, spillovers, adoption, training and noise, in the
    order of the numpy it replaced::

        log_a[success] += rd_gain; log_a += per_firm[sector]
        log_a[adopt] += digital_gain; log_a[trained] += training_gain
        log_a += 0.01 * noise
    """
    spillover = take(per_firm, sector)  # gathered first, so the loop vectorises
    for i in range(log_a.size):
        x = log_a[i]
        x = x + rd_gain if success[i] else x
        x = x + spillover[i]
        x = x + digital_gain if adopt[i] else x
        x = x + training_gain if trained[i] else x
        log_a[i] = x + 0.01 * noise[i]


def sector_mean_log_productivity(model: "SMEEconomy", log_a: np.ndarray | None = None) -> np.ndarray:
    """Mean log productivity of the SMEs in each sector (0 for a sector with none);
    ``log_a``, if given, is ``log(smes.productivity)`` already computed."""
    smes = model.smes
    n_sectors = len(model.sector_names)
    sums, counts = np.zeros(n_sectors), np.zeros(n_sectors, dtype=np.int64)
    group_sums(smes.sector, np.log(smes.productivity) if log_a is None else log_a, sums, counts)
    return sums / np.maximum(counts, 1)


def evolve_demand(model: "SMEEconomy") -> None:
    """Gibrat-like growth of each firm's customer base.

    Log demand weights follow a random walk whose drift rises with the firm's
    productivity relative to its sector (lever 18 sets how strongly), and
    customers are lost when a firm cannot serve its demand. Customers move between
    firms but do not vanish: each sector's total customer base is kept, so a firm's
    weight stays on the scale of yuan of demand that entrants are drawn on (without
    this the sum shrank about 4% a month, and after ten years an entrant's weight
    was worth several incumbents').
    """
    smes, rng = model.smes, model.rng
    log_a = np.log(smes.productivity)
    n_sectors = len(model.sector_names)
    mean_log_a = sector_mean_log_productivity(model, log_a)
    elasticity = model.policy.p18_service_platforms.demand_productivity_elasticity
    shock = standard_normal(rng, smes.size)
    growth, root_served = np.empty(smes.size), np.empty(smes.size)
    econ = model.config.economy
    widen_markets(model)
    _demand_growth_kernel(log_a, smes.sector, mean_log_a, shock, smes.demand, smes.sales, smes.shut_down,
                          smes.customer_gap, float(econ.growth_drift), float(elasticity),
                          float(econ.demand_volatility), float(econ.customer_accumulation),
                          float(econ.unserved_customer_loss), bool(econ.gains_won_gradually), growth, root_served)
    before = bincount_sums(smes.sector, smes.demand_weight, n_sectors)
    after = np.zeros(n_sectors)
    _grow_demand_weights_kernel(smes.demand_weight, np.exp(growth), root_served, smes.sector, after)
    _scale_by_sector_kernel(smes.demand_weight, smes.sector,
                            np.divide(before, after, out=np.ones(n_sectors), where=after > 0))


def widen_markets(model: "SMEEconomy") -> None:
    """High-growth phases (``economy.high_growth_share``; docs/model.md 7.6): a firm in one
    finds its market widening, its customer gap growing by ``high_growth_rate`` log points a
    month, which it then wins as it wins any gap; the phase ends with probability
    ``high_growth_end_rate`` a month and does not return. Type dependence in the growth process
    (Gabaix, Lasry, Lions and Moll 2016, Econometrica 84; Luttmer 2011, REStud 78): the few
    firms in the phase carry the size distribution's tail out in decades, where random growth
    alone takes centuries. Off (share 0), nothing is drawn."""
    econ, smes = model.config.economy, model.smes
    if econ.high_growth_share <= 0.0:
        return
    ending = uniform(model.rng, smes.size) < econ.high_growth_end_rate
    _widen_markets_kernel(smes.high_growth, smes.customer_gap, ending, float(econ.high_growth_rate))


@njit
def _widen_markets_kernel(high_growth, customer_gap, ending, rate):  # pragma: no cover - compiled
    """``customer_gap[high_growth] += rate``, then ``high_growth &= ~ending``."""
    for i in range(high_growth.size):
        if high_growth[i]:
            customer_gap[i] = customer_gap[i] + np.float32(rate)
            high_growth[i] = not ending[i]


@njit
def _demand_growth_kernel(log_a, sector, mean_log_a, shock, demand, sales, shut_down, customer_gap, growth_drift,
                          elasticity, volatility, accumulation, loss_elasticity, gradual_gains, growth,
                          root_served):  # pragma: no cover - compiled
    """In numpy terms (``sqrt`` is correctly rounded in both)::

        drift = growth_drift + elasticity * (log_a - mean_log_a[sector])
        gained = accumulation * customer_gap;  customer_gap -= gained
        growth = drift + gained + volatility * shock
        (gradual_gains: growth = drift + gained + minimum(volatility * shock, 0),
         customer_gap += maximum(volatility * shock, 0), after the month's gain)
        served = where(demand > 0, minimum(sales / maximum(demand, 1e-12), 1.0), 1.0)
        root_served = where(shut_down, 1.0, served) ** loss_elasticity   (np.sqrt at 0.5)
    """
    sector_mean = take(mean_log_a, sector)  # gathered first, so the loop vectorises
    for i in range(log_a.size):
        drift = growth_drift + elasticity * (log_a[i] - sector_mean[i])
        gained = accumulation * np.float64(customer_gap[i])
        customer_gap[i] = customer_gap[i] - gained
        if gradual_gains and shock[i] > 0.0:  # news of customers to be won, not customers yet
            customer_gap[i] = customer_gap[i] + np.float32(volatility * shock[i])
            growth[i] = drift + gained
        else:
            growth[i] = drift + gained + volatility * shock[i]
        served = minimum(sales[i] / maximum(demand[i], 1e-12), 1.0)
        served = served if demand[i] > 0 else 1.0
        served = 1.0 if shut_down[i] else served
        # sqrt is correctly rounded where a power of 0.5 need not be
        root_served[i] = np.sqrt(served) if loss_elasticity == 0.5 else served ** loss_elasticity


@njit
def _grow_demand_weights_kernel(demand_weight, growth_factor, root_served, sector, after):  # pragma: no cover
    """The customer bases' growth and their new sector totals; the numpy it replaced::

        demand_weight *= growth_factor * root_served
        after = bincount(sector, weights=demand_weight)   (summed in row order, as bincount does)
    """
    for i in range(demand_weight.size):
        demand_weight[i] = demand_weight[i] * (growth_factor[i] * root_served[i])
    for i in range(demand_weight.size):  # the sums apart, so the first loop vectorises
        after[sector[i]] += demand_weight[i]


@njit
def _scale_by_sector_kernel(values, sector, factor):  # pragma: no cover - compiled
    """``values *= factor[sector]`` without the gathered temporary."""
    scale = take(factor, sector)  # gathered first, so the loop vectorises
    for i in range(values.size):
        values[i] = values[i] * scale[i]


def pay_dividends(model: "SMEEconomy") -> None:
    """Owners take out part of the cash above the buffer, but never more than the month's
    profit: dividends come out of retained earnings, never out of borrowed money (a firm
    whose cash above the buffer came from a loan keeps it for what it borrowed for).

    Each owner is paid its share: the SME development fund (lever 6) its
    ``public_equity_share`` (to the government), everyone else (founders and the
    household-owned venture funds of lever 12) the rest (to households)."""
    smes, econ = model.smes, model.config.economy
    dividends, to_fund, to_owners = np.empty(smes.size), np.empty(smes.size), np.empty(smes.size)
    _dividend_kernel(smes.cash, smes.costs, smes.profit, smes.public_equity_share, float(econ.cash_buffer_months),
                     float(econ.dividend_payout), dividends, to_fund, to_owners)
    fund_total = model.ledger.pay("fund_dividends", "smes", "government", to_fund)
    model.ledger.pay("sme_dividends", "smes", "households", to_owners)
    stats = model.step_stats
    stats["fund_equity_income"] = stats.get("fund_equity_income", 0.0) + fund_total  # to_fund's sum
    model.step_stats["venture_dividends"] = float(np.dot(dividends, smes.venture_equity_share.astype(np.float64)))


@njit
def _dividend_kernel(cash, costs, profit, public_equity_share, cash_buffer_months, payout, dividends, to_fund,
                     to_owners):  # pragma: no cover - compiled
    """Dividends and the owners' parts, in numpy terms::

        excess = maximum(cash - cash_buffer_months * costs, 0.0)
        dividends = minimum(payout * excess, maximum(profit, 0.0))
        to_fund = dividends * public_equity_share      (the float32 share widened exactly, as numpy does)
        to_owners = dividends - to_fund
    """
    for i in range(cash.size):
        excess = maximum(cash[i] - cash_buffer_months * costs[i], 0.0)
        d = minimum(payout * excess, maximum(profit[i], 0.0))
        fund = d * np.float64(public_equity_share[i])
        dividends[i] = d
        to_fund[i] = fund
        to_owners[i] = d - fund
