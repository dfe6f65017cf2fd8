"""Run configuration: TOML in, a validated :class:`Config` out.

A config file has the sections ``[simulation]``, ``[economy]``, ``[markets]``, ``[labour]``,
``[households]``, ``[large_firms]``, ``[government]``, ``[rest_of_world]``,
``[central_bank]``, ``[banks]``, ``[guarantors]``, ``[levers.<key>]`` and an
array ``[[shocks]]``. Every key is optional: what a file leaves out takes the
default documented in ``configs/baseline.toml``. Everything is validated with
pydantic before the model is built; any problem raises :class:`ConfigError`
with one line naming the file, the dotted key and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import re
import stat
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Mapping, cast

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from .errors import ConfigError
from .levers import load_registry

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Names of configs and experiments (they name results folders): start with a letter or digit."""

SectorName = Literal["manufacturing", "construction", "trade", "services"]
SECTORS: tuple[SectorName, ...] = ("manufacturing", "construction", "trade", "services")
N_SECTORS = len(SECTORS)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


def _per_sector(default: list[float], low: float, high: float, description: str) -> Any:
    return Field(
        default_factory=lambda: list(default),
        min_length=N_SECTORS,
        max_length=N_SECTORS,
        description=description,
        json_schema_extra={"item_range": [low, high]},
    )


class SimulationSettings(_Section):
    """Size, length and bookkeeping of one run."""

    n_smes: int = Field(10_000, ge=10, le=200_000_000, description="SMEs at the start.")
    steps: int = Field(120, ge=1, le=12_000, description="Months to simulate.")
    seed: int = Field(42, ge=0, le=2**63 - 1, description="Seed of the run's random numbers.")
    burn_in_months: int = Field(0, ge=0, le=12_000, description="Months the economy runs under the baseline policy before month 0, so a run starts from the economy's own state rather than the hand-made set-up (outputs of these months are not recorded).")
    panel_every: int = Field(12, ge=1, le=12_000, description="Months between firm-panel snapshots.")
    mesa_agents: bool = Field(True, description="One Mesa agent per SME; false runs on arrays only.")
    check_accounting: bool = Field(True, description="Check the accounting identities every step.")


