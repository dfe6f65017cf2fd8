"""Each of the 25 levers acts through its own channel.

Every test runs the model twice with the same seed, lever on and lever off,
and checks that the lever's own channel moves in the expected direction by a
clear margin.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sme_abm import SMEEconomy, load_config, load_registry
from sme_abm.markets.credit import collateral_value
from sme_abm.policy import PolicyState

from conftest import CONFIGS

N, STEPS, SEED = 2_000, 48, 3
BURN_IN = 120


def pair(key: str, config=None, n: int = N, steps: int = STEPS, **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    # from the set-up (no burn-in) unless a test asks: stocks a burn-in builds under the
    # baseline policy (re-lending, trained firms...) would carry into the "off" run
    overrides.setdefault("simulation__burn_in_months", 0)
    on = SMEEconomy(config, n_smes=n, rng=SEED, **overrides).run(steps).timeseries()
    off = SMEEconomy(config, n_smes=n, rng=SEED, **{f"levers__{key}__enabled": False}, **overrides).run(steps).timeseries()
    return on, off


def test_p01_legal_system_raises_recovery_of_unpaid_receivables_and_speeds_up_insolvency():
    on, off = pair("p01_legal_system")
    assert on["receivables_written_off"].sum() < 0.7 * off["receivables_written_off"].sum()
    # insolvency proceedings of 20 months instead of 30: banks sell a twentieth of their seized
    # collateral a month, not a thirtieth, so defaulted loans leave the NPL stock sooner.
    # Compared in month 0 from the same burned-in state (the NPL stock of runs that diverge is
    # driven by their own default flows, which at these sizes differ by 25% or more between runs)
    sold = {}
    for enabled in (True, False):
        model = SMEEconomy(n_smes=N, rng=SEED, simulation__burn_in_months=BURN_IN, simulation__mesa_agents=False,
                           levers__p01_legal_system__enabled=enabled,
                           levers__p24_organisation__implementation_lag_months=0.0)
        assert model.banks.foreclosed.sum() > 0
        model.run(1)
        proceeds = model.ledger.flow_table[("collateral_sales", "large_firms", "banks")]
        # the share of the workout book sold: the book at the sale is the common stock plus
        # the month's new seizures, which differ (lever 1 off lowers the liquidation price, so
        # more closures fall below their debt and are defaults: 12 against 2 at seed 3, and
        # on the credit-demand branch's smaller book, 4.8 CNY m against main's 10.9, they
        # moved the ratio of proceeds to 1.08)
        sold[enabled] = proceeds / (model.banks.foreclosed.sum() + proceeds)
    assert sold[True] > 1.3 * sold[False]  # 30 / 20 = 1.5


def test_p02_fair_competition_lowers_entry_barriers():
    on, off = pair("p02_fair_competition")
    assert on["entries"].sum() > 1.15 * off["entries"].sum()


def test_p03_statistical_monitoring_targets_grants_at_truly_distressed_firms():
    on, off = pair("p03_statistical_monitoring")
    # share of grants reaching truly distressed firms: 0.47-0.50 on, 0.17-0.20 off (seeds 3-5,
    # the baseline of 2026-12-06; the gap was above 0.3 under the CATS rule)
    assert on["grant_targeting_accuracy"].mean() > off["grant_targeting_accuracy"].mean() + 0.2


def test_p04_credit_information_lowers_misjudgement_of_creditworthy_firms():
    on, off = pair("p04_credit_information")
    assert on["creditworthy_misjudged_share"].mean() < 0.6 * off["creditworthy_misjudged_share"].mean()
    assert on["creditworthy_refused_share"].mean() < off["creditworthy_refused_share"].mean()


def test_p05_fair_supervision_cuts_blanket_shutdowns():
    on, off = pair("p05_fair_supervision")
    assert on["shutdowns"].sum() < 0.5 * off["shutdowns"].sum()


def test_p06_fiscal_funds_pays_grants_and_takes_equity():
    model_on = SMEEconomy(n_smes=N, rng=SEED).run(STEPS)
    model_off = SMEEconomy(n_smes=N, rng=SEED, levers__p06_fiscal_funds__enabled=False).run(STEPS)
    on, off = model_on.timeseries(), model_off.timeseries()
    assert on["fiscal_cost_p06"].sum() > 0 and off["fiscal_cost_p06"].sum() == 0
    assert model_on.government.equity_invested > 0 and model_off.government.equity_invested == 0
    # the tickets bought stakes, which pay the government (tests/test_equity_claims.py)
    assert (model_on.smes.public_equity_share > 0).any() and not model_off.smes.public_equity_share.any()


def test_p07_tax_relief_lowers_tax_paid_by_small_and_micro_firms():
    on, off = pair("p07_tax_relief")
    assert on["tax_paid_small_micro"].sum() < 0.7 * off["tax_paid_small_micro"].sum()
    assert on["fiscal_cost_p07"].sum() > 0


def test_p08_procurement_reserves_budget_for_smes_and_small_micro():
    on, off = pair("p08_procurement")
    late = on.iloc[12:]
    assert (late["procurement_sme"] >= 0.30 * late["procurement_budget"]).all()
    assert (late["procurement_small_micro"] >= 0.60 * 0.30 * late["procurement_budget"]).all()
    assert on["procurement_sme"].sum() > 1.1 * off["procurement_sme"].sum()


def test_p09_monetary_transmission_lowers_loan_rates_through_relending():
    # after a burn-in: from the set-up, the first months' price rises make the Taylor rule
    # lift the LPR above the old benchmark rate, and pass-through then raises loan rates
    on, off = pair("p09_monetary_transmission", simulation__burn_in_months=BURN_IN)
    assert on["new_loan_rate"].mean() < off["new_loan_rate"].mean() - 0.002
    # without the lever no new re-lending: what the burn-in left amortises over 24 months
    assert on["relending_outstanding"].iloc[-1] > 0.5 * on["relending_outstanding"].iloc[0]
    assert off["relending_outstanding"].iloc[-1] < 0.2 * off["relending_outstanding"].iloc[0]


def test_p10_multilevel_finance_relaxes_collateral_constraints():
    on, off = pair("p10_multilevel_finance")
    assert on["credit_granted_nondeposit"].sum() > 0 and off["credit_granted_nondeposit"].sum() == 0
    # the same firms can pledge more: receivables count for more, first loans need less collateral
    model = SMEEconomy(n_smes=N, rng=SEED).run(12)
    rows = np.arange(model.smes.size)
    # both policies phased in to the same month, so that only lever 10 differs (lever 22's
    # IP collateral ratio, still phasing in, would otherwise differ too)
    model.policy = PolicyState(load_config({}))
    model.policy.update(12, {})
    with_lever = collateral_value(model, rows)
    off = PolicyState(load_config({"levers": {"p10_multilevel_finance": {"enabled": False}}}))
    off.update(12, {})
    # every other lever as in the run (lever 22's IP collateral ratio, in its phase-in, differed
    # by 0.4% between the run's policy and a fresh one, which a firm with IP and no receivables showed)
    for key, values in vars(model.policy).items():
        if key.startswith("p") and key != "p10_multilevel_finance":
            setattr(off, key, values)
    model.policy = off
    without = collateral_value(model, rows)
    assert (with_lever >= without - 1e-12).all()
    # each yuan of receivables pledges 0.6 instead of 0.1 (first-loan relief adds more)
    assert with_lever.sum() - without.sum() >= 0.45 * model.smes.receivables.sum()


def test_p11_differentiated_supervision_raises_small_micro_credit_when_capital_binds():
    """Lower risk weights on small/micro loans free capital headroom, so a capital-short bank
    grants more small/micro credit to the same applicants. Compared in month 0 from the same
    burned-in state (banks that pay out all capital above target, so it binds; lever 24's
    phase-in off so that the lever is whole from month 0): from diverging runs the first
    year's totals mix the channel with the timing of refused firms' returns (they wait six
    months and come back together in month 7, more of them in the off run), which moved
    the first-year ratio to 0.91-1.35 across seeds. Measured here: 1.84x (seed 3) and
    1.68x (seed 4) in month 0; approval of unguaranteed small/micro applications 0.97
    against 0.64."""
    tight = {"banks__initial_capital_ratio": 0.107, "banks__excess_capital_payout": 1.0}
    month0 = {}
    for enabled in (True, False):
        model = SMEEconomy(n_smes=N, rng=SEED, simulation__burn_in_months=BURN_IN, simulation__mesa_agents=False,
                           levers__p11_differentiated_supervision__enabled=enabled,
                           levers__p24_organisation__implementation_lag_months=0.0, **tight)
        month0[enabled] = model.run(1).timeseries().iloc[0]
    on, off = month0[True], month0[False]
    assert on["credit_applications"] == off["credit_applications"]  # the same applicants
    assert on["credit_granted_small_micro"] > 1.1 * off["credit_granted_small_micro"]
    assert on["unguaranteed_approval_rate_small_micro"] > off["unguaranteed_approval_rate_small_micro"]


def test_p12_direct_finance_brings_venture_capital():
    # deals are rare draws (a few a year per thousand eligible firms): 10,000 SMEs so that
    # the counts (about 45 against 12) are not within each other's Poisson noise
    on, off = pair("p12_direct_finance", n=10_000)
    assert on["venture_deals"].sum() > 2 * off["venture_deals"].sum()


def test_p13_guarantees_raise_guaranteed_lending_within_leverage_limits():
    model = SMEEconomy(n_smes=N, rng=SEED)
    limits = []
    for _ in range(STEPS):
        model.step()
        direct = ~model.guarantors.is_reguarantee_fund
        # no guarantor writes guarantees that take it past its limit
        assert model.step_stats["guarantor_issuance_over_limit"] <= 1e-9
        limits.append(model.guarantors.leverage_limit()[direct].max())
    on = model.timeseries()
    off = SMEEconomy(n_smes=N, rng=SEED, levers__p13_financing_guarantee__enabled=False).run(STEPS).timeseries()
    assert on["credit_guaranteed"].sum() > 2 * off["credit_guaranteed"].sum()
    # fees are risk-based; the cap (reached by the end of lever 24's phase-in) holds their average
    assert on["new_guarantee_fee"].dropna().iloc[-1] <= 0.01 + 1e-6
    assert max(limits) <= 15.0


def test_p14_entrepreneurship_raises_entry():
    on, off = pair("p14_entrepreneurship", n=10_000, steps=36)
    assert on["entries"].sum() > 1.07 * off["entries"].sum()  # the boost is +15% of would-be entrants
    assert on["fiscal_cost_p14"].sum() > 0


def test_p15_innovation_raises_rd_and_its_success():
    # lever 25 off: its budget weights would also scale the success boost (issue 16), which is not p15's channel
    on, off = pair("p15_innovation", n=6_000, levers__p25_decision_support__enabled=False)
    assert on["innovations"].sum() > 1.1 * off["innovations"].sum()


def test_p16_certifies_little_giants():
    # at the source's 0.028% a 10,000-firm economy holds about 2.5 giants: 10 times that here
    on, off = pair("p16_little_giants", n=10_000, steps=24, levers__p16_little_giants__giant_share=0.0028)
    assert on["little_giants"].iloc[-1] >= 4 and off["little_giants"].iloc[-1] == 0


@pytest.mark.parametrize("name", ["support_grant", "demand_boost"])
def test_p16_grant_and_demand_boost_act_on_the_economy(name):
    """What a certified giant gets moves the economy: without the grant, or without the demand
    boost, the outcomes the lever audit reads differ (at ten times the source's giant share, so
    that giants are certified at 10,000 SMEs in 24 months; the audit leaves lever 16 out)."""
    kw = dict(n_smes=10_000, rng=SEED, simulation__mesa_agents=False, simulation__burn_in_months=0,
              levers__p16_little_giants__giant_share=0.0028)
    base = SMEEconomy(**kw).run(24).timeseries()
    without = SMEEconomy(**kw, **{f"levers__p16_little_giants__{name}": 0.0}).run(24).timeseries()
    assert base["little_giants"].iloc[-1] >= 4
    assert not without[OUTCOMES].equals(base[OUTCOMES])


@pytest.mark.parametrize(("share", "n", "tolerance"), [(0.00028, 100_000, 0.25), (0.001, 50_000, 0.15)])
def test_p16_stock_of_little_giants_converges_to_its_share(share, n, tolerance):
    """Certification is a flow that keeps the stock of giants at ``giant_share`` of the SMEs
    (the source's 0.028%: 14,600 of 52 million): certificates lapse after 3 years on
    average and giants leave, and the yearly flow replaces them. Over months 108-179 the
    share is 0.88 of the target for the source's share (28 giants at 100,000 SMEs; a
    72-month mean of so few giants has a standard error near 10%) and 1.04 for 0.1%; the old
    rule, the stock share certified every year and kept for ever, gave 9.4 times it. The
    shipped baseline after its burn-in: the flow keeps a stock at its share of a stationary
    population, and from the hand-drawn set-up the population can still be growing (with the
    SG&A candidate's entrants it grows 28% in 15 years and the stock lags it by 15%)."""
    ts = SMEEconomy("configs/baseline.toml", n_smes=n, rng=SEED, simulation__mesa_agents=False,
                    levers__p16_little_giants__giant_share=share).run(180).timeseries()
    measured = float((ts["little_giants"] / ts["smes_active"]).iloc[-72:].mean())
    assert measured == pytest.approx(share, rel=tolerance)


def test_p17_digital_subsidy_raises_adoption():
    on, off = pair("p17_digital_adoption")
    assert on["digital_share"].iloc[-1] > 1.5 * off["digital_share"].iloc[-1]


def test_p18_service_platforms_bring_discouraged_borrowers_to_apply():
    on, off = pair("p18_service_platforms")
    assert on["credit_applications"].sum() > 1.2 * off["credit_applications"].sum()


def test_p19_training_raises_trained_share():
    on, off = pair("p19_management_training")
    assert on["trained_share"].iloc[-1] > 0.2 and off["trained_share"].iloc[-1] == 0


def test_p20_international_raises_exports():
    # 6,000 firms and the last year's mean: at 2,000 the exporters' count (about 170) moved the
    # ratio by about 8%, as much as the margin; with 2% of firms re-drawing a month from the same
    # month-0 share, 62% of the gap between 0.15 and 0.10 closes in 48 months (ratio about 1.26).
    # Pooled over three seeds: at one seed the ratio ranged 1.14-1.25 (seeds 3-5), since exit
    # and entry also move the share of firms in exporting sectors
    shares, sales = np.zeros(2), np.zeros(2)
    for seed in (SEED, SEED + 1, SEED + 2):
        for i, enabled in enumerate((True, False)):
            ts = SMEEconomy(n_smes=6_000, rng=seed, simulation__burn_in_months=0,
                            levers__p20_international__enabled=enabled).run(STEPS).timeseries()
            shares[i] += ts["exporter_share"].iloc[-12:].mean()
            sales[i] += ts["export_sales"].sum()
    assert shares[0] > 1.15 * shares[1]
    # SMEs take 68% of the rest of the world's spending (rest_of_world.sme_share_rule = "share",
    # the baseline since 2026-12-07) and the lever's boost raises that to 75%: export sales
    # +13.2% pooled over the three seeds (+1.1% to +2.5% before, when SMEs took all of it and
    # only the exporters' capacity could move their exports)
    assert sales[0] > 1.05 * sales[1]


@pytest.mark.parametrize("rule", ["sales_ratio", "share"])
def test_p20_export_demand_boost_acts_only_where_large_firms_export_too(rule):
    """The rest of the world spends what households' imports paid it. Under "sales_ratio" (the
    baseline) SMEs' share of that spending is capped at 1: they take all of it and the boost has
    nothing to raise. Under "share" (the baseline since 2026-12-07) SMEs take the data's 68% of
    it and the boost raises their exports by about the boost, taken from large firms' (+10.9%
    at seed 3: the export receipts raise households' income and so their imports, which the
    rest of the world spends on exports the month after)."""
    runs = {}
    for boost in (0.1, 0.0):
        model = SMEEconomy(CONFIGS / "baseline.toml", n_smes=3_000, rng=SEED, simulation__mesa_agents=False,
                           rest_of_world__sme_share_rule=rule, levers__p20_international__export_demand_boost=boost)
        runs[boost] = (model.sme_export_share, model.run(36).timeseries()["export_sales"].sum())
    (share, boosted), (_, plain) = runs[0.1], runs[0.0]
    if rule == "sales_ratio":
        assert share == 1.0 and boosted == plain
    else:
        assert share == pytest.approx(0.68) and 1.05 * plain < boosted < 1.15 * plain


#: Series a lever parameter must move to count as acting on the economy (diagnostics such as
#: ``collateral_per_applicant`` do not count).
OUTCOMES = ["smes_active", "employment", "sme_output", "exits", "household_consumption"]

#: Lever parameters that move none of OUTCOMES (5,000 SMEs, the shock config so that lever 23
#: acts, 48 months from the set-up), each with the reason. A mechanism that a later change
#: silently disconnects fails the audit; one of these that starts to act fails it too, so the
#: list (and docs/levers.md) is kept true.
KNOWN_INERT = {
    ("p25_decision_support", "reallocation_share"):
        "no pilot's effect on sales growth clears its confidence bound at this size and period, "
        "so nothing is reallocated (agents/government.evaluate_policies)",
}

#: Lever parameters this audit cannot judge, left out of it, each with where it is tested. Lever
#: 16: at 5,000 SMEs its giant share certifies under one giant a review on average, so whether
#: any is certified in these 48 months is luck; with each change of the economy it flipped
#: between acting and inert (two giants with the non-deposit lenders' limit of c4261c3, none with
#: liquidity-constrained entry, some again at the re-estimate of 2026-12-07).
AUDITED_ELSEWHERE = {
    ("p16_little_giants", name): "test_p16_* at 10,000-100,000 SMEs"
    for name in ("giant_share", "support_grant", "demand_boost")
}


def test_every_lever_parameter_acts_on_the_economy_but_the_known_inert():
    registry = load_registry()
    kw = dict(n_smes=5_000, rng=5, simulation__mesa_agents=False, simulation__burn_in_months=0)
    shock = CONFIGS / "shock.toml"
    base = SMEEconomy(shock, **kw).run(48).timeseries()[OUTCOMES]
    inert = set()
    for lever in registry.levers:
        for name, parameter in lever.parameters.items():
            if (lever.key, name) in AUDITED_ELSEWHERE:
                continue
            low, high = parameter.range
            # the off value, or where the lever's off leaves it as it is, the bottom of its range
            other = parameter.off if parameter.off != parameter.default else (low if low != parameter.default else high)
            ts = SMEEconomy(shock, **kw, **{f"levers__{lever.key}__{name}": other}).run(48).timeseries()[OUTCOMES]
            if ts.equals(base):
                inert.add((lever.key, name))
    assert inert == set(KNOWN_INERT)


def test_p10_first_loan_relief_lets_entrants_borrow_at_start_up():
    """Lever 10's first loans: a bank screens an entrant's start-up loan like any application
    (demography.screen_startup_loans). An entrant pledges the capital it has just bought, at
    the loan-to-value of 0.6, for a loan of half its capital and two months of costs, so without
    the relief its collateral does not cover the loan and the owners fund the firm alone; with
    the relief of 0.5 only the default-risk test refuses (about 7% of entrants after the
    burn-in, 2,000-5,000 SMEs). Measured from the set-up (seed 3, 36 months), where more
    entrants' estimated risk is above the banks' limit: refused 26% with the relief, 100%
    without."""
    refused = {}
    for relief in (0.5, 0.0):
        ts = SMEEconomy(n_smes=N, rng=SEED, simulation__mesa_agents=False, simulation__burn_in_months=0,
                        levers__p10_multilevel_finance__first_loan_collateral_relief=relief).run(36).timeseries()
        refused[relief] = ts["startup_loans_refused"].sum() / ts["entries"].sum()
    assert 0.0 < refused[0.5] < 0.5
    assert refused[0.0] > 0.9


def test_p21_payment_arrears_shorten_days_smes_wait():
    on, off = pair("p21_payment_arrears")
    assert on["payment_days"].iloc[-12:].mean() < 0.75 * off["payment_days"].iloc[-12:].mean()


@pytest.mark.parametrize("days", [30.0, 60.0, 90.0])
def test_p21_measured_payment_days_equal_configured_days(days):
    """In steady state the receivables are ``days`` of credit sales (stock / monthly credit
    sales x 30). Exits settle a firm's receivables early, which keeps the measured days
    slightly below the configured ones (about 1.5% at 90 days); the old rule, collecting
    the month's new invoices too, measured days - 30 (0.0, 29.5, 58.2)."""
    ts = SMEEconomy(n_smes=N, rng=SEED, levers__p21_payment_arrears__payment_days=days,
                    levers__p24_organisation__implementation_lag_months=0.0).run(48).timeseries()
    measured = float((ts["receivables"].iloc[-24:] / ts["credit_sales"].iloc[-24:] * 30.0).mean())
    assert measured == pytest.approx(float(ts["payment_days"].iloc[-24:].mean()))
    assert measured == pytest.approx(days, rel=0.03)


@pytest.mark.parametrize("days", [60.0, 90.0])
def test_p21_initial_receivables_are_stationary(days):
    """Month 0's receivables are the stationary stock of the baseline's 60 days for the
    month-0 plan of credit sales (procurement reserved for SMEs and large firms' orders),
    not of the phased-in value of month 0 (81.5 days), which started the economy off its
    path; a configured 90 days acts from month 0 on, not on the starting stock."""
    model = SMEEconomy(n_smes=N, rng=SEED, levers__p21_payment_arrears__payment_days=days)
    lf = model.config.large_firms
    planned_credit_sales = 0.75 * model.procurement_budget + lf.sme_order_share * model.large_firm_revenue
    assert model.smes.receivables.sum() / planned_credit_sales * 30.0 == pytest.approx(60.0, rel=1e-12)
    assert model.payables["large_firms"] + model.payables["government"] == pytest.approx(model.smes.receivables.sum())


def test_p22_ip_protection_raises_rd_and_ip_collateral():
    model_on = SMEEconomy(n_smes=N, rng=SEED).run(24)
    model_off = SMEEconomy(n_smes=N, rng=SEED, levers__p22_ip_protection__enabled=False).run(24)
    on, off = model_on.timeseries(), model_off.timeseries()
    # innovators keep more of their gains, so they spend more per yuan of sales on R&D
    assert on["rd_intensity"].iloc[-1] > 1.15 * off["rd_intensity"].iloc[-1]  # sqrt(0.8 / 0.5) = 1.26 at full effect
    assert model_on.policy.p22_ip_protection.ip_collateral_ratio > 3 * model_off.policy.p22_ip_protection.ip_collateral_ratio


def test_with_a_knowledge_production_function_the_rd_lever_22_raises_brings_innovations():
    """Lever 22 raises innovators' R&D intensity (by sqrt(0.8 / 0.5) = 1.26). With a success rate
    that does not depend on R&D (rd_success_elasticity 0, the baseline) that R&D is a cost that
    brings not one innovation more: with the same draws the same firms succeed. With successes
    arriving at a rate that rises with R&D intensity (Klette and Kortum 2004), the month's
    success probability at elasticity 0.5 is 1 - (1 - p)^(1.26^0.5) with p the no-lever one:
    0.0225 at p = 0.02, a superset of the same draws, about 12% more firms."""
    from sme_abm.agents.sme import innovate

    def successes(elasticity: float, intensity_ratio: float) -> tuple[int, np.ndarray]:
        model = SMEEconomy(n_smes=40_000, rng=SEED, simulation__burn_in_months=0, simulation__mesa_agents=False,
                           economy__rd_success_elasticity=elasticity, economy__rd_success_probability=0.02,
                           levers__p15_innovation__enabled=False, levers__p25_decision_support__enabled=False)
        model.rd_intensity = model.config.economy.rd_intensity * intensity_ratio  # what set_policy sets
        innovate(model)
        return model.step_innovations, np.log(model.smes.productivity)

    more_rd = math.sqrt(0.8 / 0.5)
    fixed, productivity = successes(0.0, 1.0)
    assert fixed > 50
    for same in (successes(0.0, more_rd), successes(0.5, 1.0)):
        # more R&D, the same innovations; and at the no-lever intensity the calibrated rate
        assert same[0] == fixed and (same[1] == productivity).all()
    knowledge, raised = successes(0.5, more_rd)
    assert (raised >= productivity).all()  # everyone who succeeded still does (and spillovers grow)
    expected = (1 - 0.98 ** math.sqrt(more_rd)) / 0.02  # 1.124
    assert 1.04 < knowledge / fixed < expected + 0.1, (knowledge, fixed)


def test_p23_relief_reaches_shock_hit_firms():
    on, off = pair("p23_emergency_relief", config=CONFIGS / "shock.toml", steps=44)
    assert on["fiscal_cost_p23"].iloc[36:].sum() > 0 and off["fiscal_cost_p23"].sum() == 0
    assert on["fiscal_cost_p23"].iloc[:36].sum() == 0  # relief only when a shock happens


def test_p24_organisation_sets_when_and_how_much_support_reaches_firms():
    """Lever 24 acts through the administration's capacity (support cases processed a month)
    and how fast the other levers' rules are issued: on, cases are served within about a month
    of being opened (here, from the set-up, the case load is near the capacity); off, a queue
    builds and support arrives months late (measured at seed 3: 46 against 214 cases waiting
    at month 24, mean waits over the last six months 1.3 and 5.8 months). The wait on moves
    with the seed: 1.54, 0.97, 0.94 and 1.49 months at seeds 3-6 (after banks settled on
    the month's whole income, 2026-12-05), so "about a month" was held at under 2. On the
    baseline of 2026-12-06 there are more cases than the capacity serves even on (more firms sell
    to SMEs and more fall short of the programmes' tests): waits on 2.38, 1.04 and 2.21 months
    at seeds 3-5 against 6.5, 7.1 and 5.9 off, and queues that grow on (16 -> 77 at seed 3)
    at about half the rate off (33 -> 165); docs/calibration.md says so. On the baseline of
    2026-12-07 waits on are 2.55, 1.82 and 2.58 months at seeds 3-5 against 6.98, 7.22 and 7.30
    off, so "served within about a month" no longer holds: waits on are held under 3 months
    and under half the waits off."""
    on = SMEEconomy(n_smes=N, rng=SEED).run(24)
    off = SMEEconomy(n_smes=N, rng=SEED, levers__p24_organisation__enabled=False).run(24)
    ts_on, ts_off = on.timeseries(), off.timeseries()
    wait_on, wait_off = ts_on["case_wait_months"].iloc[-6:].mean(), ts_off["case_wait_months"].iloc[-6:].mean()
    assert wait_on < 3.0 and wait_on < 0.5 * wait_off
    # off, the queue keeps growing (cases opened exceed the capacity): by more than 30 cases in
    # each half of the second year; on, it grows less than a third as fast over that year
    # (seed 3: off 62 -> 130 -> 214, on 19 -> 47 -> 46; seeds 4 and 5 alike)
    waiting_on, waiting_off = ts_on["cases_waiting"], ts_off["cases_waiting"]
    assert waiting_off.iloc[17] - waiting_off.iloc[11] > 30 and waiting_off.iloc[23] - waiting_off.iloc[17] > 30
    assert waiting_on.iloc[23] - waiting_on.iloc[11] < 0.6 * (waiting_off.iloc[23] - waiting_off.iloc[11])
    # what the capacity allows a month (100 per 10,000 SMEs off), not what the programmes ask
    assert (ts_off["cases_processed"] <= round(100 * ts_off["smes_active"].max() / 10_000)).all()
    # support awarded: cases processed over the two years, 575-638 on against 289-293 off (seeds
    # 3-5). (Lever 6's spending, asserted here before, is lumpy: a fund's equity stake costs as
    # much as twenty grants, and at seed 3 two stakes processed off outweigh the grants on.)
    assert ts_on["cases_processed"].sum() > 1.5 * ts_off["cases_processed"].sum()
    # the rules phase in faster (lag 3 months, not 12)
    assert on.policy.intensity["p07_tax_relief"] == 1.0 - np.exp(-24 / 3.0)
    assert off.policy.intensity["p07_tax_relief"] == 1.0 - np.exp(-24 / 12.0)


def test_p25_pilot_holds_back_a_random_control_group():
    """Lever 25's pilot: each programme leaves a random fifth of the firms unserved for the
    period (here training, lever 19), and without lever 25 there is no control group."""
    from sme_abm.agents.government import pilot_control

    on = SMEEconomy(n_smes=N, rng=SEED, levers__p24_organisation__implementation_lag_months=0.0).run(11)
    held = pilot_control(on, "p19_management_training")
    assert held.mean() == pytest.approx(0.2, abs=0.03)
    assert not on.smes.trained[held].any()  # months 0-10 are one evaluation period
    assert on.smes.trained[~held].mean() > 0.05  # 1 - 0.99^11 = 0.105 of the firms there since month 0
    # another programme draws its own control group, independent of this one
    other = pilot_control(on, "p06_fiscal_funds")
    assert (held & other).mean() == pytest.approx(0.04, abs=0.015)
    off = SMEEconomy(n_smes=N, rng=SEED, levers__p25_decision_support__enabled=False).run(11)
    assert not pilot_control(off, "p19_management_training").any()
    assert set(off.government.budget_weights.values()) == {1.0}


def _planted_evaluation(model: SMEEconomy, trial: int, effect: float) -> dict[str, float]:
    """One evaluation of a planted economy: every piloted programme spent 10 CNY m; log sales
    growth is noise (sd 0.3), plus ``effect`` for training's pilot group (lever 19, the
    programme that works). The fiscal funds (lever 6) do nothing, but their recorded
    recipients are the fastest growers, as when a fund picks firms on the growth it is then
    judged on: a comparison of recipients with non-recipients would reward it."""
    from sme_abm.agents.government import PILOTED, evaluate_policies, pilot_control

    smes, government = model.smes, model.government
    model.month = 12 * trial + 11  # an evaluation month; each trial is a new period with new groups
    rng = np.random.default_rng(trial)
    growth = 0.3 * rng.standard_normal(smes.size)
    growth[~pilot_control(model, "p19_management_training")] += effect
    smes.sales_at_evaluation = np.full(smes.size, 1.0)
    smes.sales = np.exp(growth)
    smes.support_bits[:] = 0
    smes.support_bits[growth > np.quantile(growth, 0.9)] |= np.uint8(1)  # lever 6's bit: the top growers
    government.budget_weights = {key: 1.0 for key in government.budget_weights}
    government.fiscal_cost_since_evaluation = defaultdict(float, {key: 10.0 for key in PILOTED})
    evaluate_policies(model)
    return dict(government.budget_weights)


def test_p25_moves_no_money_towards_a_programme_with_no_effect():
    """40 evaluations of a planted economy (5,000 SMEs): the programme with a real effect
    (+5% sales for its pilot group, 4.7 standard errors) gains money in every one; the
    programmes with none, including the one whose recipients are the fastest growers, gain
    money in at most the evaluation's 2.5% false-positive rate (one-sided, family-wise)."""
    model = SMEEconomy(n_smes=5_000, rng=SEED, levers__p24_organisation__implementation_lag_months=0.0)
    model.policy.update(0, {})
    trials = [_planted_evaluation(model, trial, effect=0.05) for trial in range(40)]
    null = ["p06_fiscal_funds", "p14_entrepreneurship", "p16_little_giants", "p17_digital_adoption",
            "p23_emergency_relief"]
    assert all(weights["p19_management_training"] == pytest.approx(1.2) for weights in trials)  # capped at +20%
    # false positives are Binomial(40, 0.025) at most: 1 expected, 4 or more with probability
    # 1.7%; a score on the point estimate (no lower bound) would give about 40 x (1 - 0.5^5)
    gains = [any(weights[key] > 1.0 + 1e-12 for key in null) for weights in trials]
    assert sum(gains) <= 4
    assert max(weights["p06_fiscal_funds"] for weights in trials) <= 1.0 + 1e-12
    # with no effect anywhere, nothing moves but for the same false-positive rate
    still = [_planted_evaluation(model, trial, effect=0.0) for trial in range(40, 80)]
    assert sum(any(w != 1.0 for w in weights.values()) for weights in still) <= 4


def test_p25_reallocation_conserves_money_and_moves_it_gradually():
    from sme_abm.agents.government import reallocate

    rng = np.random.default_rng(5)
    for _ in range(200):
        keys = [f"k{i}" for i in range(rng.integers(1, 8))]
        weights = {key: float(rng.uniform(0.1, 3.0)) for key in keys}
        costs = {key: float(10.0 ** rng.uniform(-5, 3)) for key in keys}
        scores = {key: float(rng.exponential()) if rng.random() < 0.4 else 0.0 for key in keys}
        share = float(rng.uniform(0.0, 1.0))
        new = reallocate(weights, costs, scores, share)
        if not new:
            assert sum(scores.values()) == 0 or share == 0
            continue
        budget = {key: new[key] * costs[key] / weights[key] for key in keys}  # at the period's spending per weight
        assert math.fsum(budget.values()) == pytest.approx(math.fsum(costs.values()), rel=1e-12)
        for key in keys:
            assert np.isfinite(new[key]) and new[key] >= 0
            assert budget[key] <= (1.0 + share) * costs[key] * (1 + 1e-12)  # gradual
            if scores[key] == 0:
                assert budget[key] <= costs[key] * (1 + 1e-12)  # no money towards a programme that shows nothing


def test_p25_guards_spending_near_zero():
    """A programme that spent (almost) nothing is not scored: gain / cost cannot overflow."""
    model = SMEEconomy(n_smes=500, rng=SEED, levers__p24_organisation__implementation_lag_months=0.0)
    model.policy.update(0, {})
    model.month = 11
    model.smes.sales = model.smes.sales_at_evaluation * np.exp(np.linspace(-0.5, 0.5, model.smes.size))
    model.government.fiscal_cost_since_evaluation = defaultdict(float, {"p06_fiscal_funds": 1e-300,
                                                                        "p19_management_training": 5.0})
    from sme_abm.agents.government import evaluate_policies

    with np.errstate(all="raise"):
        evaluate_policies(model)
    assert "p06_fiscal_funds" not in model.government.last_scores
    assert all(np.isfinite(list(model.government.budget_weights.values())))


def test_p25_budget_weights_scale_money_parameters_only():
    """A weight of 2.9 on lever 14 (the old evaluator's 2.9 made entry_rate_boost 0.44)
    scales its start-up grant, not its entry boost; every lever's non-money parameters
    are the same under any weights."""
    config = load_config({"levers": {"p24_organisation": {"implementation_lag_months": 0.0}}})
    plain, weighted = PolicyState(config), PolicyState(config)
    weights = {"p06_fiscal_funds": 0.5, "p14_entrepreneurship": 2.9, "p15_innovation": 1.7,
               "p16_little_giants": 3.0, "p17_digital_adoption": 1.5, "p19_management_training": 0.2,
               "p23_emergency_relief": 2.0}
    weighted.update(0, weights)
    assert weighted.p14_entrepreneurship.entry_rate_boost == 0.15
    assert weighted.p14_entrepreneurship.startup_grant == pytest.approx(2.9 * 0.02)
    for lever in load_registry().levers:
        for name, param in lever.parameters.items():
            value, base = getattr(getattr(weighted, lever.key), name), getattr(getattr(plain, lever.key), name)
            if param.money:
                low, high = param.range
                assert value == pytest.approx(min(max(base * weights[lever.key], low), high))
            else:
                assert value == base, (lever.key, name)


def test_registry_holds_provisions_1_to_25_each_read_by_the_model(monkeypatch):
    registry = load_registry()
    assert [lever.provision for lever in registry.levers] == list(range(1, 26))
    assert len({lever.key for lever in registry.levers}) == 25
    reads: dict[str, set[str]] = defaultdict(set)

    def tracker(key: str) -> type:
        class Tracker(SimpleNamespace):
            def __getattribute__(self, name):
                if not name.startswith("_"):
                    reads[key].add(name)
                return object.__getattribute__(self, name)

        return Tracker

    class TrackingPolicy(PolicyState):
        def update(self, step, weights):
            super().update(step, weights)
            for lever in registry.levers:
                setattr(self, lever.key, tracker(lever.key)(**vars(getattr(self, lever.key))))

    monkeypatch.setattr("sme_abm.model.PolicyState", TrackingPolicy)
    SMEEconomy(CONFIGS / "shock.toml", n_smes=1_000, rng=1).run(40)
    for lever in registry.levers:
        assert lever.description and len(lever.description) > 40
        if lever.key == "p24_organisation":
            continue  # read by PolicyState itself to set every other lever's intensity (checked below)
        assert reads[lever.key] & set(lever.parameters), f"no parameter of {lever.key} is read by the model"
    fast = PolicyState(load_config({"levers": {"p24_organisation": {"implementation_lag_months": 1.0}}}))
    default = PolicyState(load_config(None))
    assert fast.intensity["p01_legal_system"] > default.intensity["p01_legal_system"]


# ---------------------------------------------------------------------------
# Levers do not change the economy's starting state


def _month0_state(model: SMEEconomy) -> dict:
    """Everything a saved state holds at month 0: every SME, bank and guarantor column,
    the model's, government's and central bank's values, the ledger and the random streams."""
    from sme_abm.state import AGENT_NOT_STATE, NOT_STATE, _attributes, _book_table, _mesa_attributes

    return {
        "smes": _book_table(model.smes), "banks": _book_table(model.banks),
        "guarantors": _book_table(model.guarantors),
        "model": _attributes(model, NOT_STATE | _mesa_attributes(), "model"),
        "government": _attributes(model.government, AGENT_NOT_STATE, "government"),
        "central_bank": _attributes(model.central_bank, AGENT_NOT_STATE, "central_bank"),
        "ledger": dict(model.ledger.balances), "rng": model.rng.bit_generator.state,
    }


def _random_lever_settings(seed: int) -> dict:
    """Every lever on or off at random, each parameter anywhere in its range."""
    rng = np.random.default_rng(seed)
    settings = {}
    for lever in load_registry().levers:
        settings[f"levers__{lever.key}__enabled"] = bool(rng.random() < 0.5)
        for name, param in lever.parameters.items():
            low, high = param.range
            settings[f"levers__{lever.key}__{name}"] = float(low + (high - low) * rng.random())
    # lever 13's loss shares: the bank, the re-guarantee fund and the local government share
    # with the guarantor, so the three are drawn as parts of one (a sum above one is refused)
    parts = rng.dirichlet(np.ones(4))
    for name, share in zip(("bank_share", "reguarantee_share", "government_share"), parts):
        settings[f"levers__p13_financing_guarantee__{name}"] = float(share)
    return settings


def test_month0_state_is_the_same_under_any_lever_settings():
    """A lever acts from month 0 on, never on the economy it starts from: all levers on, all
    off and random settings give the same month-0 state, bit for bit."""
    keys = load_registry().keys
    variants = [{}, {f"levers__{key}__enabled": False for key in keys}]
    variants += [_random_lever_settings(seed) for seed in range(4)]
    variants.append({"levers__p02_fair_competition__large_firm_demand_bias": 0.6,
                     "levers__p10_multilevel_finance__nondeposit_lender_capital_share": 0.9,
                     "levers__p20_international__exporter_share": 0.9,
                     "levers__p21_payment_arrears__payment_days": 200.0,
                     "levers__p09_monetary_transmission__lpr_pass_through": 0.0,
                     "levers__p11_differentiated_supervision__small_micro_risk_weight": 1.5})
    reference = _month0_state(SMEEconomy(n_smes=500, rng=SEED, **variants[0]))
    for variant in variants[1:]:
        state = _month0_state(SMEEconomy(n_smes=500, rng=SEED, **variant))
        for name in ("smes", "banks", "guarantors"):
            pd.testing.assert_frame_equal(state[name], reference[name], check_exact=True)
        for name in ("model", "government", "central_bank", "ledger", "rng"):
            assert state[name] == reference[name], name
