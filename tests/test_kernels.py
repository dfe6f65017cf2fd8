"""The numba kernels give the same bits as the numpy code they replaced."""

import numpy as np
import pytest

from sme_abm.kernels import clip, maximum, minimum, njit
from sme_abm.model import SMEEconomy

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 3.0, 0.5, 2.5, -2.5, 1e-300, -1e-300, np.inf, -np.inf, np.nan])


@njit
def _pairwise(a, b, out_max, out_min):
    for i in range(a.size):
        out_max[i] = maximum(a[i], b[i])
        out_min[i] = minimum(a[i], b[i])


@njit
def _clipped(x, low, high, out):
    for i in range(x.size):
        out[i] = clip(x[i], low, high)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    # NaN payloads aside, every value (and the sign of every zero) must agree
    return bool(np.array_equal(np.isnan(a), np.isnan(b))
                and np.array_equal(np.nan_to_num(a), np.nan_to_num(b))
                and np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)])))


def test_maximum_and_minimum_match_numpy_on_special_values():
    a, b = (grid.ravel() for grid in np.meshgrid(SPECIAL, SPECIAL))
    # long enough that numpy takes its SIMD path
    a, b = np.tile(a, 20), np.tile(b, 20)
    out_max, out_min = np.empty_like(a), np.empty_like(a)
    _pairwise(a, b, out_max, out_min)
    assert _same_bits(out_max, np.maximum(a, b))
    assert _same_bits(out_min, np.minimum(a, b))


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-1.0, 1.0)])
def test_clip_matches_numpy_on_special_values(low, high):
    x = np.tile(SPECIAL, 20)
    out = np.empty_like(x)
    _clipped(x, low, high, out)
    assert _same_bits(out, np.clip(x, low, high))


def test_default_log_odds_matches_the_numpy_formula():
    model = SMEEconomy(n_smes=3_000, rng=5)
    model.run(3)
    smes, b = model.smes, model.config.banks
    smes.sales[:50] = 0.0  # margin falls back to -1 where there are no sales
    from sme_abm.markets.credit import default_log_odds

    assets = smes.cash + smes.capital + smes.receivables
    leverage = np.divide(smes.debt, assets, out=np.ones(smes.size), where=assets > 0)
    margin = np.divide(smes.profit, smes.sales, out=np.full(smes.size, -1.0), where=smes.sales > 0)
    cover = np.divide(smes.cash, smes.costs, out=np.ones(smes.size), where=smes.costs > 0)
    log_a = np.log(smes.productivity)
    expected = ((b.pd_base + model.pd_shift) + b.pd_leverage * np.minimum(leverage, 3.0) + b.pd_margin * np.clip(-margin, 0.0, 1.0)
                + b.pd_liquidity * np.clip(1.0 - cover, 0.0, 1.0) - 1.0 * (log_a - log_a.mean())
                + smes.risk_type - 0.3 * smes.trained)
    assert default_log_odds(model).tobytes() == expected.tobytes()


def test_risk_weighted_assets_match_numpy():
    from sme_abm.agents.bank import risk_weights

    model = SMEEconomy(n_smes=3_000, rng=6)
    model.run(3)
    smes = model.smes
    weights = risk_weights(model, smes.size_class, smes.debt, smes.guaranteed)
    expected = np.bincount(smes.bank, weights=smes.debt * weights, minlength=model.banks.size)
    model.banks.update_risk_weighted_assets(model)
    assert model.banks.risk_weighted_assets.tobytes() == expected.tobytes()


def test_quantiles_match_numpy_bit_for_bit():
    from sme_abm.markets.capital import quantiles

    rng = np.random.default_rng(2)
    for trial in range(3_000):
        n = int(rng.integers(1, 60)) if trial % 10 else int(rng.integers(1, 5_000))
        x = [rng.random(n), rng.integers(0, 5, n).astype(float), np.exp(3 * rng.standard_normal(n))][trial % 3]
        if trial % 7 == 0:
            x[rng.random(n) < 0.1] = np.inf
        for q in [(0.5, 0.75), (0.0, 1.0), (0.1, 0.9, 0.5), (0.3,)]:
            with np.errstate(invalid="ignore"):  # inf - inf, in both
                assert quantiles(x, q).tobytes() == np.quantile(x, q).tobytes(), (n, q)
    with_nan = np.array([1.0, np.nan, 2.0])
    assert np.isnan(quantiles(with_nan, (0.5,))).all()