class EconomySettings(_Section):
    """SME technology, demand dynamics, entry and exit (free parameters)."""

    sector_shares: list[float] = _per_sector([0.30, 0.10, 0.35, 0.25], 0, 1, "Share of SMEs per sector.")
    materials_share: list[float] = _per_sector([0.65, 0.62, 0.75, 0.40], 0, 0.95, "Bought-in inputs per yuan of sales.")
    revenue_per_worker: list[float] = _per_sector([0.35, 0.30, 0.60, 0.20], 0.01, 100, "Annual sales per worker at productivity 1, CNY m.")
    capital_output_ratio: list[float] = _per_sector([0.6, 0.35, 0.25, 0.4], 0.01, 10, "Capital per yuan of annual sales.")
    wage: float = Field(0.005, gt=0, le=1, description="Monthly wage per worker at month 0, CNY m (then set by the wage rule, [labour]).")
    depreciation_rate: float = Field(0.08, ge=0, le=1, description="Annual depreciation of capital.")
    overhead_cost: float = Field(0.005, ge=0, le=10, description="Fixed cost per firm per month, CNY m (at the month-0 wage, see overhead_follows_wages).")
    overhead_follows_wages: bool = Field(True, description="Whether the fixed cost moves with the wage (a fixed cost in units of labour, as in Melitz 2003; Hopenhayn 1992 has it in units of output). Without it the fixed cost stays at overhead_cost yuan while wages grow with productivity, so it shrinks against every firm's margin and owner's outside option, and more firms survive as the economy grows (docs/calibration.md, \"Stationarity of the baseline\").")
    sga_share: float = Field(0.076, ge=0, le=0.5, description="Selling, general and administrative expenses a firm settles at in the long run, per yuan of sales (rent, administration, sales staff bought in as services); they follow sales slowly (sga_adjustment_up, sga_adjustment_down), so a firm whose sales fall carries them for a while: operating leverage. 0.076 brings SMEs' period expenses (this, the fixed overhead, fees, R&D, interest and guarantee fees) to the 8.56 yuan per 100 yuan of revenue of NBS's industrial enterprises in 2023 (8.9% at the estimate; docs/model.md 7.4a); 0 switches SG&A off.")
    sga_adjustment_up: float = Field(0.0644, ge=0, le=1, description="Share of the gap between a firm's SG&A and sga_share times its sales closed each month when sales are above them: 1 - 0.45^(1/12), so a lasting 1% rise in sales raises SG&A 0.55% within a year (Anderson, Banker and Janakiraman 2003, J. Accounting Research 41, sticky SG&A costs).")
    sga_adjustment_down: float = Field(0.0353, ge=0, le=1, description="The same when sales are below them: 1 - 0.65^(1/12), so a lasting 1% fall in sales lowers SG&A only 0.35% within a year (Anderson, Banker and Janakiraman 2003): costs are sticky downwards.")
    productivity_sd: float = Field(0.25, ge=0, le=3, description="Dispersion of log productivity.")
    demand_volatility: float = Field(0.1773, ge=0, le=1, description="Monthly sd of a firm's log demand weight. Estimated: experiments/estimation/liquidity-entry.toml (0.177 +- 0.013; docs/calibration.md), with markup pricing: more idiosyncratic demand risk than the CATS estimate (0.130), which the fat upper tail needs.")
    productivity_saves_inputs: bool = Field(False, description="Whether a firm's productivity also saves bought-in inputs: with it productivity is total factor productivity (Hicks-neutral), the inputs a unit takes are materials_share / productivity as the workers are revenue_per_worker * productivity; without it productivity is labour productivity alone and every firm needs the same inputs per unit. Plant-level productivity differences are differences in total factor productivity (Syverson 2011, JEL 49; Hsieh and Klenow 2009, QJE 124), and with inputs 40-75% of sales a labour-only productivity moves a firm's costs, and with pricing = \"markup\" its price and size, little.")
    initial_revenue_min: float = Field(0.07, gt=0, le=100, description="Smallest initial monthly sales, CNY m.")
    size_tail_exponent: float = Field(1.05, gt=0.2, le=5, description="Pareto exponent of initial sales.")
    initial_population: Literal["pareto", "entrants"] = Field("pareto", description="The set-up's firms. \"pareto\": sales drawn from a Pareto tail (size_tail_exponent) and ages uniform over 20 years. \"entrants\": a population of entrants only, the test of issue 15 that the size distribution comes from the dynamics: the same total sales spread as entrants' are (lognormal, sd 0.5 in logs, around a common mean), every firm aged 0 with its whole customer gap (docs/model.md 5); run it with a long burn-in.")
    max_initial_revenue: float = Field(33.0, gt=0, le=1e4, description="Largest initial monthly sales, CNY m.")
    cash_buffer_months: float = Field(1.5, ge=0, le=24, description="Months of costs a firm keeps as cash.")
    dividend_payout: float = Field(0.9, ge=0, le=1, description="Share of cash above the buffer paid out each month, at most the month's profit.")
    investment_speed: float = Field(0.1, gt=0, le=1, description="Share of the capital gap closed per month (when `investment_inaction_band` is 0).")
    capital_resale: bool = Field(False, description="Whether a firm sells capital it no longer needs: at the price a liquidation fetches (lever 1's `loan_recovery_rate`, 0.45 of book; Kermani and Ma 2023 find about 35%), so it keeps capital up to its desired capital at that price's user cost and sells `investment_speed` a month of what it holds beyond (costly reversibility: Abel and Eberly 1994, AER 84; Cooper and Haltiwanger 2006, REStud 73, whose plants sell more capital than they buy in 10.4% of years). Off (for now): capital is irreversible, so a shrinking firm keeps capital it does not need (docs/model.md 7.6).")
    investment_inaction_band: float = Field(0.0, ge=0, lt=1, description="Lumpy investment: each month a firm whose capital falls short of its desired capital by more than a random threshold, uniform between 0 and twice this share of it, closes the whole gap at once; below it the firm closes `investment_speed` of the gap (an (S,s) rule under random fixed costs of adjustment: Caballero and Engel 1999, Econometrica 67; Khan and Thomas 2008, Econometrica 76). 0 (for now; branch lumpy-switch sets 0.4, which gives 23% of firm-years with investment above 20% of capital against Cooper and Haltiwanger's 18.6%) is the smooth rule alone.")
    user_cost_elasticity: float = Field(0.4, ge=0, le=3, description="Elasticity of a firm's desired capital with respect to its user cost of capital (Jorgenson 1963; Hall and Jorgenson 1967): about 0.40 on a long panel of US firms (Chirinko, Fazzari and Meyer 2011, JBES 29), 0.25 in their earlier micro estimate (1999, JPubE 74). 0 switches the cost of capital off (a pure accelerator).")
    user_cost_floor: float = Field(0.02, gt=0, le=1, description="Lowest user cost of capital a firm reckons with, per year (the loan rate plus depreciation less expected inflation is held above it, so desired capital stays finite when expected inflation is high).")
    innovative_share: float = Field(0.1, ge=0, le=1, description="Share of firms doing R&D.")
    rd_intensity: float = Field(0.03, ge=0, le=0.5, description="R&D spending per yuan of sales of innovative firms.")
    rd_success_probability: float = Field(0.02, ge=0, le=1, description="Monthly chance R&D yields a productivity gain (at rd_intensity, the R&D intensity without levers 15 and 22, when rd_success_elasticity is above 0).")
    rd_success_elasticity: float = Field(0.5, ge=0, le=2, description="Elasticity of an innovative firm's rate of successful innovation with respect to its R&D intensity: the monthly success probability is 1 - (1 - rd_success_probability)^((intensity / rd_intensity)^elasticity), a Poisson arrival whose rate rises with R&D effort per unit of size (Klette and Kortum 2004, JPE 112; Dosi, Fagiolo and Roventini 2010, JEDC 34, where the chance of an innovation rises with R&D spending). Below 1: the within-firm elasticity of patents with respect to R&D is well below one (Hall, Griliches and Hausman 1986, IER 27). 0.5 in the baseline (adopted with the estimation in experiments/estimation/adoption.toml). 0 is the old rule: R&D that levers 15 and 22 raise is a cost that brings no more innovations, which is why lever 22 lowered their count in the knockout study.")
    rd_productivity_jump: float = Field(0.06, ge=0, le=1, description="Productivity gain of a successful innovation.")
    digital_adoption_probability: float = Field(0.003, ge=0, le=1, description="Monthly adoption chance with no subsidy.")
    digital_adoption_cost: float = Field(0.05, ge=0, le=100, description="Cost of digital adoption, CNY m.")
    loss_months_to_exit: int = Field(9, ge=1, le=120, description="Consecutive months of profit below the owner's outside option (owner_outside_wages) after which the owners close the firm (or hand it to the lender, if it is worth less than its debt).")
    owner_sees_costs_adjust: bool = Field(True, description="The owner judges a month by the profit the firm would make at the costs it is adjusting to: SG&A at sga_share of the month's sales rather than the sticky level sized for its old sales (they follow sales within a few years, Anderson, Banker and Janakiraman 2003), and depreciation only on the capital the month's sales need (capital beyond it is sunk, and is shed by not replacing it). The value of continuing depends on the firm's demand and costs, not on costs it is shedding (Hopenhayn 1992, Econometrica 60). Off, the month's accounting profit, so a firm whose sales fell closes after loss_months_to_exit months of carrying costs sized for its old sales, whatever its size (docs/model.md 7.10, 7.10a). On in the baseline (adopted with experiments/estimation/adoption.toml).")
    owner_outside_wages: float = Field(0.6939, ge=0, le=20, description="The owner's outside option, in monthly wages: a month in which the firm's profit falls short of it counts towards closure (loss_months). An owner runs a firm while it pays what she would accept instead of working for a wage (Lucas 1978, Bell J. Econ. 9, span of control; exit when the value of continuing falls below the outside option, Hopenhayn 1992, Econometrica 60); below 1 because owners value being their own boss: US entrepreneurs accept about 35% lower earnings than comparable employees (Hamilton 2000, JPE 108). Estimated: experiments/estimation/liquidity-entry.toml (0.69 +- 0.41; docs/calibration.md). Below one wage, as Hamilton (2000) finds. 0 counts accounting losses only.")
    entrant_debt_share: float = Field(0.5, ge=0, le=1, description="Share of an entrant's start-up cost (its capital and two months of costs) borrowed from its bank, priced on the bank's estimate of its default risk; the owners advance the rest. New firms rely heavily on outside debt, mostly bank loans (Robb and Robinson 2014, RFS 27, Kauffman Firm Survey). Project assumption for China, to be estimated (issue 17).")
    entry_wealth_constraint: bool = Field(True, description="Liquidity-constrained entry (Evans and Jovanovic 1989, JPE 97): a would-be entrant starts only if its owners' liquid wealth covers what they must advance: the start-up cost less the start-up loan the bank grants (all of it, if the bank refuses) and less lever 14's grant, but at least the capital bought now; otherwise the start-up is called off before it trades. So a start-up loan (and lever 10's first-loan collateral relief, lever 14's grant) lets firms enter, not only moves their financing from owners to banks. Off, owners always advance what the bank refuses.")
    entrant_owner_wealth: float = Field(2.0, gt=0, le=1000, description="Median ratio of a would-be entrant's owners' liquid wealth to its start-up cost (its capital and two months of costs). Project assumption, to be estimated (issue 17): chosen so that most entrants' owners can advance their share, as the evidence that entry is flat in wealth over most of the distribution suggests (Hurst and Lusardi 2004, JPE 112; Fairlie and Krashinsky 2012, Rev. Income Wealth 58, find it rising). Acts only with entry_wealth_constraint.")
    entrant_owner_wealth_dispersion: float = Field(1.56, ge=0, le=5, description="Standard deviation of the log of that ratio across entrants (lognormal, independent of the firm's productivity and size, as in Evans and Jovanovic 1989). 1.56 is the lognormal dispersion of a wealth Gini of 0.73, China's household net wealth in 2012 (Xie and Jin 2015, Chinese Sociological Review 47, CFPS): sigma = sqrt(2) * Phi^-1((1 + 0.73) / 2). Acts only with entry_wealth_constraint.")
    severance_months_per_year: float = Field(1.0, ge=0, le=3, description="Months of wage owed to each worker per year of service when a firm closes. Source: Labor Contract Law of the PRC, arts. 46-47 (one month's wage per full year of service).")
    mean_job_tenure_years: float = Field(3.9, ge=0, le=40, description="Years of service a firm's workers have on average, at most the firm's age; sets the severance owed on closure. Source: Shanghai Labour and Social Security Bureau records of 950,000 workers (2006): mean tenure 3 years 10 months; LinkedIn's 2014 China survey: 34 months.")
    score_default_scale: float = Field(0.0, ge=0, le=10, description="Retired stand-in (issue 14), kept to compare with earlier results: each month a firm defaults with this multiple of one twelfth of its annual default probability by the scoring model (0.7 times that if trained). 0 (the default) leaves only economic defaults (cash flow, negative equity, closures below the debt) and the small exogenous hazard.")
    exogenous_default_rate: float = Field(0.005, ge=0, le=1, description="Annual probability that a firm defaults for reasons outside its accounts (the owner's death or illness, fraud, a dispute); small, so that defaults come from cash-flow and balance-sheet insolvency. Project assumption.")
    entry_rate: float = Field(0.008503, ge=0, le=1, description="Would-be entrants per month per initial SME. Estimated: experiments/estimation/liquidity-entry.toml (0.0085 +- 0.0011; docs/calibration.md): some of them cannot fund their start-up (entry_wealth_constraint).")
    entrant_revenue: float = Field(0.0622, gt=0, le=100, description="Median monthly sales of an entrant, CNY m, at month-0 prices and customer bases (with entrants_track_incumbents, scaled to what a customer base buys now). Estimated: experiments/estimation/liquidity-entry.toml (0.062 +- 0.012; docs/calibration.md). Entrants' employment is 6.5 against SAIC's 6.2.")
    growth_drift: float = Field(0.0, ge=-0.1, le=0.1, description="Common monthly drift of log demand weights.")
    customer_gap_at_entry: float = Field(0.693, ge=0, le=5, description="How far below its mature customer base a firm starts, in log points: log 2 = 0.693, the lower end of the evidence (an entrant reaches about twice its entry size as it wins its customers; docs/model.md 7.6). 0 switches customer accumulation off.")
    customer_gap_dispersion: float = Field(0.0, ge=0, le=3, description="Ex-ante heterogeneity in growth potential: each firm's customer gap at entry is drawn as max(customer_gap_at_entry + this sd * N(0,1), 0) log points instead of the same gap for all, so a few entrants are born with a market several times their entry size to win (gazelles) and most with little. Pugsley, Sedlacek and Sterk 2021 (AER 111) find that ex-ante differences in firms' growth profiles account for most of the dispersion of size; Luttmer 2011 (REStud 78) that random growth alone forms the size distribution's tail far too slowly. The owner's entry decision counts its own gap. 0 (for now; docs/calibration.md, trial of 2026-12-07) gives every entrant the same gap.")
    unserved_customer_loss: float = Field(0.5, ge=0, le=2, description="Elasticity of a firm's customer base to the share of its demand it served this month: the base is multiplied by served**this (0.5: a firm that serves 90% of its demand keeps 94.9% of its customers; the lost ones go to the sector's other firms). Customers' memory of being turned away, as unfilled demand lowers a firm's competitiveness and market share in Dosi, Fagiolo and Roventini 2010 (JEDC 34). Not estimated (docs/model.md 7.6).")
    gains_won_gradually: bool = Field(False, description="A firm wins the customers a good demand draw brings as it wins its entry gap: the positive part of the month's shock (demand_volatility times a standard normal) is added to its customer gap, won at customer_accumulation a month and counted in the capacity it plans (planned_units), while a bad draw loses customers at once. Customer capital is built slowly and lost quickly (Gourio and Rudanko 2014, REStud 81; Foster, Haltiwanger and Syverson 2016, JME 79), so a firm sees its new customers coming and builds capacity for them instead of turning them away; without it a good draw beyond the 10% capacity cushion is partly undone within months (unserved_customer_loss) while a bad one is kept, and growth reverses (docs/calibration.md, 'Why the long-run tail stays thin'). Off (for now): every draw moves the customer base at once.")
    capacity_plan_months: int = Field(12, ge=0, le=120, description="Months ahead of the customers it is still winning (its customer gap) for which an incumbent plans its capital: planned_units = units * exp(customer_gap * (1 - (1 - customer_accumulation)**this)). 12: the customers it expects within a year. A shorter horizon holds less idle capacity for customers not yet won; it matters mostly with gains_won_gradually, under which every firm carries a gap. Entrants' plan (entrants_plan_capacity) keeps its year.")
    size_thresholds_follow_wages: bool = Field(False, description="MIIT's sales thresholds for the size classes (3, 20 and 400 CNY m a year) move with the wage from month 0 of the set-up, as the fixed cost does with overhead_follows_wages, so that a firm's class reads its size against the economy's nominal scale. Over a burn-in of centuries nominal sales per worker grow about 14-fold, and with fixed thresholds medium firms vanish (a firm of 80 workers then sells 400 CNY m and counts as large, leaving the SME procurement channels), which thins the upper tail (docs/calibration.md). Off (the baseline for now): the 2011 thresholds in nominal yuan throughout; the employment thresholds are unchanged either way.")
    high_growth_share: float = Field(0.0, ge=0, le=1, description="Share of entrants born into a high-growth phase, in which their market keeps widening: the customer gap grows by high_growth_rate log points a month, and the firm wins it as it wins its entry gap (customer_accumulation), building capacity ahead of it. Type dependence in firm growth: a few gazelles among entrants (Pugsley, Sedlacek and Sterk 2021, AER 111; Haltiwanger, Jarmin, Kulick and Miranda 2017, NBER CRIW) carry the size distribution's tail out in decades, where random growth alone takes centuries (Luttmer 2011, REStud 78; Gabaix, Lasry, Lions and Moll 2016, Econometrica 84; docs/calibration.md). The owner does not know the firm's type at entry. 0 (off in the baseline for now): no firm has a phase and nothing is drawn.")
    high_growth_rate: float = Field(0.02, ge=0, le=0.5, description="Log points a month by which a firm's customer gap widens in a high-growth phase (0.02: about 24% a year once the firm keeps up; the OECD-Eurostat definition of a high-growth enterprise is over 20% a year for three years). Acts only with high_growth_share above 0.")
    high_growth_end_rate: float = Field(0.028, ge=0, le=1, description="Chance a month that a high-growth phase ends (0.028: a mean of three years). Growth episodes rarely repeat (Daunfeldt and Halvarsson 2015, Small Business Economics 44), so an ended phase does not return. Acts only with high_growth_share above 0.")
    entrants_plan_capacity: bool = Field(False, description="Entrants start with the capital their plan needs for the customers they expect to win in their first year (their sales times exp(customer_gap * (1 - (1 - customer_accumulation)**12)), as incumbents plan capital: planned_units), funded like the rest of the start-up outlay; off, with the capital their first month's sales need (5% spare), so they start at full capacity while their customer base grows.")
    transitory_demand_volatility: float = Field(0.0, ge=0, le=1, description="Sd of a monthly mean-one lognormal factor on each firm's orders that does not touch its customer base: the month-to-month scatter of orders (timing, weather, one-off jobs) around the demand its customers bring, apart from the permanent shocks to the customer base (demand_volatility). The decomposition of firm-level demand into a persistent and a transitory part follows Foster, Haltiwanger and Syverson 2016 (JME 79) and the income-process literature's permanent/transitory split. 0 (off in the baseline for now): all demand shocks are permanent.")
    entry_decision: bool = Field(True, description="Would-be entrants enter only if the monthly profit they expect once their customers are won (their drawn sales times exp(customer_gap_at_entry), at the gross margin their productivity gives at their sector's price, less the overhead, the SG&A those sales carry (sga_share) and depreciation) covers the owner's outside option (owner_outside_wages): occupational choice at entry (Lucas 1978, Bell J. Econ. 9; free entry, Hopenhayn 1992). Without it entrants doomed from their first month are drawn and close nine months later (docs/calibration.md, New firms).")
    entrants_track_incumbents: bool = Field(True, description="Entrants are drawn relative to the economy as it is now: productivity around their sector's current mean log productivity (entrants are not less productive than incumbents, Foster, Haltiwanger and Syverson 2008, AER 98; entrants draw from the industry's current distribution, Dosi, Fagiolo and Roventini 2010, JEDC 34), and their sales, capital and costs at what their customer base buys now (their sector's demand per unit of customer base). Off, entrants are drawn on the month-0 distribution and scale, so they fall behind incumbents as productivity grows (firms under two years old 0.10-0.11 log points less productive than the rest after 20 years, 3,000 SMEs). On in the baseline since the SG&A estimate; with it alone, without SG&A, the SME count rose 20% in 20 years (docs/calibration.md).")
    customer_accumulation: float = Field(0.06953, ge=0, le=1, description="Share of its remaining customer gap a firm wins each month (0.070: a half-life of about 10 months; Foster, Haltiwanger and Syverson 2016 find a slow demand build-up). Acts only with customer_gap_at_entry above 0. Estimated: experiments/estimation/liquidity-entry.toml (0.070 +- 0.018; docs/calibration.md).")


