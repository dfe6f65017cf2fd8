"""The SME administration: support cases and the capacity that processes them (lever 24).

Programmes that serve firms one by one (lever 6's grants and fund-equity deals, lever 14's
start-up grants, lever 17's adoption subsidies, lever 19's training places, lever 23's
relief) do not pay when they choose a firm: they open a *case*. Cases wait in one
first-come, first-served queue, and each month the administration (local SME bureaus and
service centres) processes at most ``p24.processing_capacity`` cases per 10,000 SMEs. A
processed case is paid, or its training given or its stake bought, then; the cases of
firms that have left are cancelled, and a case that has waited
``government.case_lapse_months`` lapses (budgets are annual). So lever 24 acts through
when and how much of each programme reaches firms (issue 16): with ample capacity a case
is served in the month it is opened, and in a surge (relief after a shock) or with the
capacity of the lever's "off" setting queues form, support arrives late and some lapses.

The queue is a few columns on the government (``Government.cases``), saved with its state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..markets.capital import sell_equity

if TYPE_CHECKING:  # pragma: no cover
    from ..model import SMEEconomy

#: Programmes whose awards are cases, as (lever, flow); a case's ``flow`` is its index here.
CASE_FLOWS = (
    ("p06_fiscal_funds", "special_fund_grants"),
    ("p06_fiscal_funds", "fund_equity"),
    ("p14_entrepreneurship", "startup_grants"),
    ("p17_digital_adoption", "adoption_subsidy"),
    ("p19_management_training", "training"),
    ("p23_emergency_relief", "shock_relief"),
)
CASE_CODE = {flow: code for code, (_, flow) in enumerate(CASE_FLOWS)}


def empty_cases() -> dict[str, np.ndarray]:
    """An empty queue: the firm, the programme (an index of :data:`CASE_FLOWS`), the
    amount (CNY m) and the month each case was opened, oldest first."""
    return {"firm_id": np.zeros(0, dtype=np.int64), "flow": np.zeros(0, dtype=np.int8),
            "amount": np.zeros(0), "month": np.zeros(0, dtype=np.int32)}


def open_cases(model: "SMEEconomy", flow: str, amounts: float | np.ndarray, rows: np.ndarray) -> None:
    """Open a case of programme ``flow`` for each SME in ``rows``, for ``amounts`` (one
    amount, or one per row), at the back of the queue."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return
    cases = model.government.cases
    new = {"firm_id": model.smes.firm_id[rows], "flow": np.full(rows.size, CASE_CODE[flow], dtype=np.int8),
           "amount": np.broadcast_to(np.asarray(amounts, dtype=float), rows.shape),
           "month": np.full(rows.size, model.month, dtype=np.int32)}
    model.government.cases = {name: np.concatenate([cases[name], new[name]]) for name in cases}


def pending(model: "SMEEconomy", flow: str) -> np.ndarray:
    """Mask of the SMEs with a case of programme ``flow`` waiting (a firm waits for one
    training place or one equity deal at a time)."""
    smes, cases = model.smes, model.government.cases
    waiting = np.zeros(smes.size, dtype=bool)
    rows = smes.row_of_id[cases["firm_id"][cases["flow"] == CASE_CODE[flow]]]
    waiting[rows[rows >= 0]] = True
    return waiting


def process_support_cases(model: "SMEEconomy") -> None:
    """Month end: cancel the cases of firms that have left, let cases that waited the whole
    budget period lapse, and process the oldest of the rest up to this month's capacity;
    the others wait. Fiscal costs and lever 25's recipient flags are set when a case is
    paid (:meth:`Government.spend`)."""
    smes, government, p = model.smes, model.government, model.policy
    cases = government.cases
    capacity = int(round(p.p24_organisation.processing_capacity * smes.size / 10_000.0))
    rows = smes.row_of_id[cases["firm_id"]] if cases["firm_id"].size else np.zeros(0, dtype=np.int64)
    alive = rows >= 0
    waited = model.month - cases["month"]
    lapsed = alive & (waited >= model.config.government.case_lapse_months)
    open_ = np.flatnonzero(alive & ~lapsed)
    done, waiting = open_[:capacity], open_[capacity:]
    for code, (lever, flow) in enumerate(CASE_FLOWS):
        chosen = done[cases["flow"][done] == code]
        if chosen.size:
            _serve(model, lever, flow, rows[chosen], cases["amount"][chosen])
    stats = model.step_stats
    stats["cases_processed"] = int(done.size)
    stats["cases_waiting"] = int(waiting.size)
    stats["cases_lapsed"] = int(np.count_nonzero(lapsed))
    stats["cases_cancelled"] = int(np.count_nonzero(~alive))
    stats["case_wait_months"] = float(waited[done].mean()) if done.size else float("nan")
    government.cases = {name: column[waiting] for name, column in cases.items()}


def _serve(model: "SMEEconomy", lever: str, flow: str, rows: np.ndarray, amounts: np.ndarray) -> None:
    """Pay one programme's processed cases (SMEs ``rows``; a firm with several cases of the
    programme, such as two months' grants, is paid their sum at once)."""
    smes, government = model.smes, model.government
    rows, where = np.unique(rows, return_inverse=True)
    amounts = np.bincount(where, weights=amounts, minlength=rows.size)
    if flow == "training":
        # the training is given now: its providers are paid, and it raises productivity
        government.spend(lever, flow, amounts, rows, payee="households")
        smes.trained[rows] = True
        smes.productivity[rows] *= 1.0 + model.policy.p19_management_training.training_productivity_gain
        return
    if flow == "shock_relief":
        smes.relief_approved[rows] = True  # paid each month from now on while the shock lasts
    if flow == "fund_equity":
        for ticket in np.unique(amounts):  # the stake is bought at the firm's value before the ticket
            sell_equity(model, rows[amounts == ticket], float(ticket), "public")
        smes.equity_raised[rows] += amounts
        government.equity_invested += float(amounts.sum())
    government.spend(lever, flow, amounts, rows)