def test_order_statistics_match_numpy_partition():
    from sme_abm.kernels import ORDER_SAMPLE, order_statistics

    rng = np.random.default_rng(4)
    for trial in range(60):
        n = int(rng.integers(4 * ORDER_SAMPLE, 150_000))
        x = [rng.random(n), np.exp(3 * rng.standard_normal(n)), rng.integers(0, 50, n).astype(float),
             np.sort(rng.random(n)),  # sorted in blocks: the sample's brackets miss, numpy decides
             np.round(rng.standard_normal(n), 2) + 0.0][trial % 5]
        if trial % 7 == 0:
            x[rng.random(n) < 0.01] = np.nan if trial % 2 else np.inf
        ranks = sorted({*rng.integers(0, n, 3).tolist(), n // 2, n // 2 + 1, 0, n - 1})
        assert order_statistics(x, ranks).tobytes() == np.partition(x, ranks)[ranks].tobytes()
        for q in [(0.5, 0.75), (0.1, 0.9, 0.5)]:
            from sme_abm.markets.capital import quantiles

            with np.errstate(invalid="ignore"):
                assert quantiles(x, q).tobytes() == np.quantile(x, q).tobytes(), (n, q)


def test_top_scores_match_numpy_argpartition():
    from sme_abm.agents.government import _top_of

    rng = np.random.default_rng(5)
    for trial in range(40):
        n = int(rng.integers(20_000, 150_000))
        # ties straddling the cut (integer scores) leave the choice to argpartition, as before
        x = [rng.random(n), rng.integers(0, 30, n).astype(float), 2.0 - np.minimum(rng.random(n) * 3, 1.0)][trial % 3]
        if trial % 5 == 0:
            x[rng.random(n) < 0.01] = np.nan
        rows = np.flatnonzero(rng.random(n) < 0.6)
        for count in (1, 7, 1_000, rows.size - 1, rows.size, rows.size + 5):
            c = min(count, rows.size)
            expected = np.sort(rows[np.argpartition(-x[rows], c - 1)[:c]])
            assert _top_of(x, rows, count).tobytes() == expected.tobytes(), (trial, count)


def test_standard_normal_matches_numpy_draws_and_end_state():
    from sme_abm.kernels import _ziggurat_checked, standard_normal

    assert _ziggurat_checked()
    sizes = np.random.default_rng(6).integers(0, 40_000, 60).tolist() + [1, 2, 100_000, 250_000]
    for seed, size in enumerate(sizes):
        ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
        ours.random(seed % 3)  # start anywhere in the stream
        numpys.random(seed % 3)
        assert standard_normal(ours, size).tobytes() == numpys.standard_normal(size).tobytes(), (seed, size)
        assert ours.bit_generator.state == numpys.bit_generator.state
        assert ours.integers(0, 2**31, 3).tolist() == numpys.integers(0, 2**31, 3).tolist()
    # other bit generators are numpy's business
    mt = np.random.Generator(np.random.MT19937(1))
    assert standard_normal(mt, 1_000).tobytes() == np.random.Generator(np.random.MT19937(1)).standard_normal(1_000).tobytes()


def test_uniform_matches_numpy_random_and_end_state():
    from sme_abm.kernels import _pcg64_checked, uniform

    assert _pcg64_checked()
    for seed in range(40):
        ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
        for rng in (ours, numpys):  # start anywhere, with a spare 32-bit word held or not
            rng.random(seed % 5)
            rng.integers(0, 10, seed % 3, dtype=np.int32)
        for size in (0, 1, 2, 3, 4, 5, 7, 8, 9, 1_000, 100_003):
            assert uniform(ours, size).tobytes() == numpys.random(size).tobytes(), (seed, size)
            assert ours.bit_generator.state == numpys.bit_generator.state
        assert ours.integers(0, 2**31, 3, dtype=np.int32).tolist() == numpys.integers(0, 2**31, 3, dtype=np.int32).tolist()
    mt = np.random.Generator(np.random.MT19937(1))  # other bit generators are numpy's business
    assert uniform(mt, 100).tobytes() == np.random.Generator(np.random.MT19937(1)).random(100).tobytes()


def test_investment_and_credit_need_match_their_numpy_definitions():
    from sme_abm.agents.sme import _investment_kernel, cash_buffer, desired_investment, investment_thresholds
    from sme_abm.markets.credit import MIN_LOAN, default_log_odds, financing_need

    # both investment rules at once: the smooth one below the inaction band, the lumpy one above it
    model = SMEEconomy(n_smes=3_000, rng=8, economy__investment_inaction_band=0.15, banks__leverage_adjustment=0.1)
    model.run(3)
    smes, econ, banks, banks_cfg = model.smes, model.config.economy, model.banks, model.config.banks
    kappa = np.asarray(model.capital_output_ratio, dtype=float)

    # desired investment: the accelerator target scaled by the user cost of capital;
    # the part of the LPR's distance from neutral expected to fade over the asset's life
    rho, horizon = model.config.central_bank.rate_smoothing, 12.0 / econ.depreciation_rate
    remaining = (1.0 - rho ** horizon) / (horizon * (1.0 - rho))
    shift = -(1.0 - remaining) * model.policy.p09_monetary_transmission.lpr_pass_through * (
        model.central_bank.loan_prime_rate - model.config.central_bank.loan_prime_rate)
    assert shift != 0.0
    # the marginal rate: what the firm's bank would charge it now, at its scoring-model risk
    pd = np.minimum(1.0 / (1.0 + np.exp(-default_log_odds(model))), banks_cfg.max_default_probability)
    quote = (model.sme_base_rate + banks.markup_of(smes.bank)
             + banks_cfg.risk_premium_share * model.loss_given_default() * pd)
    rate = quote + shift
    user_cost = np.maximum(rate + econ.depreciation_rate - model.central_bank.inflation, econ.user_cost_floor)
    factor = (model.user_cost_reference / user_cost).astype(np.float32) ** np.float32(econ.user_cost_elasticity)
    # capacity is planned for this month's demand grown by the customers to be won within a year
    won = 1.0 - (1.0 - econ.customer_accumulation) ** 12 if econ.customer_gap_at_entry > 0 else 0.0
    planned = (smes.demand / smes.price) * np.exp(won * smes.customer_gap.astype(float))
    target = 12.0 * kappa[smes.sector] * planned / 1.2 * 1.1 * factor.astype(float)
    desired = desired_investment(model)
    # the factor is single precision (numba's and numpy's float32 power may differ by an ulp,
    # 6e-8 of the target), so the gap target - capital is compared to within 1e-6 of the target
    gap = np.maximum(target - smes.capital, 0.0)
    threshold = investment_thresholds(model)  # this month's random fixed costs, drawn once
    assert threshold.max() <= 2 * econ.investment_inaction_band and np.array_equal(threshold, investment_thresholds(model))
    # random fixed costs: thresholds spread uniformly over [0, 2 band] (sd band / sqrt(3)), not one for all
    assert abs(threshold.std() / econ.investment_inaction_band - 3 ** -0.5) < 0.05
    lumpy = gap > threshold * target
    assert 0 < np.count_nonzero(lumpy) < np.count_nonzero(gap > 0)  # both rules are exercised
    ok = ~np.isclose(gap, threshold * target, rtol=1e-5)  # no firm on its threshold's edge
    expected_desired = np.where(lumpy, gap, econ.investment_speed * gap)
    np.testing.assert_array_less(np.abs(desired - expected_desired)[ok], 1e-6 * target[ok] + 1e-12)

    investment = np.empty(smes.size)
    _investment_kernel(desired, smes.cash, smes.costs, float(econ.cash_buffer_months), investment)
    spendable = np.maximum(smes.cash - 0.5 * cash_buffer(model), 0.0)
    assert investment.tobytes() == np.minimum(desired, spendable).tobytes()

    draws = np.random.default_rng(0).random(smes.size)
    wait = np.random.default_rng(1).integers(-1, 3, smes.size).astype(np.int8)
    smes.credit_wait[:] = wait
    model.policy.p18_service_platforms.credit_application_rate = 0.6
    kernel_desired, need, applies, withdrawn = financing_need(model, draws)
    assert kernel_desired.tobytes() == desired.tobytes()
    refinance = banks_cfg.leverage_adjustment * np.maximum(banks_cfg.initial_debt_to_capital * smes.capital
                                                           - smes.debt, 0.0)
    expected = np.maximum(desired + cash_buffer(model) - smes.cash, 0.0) + refinance
    assert banks_cfg.leverage_adjustment > 0 and refinance.any()
    assert need.tobytes() == expected.tobytes()
    wants = (expected > np.maximum(MIN_LOAN, 0.02 * smes.sales)) & (smes.sales > 0)
    expected_applies = wants & (((wait == 0) & (draws < 0.6)) | (wait < 0))
    assert np.array_equal(applies, expected_applies)
    # waits count down; a searcher that no longer applies ends its episode; a discouraged firm waits
    discouraged = wants & (wait == 0) & (draws >= 0.6)
    expected_wait = np.where(wait > 0, wait - 1, np.where((wait < 0) & ~applies, 0, wait))
    expected_wait[discouraged] = model.config.banks.refused_wait_months
    assert np.array_equal(smes.credit_wait, expected_wait)
    assert withdrawn == np.count_nonzero((wait < 0) & ~applies)
    assert model.step_stats["credit_discouraged"] == np.count_nonzero(discouraged)


def test_bincount_sums_match_numpy_bincount():
    from sme_abm.kernels import bincount_sums

    rng = np.random.default_rng(3)
    for dtype in (np.int8, np.int16, np.int64, np.intp):
        groups = rng.integers(0, 7, 5_000).astype(dtype)
        weights = np.exp(5 * rng.standard_normal(5_000)) * rng.choice([-1.0, 1.0], 5_000)
        for w in (weights, 0.37):
            expected = np.bincount(groups, weights=np.broadcast_to(w, groups.shape), minlength=9)
            assert bincount_sums(groups, weights=w, minlength=9).tobytes() == expected.tobytes()
    # groups beyond minlength, or negative, are numpy's business (a longer array, an error)
    assert bincount_sums(np.array([0, 5]), weights=np.ones(2), minlength=3).size == 6
    with pytest.raises(ValueError):
        bincount_sums(np.array([0, -1]), weights=np.ones(2), minlength=3)


def test_ledger_row_payments_match_numpy_fancy_indexing():
    from sme_abm.accounting import _apply_to_rows_kernel

    rng = np.random.default_rng(4)
    cash = rng.standard_normal(1_000)
    rows = rng.integers(0, 1_000, 700)  # with repeats: numpy keeps the last value written
    amount = rng.standard_normal(700)
    for add, ufunc in ((True, np.add), (False, np.subtract)):
        expected = cash.copy()
        expected[rows] = ufunc(expected[rows], amount)
        got = cash.copy()
        assert _apply_to_rows_kernel(got, rows.astype(np.int16), amount, add)
        assert got.tobytes() == expected.tobytes()
    got = cash.copy()
    assert not _apply_to_rows_kernel(got, np.array([3, 1_000]), amount[:2], True)
    assert got.tobytes() == cash.tobytes()


def test_ledger_payments_to_rows_keep_numpy_results():
    model = SMEEconomy(n_smes=500, rng=8)
    ledger, smes, banks = model.ledger, model.smes, model.banks
    rows = np.array([3, 7, 11])
    before, bank_before = smes.cash.copy(), banks.cash.copy()
    ledger.pay("test", "smes", "banks", 0.25, payer_rows=rows, payee_rows=np.array([0, 0, 1]))
    expected = before.copy()
    expected[rows] = expected[rows] - np.full(3, 0.25)
    assert smes.cash.tobytes() == expected.tobytes()
    assert banks.cash.tobytes() == (bank_before + np.bincount([0, 0, 1], weights=np.full(3, 0.25),
                                                              minlength=banks.size)).tobytes()
    ledger.pay("test", "smes", "households", 1.0, payer_rows=-1)  # a negative row, as numpy reads it
    assert smes.cash[-1] == before[-1] - 1.0


def test_serving_in_queue_order_matches_numpy_lexsort_and_cumsum():
    from sme_abm.markets.credit import _serve_in_order, _serve_in_order_numpy

    rng = np.random.default_rng(5)
    for trial in range(300):
        n = int(rng.integers(1, 3_000))
        n_groups = int(rng.integers(1, 6))
        groups = rng.integers(0, n_groups, n).astype([np.int16, np.int64, np.int8][trial % 3])
        # priorities with ties, both zeros, infinities and NaN; sizes with ties and zeros
        priority = [rng.random(n), rng.integers(0, 4, n) / 3.0, rng.standard_normal(n)][trial % 3]
        special = rng.random(n) < 0.05
        priority[special] = rng.choice(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310]), special.sum())
        size = np.exp(2 * rng.standard_normal(n)) * (rng.random(n) > 0.05)
        totals = np.bincount(groups, weights=size, minlength=n_groups)
        limit = totals * rng.random(n_groups)
        expected = _serve_in_order_numpy(groups, priority, size, limit)
        assert _serve_in_order(groups, priority, size, limit).tobytes() == expected.tobytes(), trial
    # a group without a limit is numpy's error, as before
    with pytest.raises(IndexError):
        _serve_in_order(np.array([0, 2]), np.array([0.1, 0.2]), np.ones(2), np.ones(2))