class MarketSettings(_Section):
    """Prices and competition in the goods market."""

    price_elasticity: float = Field(3.0, gt=1, le=20, description="Elasticity of substitution between firms' goods: a firm's share of spending falls with its price relative to its sector's by this elasticity less one (sigma = 3, Hsieh and Klenow 2009, QJE 124, for Chinese manufacturing).")
    price_adjustment: float = Field(0.02, ge=0, le=0.5, description="Largest monthly price change (a uniform draw up to it, Assenza, Delli Gatti and Grazzini 2015 rule): about 1% a month on average, as firms change prices about every 9 months by about 10% (Nakamura and Steinsson 2008, QJE 123).")
    normal_utilisation: float = Field(0.8, gt=0, le=1, description="Capacity utilisation below which a firm has spare capacity and, if dearer than its sector, cuts its price (industrial capacity utilisation 75-77% in 2023, NBS).")
    sme_input_sourcing: Literal["large_firms", "proportional", "proportional_all"] = Field("proportional", description="Where SMEs buy their materials and services. \"large_firms\": all from the large-firm sector, so SMEs' share of enterprise revenue cannot pass about 1 / (1 + materials share) of it. \"proportional\": buyers do not choose suppliers by size: each SME orders the share of its materials that SMEs held of enterprise revenue last month from SMEs (the proportionality assumption by which input-output tables split a product's use between sources, as for imports: OECD TiVA; Johnson and Noguera 2012, JIE 86), on the month's orders from final demand, allocated among SMEs as large firms' orders are (customer base and relative price), served from capacity left after the other channels and paid in cash within the month; the rest of its materials it buys from large firms (docs/model.md 7.3b). \"proportional_all\": the same rule applied to all that SMEs buy for production, materials and services (overhead and SG&A), including the materials the orders themselves take (the Leontief closure), so that a buyer's share from SMEs is SMEs' revenue share, not the smaller share of its first-round materials that \"proportional\" orders. Proportional in the baseline (adopted with experiments/estimation/adoption.toml).")
    pricing: Literal["cats", "markup"] = Field("markup", description="How SMEs set prices. \"cats\": the CATS rule (Assenza, Delli Gatti and Grazzini 2015): prices move towards the market's with excess demand or spare capacity, whatever the firm's costs, above a floor at unit variable cost. \"markup\": each firm's normal price is its sector's markup over its own unit variable cost, and it resets its price to it with probability price_reset_probability a month (Calvo 1983): a low-cost firm is cheaper and, at price_elasticity, sells more, so size follows cost and a firm's margin over variable cost does not depend on its size or luck (monopolistic competition, Melitz 2003; fixed markups on unit cost as in Dosi, Fagiolo and Roventini 2010's consumption-good firms and Eurace). The sector markup is the one the cost calibration implies: 1 over the unit variable cost of a firm of productivity 1 at the month-0 wage (compliance time aside), less 1 (0.22 in manufacturing, 0.43 in services; docs/model.md 7.3a). Markup in the baseline (adopted with experiments/estimation/adoption.toml); \"cats\" is the rule of the baseline before it.")
    price_index: Literal["arithmetic", "ces"] = Field("ces", description="How a sector's SME price index, the price households compare SMEs' goods with large firms' at and the reference of the CATS rule, averages its firms' prices. \"arithmetic\": the customer-base weighted mean of prices. \"ces\": the price index the CES demand system implies (Dixit and Stiglitz 1977), the customer-base weighted power mean of prices with exponent 1 - price_elasticity, which counts a dear firm by the sales it keeps rather than by its customer base (docs/model.md 7.3a).")
    rationed_demand_search: float = Field(0.0, ge=0, le=1, description="Share of the demand an SME cannot serve whose buyers look for the good, that month, at the sector's other SMEs with spare capacity before they buy from large firms (households, government, the rest of the world) or drop the order (large firms' supply chains): one round of the CATS consumers' search, in which a buyer who finds its firm sold out visits the next firm on its list (Delli Gatti et al. 2011, Macroeconomics from the Bottom-up, ch. 3; Assenza, Delli Gatti and Grazzini 2015, JEDC 50). The searched demand is offered to those SMEs in proportion to their customer bases times relative price and capped by their spare capacity; it is their sales, not their customers (docs/model.md 7.3). 0 (the baseline for now): unserved demand leaves the SME sector at once.")
    price_reset_probability: float = Field(0.111, gt=0, le=1, description="With pricing = \"markup\", the chance a month that a firm resets its price to its normal price (Calvo 1983): 1/9, prices changing about every 9 months (Nakamura and Steinsson 2008, QJE 123).")
    scarcity_pricing: float = Field(0.0, ge=0, le=0.5, description="With pricing = \"markup\", the largest monthly price rise of a firm whose demand last month exceeded its capacity: it raises its price by a uniform share up to this, at its Calvo reset (on its normal price) or between resets, so its price rations the demand it cannot serve instead of turning buyers away (the excess-demand arm of the CATS rule, Assenza, Delli Gatti and Grazzini 2015, JEDC 50; firms facing demand above capacity raise prices, Fabiani et al. 2006, IJCB 2(3)); a firm priced above its normal price whose utilisation is under markets.normal_utilisation cuts it by as much, down to the normal price, so the premium lasts as long as the shortage. Unserved buyers leave a firm's customer base (economy.unserved_customer_loss); rationed by price, the customer base stays and only the month's orders fall. 0 (the baseline for now): markup firms ration by quantity alone (docs/model.md 7.3a).")

    @property
    def sources_from_smes(self) -> bool:
        """Whether SMEs buy some of their inputs from SMEs (``sme_input_sourcing`` not "large_firms")."""
        return self.sme_input_sourcing != "large_firms"


