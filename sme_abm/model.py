"""The economy: :class:`SMEEconomy`, a Mesa model whose ``step()`` is one month.

Read :meth:`SMEEconomy.step` first: it is the economy's schedule, phase by
phase, each phase a function in the module of its agent or market.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, cast

import mesa
import numpy as np
import pandas as pd

from . import sectors
from .accounting import Ledger, check_identities
from .agents.administration import process_support_cases
from .agents.bank import LARGE_BANK, NONDEPOSIT_LENDER, SMALL_BANK, Bank, BankBook
from .agents.central_bank import CentralBank
from .agents.government import Government, evaluate_policies, pay_support, set_policy
from .agents.guarantor import Guarantor, GuarantorBook
from .agents.sme import (
    SME, TYPICAL_RISK_PREMIUM, SMEPopulation, evolve_demand, innovate, inputs_per_unit, invest, normal_markups,
    normal_user_cost, pay_dividends, produce, reference_user_cost, sector_mean_log_productivity, set_prices,
    unit_variable_cost,
)
from .config import SECTORS, Config, as_saved, load_config
from .demography import enter_firms, exit_firms
from .garbage import collector_paused
from .kernels import bincount_sums, njit, uniform
from .levers import load_registry
from .markets.bonds import finance_government, pay_bond_interest
from .markets.capital import provide_direct_finance
from .markets.credit import run_credit_market
from .markets.goods import allocate_demand, collect_receivables
from .markets.labour import set_wage, start_labour_market
from .mesa_registry import registry_for
from .policy import PolicyState
from .recorder import Recorder
from .shocks import apply_shocks
from .state import check_compatible as check_state_compatible
from .state import read_header as read_state_header
from .state import restore_state, save_state

EXPORTING_SECTORS = (SECTORS.index("manufacturing"), SECTORS.index("trade"))
SHUTDOWN_SECTORS = (SECTORS.index("manufacturing"), SECTORS.index("construction"))
#: Per-sector flags, indexed by sector code (cheaper than np.isin over the population).
CAN_EXPORT = np.isin(np.arange(len(SECTORS)), EXPORTING_SECTORS)
CAN_BE_SHUT_DOWN = np.isin(np.arange(len(SECTORS)), SHUTDOWN_SECTORS)


class SMEEconomy(mesa.Model):
    """A national SME economy with banks, guarantors, government and a central bank.

    Args:
        config: A :class:`Config`, a path to a TOML config, a mapping with the
            config's structure, or None for the defaults.
        rng: Seed for the run's random numbers (overrides ``simulation.seed``;
            this is what ``mesa.batch_run`` passes).
        n_smes: Shortcut for ``simulation.n_smes``.
        steps: Shortcut for ``simulation.steps`` (used by :meth:`run`).
        progress: Optional callable called with the (negative) month after each burn-in month.
        state: A folder written by :meth:`save_state`: the economy continues from it
            bit for bit (same random streams). ``config`` (default: the state's own)
            may change the levers, shocks and run settings, not the economy.
        **overrides: Further config overrides as ``section__key=value`` (for
            levers ``levers__p13_financing_guarantee__enabled=False``).

    Example:
        >>> model = SMEEconomy(n_smes=1_000, rng=1)
        >>> model.run(12)
        >>> model.timeseries()["smes_active"].iloc[-1] > 0
        True
    """

    #: Use Mesa 3.3's batched agent registration where its layout is found (False:
    #: always Mesa's public ``SME(...)`` / ``agent.remove()``; same agents, same results).
    fast_mesa_registry: bool = True

    def __init__(
        self,
        config: Config | str | Path | Mapping[str, Any] | None = None,
        *,
        rng: int | None = None,
        n_smes: int | None = None,
        steps: int | None = None,
        state: str | Path | None = None,
        progress: Any = None,
        **overrides: Any,
    ) -> None:
        dotted = {key.replace("__", "."): value for key, value in overrides.items()}
        if n_smes is not None:
            dotted["simulation.n_smes"] = n_smes
        if steps is not None:
            dotted["simulation.steps"] = steps
        if rng is not None:
            dotted["simulation.seed"] = int(rng)
        header = None
        if state is not None:
            header = read_state_header(state)
            if config is None:
                config = as_saved(header["config"])
        if isinstance(config, Config):
            config = config.to_dict() if dotted else config
        self.config: Config = config if isinstance(config, Config) else load_config(config, dotted)
        if header is not None and state is not None:
            check_state_compatible(header, self.config, state)
        super().__init__(rng=self.config.simulation.seed)
        self.registry = load_registry()
        self.sector_names = list(SECTORS)
        self.month = 0
        self.month_offset = 0  # months run before month 0 (the burn-in)
        self.price_index = 1.0  # SME price index last month (for inflation)
        self.step_stats: dict[str, Any] = {}
        self.payables: dict[str, float] = {"large_firms": 0.0, "government": 0.0}
        #: This month's new invoices per SME row: scratch from allocate_demand to collect_receivables.
        self.month_invoices: np.ndarray | None = None
        # SMEs' share of enterprise revenue last month: the share of their materials SMEs buy
        # from SMEs under markets.sme_input_sourcing = "proportional" (set at month 0)
        self.sme_revenue_share = 0.0
        self.month_inter_sme_sales: np.ndarray | None = None
        #: This month's desired investment per SME row: scratch from the credit market to invest.
        self.month_desired_investment: np.ndarray | None = None
        #: This month's uniform draws of the SMEs' fixed costs of adjusting capital (lumpy
        #: investment, ``agents.sme.investment_thresholds``): drawn when the credit market first
        #: asks, reset at its start each month, None while ``investment_inaction_band`` is 0.
        self.month_adjustment_draws: np.ndarray | None = None
        #: Key of lever 25's pilot groups (``government.pilot_control``): from the seed the
        #: economy was built with, and saved with its state, so a warm start keeps its groups.
        self.pilot_key = int(self.config.simulation.seed) & ((1 << 63) - 1)
        self.ledger = Ledger(self)
        self.policy = PolicyState(self.config, self.registry)
        self.recorder = Recorder(self)
        self.use_mesa_agents = self.config.simulation.mesa_agents
        self.sme_registry = registry_for(self, SME, fast=self.fast_mesa_registry)
        self._set_constants()
        # The column stores create one attribute per schema column at run time,
        # which a static checker cannot see; they are typed Any on purpose.
        self.smes: Any = cast(Any, SMEPopulation(with_agents=self.use_mesa_agents))
        self.banks: Any = cast(Any, BankBook())
        self.banks.model = self
        self.guarantors: Any = cast(Any, GuarantorBook())
        self.guarantors.model = self
        self.central_bank = CentralBank(self)
        self.government = Government(self)
        self.sme_base_rate = 0.0
        #: Banks' learnt credit risk (demography.learn_credit_risk): a log-odds shift of their
        #: scoring model, and exponentially weighted averages of the annual default rate it
        #: predicts and the rate realised (NaN until the first month), and of defaulted
        #: exposure and its loss (for the loss given default they price).
        self.pd_shift = 0.0
        self.credit_risk = {"predicted": float("nan"), "realised": float("nan"), "exposure": 0.0, "loss": 0.0}
        self.central_bank.set_rates()
        if header is None or state is None:
            self._initialise_under_baseline()
        else:
            restore_state(self, state, header)
        self.datacollector = mesa.DataCollector(model_reporters=self.recorder.model_reporters())
        if header is None and self.config.simulation.burn_in_months:
            self._burn_in(self.config.simulation.burn_in_months, progress)
        self.running = True

    # ------------------------------------------------------------------
    # the schedule
    def step(self) -> None:
        """One month of the economy, phase by phase.

        When every SME has exited the months still run (households, government, banks);
        means and spreads over no firms are NaN by definition, without numpy's warnings.
        Python's cyclic garbage collector waits for the end of the step (:mod:`sme_abm.garbage`).
        """
        with collector_paused():
            if self.smes.size:
                return self._step()
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return self._step()

    def _step(self) -> None:
        self.month = self.steps - 1 - self.month_offset
        self.ledger.open_step()
        self.step_stats = defaultdict(float)

        # 1. wages, then policy: the government and central bank apply the levers in force
        set_wage(self)
        set_policy(self)
        apply_shocks(self)
        # 2. prices, then demand: households, large firms' orders, procurement, exports
        set_prices(self)
        allocate_demand(self)
        # 3. production: receivables collected, costs, wages, taxes paid
        collect_receivables(self)
        produce(self)
        pay_support(self)
        # 4. credit market: applications, screening, guarantees, rationing (during the
        # burn-in the reference user cost follows the economy's own, agents/sme.normal_user_cost)
        if self.burning_in:
            self.user_cost_reference = normal_user_cost(self)
        run_credit_market(self)
        # 5. investment, innovation, digital adoption, training; customers move
        invest(self)
        innovate(self)
        evolve_demand(self)
        pay_dividends(self)
        self._update_exporters()
        # 6. direct finance: venture capital; who lists
        listing = provide_direct_finance(self)
        # 7. default, exit and entry
        exit_firms(self, listing)
        enter_firms(self)
        self.smes.age += 1
        # 8. month-end settlement and accounting
        self.banks.work_out_defaults(self)
        pay_bond_interest(self)  # before the banks settle: they pay dividends on the month's whole income
        sectors.settle_banks(self)
        sectors.settle_guarantors(self)
        self.central_bank.settle_relending()
        process_support_cases(self)
        sectors.settle_large_firms(self)
        self.government.close_month()
        sectors.settle_households(self)
        self.banks.resolve_insolvent(self)
        finance_government(self)
        self.banks.fund_nondeposit_lenders(self)
        self.central_bank.provide_liquidity()
        evaluate_policies(self)
        residual = check_identities(self, raise_on_failure=self.config.simulation.check_accounting)
        self.recorder.record_step(residual)
        self.datacollector.collect(self)

    def run(self, steps: int | None = None, progress: Any = None) -> "SMEEconomy":
        """Run ``steps`` months (default: ``simulation.steps``).

        Args:
            steps: Months to run.
            progress: Optional callable called with the month after each step.
        """
        steps = self.config.simulation.steps if steps is None else steps
        for _ in range(steps):
            self.step()
            if progress is not None:
                progress(self.month)
        return self

    def save_state(self, path: str | Path) -> Path:
        """Write the whole state to the folder ``path`` (Parquet and JSON; see
        :mod:`sme_abm.state`); ``SMEEconomy(state=path)`` continues from it."""
        return save_state(self, path)

    # ------------------------------------------------------------------
    # outputs
    def timeseries(self) -> pd.DataFrame:
        """Model-level outputs, one row per step."""
        return self.recorder.timeseries()

    def firms(self) -> pd.DataFrame:
        """The current firm population, one row per SME."""
        smes = self.smes
        frame = pd.DataFrame({name: smes.column(name) for name in smes.columns})
        frame["sector"] = pd.Categorical.from_codes(smes.sector, self.sector_names)
        return frame.set_index("firm_id")

    def firm_panel(self) -> pd.DataFrame:
        return self.recorder.firm_panel()

    def exits(self) -> pd.DataFrame:
        return self.recorder.exits()

    def summary(self) -> dict[str, Any]:
        return self.recorder.summary()

    # ------------------------------------------------------------------
    # population bookkeeping (keeps arrays and Mesa's registry in step)
    def add_smes(self, values: dict[str, Any], count: int, with_agents: bool = True) -> np.ndarray:
        """Append ``count`` firms; with ``with_agents`` false their Mesa agents are left to
        :meth:`attach_sme_agents` (entrants get theirs once they are funded and start)."""
        rows = self.smes.add_firms(values, count)
        if with_agents:
            self.attach_sme_agents(rows)
        return rows

    def attach_sme_agents(self, rows: np.ndarray) -> None:
        """Give the firms in ``rows`` their Mesa agents."""
        if self.use_mesa_agents and len(rows):
            self.smes.agent[rows] = self._create_sme_agents(self.smes.firm_id[rows].tolist())

    def _create_sme_agents(self, firm_ids: list[int]) -> list[SME]:
        """``[SME(self, firm_id) for firm_id in firm_ids]``, through the SME registry
        (:mod:`sme_abm.mesa_registry`: one pass on Mesa 3.3, Mesa's public calls elsewhere)."""
        return self.sme_registry.create(firm_ids)

    def remove_smes(self, leaving: np.ndarray, with_agents: bool = True) -> None:
        """Drop the firms flagged in ``leaving``, and their Mesa agents unless they have none
        (``with_agents`` false: start-ups called off before their agents were made)."""
        if self.use_mesa_agents and with_agents:
            self.sme_registry.remove(self.smes.agent[leaving].tolist())
        self.smes.remove_firms(leaving)

    def sme_agent(self, firm_id: int) -> SME:
        """The Mesa agent of a live SME.

        Raises:
            LookupError: If the firm has exited or the economy runs without SME agents.
        """
        if not self.use_mesa_agents:
            raise LookupError("this economy has no SME agents (simulation.mesa_agents = false)")
        return self.smes.agent[self.smes.row_of(firm_id)]

    def loss_given_default(self) -> float:
        """The loss given default banks price: the exposure-weighted average they have
        realised (``credit_risk``), or, before any default, the loss implied by the
        liquidation value of capital (lever 1)."""
        risk = self.credit_risk
        if risk["exposure"] > 0:
            return risk["loss"] / risk["exposure"]
        return 1.0 - self.policy.p01_legal_system.loan_recovery_rate

    def record_exits(self, rows: np.ndarray, reasons: np.ndarray) -> None:
        self.recorder.record_exits(rows, reasons)

    # ------------------------------------------------------------------
    # set-up
    def _set_constants(self) -> None:
        econ = self.config.economy
        self.materials_share = np.asarray(econ.materials_share)
        self.revenue_per_worker = np.asarray(econ.revenue_per_worker)
        self.capital_output_ratio = np.asarray(econ.capital_output_ratio)
        self.normal_markup = normal_markups(self.config)  # markets.pricing = "markup"
        self.can_be_shut_down = CAN_BE_SHUT_DOWN
        self.vat_levy_standard = self.registry.by_key("p07_tax_relief").parameters["small_micro_vat_rate"].off
        self.rd_intensity = econ.rd_intensity
        self.shock_factor = np.ones(0)
        # sector price indices of SMEs' goods; large firms' goods are the numeraire (price 1)
        self.sector_price = np.ones(len(SECTORS))
        self.large_firm_price = 1.0
        self.wage = self.config.economy.wage  # monthly wage per worker (the wage rule moves it)
        self.labour_force = 0.0
        self.average_productivity = 0.0
        self.productivity_growth = 0.0
        self.initial_smes = self.config.simulation.n_smes
        self.user_cost_reference = reference_user_cost(self)
        #: True while a burn-in runs (``_burn_in``, a sweep's burn-in stage); ``start_evaluation`` ends it.
        self.burning_in: bool = False

    def overhead_cost(self) -> float:
        """A firm's fixed cost this month (CNY m): ``economy.overhead_cost`` at the month-0
        wage and, with ``economy.overhead_follows_wages``, moving with the wage since, as a
        fixed cost in units of labour does (Melitz 2003; Hopenhayn 1992 in units of output)."""
        econ = self.config.economy
        return econ.overhead_cost * (self.wage / econ.wage if econ.overhead_follows_wages else 1.0)

    def size_threshold_scale(self) -> float:
        """What MIIT's sales thresholds (3, 20 and 400 CNY m a year) are multiplied by this
        month: 1, or with ``economy.size_thresholds_follow_wages`` the wage over the month-0
        wage, so that a firm's size class reads its size against the economy's nominal scale."""
        econ = self.config.economy
        return self.wage / econ.wage if econ.size_thresholds_follow_wages else 1.0

    def initial_monthly_costs(self, rows: np.ndarray) -> np.ndarray:
        smes, econ = self.smes, self.config.economy
        sales = smes.sales[rows]
        sector = smes.sector[rows]
        workers = 12.0 * sales / (self.revenue_per_worker[sector] * smes.productivity[rows])
        inputs = inputs_per_unit(self, sector, smes.productivity[rows]) * sales
        return self.wage * workers + inputs + self.overhead_cost() + smes.sga[rows]

    def demand_per_customer(self) -> np.ndarray:
        """Each sector's demand (CNY m a month) per unit of customer base (``demand_weight``):
        1 at set-up, where a firm's base is its sales, then what the base buys as demand grows."""
        smes, n_sectors = self.smes, len(self.sector_names)
        weights = bincount_sums(smes.sector, smes.demand_weight, n_sectors)
        demand = bincount_sums(smes.sector, smes.demand, n_sectors)
        return np.divide(demand, weights, out=np.ones(n_sectors), where=(weights > 0) & (demand > 0))

    def _customer_gap_at_entry(self, count: int) -> np.ndarray | float:
        """Each new firm's customer gap at entry, in log points: the same for all without
        ex-ante heterogeneity (no random numbers drawn), else ``economy.customer_gap_dispersion``
        the sd of a normal draw around it, floored at 0 (docs/model.md 7.6)."""
        econ = self.config.economy
        if econ.customer_gap_dispersion <= 0:
            return econ.customer_gap_at_entry
        draws = econ.customer_gap_at_entry + econ.customer_gap_dispersion * self.rng.standard_normal(count)
        return np.maximum(draws, 0.0)

    def draw_firms(self, count: int, revenue_scale: float, entrant: bool) -> dict[str, np.ndarray]:
        """Random characteristics of ``count`` new firms."""
        rng, econ, p = self.rng, self.config.economy, self.policy
        sector = rng.choice(len(SECTORS), size=count, p=np.asarray(econ.sector_shares)).astype(np.int8)
        if entrant:
            revenue = revenue_scale * np.exp(0.5 * rng.standard_normal(count))
            age = np.zeros(count, dtype=np.int32)
        else:
            u = rng.random(count)
            revenue = np.minimum(revenue_scale * u ** (-1.0 / econ.size_tail_exponent), econ.max_initial_revenue)
            age = rng.integers(0, 240, size=count).astype(np.int32)
            if econ.initial_population == "entrants":
                # no tail to inherit: the Pareto draw's total sales, spread as entrants' are
                spread = np.exp(0.5 * rng.standard_normal(count))
                revenue = revenue.mean() * spread / spread.mean()
                age[:] = 0
        productivity = np.exp(econ.productivity_sd * rng.standard_normal(count))
        current = entrant and econ.entrants_track_incumbents and self.smes.size > 0
        if current:
            # around the incumbents' productivity in its sector as it is now, not at month 0
            # (entrants are not less productive than incumbents: Foster, Haltiwanger and
            # Syverson 2008, AER 98; their demand lags, 7.6)
            productivity *= np.exp(sector_mean_log_productivity(self)[sector])
        # customers still to be won: an entrant's whole gap, what is left of it after ``age``
        # months of accumulation for the month-0 population (drawn without new random numbers)
        customer_gap = (self._customer_gap_at_entry(count) * (1.0 - econ.customer_accumulation) ** age
                        ).astype(np.float32)
        weight = revenue
        if current:
            # the customer base is drawn on the month-0 scale of yuan; what it buys now (its
            # sector's demand per unit of customer base) sizes the entrant's sales, capital and
            # costs, so entrants grow with the economy rather than shrink relative to it
            revenue = revenue * self.demand_per_customer()[sector]
        capital = self.capital_output_ratio[sector] * 12.0 * revenue / 1.2 * 1.05
        if entrant and econ.entrants_plan_capacity:
            # the capital its plan needs for the customers it expects to win in its first year,
            # as incumbents plan theirs (planned_units)
            capital = capital * np.exp((1.0 - (1.0 - econ.customer_accumulation) ** 12) * customer_gap.astype(np.float64))
        innovative = rng.random(count) < econ.innovative_share
        exporter = CAN_EXPORT[sector] & (rng.random(count) < p.p20_international.exporter_share)
        small_lender = self._draw_banks(count)
        # a high-growth phase for some entrants (7.6); the month-0 population's entrants too
        # when it is made of entrants only; no draw when there are none
        share = econ.high_growth_share if entrant or econ.initial_population == "entrants" else 0.0
        high_growth = rng.random(count) < share if share > 0 else np.zeros(count, dtype=bool)
        return {
            "sector": sector, "age": age, "productivity": productivity, "demand_weight": weight,
            "customer_gap": customer_gap, "high_growth": high_growth,
            "capital": capital, "innovative": innovative, "exporter": exporter, "bank": small_lender,
            "guarantor": np.full(count, -1), "risk_type": 0.5 * rng.standard_normal(count),
            "sales": revenue, "demand": revenue, "sales_at_evaluation": revenue,
            "sga": econ.sga_share * revenue,  # SG&A at their long-run level for the firm's sales
            "ip_stock": np.where(innovative, econ.rd_intensity * revenue * 24.0, 0.0),
            "loan_rate": np.full(count, self.sme_base_rate + self.config.banks.markup + TYPICAL_RISK_PREMIUM),
            # the month-0 population prices at 1; an entrant comes in at its sector's price, or
            # with markup pricing at its own normal price
            "price": self._entry_price(sector, productivity) if entrant else np.ones(count),
        }

    def _entry_price(self, sector: np.ndarray, productivity: np.ndarray) -> np.ndarray:
        if self.config.markets.pricing == "markup":
            return (1.0 + self.normal_markup[sector]) * unit_variable_cost(self, sector, productivity)
        return self.sector_price[sector]

    def _draw_banks(self, count: int) -> np.ndarray:
        rng, b = self.rng, self.config.banks
        nondeposit_share = self.policy.p10_multilevel_finance.nondeposit_lender_capital_share
        u = rng.random(count)
        large = u < b.large_bank_client_share
        nondeposit = (~large) & (rng.random(count) < nondeposit_share) & (b.n_nondeposit > 0)
        bank = np.where(large, rng.integers(0, b.n_large, size=count),
                        b.n_large + rng.integers(0, max(b.n_small, 1), size=count))
        if b.n_small == 0:
            bank = np.where(large, bank, rng.integers(0, b.n_large, size=count))
        bank = np.where(nondeposit, b.n_large + b.n_small + rng.integers(0, max(b.n_nondeposit, 1), size=count), bank)
        return bank.astype(np.int16)

    def _burn_in(self, months: int, progress: Any = None) -> None:
        """Run ``months`` months under the baseline policy before month 0, then start the
        record afresh: the run begins from the economy's own state, not from the set-up's
        hand-made balance sheets (whose first months show consumption jumping 60% and an
        exit wave). Burn-in months are numbered -months..-1, so no scheduled shock or
        lever phase-in (lever 24) falls in them; every lever setting and shock applies from
        month 0, and every variant of a study starts from the same state. What phases in from
        month 0 is the config's change from the baseline policy (``PolicyState.prior``)."""
        self.month_offset = months
        self.burning_in = True
        burn_in_policy = PolicyState.baseline(self.registry)
        policy, self.policy = self.policy, burn_in_policy
        try:
            for _ in range(months):
                self.step()
                if progress is not None:
                    progress(self.month)
        finally:
            self.policy = policy
        self.start_evaluation(prior=burn_in_policy.in_force())

    def start_evaluation(self, prior: dict[str, dict[str, float]] | None = None) -> None:
        """Make the months run so far a burn-in: the next month is month 0, the record starts
        afresh, lever 24's phase-in and lever 25's evaluation start from here, the labour force
        puts employment at its natural rate, and the debt-stabilising rule steers towards the
        debt ratio reached. (A sweep's burn-in stage calls it before saving its state.)

        The rules in force in the burn-in stay in force: from month 0 only a policy's change
        from them phases in (``prior``, by default the policy that ran the burn-in fully in
        force; saved with the state, so a study's variants phase in from it)."""
        self.policy.prior = prior if prior is not None else self.policy.in_force()
        self.month_offset = self.steps
        self.burning_in = False  # the reference user cost stays where the burn-in left it
        self.recorder.restart()
        self.datacollector = mesa.DataCollector(model_reporters=self.recorder.model_reporters())
        self.government.start_evaluated_run()
        start_labour_market(self)
        self.smes.support_bits[:] = 0
        self.smes.sales_at_evaluation = self.smes.sales.copy()
        self.month = -1  # no evaluated month has run yet

    def _initialise_under_baseline(self) -> None:
        """Build the month-0 economy under the baseline policy (every lever on at its
        registry default), whatever the config's levers say: a lever changes the policy in
        force from month 0 on, never the economy a run starts from, so all variants of a
        study start from the same state (issue 16). The config's policy is restored after."""
        policy, self.policy = self.policy, PolicyState.baseline(self.registry)
        try:
            self.central_bank.set_rates()  # month 0's base rate, on which initial loan rates rest
            self._initialise()
        finally:
            self.policy = policy

    def _initialise(self) -> None:
        cfg = self.config
        n = cfg.simulation.n_smes
        rows = self.add_smes(self.draw_firms(n, cfg.economy.initial_revenue_min, entrant=False), n)
        smes = self.smes
        sales = smes.sales
        smes.employment = 12.0 * sales / (self.revenue_per_worker[smes.sector] * smes.productivity)
        smes.classify_size()
        smes.costs = self.initial_monthly_costs(rows)
        initial_sales = float(sales.sum())
        self.initial_sales = initial_sales
        self.sector_demand_share = np.bincount(smes.sector, weights=sales, minlength=len(SECTORS)) / initial_sales

        # nominal anchors of the demand side, solved so month 0 reproduces initial sales
        gov, hh, lf = cfg.government, cfg.households, cfg.large_firms
        self.procurement_budget = gov.procurement_ratio * initial_sales
        row = cfg.rest_of_world
        self.export_demand = row.export_demand_ratio * initial_sales
        self.other_spending = gov.other_spending_ratio * initial_sales
        procurement_to_smes = 0.75 * self.procurement_budget
        bias = self.policy.p02_fair_competition.large_firm_demand_bias
        lf_revenue = initial_sales
        inputs = float((inputs_per_unit(self, smes.sector, smes.productivity) * sales).sum())
        materials = inputs + n * self.overhead_cost() + float(smes.sga.sum())
        sourcing = cfg.markets.sme_input_sourcing
        from_smes = 0.0  # materials (and, under "proportional_all", services) SMEs buy from SMEs
        for _ in range(50):
            household_part = max(initial_sales - procurement_to_smes - self.export_demand - lf.sme_order_share * lf_revenue
                                 - from_smes, 0.1 * initial_sales)
            consumption = household_part / (hh.sme_consumption_share * (1 - bias))
            lf_revenue = (consumption * (1 - hh.import_share) - household_part + materials - from_smes
                          + 0.25 * self.procurement_budget)
            if row.sme_share_rule == "share":  # the imports' yuan, spent on SMEs' exports and large firms'
                self.export_demand = row.sme_export_share * hh.import_share * consumption
                lf_revenue += hh.import_share * consumption - self.export_demand
            if sourcing != "large_firms":
                purchases = inputs if sourcing == "proportional" else materials
                from_smes = initial_sales / (initial_sales + lf_revenue) * purchases
        self.large_firm_revenue = lf_revenue
        self.sme_revenue_share = initial_sales / (initial_sales + lf_revenue)
        # the rest of the world spends the yuan it earns (households' imports) on exports the
        # month after; SMEs' share of that spending is what makes month 0's SME exports
        imports = hh.import_share * consumption
        if row.sme_share_rule == "share":
            self.sme_export_share = row.sme_export_share
        else:
            self.sme_export_share = min(self.export_demand / imports, 1.0) if imports > 0 else 0.0
        household_wealth = 6.0 * consumption
        self.household_income = max((consumption - hh.consumption_from_wealth * household_wealth) / max(hh.consumption_from_income, 1e-9), 0.0)

        credit_share = (procurement_to_smes + lf.sme_order_share * lf_revenue) / initial_sales
        # stationary receivables: collect_receivables keeps payment_days / 30 months of
        # credit sales outstanding (the baseline's days: see _initialise_under_baseline)
        days = self.policy.p21_payment_arrears.payment_days
        smes.receivables = sales * credit_share * days / 30.0
        receivables_total = float(smes.receivables.sum())
        lf_part = lf.sme_order_share * lf_revenue / (lf.sme_order_share * lf_revenue + procurement_to_smes)
        self.payables = {"large_firms": receivables_total * lf_part, "government": receivables_total * (1 - lf_part)}

        has_debt = self.rng.random(n) < 0.7
        # debtors' leverage is uniform on [0, 2 x target / 0.7], so the mean over all firms is the target
        smes.debt = np.where(has_debt, cfg.banks.initial_debt_to_capital / 0.7 * smes.capital * 2.0 * self.rng.random(n), 0.0)
        smes.has_borrowed = has_debt
        smes.cash = cfg.economy.cash_buffer_months * smes.costs
        smes.profit = 0.02 * sales

        self._initialise_guarantors()
        balances = self.ledger.balances
        balances["households"] = household_wealth
        balances["large_firms"] = self.payables["large_firms"] + lf_revenue
        balances["government"] = 0.0
        balances["rest_of_world"] = imports  # last month's receipts, to be spent on exports
        self._initialise_banks()
        start_labour_market(self)
        self.government.debt_target_ratio = self.government.debt / (12.0 * (initial_sales + lf_revenue))
        balances["central_bank"] = 0.0
        balances["central_bank"] = -math.fsum(self.ledger.cash_by_sector().values())
        self.ledger.open_step()

    def _initialise_banks(self) -> None:
        """Banks' month-0 balance sheets. Deposits are the depositors' balances (households,
        large firms, SMEs, guarantors; see :mod:`sme_abm.agents.bank`); equity is the
        initial capital ratio on risk-weighted assets; reserves are the required ratio plus
        the excess-reserve ratio on deposits; what deposits and equity fund beyond loans and
        reserves is held in government bonds (the government's debt at month 0), and a bank
        whose loans and reserves exceed its deposits and equity borrows the gap from the
        central bank's standing facility."""
        b, smes = self.config.banks, self.smes
        n_banks = b.n_large + b.n_small + b.n_nondeposit
        self.banks.append({}, n_banks)
        banks = self.banks
        banks.kind[: b.n_large] = LARGE_BANK
        banks.kind[b.n_large: b.n_large + b.n_small] = SMALL_BANK
        banks.kind[b.n_large + b.n_small:] = NONDEPOSIT_LENDER
        rows = np.arange(n_banks)
        deposit_taking = banks.kind != NONDEPOSIT_LENDER
        # clients of a non-deposit lender keep their deposits at a large bank
        banks.deposit_home = np.where(deposit_taking, rows, rows % b.n_large).astype(np.int16)
        banks.loans = np.bincount(smes.bank, weights=smes.debt, minlength=n_banks)
        banks.update_risk_weighted_assets(self)
        system_loans = banks.loans[deposit_taking].sum()
        per_bank_floor = system_loans / max(deposit_taking.sum(), 1) * 0.1
        # households' and large firms' deposits are spread in proportion to the banks' SME books
        size = np.where(deposit_taking, np.maximum(banks.loans, per_bank_floor), 0.0)
        banks.deposit_share = size / size.sum()
        equity = b.initial_capital_ratio * np.maximum(banks.risk_weighted_assets, per_bank_floor)
        total_equity = equity[deposit_taking].sum()
        nondeposit_capital = self.policy.p10_multilevel_finance.nondeposit_lender_capital_share * total_equity
        equity = np.where(deposit_taking, equity, nondeposit_capital / max(b.n_nondeposit, 1))
        equity = np.maximum(equity, banks.loans * 0.05)
        if b.nondeposit_funding == "borrowing":
            # non-deposit lenders lend about their equity (PBoC, end 2019: microcredit
            # companies' loans 910.8 bn yuan, paid-in capital 862.9 bn) and borrow the rest
            equity = np.where(deposit_taking, equity, np.maximum(equity, banks.loans))
        deposits = banks.deposits
        reserves = np.where(deposit_taking, (banks.reserve_ratio() + b.excess_reserve_ratio) * np.maximum(deposits, 0.0),
                            equity - banks.loans)
        bonds = np.where(deposit_taking, deposits + equity - banks.loans - reserves, 0.0)
        banks.standing_facility = np.maximum(-bonds, 0.0)
        banks.bonds = np.maximum(bonds, 0.0)
        banks.cash = reserves - deposits
        self.government.debt = float(banks.bonds.sum())
        self.central_bank.claims_on_banks = float(banks.standing_facility.sum())
        for row in range(n_banks):
            Bank(self, row)

    def _initialise_guarantors(self) -> None:
        g = self.config.guarantors
        debt = float(self.smes.debt.sum())
        self.guarantors.append({}, g.n_guarantors + 1)
        guarantors = self.guarantors
        guarantors.cash[:-1] = g.net_assets_ratio * debt / g.n_guarantors
        guarantors.cash[-1] = g.reguarantee_fund_ratio * debt
        guarantors.small_micro_focus[: g.small_micro_focused] = True
        guarantors.is_reguarantee_fund[-1] = True
        guarantors.base_capital = guarantors.cash.copy()
        for row in range(guarantors.size):
            Guarantor(self, row)

    def _update_exporters(self) -> None:
        """A few firms a month re-draw export status, so the share tracks lever 20."""
        smes, rng = self.smes, self.rng
        draws = uniform(rng, 2 * smes.size)  # rng.random(n) twice: the same numbers
        redraw_draws, export_draws = draws[:smes.size], draws[smes.size:]
        _redraw_exporters_kernel(redraw_draws, export_draws, smes.sector, CAN_EXPORT,
                                 float(self.policy.p20_international.exporter_share), smes.exporter)


@njit
def _redraw_exporters_kernel(redraw_draws: np.ndarray, export_draws: np.ndarray, sector: np.ndarray,
                             can_export: np.ndarray, share: float,
                             exporter: np.ndarray) -> None:  # pragma: no cover - compiled
    """:meth:`SMEEconomy._update_exporters` in one pass, without its four temporary arrays;
    the numpy it replaced (the same draws, in the same order)::

        redraw = redraw_draws < 0.02
        exporter = where(redraw, can_export[sector] & (export_draws < share), exporter)
    """
    for i in range(exporter.size):
        drawn = can_export[sector[i]] & (export_draws[i] < share)
        exporter[i] = drawn if redraw_draws[i] < 0.02 else exporter[i]