def test_exporter_redraw_matches_numpy():
    from sme_abm.model import CAN_EXPORT, _redraw_exporters_kernel

    rng = np.random.default_rng(6)
    n = 5_000
    redraw_draws, export_draws = rng.random(n), rng.random(n)
    sector = rng.integers(0, CAN_EXPORT.size, n).astype(np.int8)
    exporter = rng.random(n) < 0.3
    redraw_draws[:20] = 0.02  # the boundary: not redrawn
    expected = np.where(redraw_draws < 0.02, CAN_EXPORT[sector] & (export_draws < 0.4), exporter)
    _redraw_exporters_kernel(redraw_draws, export_draws, sector, CAN_EXPORT, 0.4, exporter)
    assert exporter.tobytes() == expected.tobytes()


def test_direct_finance_masks_match_numpy():
    from sme_abm.agents.sme import MEDIUM
    from sme_abm.markets.capital import _direct_finance_kernel

    rng = np.random.default_rng(7)
    n = 5_000
    productivity = np.exp(rng.standard_normal(n))
    productivity[:10] = np.nan
    innovative, size_class = rng.random(n) < 0.4, rng.integers(0, 4, n).astype(np.int8)
    profit = rng.standard_normal(n)
    profit[10:20] = 0.0
    venture_draws, listing_draws = rng.random(n), rng.random(n)
    median, upper = np.quantile(productivity[10:], (0.5, 0.75))
    productivity[20:30] = median  # ties at the thresholds
    productivity[30:40] = upper
    venture, listing = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    _direct_finance_kernel(productivity, innovative, size_class, profit, venture_draws, listing_draws,
                           float(median), float(upper), 0.3, 0.2, venture, listing)
    expected_venture = innovative & (productivity >= upper) & (venture_draws < 0.3)
    eligible = (size_class >= MEDIUM) & (profit > 0) & (productivity >= median)
    assert venture.tobytes() == expected_venture.tobytes()
    assert listing.tobytes() == (eligible & (listing_draws < 0.2)).tobytes()