class LabourSettings(_Section):
    """The wage rule (sme_abm/markets/labour.py)."""

    natural_unemployment: float = Field(0.052, ge=0, lt=1, description="Unemployment rate at which wages grow with prices and productivity only (surveyed urban unemployment 5.2% on average in 2023, NBS).")
    indexation: float = Field(1.0, ge=0, le=2, description="Share of last month's SME price inflation passed into wages.")
    productivity_passthrough: float = Field(1.0, ge=0, le=2, description="Share of SMEs' average productivity growth passed into wages (1 keeps the labour share constant, Kaldor's stylised fact).")
    tightness: float = Field(0.0, ge=0, le=2, description="Monthly wage growth per unit of employment rate above its natural level (a wage Phillips curve). Off in the baseline: with large firms' prices as the numeraire a wage cut lowers demand before it lowers prices, and a slope of 0.04 (about 0.5 a year) set off a deflationary spiral.")


class HouseholdSettings(_Section):
    """The household sector (an aggregate)."""

    consumption_from_income: float = Field(0.85, ge=0, le=1, description="Share of last month's income consumed.")
    consumption_from_wealth: float = Field(0.02, ge=0, le=1, description="Share of wealth consumed per month.")
    income_tax_rate: float = Field(0.08, ge=0, le=1, description="Average tax on household income.")
    sme_consumption_share: float = Field(0.6, ge=0, le=1, description="Share of consumption addressed to SME products: SMEs are reported to produce about 60% of China's final goods and services, \"60% of GDP\" (NDRC vice-minister Ou Xinqian, 2007; MIIT minister Miao Wei, 2012).")
    import_share: float = Field(0.06, ge=0, le=1, description="Share of consumption spent on imports.")


