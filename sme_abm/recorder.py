"""Per-step outputs, collected column-wise and cheaply (one row of scalars per
step), plus the firm panel every K steps and one row per exit."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from .agents.bank import NONDEPOSIT_LENDER
from .agents.sme import LARGE, MEDIUM, MICRO, SMALL
from .demography import EXIT_REASONS
from .heap import release_free_heap
from .kernels import njit, take
from .size_distribution import high_growth_share, zipf_exponent

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy

TAX_FLOWS = ("vat", "corporate_income_tax", "admin_fees", "income_tax", "large_firm_taxes")
BOND_SALES = ("bond_purchases_banks", "bond_purchases_households")
BOND_SERVICE = ("bond_redemptions_banks", "bond_redemptions_households", "bond_interest_banks", "bond_interest_households")


def _primary_deficit(ledger: Any) -> float:
    """Government spending less revenue this month, before interest and bond finance."""
    flows = ledger.flows
    primary_balance = (ledger.net["government"] - math.fsum(flows.get(f, 0.0) for f in BOND_SALES)
                       + math.fsum(flows.get(f, 0.0) for f in BOND_SERVICE))
    return -primary_balance
#: Rows per Parquet row group of a streamed panel: the writer encodes a whole group in memory.
PANEL_ROW_GROUP = 131_072
PANEL_COLUMNS = ("firm_id", "sector", "size_class", "employment", "sales", "capital", "debt", "guaranteed",
                 "loan_rate", "age")

#: Columns of the credit-application record: the month, the applicant, what the bank estimated
#: and decided, and what it charged (NaN when refused).
APPLICATION_COLUMNS = {"step": np.int32, "firm_id": np.int64, "size_class": np.int8, "sector": np.int8,
                       "estimated_pd": np.float64, "amount": np.float64, "direct": np.bool_,
                       "eligible": np.bool_, "guaranteed": np.bool_, "granted": np.bool_, "rate": np.float64}


class Recorder:
    """Collects a run's outputs."""

    def __init__(self, model: "SMEEconomy") -> None:
        self.model = model
        self.rows: list[dict[str, float]] = []
        self.panel: list[pd.DataFrame] = []
        self.exit_rows: list[dict[str, np.ndarray]] = []
        self.started = time.time()
        self.lever_keys = model.registry.keys
        self.panel_file: Path | None = None
        self._panel_writer: Any = None
        self.application_rows: list[dict[str, np.ndarray]] | None = None  # None: not recorded

    def restart(self) -> None:
        """Forget what was recorded so far (the burn-in): the record starts at month 0."""
        self.rows, self.panel, self.exit_rows = [], [], []
        if self.application_rows is not None:
            self.application_rows = []

    def record_applications(self) -> None:
        """Keep one row per credit application from now on (:meth:`applications`): the firm-level
        record the quasi-experiments of :mod:`sme_abm.quasi_experiments` need. Off by default,
        since at a million firms it would be a few hundred megabytes a decade."""
        if self.application_rows is None:
            self.application_rows = []

    def log_applications(self, columns: dict[str, np.ndarray]) -> None:
        """One month's applications (called by the credit market when recording is on)."""
        if self.application_rows is None or self.model.month < 0:
            return
        size = len(next(iter(columns.values())))
        self.application_rows.append({"step": np.full(size, self.model.month, dtype=np.int32), **columns})

    def stream_panel(self, path: str | Path) -> None:
        """Write firm-panel snapshots to a Parquet file as they are taken instead of
        keeping them in memory (a million firms x 10 snapshots is half a gigabyte)."""
        self.panel_file = Path(path)

    def close_panel(self) -> None:
        """Finish the streamed panel file (an empty panel if no snapshot was taken)."""
        if self.panel_file is None:
            return
        if self._panel_writer is None:
            self.firm_panel().to_parquet(self.panel_file, index=False)
            return
        self._panel_writer.close()
        self._panel_writer = None
        if self.panel:  # snapshots restored from a saved state come first
            streamed = pd.read_parquet(self.panel_file)
            pd.concat([*self.panel, streamed], ignore_index=True).to_parquet(self.panel_file, index=False)
            self.panel = []

    def model_reporters(self) -> dict[str, Callable[[Any], Any]]:
        """Reporters for Mesa's DataCollector: the latest value of each headline output."""
        names = ("smes_active", "entries", "exits", "employment", "output", "credit_granted",
                 "credit_rationed", "avg_loan_rate", "npl_ratio", "fiscal_cost_total")
        return {name: (lambda m, name=name: m.recorder.rows[-1][name] if m.recorder.rows else np.nan) for name in names}

    def record_step(self, residual: float) -> None:
        m = self.model
        smes, banks, guarantors, ledger, s = m.smes, m.banks, m.guarantors, m.ledger, m.step_stats
        # counts by comparison and count_nonzero, not bincount/sum over converted arrays (the same integers);
        # gathers through flatnonzero, not boolean masks (the same elements in the same order, so the same sums)
        sizes = [np.count_nonzero(smes.size_class == size_class) for size_class in (MICRO, SMALL, MEDIUM, LARGE)]
        debt_total = float(smes.debt.sum())
        lpr = m.central_bank.loan_prime_rate
        avg_rate = float(np.average(smes.loan_rate, weights=smes.debt)) if debt_total > 0 else float("nan")
        direct = ~guarantors.is_reguarantee_fund
        leverage = guarantors.leverage()[direct]
        fiscal = {f"fiscal_cost_{key[:3]}": float(m.government.fiscal_cost.get(key, 0.0)) for key in self.lever_keys}
        credit_sales = s.get("credit_sales", 0.0)
        receivables = float(smes.receivables.sum())
        is_sme = smes.size_class <= MEDIUM
        sme_output = smes.sales[np.flatnonzero(is_sme)].sum()
        output = smes.sales.sum()
        # real output and capacity per firm in one pass (the elements monthly_capacity and
        # sales / price give), summed by numpy
        real, capacity_by_firm = np.empty(smes.size), np.empty(smes.size)
        _real_output_and_capacity_kernel(smes.sales, smes.price, smes.capital, smes.sector,
                                         np.asarray(m.capital_output_ratio, dtype=float), real, capacity_by_firm)
        real_output = float(real.sum())
        price_index = float(output / real_output) if real_output > 0 else 1.0
        capacity = float(capacity_by_firm.sum())
        last_price_index = m.price_index
        m.price_index = price_index
        exits = int(s.get("exits_default", 0) + s.get("exits_voluntary", 0) + s.get("exits_listing", 0))
        new_rate = s.get("new_loan_rate", np.nan)
        deposits = banks.deposits
        npl = float(banks.npl.sum())
        nondeposit = banks.kind == NONDEPOSIT_LENDER
        guaranteed_total = float(smes.guaranteed.sum())
        # entrants in their first month of production (they enter in phase 7, age 1 at the month's
        # end, and produce the next month) and the survivors of a cohort twelve months later
        first_month, first_year = smes.age == 2, smes.age == 14
        row = {
            "step": m.month,
            "firms": smes.size,
            "smes_active": int(np.count_nonzero(is_sme)),
            "smes_micro": int(sizes[MICRO]),
            "smes_small": int(sizes[SMALL]),
            "smes_medium": int(sizes[MEDIUM]),
            "graduated_large": int(sizes[LARGE]),
            "entries": int(s.get("entries", 0)),
            "entries_declined": int(s.get("entries_declined", 0)),
            "entries_unfunded": int(s.get("entries_unfunded", 0)),
            "startup_loans_refused": int(s.get("startup_loans_refused", 0)),
            "exits": exits,
            "exits_default": int(s.get("exits_default", 0)),
            "exits_voluntary": int(s.get("exits_voluntary", 0)),
            "exits_listing": int(s.get("exits_listing", 0)),
            "defaults": int(s.get("exits_default", 0)),
            "employment": float(smes.employment.sum()),
            "first_month_firms": int(np.count_nonzero(first_month)),
            "first_month_employment": float(smes.employment[first_month].mean()) if first_month.any() else np.nan,
            "first_year_firms": int(np.count_nonzero(first_year)),
            "first_year_employment": float(smes.employment[first_year].mean()) if first_year.any() else np.nan,
            "output": float(output),
            "sme_output": float(sme_output),
            "real_output": real_output,
            "capacity_utilisation": float(output / capacity) if capacity > 0 else 0.0,
            "price_index": price_index,
            "inflation": price_index / last_price_index - 1.0,
            "wage": m.wage,
            "inter_sme_sales": s.get("inter_sme_sales", 0.0),
            "searched_sales": s.get("searched_sales", 0.0),
            "sme_output_share": float(sme_output / max(output + m.large_firm_revenue, 1e-12)),
            "credit_applications": int(s.get("credit_applications", 0)),
            "credit_approved": int(s.get("credit_approved", 0)),
            "credit_demanded": s.get("credit_demanded", 0.0),
            "credit_granted": s.get("credit_granted", 0.0),
            # rationing per applicant episode (an episode runs from a firm's application to a loan,
            # or to the refusal after which it waits; a search at another lender continues it)
            "credit_rationed": s.get("credit_rationed", 0.0),
            "credit_demanded_episodes": s.get("credit_demanded_episodes", 0.0),
            "credit_rationed_value_share": s.get("credit_rationed", 0.0) / s["credit_demanded_episodes"]
            if s.get("credit_demanded_episodes", 0.0) > 0 else 0.0,
            "credit_refusals": int(s.get("credit_refusals", 0)),
            "credit_episodes_started": int(s.get("credit_episodes_started", 0)),
            "credit_episodes_ended": int(s.get("credit_episodes_ended", 0)),
            "credit_episodes_refused": int(s.get("credit_episodes_refused", 0)),
            "credit_episodes_withdrawn": int(s.get("credit_episodes_withdrawn", 0)),
            "creditworthy_episodes": int(s.get("creditworthy_episodes", 0)),
            "creditworthy_episodes_refused": int(s.get("creditworthy_episodes_refused", 0)),
            "creditworthy_refused_episode_share": s.get("creditworthy_episodes_refused", 0)
            / max(s.get("creditworthy_episodes", 0), 1),
            "credit_discouraged": int(s.get("credit_discouraged", 0)),
            "credit_waiting": int(s.get("credit_waiting", 0)),
            "bank_switches": int(s.get("bank_switches", 0)),
            "bank_switches_after_refusal": int(s.get("bank_switches_after_refusal", 0)),
            "facilities_moved": s.get("facilities_moved", 0.0),
            "credit_guaranteed": s.get("credit_guaranteed", 0.0),
            "credit_granted_small_micro": s.get("credit_granted_small_micro", 0.0),
            "creditworthy_refused_share": s.get("creditworthy_refused", 0) / max(s.get("creditworthy_applicants", 0), 1),
            "creditworthy_misjudged_share": s.get("creditworthy_misjudged", 0) / max(s.get("creditworthy_applicants", 0), 1),
            "collateral_per_applicant": s.get("collateral_per_applicant", 0.0),
            "credit_granted_nondeposit": s.get("credit_granted_nondeposit", 0.0),
            "collateral_constrained_share": s.get("collateral_constrained", 0) / max(s.get("credit_applications", 0), 1),
            "approval_rate_small_micro": s.get("approved_small_micro", 0) / max(s.get("applications_small_micro", 0), 1),
            "unguaranteed_approval_rate_small_micro": s.get("approved_small_micro_unguaranteed", 0)
            / max(s.get("applications_small_micro", 0), 1),
            "loans_outstanding": debt_total,
            "avg_loan_rate": avg_rate,
            "new_loan_rate": new_rate,
            "new_loan_rate_small_micro": s.get("new_loan_rate_small_micro", np.nan),
            "loan_rate_spread": avg_rate - lpr,
            "spread_vs_large_firms": new_rate - (lpr + m.config.banks.large_firm_markup),
            "loan_prime_rate": lpr,
            # defaulted exposure in workout over gross loans (performing plus non-performing)
            "npl_ratio": npl / (debt_total + npl) if debt_total + npl > 0 else 0.0,
            "loan_losses": s.get("loan_losses", 0.0),
            "defaults_cashflow": int(s.get("defaults_cashflow", 0)),
            "defaults_equity": int(s.get("defaults_equity", 0)),
            "defaults_closure": int(s.get("defaults_closure", 0)),
            "defaults_score": int(s.get("defaults_score", 0)),
            "defaults_exogenous": int(s.get("defaults_exogenous", 0)),
            "defaulted_exposure": s.get("defaulted_exposure", 0.0),
            "loss_given_default": m.loss_given_default(),
            "realised_default_rate": s.get("realised_default_rate", np.nan),
            "predicted_default_rate": s.get("predicted_default_rate", np.nan),
            # annual rates per yuan of loans: the losses banks bear themselves (after guarantee
            # claims), and the expected loss priced into this month's new loans
            "bank_loss_rate": 12.0 * s.get("guarantee_loss_bank", 0.0) / debt_total if debt_total > 0 else 0.0,
            "priced_loss_rate": s.get("priced_loss_rate", np.nan),
            "bank_recapitalisation": s.get("bank_recapitalisation", 0.0),
            "banks_resolved": int(s.get("banks_resolved", 0)),
            "nondeposit_loan_share": float(banks.loans[nondeposit].sum() / debt_total) if debt_total > 0 else 0.0,
            # commercial banks' ratio, as NFRA reports it (15.06% at end 2023); non-deposit
            # lenders lend their own equity and are reported apart
            "bank_capital_ratio": float(banks.equity[~nondeposit].sum()
                                        / max(banks.risk_weighted_assets[~nondeposit].sum(), 1e-9)),
            "nondeposit_capital_ratio": float(banks.equity[nondeposit].sum()
                                              / max(banks.risk_weighted_assets[nondeposit].sum(), 1e-9)),
            "bank_capital_ratio_min": float(banks.capital_ratio[banks.risk_weighted_assets > 0].min())
            if (banks.risk_weighted_assets > 0).any() else float("nan"),
            "relending_outstanding": float(banks.cb_borrowing.sum()),
            "nondeposit_bank_borrowing": float(banks.bank_borrowing.sum()),
            "standing_facility": float(banks.standing_facility.sum()),
            "bank_deposits": float(deposits.sum()),
            "bank_reserves": float((banks.cash + deposits).sum()),
            "guarantees_outstanding": float(guarantors.outstanding.sum()),
            "guarantor_leverage_max": float(leverage.max()) if leverage.size else 0.0,
            "guarantor_over_limit": float((leverage - guarantors.leverage_limit()[direct]).max()) if leverage.size else 0.0,
            "guarantor_issuance_over_limit": s.get("guarantor_issuance_over_limit", 0.0),
            "guarantor_leverage_mean": float(guarantors.outstanding[direct].sum() / max(guarantors.cash[direct].sum(), 1e-9)),
            # the average fee on guarantees outstanding (risk-based, capped on average by lever 13)
            "guarantee_fee": float(np.dot(smes.guarantee_fee_rate.astype(np.float64), smes.guaranteed) / guaranteed_total)
            if guaranteed_total > 0 else float("nan"),
            "new_guarantee_fee": s.get("new_guarantee_fee", np.nan),
            "guarantee_loss_bank": s.get("guarantee_loss_bank", 0.0),
            "guarantee_loss_guarantor": s.get("guarantee_loss_guarantor", 0.0),
            "guarantee_loss_reguarantee_fund": s.get("guarantee_loss_reguarantee_fund", 0.0),
            "guarantee_loss_government": s.get("guarantee_loss_government", 0.0),
            "tax_revenue": math.fsum(ledger.flows.get(f, 0.0) for f in TAX_FLOWS),
            "tax_paid_small_micro": m.government.tax_paid_small_micro,
            "fiscal_cost_total": math.fsum(fiscal.values()),
            **fiscal,
            "government_balance": ledger.balances["government"],
            "government_debt": m.government.debt,
            "debt_to_annual_output": m.government.debt / max(12.0 * (float(output) + m.large_firm_revenue), 1e-12),
            # other spending the debt-stabilising rule adds to the plan (negative: cuts)
            "closure_spending": float(m.government.closure_spending),
            "bond_interest": ledger.flows.get("bond_interest_banks", 0.0) + ledger.flows.get("bond_interest_households", 0.0),
            "bonds_issued": s.get("bonds_issued", 0.0),
            "bonds_held_by_banks": float(banks.bonds.sum()),
            "government_overdraft": s.get("government_overdraft", 0.0),
            "other_spending": m.government.other_spending,
            "budget_neutral_levy": ledger.flows.get("budget_neutral_levy", 0.0),
            "primary_deficit": _primary_deficit(ledger),
            "procurement_budget": s.get("procurement_budget", 0.0),
            "procurement_sme": s.get("procurement_sme", 0.0),
            "procurement_small_micro": s.get("procurement_small_micro", 0.0),
            # measured payment days: the month-end receivables over the month's credit sales
            # (supply-chain orders and procurement, paid late), in days of 30 a month
            "payment_days": receivables / (credit_sales / 30.0) if credit_sales > 0 else float("nan"),
            "credit_sales": credit_sales,
            "receivables": receivables,
            "receivables_written_off": s.get("receivables_written_off", 0.0),
            "shutdowns": int(s.get("shutdowns", 0)),
            "export_sales": s.get("export_sales", 0.0),
            "grant_targeting_accuracy": s.get("grant_targeting_accuracy", np.nan),
            "budget_weight_p06": m.government.budget_weights.get("p06_fiscal_funds", 1.0),
            "arrears": max(receivables - 2.0 * credit_sales, 0.0),
            # no firms left (every SME exited): the moments are undefined (NaN in Parquet, null in JSON)
            "productivity_mean": float(np.mean(smes.productivity)) if smes.size else float("nan"),
            "productivity_dispersion": float(np.std(np.log(smes.productivity))) if smes.size else float("nan"),
            "rd_spending": ledger.flows.get("rd_spending", 0.0),
            "rd_intensity": float(m.rd_intensity),
            "innovations": int(getattr(m, "step_innovations", 0)),
            # the mean of a boolean array is its count over its size, correctly rounded either way
            "digital_share": np.count_nonzero(smes.digital) / smes.size if smes.size else 0.0,
            "trained_share": np.count_nonzero(smes.trained) / smes.size if smes.size else 0.0,
            "exporter_share": np.count_nonzero(smes.exporter) / smes.size if smes.size else 0.0,
            "little_giants": int(np.count_nonzero(smes.little_giant)),
            "venture_deals": int(s.get("venture_deals", 0)),
            # the SME administration's support cases (lever 24): processed this month, still
            # waiting, lapsed unpaid, cancelled (the firm left), and the processed cases' mean wait
            "cases_processed": int(s.get("cases_processed", 0)),
            "cases_waiting": int(s.get("cases_waiting", 0)),
            "cases_lapsed": int(s.get("cases_lapsed", 0)),
            "cases_cancelled": int(s.get("cases_cancelled", 0)),
            "case_wait_months": s.get("case_wait_months", float("nan")),
            # what outside equity earns its holders: the development fund's dividends and exit
            # proceeds (government revenue, lever 6) and the book value of its stakes; venture
            # funds' dividends and the value of their stakes in firms that left (lever 12)
            "fund_equity_income": s.get("fund_equity_income", 0.0),
            "fund_equity_value": m.government.fund_equity_value(),
            "venture_dividends": s.get("venture_dividends", 0.0),
            "venture_exit_value": s.get("venture_exit_value", 0.0),
            # SMEs' profit before income tax and period expenses (the fixed overhead, SG&A, fees,
            # R&D, interest and guarantee fees) per yuan of revenue net of VAT, as NBS reports them
            "sme_profit_margin": s.get("sme_profit_margin", 0.0),
            "sme_expense_ratio": s.get("sme_expense_ratio", 0.0),
            "household_consumption": s.get("household_consumption", 0.0),
            "investment": float(getattr(m, "step_investment", 0.0)),
            # book value of capital continuing firms sold (economy.capital_resale)
            "capital_sold": float(getattr(m, "step_capital_sold", 0.0)),
            "accounting_residual": residual,
        }
        self.rows.append(row)
        every = m.config.simulation.panel_every
        # no snapshots in the burn-in (negative months): its record is dropped at month 0, and
        # at 10^6 firms ten snapshots held in memory cost 0.7 GB
        if m.month >= 0 and m.month % every == every - 1:
            if self.panel_file is None:
                self.panel.append(self._snapshot())
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                release_free_heap()  # the encoder's pages (~50 bytes per SME) come on top of the live data only
                table = self._snapshot_table()
                if self._panel_writer is None:
                    self._panel_writer = pq.ParquetWriter(self.panel_file, table.schema)
                self._panel_writer.write_table(table, row_group_size=PANEL_ROW_GROUP)
                # Arrow's allocator keeps the pages of each snapshot (~70 bytes per SME) for reuse;
                # a snapshot comes once in `panel_every` months, so give them back.
                del table
                pa.default_memory_pool().release_unused()

    def _snapshot_columns(self) -> dict[str, np.ndarray]:
        """One panel snapshot's columns, in file order, as views of the live arrays."""
        smes = self.model.smes
        columns = {"firm_id": smes.firm_id, "step": np.full(smes.size, self.model.month, dtype=np.int32)}
        for name in PANEL_COLUMNS[1:]:
            columns["output" if name == "sales" else name] = smes.column(name)
        return columns

    def _snapshot_table(self) -> Any:
        """The snapshot as an Arrow table over the live columns (no copy; written at once)."""
        import pyarrow as pa

        return pa.table(self._snapshot_columns())

    def _snapshot(self) -> pd.DataFrame:
        """The snapshot as a DataFrame of copies (kept in memory while the columns change)."""
        return pd.DataFrame(self._snapshot_columns(), copy=True)

    def record_exits(self, rows: np.ndarray, reasons: np.ndarray) -> None:
        if rows.size == 0 or self.model.month < 0:  # the burn-in's exits are not part of the record
            return
        smes = self.model.smes
        # plain arrays now, one DataFrame when asked (building frames every step is slow)
        self.exit_rows.append({
            "step": np.full(rows.size, self.model.month, dtype=np.int32),
            "firm_id": smes.firm_id[rows],
            "age": smes.age[rows],
            "size": smes.employment[rows],
            "size_class": smes.size_class[rows],
            "output": smes.sales[rows],
            "reason": np.asarray(reasons, dtype=np.int8),  # codes into EXIT_REASONS
        })

    # -- results ---------------------------------------------------------
    def timeseries(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def firm_panel(self) -> pd.DataFrame:
        if not self.panel:
            return pd.DataFrame(columns=["firm_id", "step", *("output" if c == "sales" else c for c in PANEL_COLUMNS[1:])])
        return pd.concat(self.panel, ignore_index=True)

    def applications(self) -> pd.DataFrame | None:
        """The credit applications recorded since month 0 (None unless :meth:`record_applications`)."""
        if self.application_rows is None:
            return None
        if not self.application_rows:
            return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in APPLICATION_COLUMNS.items()})
        return pd.DataFrame({name: np.concatenate([part[name] for part in self.application_rows])
                             for name in self.application_rows[0]})

    def exits(self) -> pd.DataFrame:
        if not self.exit_rows:
            return pd.DataFrame({"step": pd.Series(dtype=np.int32), "firm_id": pd.Series(dtype=np.int64),
                                 "age": pd.Series(dtype=np.int32), "size": pd.Series(dtype=float),
                                 "size_class": pd.Series(dtype=np.int8), "output": pd.Series(dtype=float),
                                 "reason": pd.Categorical([], categories=list(EXIT_REASONS))})
        columns = {name: np.concatenate([part[name] for part in self.exit_rows]) for name in self.exit_rows[0]}
        columns["reason"] = pd.Categorical.from_codes(columns["reason"], categories=list(EXIT_REASONS))
        return pd.DataFrame(columns)

    def summary(self) -> dict[str, Any]:
        """Headline figures of the run so far."""
        ts = self.timeseries()
        if ts.empty:
            return {}
        years = len(ts) / 12.0
        deaths = ts["exits_default"].sum() + ts["exits_voluntary"].sum()
        fiscal = {key: float(ts[f"fiscal_cost_{key[:3]}"].sum()) for key in self.lever_keys}
        start = self.model.initial_smes
        return {
            "steps": int(len(ts)),
            "smes_start": int(start),
            "smes_end": int(ts["smes_active"].iloc[-1]),
            "sme_count_ratio": float(ts["smes_active"].iloc[-1] / start),
            # the edges of the population: every SME gone, or growth past POPULATION_BOUND x the start
            "extinct": bool((ts["smes_active"] == 0).any()),
            "extinct_month": int(ts.loc[ts["smes_active"] == 0, "step"].iloc[0]) if (ts["smes_active"] == 0).any() else None,
            "sme_count_ratio_max": float(ts["smes_active"].max() / start),
            "annual_exit_rate": float(deaths / ts["firms"].mean() / years),
            "annual_entry_rate": float(ts["entries"].sum() / ts["firms"].mean() / years),
            "employment_mean": float(ts["employment"].mean()),
            "output_mean": float(ts["output"].mean()),
            "output_end": float(ts["output"].iloc[-1]),
            "credit_granted_total": float(ts["credit_granted"].sum()),
            # by value, per episode: the requests of episodes that ended refused over those of all ended episodes
            "credit_rationed_share": float(ts["credit_rationed"].sum() / max(ts["credit_demanded_episodes"].sum(), 1e-12)),
            # by count, per episode: creditworthy applicants whose episode ended refused
            "creditworthy_refused_episode_share": float(ts["creditworthy_episodes_refused"].sum()
                                                        / max(ts["creditworthy_episodes"].sum(), 1)),
            "avg_loan_rate_end": float(ts["avg_loan_rate"].iloc[-1]),
            "new_loan_rate_mean": float(ts["new_loan_rate"].mean()),
            "loan_rate_spread_end": float(ts["loan_rate_spread"].iloc[-1]),
            "npl_ratio_mean": float(ts["npl_ratio"].mean()),
            "guarantees_outstanding_end": float(ts["guarantees_outstanding"].iloc[-1]),
            "guarantor_leverage_max": float(ts["guarantor_leverage_max"].max()),
            "procurement_sme_share": float(ts["procurement_sme"].sum() / max(ts["procurement_budget"].sum(), 1e-12)),
            "tax_revenue_total": float(ts["tax_revenue"].sum()),
            "fiscal_cost_total": float(ts["fiscal_cost_total"].sum()),
            "fiscal_cost_by_lever": fiscal,
            "accounting_residual_max": float(ts["accounting_residual"].max()),
            # the upper-tail (Zipf) exponent of SMEs' employment now (MLE on the upper 10%)
            "employment_tail_exponent": zipf_exponent(self.model.smes.employment),
            # OECD-Eurostat high-growth firms among those with 10+ employees, over the panel's snapshots
            "high_growth_share": high_growth_share(self.firm_panel()),
        }


@njit
def _real_output_and_capacity_kernel(sales, price, capital, sector, capital_output_ratio, real,
                                     capacity):  # pragma: no cover - compiled
    """Each firm's real output and its capacity (:func:`~sme_abm.agents.sme.monthly_capacity`)
    in one pass instead of five; the numpy it replaced::

        real = sales / price
        capacity = price * 1.2 * capital / (12.0 * capital_output_ratio[sector])
    """
    ratio = take(capital_output_ratio, sector)  # gathered first, so the loop vectorises
    for i in range(sales.size):
        real[i] = sales[i] / price[i]
        capacity[i] = price[i] * 1.2 * capital[i] / (12.0 * ratio[i])