def test_support_masks_match_numpy():
    from sme_abm.agents.government import _fund_equity_kernel, _viable_kernel
    from sme_abm.agents.sme import SMALL

    rng = np.random.default_rng(8)
    n = 5_000
    sector = rng.integers(0, 6, n).astype(np.int8)
    log_a = rng.standard_normal(n)
    sector_mean = rng.standard_normal(6)
    log_a[:6] = sector_mean[sector[:6]]  # ties
    log_a[6:10] = np.nan
    viable = np.empty(n, dtype=bool)
    _viable_kernel(log_a, sector, sector_mean, viable)
    assert viable.tobytes() == (log_a >= sector_mean[sector]).tobytes()

    growth = np.concatenate([rng.standard_normal(n - 4), [-0.0, 0.0, np.nan, -np.inf]])
    innovative, size_class = rng.random(n) < 0.5, rng.integers(0, 4, n).astype(np.int8)
    profit = np.where(rng.random(n) < 0.1, 0.0, rng.standard_normal(n))
    score, eligible = np.empty(n), np.empty(n, dtype=bool)
    _fund_equity_kernel(growth, innovative, size_class, profit, score, eligible)
    assert score.tobytes() == (growth + 0.5 * innovative).tobytes()
    assert eligible.tobytes() == ((size_class >= SMALL) & (size_class <= 2) & (profit > 0)).tobytes()