class LargeFirmSettings(_Section):
    """Large firms (an aggregate): they buy from SMEs on credit."""

    sme_order_share: float = Field(0.12, ge=0, le=1, description="Share of large firms' revenue ordered from SMEs.")
    wage_share: float = Field(0.45, ge=0, le=1, description="Share of large firms' revenue paid as wages.")
    tax_rate: float = Field(0.08, ge=0, le=1, description="Taxes of large firms per yuan of revenue.")


class GovernmentSettings(_Section):
    """Taxes and spending of central and local government."""

    procurement_ratio: float = Field(0.05, ge=0, le=1, description="Monthly procurement budget per yuan of initial monthly SME sales.")
    open_competition_sme_share: float = Field(0.65, ge=0, le=1, description="Share of open procurement SMEs win without reservation.")
    cit_rate: float = Field(0.25, ge=0, le=1, description="Standard corporate income tax rate.")
    vat_rate: float = Field(0.13, ge=0, le=1, description="VAT on value added of general taxpayers.")
    admin_fee_share: float = Field(0.003, ge=0, le=0.2, description="Administrative fees per yuan of sales.")
    receivable_default_rate: float = Field(0.004, ge=0, le=1, description="Monthly share of receivables buyers fail to pay.")
    other_spending_ratio: float = Field(0.2, ge=0, le=10, description="Monthly other government spending (wages, transfers) per yuan of initial monthly SME sales.")
    fiscal_rule: Literal["deficit_financed", "debt_stabilising", "budget_neutral"] = Field(
        "debt_stabilising",
        description="How the budget closes: debt_stabilising (the default: other spending answers debt above "
        "its month-0 ratio to annual output, a Bohn 1998 fiscal reaction, so a lever's cost is paid for in "
        "part by later spending cuts); deficit_financed (spending as planned, deficits in bonds; the default "
        "before 2026-12-06); budget_neutral (each month's lever costs offset by a lump-sum tax on households "
        "in the same month).")
    bond_rate: float = Field(0.026, ge=0, le=0.5, description="Annual interest on government bonds (10-year CGB yield about 2.6% at end 2023, ChinaBond).")
    bank_bond_share: float = Field(0.67, ge=0, le=1, description="Share of new bonds banks take (commercial banks hold about two thirds of government bonds, ChinaBond custody statistics).")
    debt_feedback: float = Field(0.054, ge=0, le=5, description="Debt-stabilising rule: other spending falls by this share a year of debt above target, so the primary surplus rises by this much per unit of debt to annual output above it: Bohn's (1998, QJE 113) estimated response of the US primary surplus to debt, 0.054 (0.3 before 2026-12-06, which had no source). It stabilises debt to output whenever it exceeds the bond rate less nominal growth.")
    case_lapse_months: int = Field(12, ge=1, le=120, description="Months a support case (grant, subsidy, training place, relief) may wait for the administration before it lapses: budgets are annual, and funds not paid out within the year are recovered (Budget Law of the PRC; lever 24).")


class RestOfWorldSettings(_Section):
    export_demand_ratio: float = Field(0.06, ge=0, le=2, description="Monthly foreign demand for SME goods per yuan of initial monthly SME sales.")
    sme_share_rule: Literal["sales_ratio", "share"] = Field("share", description="How SMEs' share of the rest of the world's spending is set at month 0 (the rest of the world spends what households' imports paid it, docs/model.md 7.3). \"sales_ratio\": export_demand_ratio times SMEs' initial sales over households' imports, capped at 1; in the baseline the cap binds, so SMEs take all of it, large firms export nothing and lever 20's export_demand_boost has no effect. \"share\": sme_export_share, a data figure, which lever 20's boost raises. share in the baseline since 2026-12-07 (sales_ratio before).")
    sme_export_share: float = Field(0.68, ge=0, le=1, description="SMEs' share of the rest of the world's spending when sme_share_rule is \"share\": SMEs' share of China's exports, 68% (China Association of Small and Medium Enterprises, reported by Xinhua, 2009-12-27; Nankai University's SME index gave 70% of foreign trade for 2005).")


class CentralBankSettings(_Section):
    loan_prime_rate: float = Field(0.0345, ge=0, le=0.5, description="One-year loan prime rate at month 0 and the Taylor rule's neutral rate.")
    inflation_target: float = Field(0.0, ge=-0.1, le=0.2, description="Inflation the Taylor rule aims at (0: the model has no trend in the price level; China's 3% CPI target is a ceiling).")
    taylor_inflation: float = Field(1.5, ge=0, le=10, description="Response of the LPR to inflation above target (Taylor 1993).")
    taylor_output: float = Field(0.5, ge=0, le=10, description="Response of the LPR to the output gap (Taylor 1993).")
    rate_smoothing: float = Field(0.9, ge=0, le=1, description="Weight of last month's LPR in this month's (interest-rate smoothing).")
    benchmark_rate: float = Field(0.0435, ge=0, le=0.5, description="Old one-year benchmark lending rate.")
    deposit_rate: float = Field(0.015, ge=0, le=0.5, description="Rate banks pay on household and large-firm deposits (one-year time-deposit benchmark rate 1.5%, PBoC).")
    demand_deposit_rate: float = Field(0.0035, ge=0, le=0.5, description="Rate banks pay on SMEs' and guarantors' transaction deposits (demand-deposit benchmark rate 0.35%, PBoC).")
    standing_facility_rate: float = Field(0.0265, ge=0, le=0.5, description="Rate of the central bank's overnight lending to banks short of reserves (Standing Lending Facility overnight rate 2.65% after August 2023, PBoC).")
    collateral_haircut: float = Field(0.1, ge=0, le=1, description="Haircut on government bonds pledged at the standing facility (project assumption; the facility lends against high-grade collateral, PBoC).")
    reserve_ratio: float = Field(0.08, ge=0, le=1, description="Required reserve ratio of large banks.")