def test_receivable_collection_matches_numpy():
    from sme_abm.markets.goods import _collect_receivables_kernel

    rng = np.random.default_rng(9)
    n = 5_000
    receivables = np.exp(3 * rng.standard_normal(n))
    receivables[:5] = 0.0
    invoices = receivables * rng.random(n)
    pay_rate, early_share, default_rate, recovery, lf_share = 30.0 / 47.0, 0.25, 0.013, 0.37, 0.61
    carried = receivables - invoices
    paid = carried * pay_rate * (1.0 - default_rate) + invoices * early_share
    defaulted = carried * default_rate
    recovered = defaulted * recovery
    written_off = defaulted - recovered
    paid = paid + recovered
    settled = paid + written_off
    got = receivables.copy()
    out = [np.empty(n) for _ in range(4)]
    _collect_receivables_kernel(got, invoices, pay_rate, early_share, 1.0 - default_rate, default_rate, recovery,
                                lf_share, 1 - lf_share, *out)
    for value, expected in zip(out + [got], [written_off, paid * lf_share, paid * (1 - lf_share), settled,
                                             receivables - settled]):
        assert value.tobytes() == expected.tobytes()


def test_exit_classification_matches_numpy():
    from sme_abm.demography import DEFAULT_CAUSES, OVERDRAFT_MONTHS_TO_DEFAULT, _exit_kernel

    rng = np.random.default_rng(10)
    n = 5_000
    cash, capital, receivables = rng.standard_normal(n), rng.random(n), rng.random(n)
    debt = 2.0 * rng.random(n)
    debt[:10] = (cash + capital + receivables)[:10]  # equity exactly zero: not a default
    capacity = 1.5 * rng.random(n)
    score = rng.random(n)
    score[10:20] = np.nan
    trained = rng.random(n) < 0.3
    overdraft_months = rng.integers(0, 5, n).astype(np.int16)
    loss_months = rng.integers(0, 12, n).astype(np.int16)
    draws = rng.random(n)
    candidates = rng.random(n) < 0.1
    exogenous = 0.02
    default, voluntary, listing, leaving = (np.empty(n, dtype=bool) for _ in range(4))
    causes = np.zeros(len(DEFAULT_CAUSES), dtype=np.int64)
    counts = _exit_kernel(cash, capital, receivables, debt, capacity, overdraft_months, loss_months, trained, draws,
                          candidates, 9, exogenous, score * 0.2, default, voluntary, listing, leaving, causes)

    equity = cash + capital + receivables - debt
    cashflow = ((overdraft_months > 0) & (debt > capacity)) | (overdraft_months >= OVERDRAFT_MONTHS_TO_DEFAULT)
    negative = equity < 0
    scored = draws < score * 0.2 * np.where(trained, 0.7, 1.0)
    outside = ~scored & (draws >= 1.0 - exogenous)
    expected_default = cashflow | negative | scored | outside
    expected_listing = candidates & ~expected_default
    expected_voluntary = ~expected_default & ~expected_listing & (loss_months >= 9)
    assert default.tobytes() == expected_default.tobytes()
    assert listing.tobytes() == expected_listing.tobytes()
    assert voluntary.tobytes() == expected_voluntary.tobytes()
    assert leaving.tobytes() == (expected_default | expected_voluntary | expected_listing).tobytes()
    assert counts == (int(expected_default.sum()), int(expected_voluntary.sum()), int(expected_listing.sum()))
    # closures handed to the lender are counted outside the kernel (``_hand_over_insolvent_closures``)
    first_cause = [cashflow, negative & ~cashflow, np.zeros(n, dtype=bool), scored & ~cashflow & ~negative,
                   outside & ~cashflow & ~negative & ~scored]
    assert DEFAULT_CAUSES[2] == "closure"
    assert causes.tolist() == [int(c.sum()) for c in first_cause]
    assert min(counts) > 0 and min(np.delete(causes, 2)) > 0