class BankSettings(_Section):
    n_large: int = Field(5, ge=1, le=100, description="Large state banks.")
    n_small: int = Field(10, ge=0, le=1000, description="Small local banks.")
    n_nondeposit: int = Field(3, ge=0, le=100, description="Non-deposit lenders.")
    large_bank_client_share: float = Field(0.55, ge=0, le=1, description="Share of SMEs whose main bank is large.")
    min_capital_ratio: float = Field(0.105, ge=0, le=1, description="Minimum capital to risk-weighted assets.")
    initial_capital_ratio: float = Field(0.1506, ge=0, le=1, description="Capital ratio at the start, and the ratio banks manage towards (commercial banks' capital adequacy ratio 15.06% at end 2023, NFRA).")
    excess_reserve_ratio: float = Field(0.016, ge=0, le=1, description="Reserves banks hold above the requirement at the start, per yuan of deposits (excess reserve ratio about 1.6% at end 2023, PBoC Monetary Policy Report).")
    markup: float = Field(0.01525, ge=0, le=0.5, description="Annual margin of SME loans over the base rate. Estimated: experiments/estimation/liquidity-entry.toml (0.0153 +- 0.0018; docs/calibration.md).")
    nondeposit_funding: Literal["netted", "borrowing"] = Field("borrowing", description="How non-deposit lenders (lever 10) fund loans beyond their equity. \"borrowing\": they borrow from the large bank where their clients keep their deposits, at the SME base rate plus `markup` (a bank loan to a non-bank firm), up to `nondeposit_borrowing_limit` times their net assets, drawing what they lack at the month's end and repaying what they do not need; at set-up their equity is at least their loan book (China's microcredit companies lent 910.8 bn yuan on paid-in capital of 862.9 bn at end 2019, PBoC). \"netted\": no funding instrument: a lender's negative cash is netted against the other banks' reserves without interest, and the set-up gives them equity of a tenth of the banks' in total, less than their book, so their funding headroom is nil and they book no new loans once burned in (docs/model.md 7.6b). Borrowing in the baseline (adopted with experiments/estimation/adoption.toml).")
    nondeposit_borrowing_limit: float = Field(1.0, ge=0, le=10, description="With nondeposit_funding = \"borrowing\", the most a non-deposit lender may owe its bank, as a multiple of its net assets: bank and shareholder loans at most 1 times net assets under the CBIRC's 2020 Notice on Strengthening the Supervision and Administration of Microloan Companies, which allows a further 4 times in bonds and asset-backed securities that microcredit companies barely use (loans about 1.06 times paid-in capital, end 2019). The limit binds new lending; a lender over it after losses stops lending and repays from its book.")
    funding_cost: float = Field(0.025, ge=0, le=0.5, description="Banks' marginal annual funding cost (what re-lending replaces).")
    risk_premium_share: float = Field(0.5307, ge=0, le=2, description="Share of the expected loss banks price into SME loan rates (window guidance on inclusive loans keeps it below 1). Calibrated: experiments/calibration run 20261129-124432.")
    large_firm_markup: float = Field(0.0025, ge=-0.1, le=0.5, description="Margin of large-firm loans over the LPR (for the SME spread): 4.78% small/micro rate (NFRA 2023) less the 110 bp spread (PBoC 2021) less the 3.45% LPR.")
    max_default_probability: float = Field(0.06, ge=0, le=1, description="Highest annual default probability a bank lends at.")
    insolvency_cost_share: float = Field(0.22, ge=0, lt=1, description="Share of a defaulted firm's seized collateral that insolvency proceedings cost (court, administrator, lawyers' and auctioneers' fees, paid to households when the collateral is sold). Source: World Bank Doing Business 2019, China, resolving insolvency: cost 22% of the estate.")
    loan_to_value: float = Field(0.6, ge=0, le=1, description="Loan value of a yuan of capital.")
    loan_maturity_months: int = Field(24, ge=1, le=360, description="Months over which loans amortise.")
    initial_debt_to_capital: float = Field(0.4, ge=0, le=5, description="SME debt per yuan of capital at the start, and the target leverage of `leverage_adjustment`.")
    leverage_adjustment: float = Field(0.1, ge=0, le=1, description="Share of the gap to the target debt (`initial_debt_to_capital` x capital) a firm below it adds to its credit demand each month: partial adjustment towards a target leverage (trade-off theory; Flannery and Rangan 2006, JFE 79, estimate about a third of the gap a year, slower than this 0.1 a month). A stand-in for the reasons firms hold debt that the model does not yet represent (issue 14 asks for 0); 0 leaves only the financing gap.")
    refused_wait_months: int = Field(6, ge=0, le=120, description="Months a refused firm that does not look for another bank, or a discouraged one (lever 18), waits before it applies again, so a refusal is one rationing episode, not a refusal a month. Most refused firms do not apply again soon: 72% of UK SMEs refused before were reluctant to apply again (Cowling, Liu and Calabrese 2022, Small Business Economics); the wait is set to the six-month horizon over which the ECB's SAFE survey asks about applications and refusals.")
    refused_search_probability: float = Field(0.28, ge=0, le=1, description="Probability that a refused firm moves to another lender (drawn as an entrant's lender is, by size class, among those with capital to lend) and applies there the next month instead of waiting: the 28% of refused UK SMEs not reluctant to apply again (Cowling, Liu and Calabrese 2022, Small Business Economics).")
    bank_switch_rate: float = Field(0.01, ge=0, le=1, description="Monthly probability that a firm moves its banking relationship (deposits and loan facility) to another lender for reasons of its own: about 11% a year, a median relationship of about 6 years, near the 4-year median duration of Norwegian listed firms' bank relationships (Ongena and Smith 2001, JFE 61), which are shorter than small firms' as listed firms hold several; firms do switch and the new bank lends to them (Ioannidou and Ongena 2010, JF 65). A project assumption within that evidence.")
    excess_capital_payout: float = Field(0.0833, ge=0, le=1, description="Share of its capital above the target ratio a bank pays out each month on top of its profit (about a year to return to target; banks adjust towards target capital ratios, Berger, DeYoung, Flannery, Lee and Oztekin 2008, JFSR 34).")
    risk_learning_months: float = Field(36.0, ge=1, le=600, description="Memory, in months, of the exponentially weighted averages from which banks re-calibrate their default-probability model and estimate loss given default (Basel internal-ratings rules ask for PD and LGD estimates that follow realised rates, BCBS 2006 paras 447-468). Project assumption.")
    pd_base: float = Field(-3.330, ge=-20, le=5, description="Log-odds of annual default at zero leverage and margin. Calibrated: experiments/calibration run 20261129-124432.")
    pd_leverage: float = Field(2.5, ge=0, le=50, description="Log-odds per unit of debt over assets.")
    pd_margin: float = Field(8.0, ge=0, le=100, description="Log-odds per unit of negative profit margin.")
    pd_liquidity: float = Field(0.5, ge=0, le=50, description="Log-odds per month of costs not covered by cash.")


class GuarantorSettings(_Section):
    n_guarantors: int = Field(4, ge=1, le=100, description="Government financing guarantors (plus one re-guarantee fund).")
    small_micro_focused: int = Field(2, ge=0, le=100, description="How many of them mainly serve small and micro firms.")
    net_assets_ratio: float = Field(0.008, ge=0, le=1, description="Guarantors' net assets per yuan of initial SME debt.")
    reguarantee_fund_ratio: float = Field(0.004, ge=0, le=1, description="Re-guarantee fund's capital per yuan of initial SME debt.")
    max_default_probability: float = Field(0.12, ge=0, le=1, description="Highest annual default probability a guarantor covers.")
    dividend_payout: float = Field(0.5, ge=0, le=1, description="Share of positive profit paid to the government.")
    operating_cost: float = Field(0.005, ge=0, le=0.1, description="Guarantors' annual operating cost per yuan guaranteed, the base of their risk-based fee (a guarantee's fee is this plus the guarantor's own expected loss, scaled down to keep the average within lever 13's fee cap). Project assumption.")


class ShockSettings(_Section):
    """A scheduled shock: a demand collapse or a natural disaster."""

    kind: Literal["demand", "disaster"]
    start: int = Field(ge=0, le=12_000, description="First month of the shock.")
    duration: int = Field(1, ge=1, le=12_000, description="Months it lasts.")
    depth: float = Field(0.3, ge=0, le=1, description="Share of demand lost (demand) or of capital destroyed (disaster).")
    share: float = Field(1.0, ge=0, le=1, description="Share of firms in the sectors that are hit.")
    sectors: list[SectorName] = Field(
        default_factory=lambda: list(SECTORS), min_length=1
    )


@lru_cache(maxsize=1)
def _levers_model() -> type[BaseModel]:
    """A pydantic model with one sub-model per lever, built from the registry."""
    lever_models: dict[str, Any] = {}
    for lever in load_registry().levers:
        fields: dict[str, Any] = {"enabled": (bool, Field(True, description="Switch the lever on or off."))}
        for name, param in lever.parameters.items():
            low, high = param.range
            fields[name] = (float, Field(param.default, ge=low, le=high, description=param.description))
        model = create_model(  # type: ignore[call-overload]
            f"Lever_{lever.key}", __base__=_Section, **fields
        )
        lever_models[lever.key] = (model, Field(default_factory=model))
    return create_model("Levers", __base__=_Section, **lever_models)  # type: ignore[call-overload]


class Config(_Section):
    """A complete, validated run configuration."""

    name: str = Field("run", pattern=NAME_PATTERN, description="Name used for the results folder.")
    description: str = Field("", max_length=2000)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    economy: EconomySettings = Field(default_factory=EconomySettings)
    markets: MarketSettings = Field(default_factory=MarketSettings)
    labour: LabourSettings = Field(default_factory=LabourSettings)
    households: HouseholdSettings = Field(default_factory=HouseholdSettings)
    large_firms: LargeFirmSettings = Field(default_factory=LargeFirmSettings)
    government: GovernmentSettings = Field(default_factory=GovernmentSettings)
    rest_of_world: RestOfWorldSettings = Field(default_factory=RestOfWorldSettings)
    central_bank: CentralBankSettings = Field(default_factory=CentralBankSettings)
    banks: BankSettings = Field(default_factory=BankSettings)
    guarantors: GuarantorSettings = Field(default_factory=GuarantorSettings)
    levers: Any = Field(default_factory=lambda: _levers_model()())
    shocks: list[ShockSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_consistency(self) -> "Config":
        shares = self.economy.sector_shares
        if abs(sum(shares) - 1.0) > 1e-6:
            raise _ConsistencyError("economy.sector_shares", f"must sum to 1, got {sum(shares):.6g}")
        for name in ("sector_shares", "materials_share", "revenue_per_worker", "capital_output_ratio"):
            info = EconomySettings.model_fields[name].json_schema_extra
            assert isinstance(info, dict)
            low, high = cast(list[float], info["item_range"])
            for i, value in enumerate(getattr(self.economy, name)):
                if not (low <= value <= high) or not math.isfinite(value):
                    raise _ConsistencyError(f"economy.{name}[{i}]", f"must be between {low} and {high}, got {value!r}")
        if self.guarantors.small_micro_focused > self.guarantors.n_guarantors:
            raise _ConsistencyError("guarantors.small_micro_focused", "must be at most guarantors.n_guarantors")
        g = self.levers.p13_financing_guarantee
        outside = g.bank_share + g.reguarantee_share + g.government_share
        if outside > 1.0 + GUARANTEE_SHARE_TOLERANCE:
            raise _ConsistencyError(
                "levers.p13_financing_guarantee",
                f"bank_share + reguarantee_share + government_share = {outside:.6g} exceeds 1 "
                "(the guarantor bears 1 minus their sum)")
        return self

    # -- convenience -------------------------------------------------------
    def lever(self, key: str) -> BaseModel:
        """The settings of one lever, by config key."""
        return getattr(self.levers, key)

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved config as plain data (round-trips through TOML)."""
        data = self.model_dump(mode="json")
        data["levers"] = self.levers.model_dump(mode="json")
        return data

    def to_toml(self) -> str:
        data = self.to_dict()
        header = "# Fully resolved sme-abm config: `sme-abm run` accepts it and reproduces the run.\n"
        return header + tomli_w.dumps(_strip_empty(data))

    def digest(self) -> str:
        """SHA-256 of the resolved config (canonical JSON)."""
        return config_digest(self.to_dict())


def config_digest(data: dict[str, Any]) -> str:
    """SHA-256 of a config's plain data as :meth:`Config.digest` takes it (its JSON, keys sorted)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _strip_empty(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if v not in ((), [])}
    return out


class _ConsistencyError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


# ---------------------------------------------------------------------------
# Loading, overriding and error reporting


MAX_NESTING = 32
"""Deepest nesting of tables and arrays a config, experiment or ``--set`` value may have."""


def _check_nesting(data: Any, source: str, key: str = "") -> None:
    """Refuse data nested deeper than :data:`MAX_NESTING` (checked without recursion)."""
    stack = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ConfigError(source, key, f"tables or arrays nested more than {MAX_NESTING} deep")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def parse_toml(text: str, source: str, key: str = "") -> dict[str, Any]:
    """Parse TOML text; any syntax problem, or nesting too deep, is a one-line ConfigError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, key, f"malformed TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(source, key, f"tables or arrays nested more than {MAX_NESTING} deep") from None
    _check_nesting(data, source, key)
    return data


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning every I/O or syntax problem into ConfigError.

    The file must be a regular file (a FIFO or device would block or never end) of
    UTF-8 text; a byte-order mark is allowed.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(str(path), "", "is a directory, expected a TOML file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(str(path), "", "is not a regular file (a FIFO, socket or device), expected a TOML file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text; expected a TOML file") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read ({exc.strerror})") from None
    if not text.strip():
        raise ConfigError(str(path), "", "file is empty; expected TOML tables such as [simulation]")
    return parse_toml(text, str(path))


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` (value in TOML syntax; bare words are strings)."""
    if "=" not in text:
        raise ConfigError("--set", text, "expected KEY.PATH=VALUE")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError("--set", key or text, "expected a dotted key such as simulation.n_smes")
    try:
        value = parse_toml(f"v = {raw.strip()}", "--set", key)["v"]
    except ConfigError as exc:
        if "nested" in exc.reason:
            raise
        value = raw.strip()
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-key overrides applied."""
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError("--set", dotted, f"{part} is not a table")
            node = child
        node[parts[-1]] = value
    return data


def load_config(
    source: str | Path | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    origin: str | None = None,
) -> Config:
    """Load, override and validate a config.

    Args:
        source: A TOML file path, a mapping with the same structure, or None
            for all defaults.
        overrides: Dotted keys to values, applied after the file
            (``{"levers.p13_financing_guarantee.enabled": False}``).
        origin: Name to use for the source in error messages.

    Returns:
        The validated :class:`Config`.

    Raises:
        ConfigError: On any invalid input, naming the file and the key.
    """
    if source is None:
        data: dict[str, Any] = {}
        origin = origin or "<defaults>"
    elif isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
        origin = origin or "<dict>"
    else:
        origin = origin or str(source)
        data = read_toml(source)
        data.setdefault("name", _name_from_path(Path(source)))
    if overrides:
        data = apply_overrides(data, overrides)
    return validate_config(data, origin)


def _name_from_path(path: Path) -> str:
    """A valid config name from a file name (``基线.toml`` becomes ``run``, ``my run.toml`` ``my-run``)."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "_.-") else "-" for c in path.stem)
    stem = stem.strip("-.")[:64]
    return stem if re.fullmatch(NAME_PATTERN, stem) else "run"


#: How far lever 13's loss shares may miss summing to one (rounding in hand-written configs).
GUARANTEE_SHARE_TOLERANCE = 1e-6


def check_guarantee_shares(raw_levers: Mapping[str, Any], origin: str) -> Mapping[str, Any]:
    """The guarantor's loss share is what the bank, the re-guarantee fund and the local
    government do not bear, so it is not a parameter; a config that still states it (as
    configs written before it was derived do) is accepted when the four shares sum to one
    within :data:`GUARANTEE_SHARE_TOLERANCE`, and refused, naming the key, when they do not.
    Returns the levers without the stated share."""
    lever = raw_levers.get("p13_financing_guarantee") if isinstance(raw_levers, Mapping) else None
    if not isinstance(lever, Mapping) or "guarantor_share" not in lever:
        return raw_levers
    parameters = load_registry().by_key("p13_financing_guarantee").parameters
    stated = lever["guarantor_share"]
    others = {name: lever.get(name, parameters[name].default)
              for name in ("bank_share", "reguarantee_share", "government_share")}
    numbers = [stated, *others.values()]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in numbers):
        raise ConfigError(origin, "levers.p13_financing_guarantee.guarantor_share",
                          f"must be a number, as must the other three shares (got {stated!r})")
    total = float(sum(numbers))
    if abs(total - 1.0) > GUARANTEE_SHARE_TOLERANCE:
        raise ConfigError(origin, "levers.p13_financing_guarantee.guarantor_share",
                          f"the four loss shares must sum to 1, got {total:.6g} (guarantor_share can be left out: "
                          f"the guarantor bears 1 - bank_share - reguarantee_share - government_share)")
    return {**raw_levers, "p13_financing_guarantee": {k: v for k, v in lever.items() if k != "guarantor_share"}}