def test_ledger_payments_with_the_callers_row_sums_match_summing_in_the_ledger():
    from sme_abm.kernels import bincount_sums

    model = SMEEconomy(n_smes=500, rng=11)
    ledger, smes, banks = model.ledger, model.smes, model.banks
    amounts = np.random.default_rng(11).random(smes.size)
    sme_before, bank_before = smes.cash.copy(), banks.cash.copy()
    ledger.pay("test", "smes", "banks", amounts, payee_rows=smes.bank)
    expected_smes, expected_banks = smes.cash.copy(), banks.cash.copy()
    smes.cash, banks.cash = sme_before, bank_before
    sums = bincount_sums(smes.bank, weights=amounts, minlength=banks.size)
    ledger.pay("test", "smes", "banks", amounts, payee_rows=smes.bank, payee_sums=sums)
    assert smes.cash.tobytes() == expected_smes.tobytes()
    assert banks.cash.tobytes() == expected_banks.tobytes()
    ledger.pay("test back", "banks", "smes", amounts, payer_rows=smes.bank, payer_sums=sums)
    assert banks.cash.tobytes() == (expected_banks - sums).tobytes()


def test_overdraft_months_match_numpy():
    from sme_abm.agents.bank import _count_overdraft_months_kernel

    rng = np.random.default_rng(12)
    n = 5_000
    cash = rng.standard_normal(n)
    cash[:4] = [0.0, -0.0, np.nan, -np.inf]
    months = rng.integers(0, 10, n).astype(np.int16)
    months[4], cash[4] = np.iinfo(np.int16).max, -1.0  # wraps, as numpy's int16 addition does
    expected_short = cash < 0
    with np.errstate(over="ignore"):
        expected = np.where(expected_short, months + np.int16(1), 0).astype(np.int16)
    short = np.empty(n, dtype=bool)
    _count_overdraft_months_kernel(cash, short, months)
    assert short.tobytes() == expected_short.tobytes()
    assert months.tobytes() == expected.tobytes()