#: Keys whose default no longer reproduces the model from before the key existed: each was
#: added as an option with this value (outputs unchanged), and its default changed later (the
#: adoption of 2026-12-06). A saved config (a state's, a sweep manifest's) that lacks one was
#: written by a version without it, so :func:`as_saved` reads it at this value.
VALUES_BEFORE_THE_KEY: dict[str, Any] = {
    "markets.pricing": "cats",
    "economy.owner_sees_costs_adjust": False,
    "economy.rd_success_elasticity": 0.0,
    "banks.nondeposit_funding": "netted",
    "markets.sme_input_sourcing": "large_firms",
}


def as_saved(data: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config (plain data, as a state or a sweep recorded it) with every key of
    :data:`VALUES_BEFORE_THE_KEY` it lacks set to the value that reproduces the economy it was
    saved under; other missing keys take their defaults, which are the values before they
    existed (the CHANGELOG's rule for new options)."""
    out = {section: dict(values) if isinstance(values, Mapping) else values for section, values in data.items()}
    for dotted, value in VALUES_BEFORE_THE_KEY.items():
        section, key = dotted.split(".")
        if isinstance(out.get(section), dict) and key not in out[section]:
            out[section][key] = value
    return out


def validate_config(data: Mapping[str, Any], origin: str) -> Config:
    """Validate plain data as a Config; errors become one-line ConfigErrors."""
    data = dict(data)
    raw_levers = data.pop("levers", None)
    if raw_levers is None:
        raw_levers = {}
    raw_levers = check_guarantee_shares(raw_levers, origin)
    try:
        levers = _levers_model().model_validate(raw_levers)
    except ValidationError as exc:
        raise _to_config_error(exc, data, origin, prefix=("levers",)) from None
    try:
        return Config.model_validate({**data, "levers": levers})
    except ValidationError as exc:
        raise _to_config_error(exc, data, origin) from None
    except _ConsistencyError as exc:
        raise ConfigError(origin, exc.key, exc.reason) from None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Names allowed at the location of an unknown key."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part == "levers" and model is Config:
            model = _levers_model()
        elif part == "shocks" and model is Config:
            model = ShockSettings
        else:
            field = model.model_fields.get(str(part))
            annotation = field.annotation if field else None
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return []
            model = annotation
    return list(model.model_fields)


def _to_config_error(
    exc: ValidationError, data: Mapping[str, Any], origin: str, prefix: tuple[str, ...] = ()
) -> ConfigError:
    error = exc.errors(include_url=False)[0]
    loc = prefix + tuple(part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    # pydantic nests lever errors under the levers field; keep the path readable
    key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind = error["type"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _ConsistencyError):
        return ConfigError(origin, cause.key, cause.reason)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        listing = f" Allowed here: {', '.join(allowed)}." if allowed and not guess else ""
        return ConfigError(origin, key, f"unknown key{hint}{listing}")
    value = error.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    if len(shown) > 60:
        shown = shown[:57] + "..."
    message = error["msg"]
    return ConfigError(origin, key, f"{message} (got {shown})")


def config_keys() -> list[str]:
    """All dotted keys a config accepts (for docs and the dashboard)."""
    keys: list[str] = []
    defaults = Config().to_dict()
    for section, values in defaults.items():
        if isinstance(values, dict):
            for k, v in values.items():
                if isinstance(v, dict):
                    keys.extend(f"{section}.{k}.{p}" for p in v)
                else:
                    keys.append(f"{section}.{k}")
    return keys