def test_flagging_paid_firms_matches_numpy():
    from sme_abm.agents.government import _flag_paid_kernel

    rng = np.random.default_rng(13)
    n = 5_000
    amounts = np.where(rng.random(n) < 0.3, rng.random(n), 0.0)
    amounts[:4] = [-0.0, np.nan, -1.0, np.inf]
    bits = rng.integers(0, 256, n).astype(np.uint8)
    expected = bits.copy()
    expected[np.flatnonzero(amounts > 0)] |= np.uint8(1 << 5)
    _flag_paid_kernel(amounts, np.uint8(1 << 5), bits)
    assert bits.tobytes() == expected.tobytes()


def test_innovation_outcomes_match_numpy():
    from sme_abm.agents.sme import _innovation_kernel

    rng = np.random.default_rng(14)
    n = 5_000
    sector = rng.integers(0, 6, n).astype(np.int8)
    innovative, digital, trained = rng.random(n) < 0.4, rng.random(n) < 0.3, rng.random(n) < 0.2
    sales = np.where(rng.random(n) < 0.1, 0.0, rng.random(n))
    cash = 100.0 * rng.standard_normal(n)
    rd_draws, adoption_draws, training_draws = rng.random(n), rng.random(n), rng.random(n)
    ip_stock = rng.random(n)
    expected_ip = 0.99 * ip_stock + np.where(innovative, 0.03 * sales, 0.0)
    success, adopt, newly_trained = (np.empty(n, dtype=bool) for _ in range(3))
    successes, firms = np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.int64)
    _innovation_kernel(sector, innovative, sales, digital, cash, trained, rd_draws, adoption_draws, training_draws,
                       0.3, 0.2, 50.0, 0.1, 0.03, ip_stock, success, adopt, newly_trained, successes, firms)
    expected_success = innovative & (rd_draws < 0.3) & (sales > 0)
    assert success.tobytes() == expected_success.tobytes()
    assert ip_stock.tobytes() == expected_ip.tobytes()
    assert adopt.tobytes() == (~digital & (adoption_draws < 0.2) & (cash > 50.0)).tobytes()
    assert newly_trained.tobytes() == (~trained & (training_draws < 0.1)).tobytes()
    assert successes.tolist() == np.bincount(sector[expected_success], minlength=6).tolist()
    assert firms.tolist() == np.bincount(sector, minlength=6).tolist()


def test_take_matches_numpy_fancy_indexing():
    from sme_abm.kernels import take

    @njit
    def _take(table, index):
        return take(table, index)

    rng = np.random.default_rng(15)
    table = np.concatenate([rng.standard_normal(4), [np.nan, -0.0]])
    sector = rng.integers(0, 6, 1_000).astype(np.int8)
    assert _take(table, sector).tobytes() == table[sector].tobytes()
    flags = rng.random(6) < 0.5
    assert _take(flags, sector).tobytes() == flags[sector].tobytes()


def test_pilot_control_kernel_matches_python_hash():
    """Lever 25's control groups: the kernel's splitmix64 is the Python reference bit for bit,
    and the groups hold the configured share of firms."""
    from sme_abm.agents.government import _MASK64, _control_arm_kernel, _mix64

    firm_id = np.arange(20_000, dtype=np.int64) * 7 + 3
    key = _mix64(12345)
    held = np.empty(firm_id.size, dtype=bool)
    _control_arm_kernel(firm_id, np.uint64(key), 0.2, held)
    expected = [(_mix64((int(f) ^ key) & _MASK64) >> 11) / 2.0 ** 53 < 0.2 for f in firm_id]
    assert held.tolist() == expected
    assert held.mean() == pytest.approx(0.2, abs=0.01)


def test_population_wide_kernels_match_their_numpy_definitions():
    from sme_abm.agents.sme import _grow_demand_weights_kernel, _scale_by_sector_kernel, monthly_capacity
    from sme_abm.markets.capital import book_equity
    from sme_abm.markets.credit import pledgeable_value
    from sme_abm.recorder import _real_output_and_capacity_kernel

    model = SMEEconomy(n_smes=3_000, rng=9)
    model.run(3)
    smes, p = model.smes, model.policy
    smes.cash[:20] = -smes.cash[:20]  # some overdrawn firms
    assert book_equity(model).tobytes() == (smes.cash + smes.capital + smes.receivables - smes.debt).tobytes()
    expected = (model.config.banks.loan_to_value * smes.capital
                + p.p10_multilevel_finance.receivables_collateral_ratio * smes.receivables
                + p.p22_ip_protection.ip_collateral_ratio * smes.ip_stock)
    assert pledgeable_value(model).tobytes() == expected.tobytes()

    real, capacity = np.empty(smes.size), np.empty(smes.size)
    _real_output_and_capacity_kernel(smes.sales, smes.price, smes.capital, smes.sector,
                                     np.asarray(model.capital_output_ratio, dtype=float), real, capacity)
    assert real.tobytes() == (smes.sales / smes.price).tobytes()
    assert capacity.tobytes() == monthly_capacity(model).tobytes()

    rng = np.random.default_rng(9)
    growth, root = np.exp(0.1 * rng.standard_normal(smes.size)), np.sqrt(rng.random(smes.size))
    weights, after = smes.demand_weight.copy(), np.zeros(len(model.sector_names))
    _grow_demand_weights_kernel(weights, growth, root, smes.sector, after)
    expected = smes.demand_weight * (growth * root)
    assert weights.tobytes() == expected.tobytes()
    assert after.tobytes() == np.bincount(smes.sector, weights=expected, minlength=after.size).tobytes()
    factor = rng.random(after.size)
    _scale_by_sector_kernel(weights, smes.sector, factor)
    assert weights.tobytes() == (expected * factor[smes.sector]).tobytes()


def test_dividend_split_matches_numpy():
    from sme_abm.agents.sme import _dividend_kernel

    model = SMEEconomy(n_smes=3_000, rng=10)
    model.run(3)
    smes, econ = model.smes, model.config.economy
    smes.public_equity_share[::7] = np.float32(0.13)  # some firms part-owned by the fund
    dividends, to_fund, to_owners = (np.empty(smes.size) for _ in range(3))
    _dividend_kernel(smes.cash, smes.costs, smes.profit, smes.public_equity_share, float(econ.cash_buffer_months),
                     float(econ.dividend_payout), dividends, to_fund, to_owners)
    excess = np.maximum(smes.cash - econ.cash_buffer_months * smes.costs, 0.0)
    expected = np.minimum(econ.dividend_payout * excess, np.maximum(smes.profit, 0.0))
    assert dividends.tobytes() == expected.tobytes()
    assert to_fund.tobytes() == (expected * smes.public_equity_share).tobytes()
    assert to_owners.tobytes() == (expected - expected * smes.public_equity_share).tobytes()


def test_sme_deposit_interest_matches_numpy():
    from sme_abm.sectors import _sme_deposit_interest_kernel

    model = SMEEconomy(n_smes=3_000, rng=11)
    model.run(3)
    smes, banks = model.smes, model.banks
    smes.cash[:30] = -smes.cash[:30]  # overdrawn firms earn nothing
    interest, home, by_bank = np.empty(smes.size), np.empty(smes.size, dtype=banks.deposit_home.dtype), np.zeros(banks.size)
    _sme_deposit_interest_kernel(smes.cash, smes.bank, banks.deposit_home, 0.0025, interest, home, by_bank)
    expected = 0.0025 * np.maximum(smes.cash, 0.0)
    assert interest.tobytes() == expected.tobytes()
    assert np.array_equal(home, banks.deposit_home[smes.bank])
    assert by_bank.tobytes() == np.bincount(banks.deposit_home[smes.bank], weights=expected, minlength=banks.size).tobytes()
