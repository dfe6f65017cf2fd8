"""Numba helpers shared by the compiled kernels of the hot phases.

The kernels (next to the phases that use them: ``produce`` in
:mod:`sme_abm.agents.sme`, ``default_log_odds`` in :mod:`sme_abm.markets.credit`,
risk-weighted assets in :mod:`sme_abm.agents.bank`) fuse chains of
element-wise numpy operations into one pass over the SMEs, so no temporary
arrays are made and no boolean mask is read twice. They must give the same
bits as the numpy code they replace, so:

* they are compiled without ``fastmath`` (IEEE semantics, no reassociation),
  and every expression keeps numpy's order of operations; ``error_model="numpy"``
  lets a division by zero give inf/NaN as in numpy instead of raising (the
  kernels only use such results where numpy's ``where=`` would discard them);
* they contain only ``+ - * /`` and comparisons, which are correctly rounded
  in both; no ``exp``/``log`` (numpy's SIMD versions may differ from libm's in
  the last bit), except where the code they follow is numpy's C that calls
  libm itself (:func:`standard_normal`'s ziggurat);
* sums over all SMEs (``np.sum``, ``mean``) stay in numpy, whose pairwise
  summation differs from a sequential loop; per-group sums in the order of
  the rows (what ``np.bincount`` does) may be done in a kernel;
* :func:`maximum`, :func:`minimum` and :func:`clip` reproduce numpy's
  treatment of NaN and of signed zeros.

For speed, a kernel loops over whole contiguous columns and chooses with
conditional expressions rather than ``if`` blocks, so LLVM can vectorise it;
a loop that gathers through an index array, or branches on the data, is
several times slower (mispredicted branches). Selecting rows (``flatnonzero``,
fancy indexing) is left to numpy.

``cache=True`` writes the compiled code next to the module (``__pycache__``),
so later processes, and the workers of a sweep, load it instead of compiling.
Numba checks a cached kernel against its own module's file only: after editing an
:func:`inline` helper, delete the ``__pycache__`` of the modules that call it
(``make clean-kernels``), or their kernels keep the old helper.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from llvmlite import ir
from numba import njit as _numba_njit
from numba import types
from numba.extending import intrinsic


def njit(func: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit(cache=True, error_model="numpy")``, without fastmath."""
    return _numba_njit(cache=True, error_model="numpy")(func)


def inline(func: Callable[..., Any]) -> Callable[..., Any]:
    """Like :func:`njit`, for a helper inlined into the kernels that call it."""
    return _numba_njit(inline="always", cache=True, error_model="numpy")(func)


@inline
def maximum(a: float, b: float) -> float:
    """``np.maximum(a, b)``: NaN if either is NaN, else ``a`` if ``a > b`` else ``b``
    (so ``maximum(-0.0, 0.0)`` is ``0.0``, as in numpy). Written as selects, not
    branches, so that loops using it vectorise."""
    r = a if a > b else b
    return a if a != a else r


@inline
def minimum(a: float, b: float) -> float:
    """``np.minimum(a, b)``: NaN if either is NaN, else ``a`` if ``a < b`` else ``b``."""
    r = a if a < b else b
    return a if a != a else r


@inline
def clip(x: float, low: float, high: float) -> float:
    """``np.clip(x, low, high)`` for scalar bounds ``low <= high``: NaN stays NaN, and
    ``x`` is kept when equal to a bound (``clip(-0.0, 0.0, 1.0)`` is ``-0.0``, as in numpy)."""
    y = low if x < low else x
    return high if x > high else y


@njit
def group_sums(groups: np.ndarray, values: np.ndarray, sums: np.ndarray,
               counts: np.ndarray) -> None:  # pragma: no cover - compiled
    """``sums += np.bincount(groups, weights=values)`` and ``counts += np.bincount(groups)``
    in one pass, adding in row order as ``bincount`` does (so the same bits), without
    converting small-integer group codes to ``intp`` first."""
    for i in range(groups.size):
        sums[groups[i]] += values[i]
        counts[groups[i]] += 1


def bincount_sums(groups: np.ndarray, weights: Any, minlength: int) -> np.ndarray:
    """``np.bincount(groups, weights=weights, minlength=minlength)``, the same bits, faster.

    Per-bank and per-guarantor totals over up to all SMEs are taken many times a
    step; ``bincount`` first converts the small-integer group codes to ``intp``
    and the kernel does not (it adds in row order, as ``bincount`` does). A
    scalar ``weights`` counts once per row. Groups that are not 1-d integers, or
    out of ``range(minlength)``, are left to ``np.bincount`` (which returns a
    longer array, or raises, as before).
    """
    groups = np.asarray(groups)
    if np.ndim(weights) == 0:
        weights = np.broadcast_to(np.float64(weights), groups.shape)
    weights = np.asarray(weights, dtype=np.float64)
    if groups.ndim == 1 and groups.dtype.kind in "iu" and weights.shape == groups.shape:
        sums = np.zeros(minlength)
        if _bincount_sums_kernel(groups, weights, sums):
            return sums
    return np.bincount(groups, weights=weights, minlength=minlength)


@_numba_njit(cache=True, error_model="numpy")
def _bincount_sums_kernel(groups: np.ndarray, weights: np.ndarray,
                          sums: np.ndarray) -> bool:  # pragma: no cover - compiled
    """The loop of :func:`bincount_sums`; False (and ``sums`` unusable) if a group is out of range."""
    n = sums.size
    for j in range(groups.size):
        g = groups[j]
        if g < 0 or g >= n:
            return False
        sums[g] += weights[j]
    return True


@inline
def take(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` as a new array, for a kernel to read instead of gathering in its loop.

    LLVM does not vectorise a loop that reads a small per-sector table through the
    firms' sector codes (``table[sector[i]]``); with the values gathered first, in
    a loop of their own, the kernel's main loop vectorises and runs up to several
    times faster. The values, and so the results, are the same.
    """
    out = np.empty(index.size, dtype=table.dtype)
    for i in range(index.size):
        out[i] = table[index[i]]
    return out


#: Values sampled (at a fixed stride, no random stream used) to bracket each wanted rank in
#: :func:`order_statistics`: with 4,096, a bracket holds about 6% of the values.
ORDER_SAMPLE = 4_096


def order_statistics(values: np.ndarray, ranks: Any) -> np.ndarray:
    """``np.partition(values, ranks)[ranks]``: the values at the ascending ``ranks`` of a
    1-d float64 array, the same numbers, several times faster at 10^5 values.

    A rank's value is the same number whatever way it is found (should both 0.0 and
    -0.0 sit at it, either may be returned, as with ``np.partition``). The wanted
    ranks are bracketed by values of a sorted strided sample (Floyd and Rivest's
    selection), one pass counts the values below each bracket and copies those inside
    it (:func:`_bracket_kernel`), and only those are partitioned. A bracket that
    misses its ranks (a sample unlike the whole, e.g. values sorted in blocks), values
    with NaN, and small arrays are left to ``np.partition``.
    """
    values = np.asarray(values)
    ranks = np.asarray(ranks, dtype=np.intp)
    n = values.size
    if (values.ndim != 1 or values.dtype != np.float64 or n < 4 * ORDER_SAMPLE or ranks.size == 0
            or ranks.min() < 0 or ranks.max() >= n):
        return np.partition(values, ranks)[ranks]
    sample = np.sort(values[:: n // ORDER_SAMPLE])
    size = sample.size
    margin = 2 * int(math.isqrt(size))  # four standard deviations of a rank in the sample
    out = np.empty(ranks.size)
    order = np.argsort(ranks, kind="stable")
    inside = np.empty(n)
    start = 0
    while start < order.size:
        # one bracket for the wanted ranks whose brackets in the sample would overlap
        first = int(ranks[order[start]])
        end = start + 1
        while end < order.size and (int(ranks[order[end]]) - first) * size <= 2 * margin * n:
            end += 1
        last = int(ranks[order[end - 1]])
        low_at, high_at = first * size // n - margin, last * size // n + margin
        low = sample[low_at] if low_at > 0 else -np.inf
        high = sample[high_at] if high_at < size - 1 else np.inf
        below, count, nan = _bracket_kernel(values, low, high, inside)
        if nan or not (below <= first and last < below + count):
            return np.partition(values, ranks)[ranks]
        wanted = ranks[order[start:end]] - below
        out[order[start:end]] = np.partition(inside[:count], wanted)[wanted]
        start = end
    return out


@_numba_njit(cache=True, error_model="numpy")
def _bracket_kernel(values: np.ndarray, low: float, high: float,
                    inside: np.ndarray) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Count the values below ``low``, copy those in ``[low, high]`` to ``inside`` (in row
    order), and count the NaNs; returns ``(below, count inside, NaNs)``.

    Every value is stored and the write position advances only past those inside: no
    branch on the data (an ``if`` around the store made the pass six times slower)."""
    below = 0
    count = 0
    nan = 0
    for i in range(values.size):
        x = values[i]
        below += 1 if x < low else 0
        nan += 1 if x != x else 0
        inside[count] = x  # count <= i: within the array
        count += 1 if (x >= low) & (x <= high) else 0
    return below, count, nan


def standard_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """``rng.standard_normal(size)``: the same numbers, and the generator left in the same
    state, in about half the time at 10^5 draws.

    NumPy draws each normal by its ziggurat (``random_standard_normal`` in its
    ``distributions.c``), calling the bit generator through a function pointer per
    draw and branching on each draw's sign. Here the raw 64-bit words come from the
    bit generator in bulk (``random_raw``, the same words ``next_uint64`` returns)
    and :func:`_ziggurat_kernel` runs the same ziggurat on them, with NumPy's tables
    (as Numba ships them, ``numba.np.random._constants``), its constants and its
    order of operations; the rare rejection steps call libm's ``exp`` and
    ``log1p`` as NumPy's C code does (scalar calls, not NumPy's SIMD ufuncs).

    A normal uses at least one word and sometimes more (0.7% are rejected once), so
    words are drawn for the normals still missing, never more: a normal that runs out
    of words mid-way is redrawn from its first word once more are drawn, so the
    generator ends exactly where NumPy leaves it. Only PCG64 (``default_rng``'s bit
    generator, whose ``next_double`` is ``(next_uint64 >> 11) * 2**-53``) is taken,
    and only once :func:`_ziggurat_checked` has found the kernel equal to NumPy in this
    process; anything else is NumPy's call.
    """
    bitgen = rng.bit_generator
    if type(bitgen) is not np.random.PCG64 or not _ziggurat_checked():
        return rng.standard_normal(size)
    return _standard_normal_pcg64(bitgen, int(size))


#: Raw words drawn at a time for :func:`standard_normal`: 256 KB, so the normals need no
#: more memory than NumPy's at any size (at 10^5, 0.40 ms against 0.39 in one piece).
NORMAL_WORDS_CHUNK = 32_768


def _standard_normal_pcg64(bitgen: Any, size: int) -> np.ndarray:
    out = np.empty(size)
    filled = 0
    words = np.empty(0, dtype=np.uint64)
    fast = _pcg64_checked()
    while filled < size:
        # the normals still missing need at least one word each, beyond the words left
        # over (which did not complete the next normal): drawing at most that many never overdraws
        count = min(size - filled, NORMAL_WORDS_CHUNK)
        drawn = _pcg64_draw(bitgen, count, False) if fast else bitgen.random_raw(count)
        words = np.concatenate([words, drawn]) if words.size else drawn
        filled, used = _ziggurat_kernel(words, out, filled, _ZIGGURAT_KI, _ZIGGURAT_WI, _ZIGGURAT_FI)
        words = words[used:]
    return out


_ZIGGURAT_STATE: dict[str, bool] = {}


def _ziggurat_checked() -> bool:
    """Whether :func:`_ziggurat_kernel` draws what NumPy's ``standard_normal`` draws in this
    process (tables loaded, same numbers and end state over 200,000 draws, which include
    both rejection paths); checked once."""
    if "ok" not in _ZIGGURAT_STATE:
        global _ZIGGURAT_KI, _ZIGGURAT_WI, _ZIGGURAT_FI
        ok = False
        try:
            from numba.np.random import _constants as tables

            _ZIGGURAT_KI = np.ascontiguousarray(tables.ki_double, dtype=np.uint64)
            _ZIGGURAT_WI = np.ascontiguousarray(tables.wi_double, dtype=np.float64)
            _ZIGGURAT_FI = np.ascontiguousarray(tables.fi_double, dtype=np.float64)
            ours, theirs = np.random.PCG64(20261205), np.random.PCG64(20261205)
            drawn = _standard_normal_pcg64(ours, 200_000)
            expected = np.random.Generator(theirs).standard_normal(200_000)
            ok = drawn.tobytes() == expected.tobytes() and ours.state == theirs.state
        except Exception:  # pragma: no cover - tables missing: NumPy's call it is
            ok = False
        _ZIGGURAT_STATE["ok"] = ok
    return _ZIGGURAT_STATE["ok"]


_ZIGGURAT_KI = np.zeros(0, dtype=np.uint64)
_ZIGGURAT_WI = np.zeros(0)
_ZIGGURAT_FI = np.zeros(0)
_NORMAL_R = 3.6541528853610087963519472518  # ziggurat_nor_r, as NumPy's C source spells it
_NORMAL_INV_R = 0.27366123732975827203338247596  # ziggurat_nor_inv_r


@_numba_njit(cache=True, error_model="numpy")
def _ziggurat_kernel(words: np.ndarray, out: np.ndarray, filled: int, ki: np.ndarray, wi: np.ndarray,
                     fi: np.ndarray) -> tuple[int, int]:  # pragma: no cover - compiled
    """NumPy's ``random_standard_normal`` on the words ``words`` (in order) for
    ``out[filled:]``; stops early, before the normal whose words run out. Returns
    ``(filled, words used)``. The C it follows::

        r = next_uint64(); idx = r & 0xff; r >>= 8; sign = r & 1
        rabs = (r >> 1) & 0x000fffffffffffff; x = rabs * wi[idx]; if (sign) x = -x
        if (rabs < ki[idx]) return x;
        if (idx == 0) loop { xx = -inv_r * log1p(-next_double()); yy = -log1p(-next_double());
                             if (yy + yy > xx * xx) return (rabs >> 8) & 1 ? -(r + xx) : r + xx; }
        else if ((fi[idx - 1] - fi[idx]) * next_double() + fi[idx] < exp(-0.5 * x * x)) return x;
        (else draw again from the top)
    """
    low8 = np.uint64(0xFF)
    one = np.uint64(1)
    mask52 = np.uint64(0x000FFFFFFFFFFFFF)
    scale = 1.0 / 9007199254740992.0
    n = words.size
    pos = 0
    while filled < out.size:
        start = pos
        value = 0.0
        done = False
        short = False
        while not done:
            if pos >= n:
                short = True
                break
            r = words[pos]
            pos += 1
            idx = r & low8
            r = r >> np.uint64(8)
            rabs = (r >> one) & mask52
            x = np.float64(rabs) * wi[idx]
            x = -x if (r & one) else x
            if rabs < ki[idx]:
                value = x
                done = True
            elif idx == 0:
                while True:
                    if pos + 2 > n:
                        short = True
                        break
                    xx = -_NORMAL_INV_R * np.log1p(-(np.float64(words[pos] >> np.uint64(11)) * scale))
                    yy = -np.log1p(-(np.float64(words[pos + 1] >> np.uint64(11)) * scale))
                    pos += 2
                    if yy + yy > xx * xx:
                        value = -(_NORMAL_R + xx) if (rabs >> np.uint64(8)) & one else _NORMAL_R + xx
                        done = True
                        break
                if short:
                    break
            else:
                if pos >= n:
                    short = True
                    break
                u = np.float64(words[pos] >> np.uint64(11)) * scale
                pos += 1
                if (fi[idx - 1] - fi[idx]) * u + fi[idx] < np.exp(-0.5 * x * x):
                    value = x
                    done = True
        if short:
            return filled, start
        out[filled] = value
        filled += 1
    return filled, pos


# ---------------------------------------------------------------------------
# PCG64's stream, drawn without NumPy's call per number


def uniform(rng: np.random.Generator, size: int) -> np.ndarray:
    """``rng.random(size)``: the same numbers, and the generator left in the same state,
    in about two thirds of the time (0.22 -> 0.15 ms at 10^5).

    NumPy fills the array one ``next_double`` call at a time through the bit
    generator's function pointer, and each PCG64 step waits on the previous one's
    128-bit multiplication. :func:`_pcg64_doubles_kernel` runs the same
    recurrence (``state = state * MULTIPLIER + inc`` mod 2**128, XSL-RR output,
    ``(output >> 11) * 2**-53``) in four interleaved lanes, each jumping four
    steps at a time, so the multiplications overlap; the numbers, their order and
    the final state are PCG64's. Only for PCG64 (``default_rng``'s), and only once
    :func:`_pcg64_checked` has found it equal to NumPy in this process.
    """
    bitgen = rng.bit_generator
    if type(bitgen) is not np.random.PCG64 or not _pcg64_checked():
        return rng.random(size)
    return _pcg64_draw(bitgen, int(size), True)


#: PCG64's multiplier (``PCG_DEFAULT_MULTIPLIER_128`` in NumPy's ``pcg64.h``).
PCG64_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
_PCG64_JUMPS: dict[int, np.ndarray] = {}
_PCG64_STATE: dict[str, bool] = {}


def _pcg64_jumps(inc: int) -> np.ndarray:
    """The one-step and four-step affine maps of the stream with increment ``inc``:
    ``state_{t+k} = a_k * state_t + c_k`` (mod 2**128), as 64-bit halves
    ``[a1 hi, a1 lo, c1 hi, c1 lo, a4 hi, a4 lo, c4 hi, c4 lo]``."""
    jumps = _PCG64_JUMPS.get(inc)
    if jumps is None:
        halves = []
        a, c = 1, 0
        for k in range(1, 5):
            a, c = (a * PCG64_MULTIPLIER) & _MASK128, (c * PCG64_MULTIPLIER + inc) & _MASK128
            if k in (1, 4):
                halves += [a >> 64, a & _MASK64, c >> 64, c & _MASK64]
        jumps = np.array(halves, dtype=np.uint64)
        if len(_PCG64_JUMPS) > 256:  # one entry per stream; a sweep worker makes many
            _PCG64_JUMPS.clear()
        _PCG64_JUMPS[inc] = jumps
    return jumps


def _pcg64_draw(bitgen: Any, size: int, doubles: bool) -> np.ndarray:
    """``size`` doubles (``random``) or raw words (``random_raw``) from PCG64 ``bitgen``,
    which is moved on by ``size`` steps (its spare 32-bit word untouched, as NumPy's do)."""
    state = bitgen.state
    inner = state["state"]
    now, inc = int(inner["state"]), int(inner["inc"])
    out = np.empty(size, dtype=np.float64 if doubles else np.uint64)
    kernel = _pcg64_doubles_kernel if doubles else _pcg64_words_kernel
    hi, lo = kernel(out, np.uint64(now >> 64), np.uint64(now & _MASK64), _pcg64_jumps(inc))
    inner["state"] = (int(hi) << 64) | int(lo)
    bitgen.state = state
    return out


def _pcg64_checked() -> bool:
    """Whether :func:`_pcg64_draw` gives NumPy's numbers and end state in this process
    (sizes 0 to 9 and 100,003, doubles and words); checked once."""
    if "ok" not in _PCG64_STATE:
        ok = True
        try:
            ours, theirs = np.random.PCG64(20261205), np.random.PCG64(20261205)
            numpys = np.random.Generator(theirs)
            for size in (*range(10), 100_003):
                ok &= _pcg64_draw(ours, size, True).tobytes() == numpys.random(size).tobytes()
                ok &= _pcg64_draw(ours, size, False).tobytes() == theirs.random_raw(size).tobytes()
            ok &= ours.state == theirs.state
        except Exception:  # pragma: no cover - NumPy's call it is
            ok = False
        _PCG64_STATE["ok"] = bool(ok)
    return _PCG64_STATE["ok"]


@intrinsic
def _mulhi(typingctx: Any, a: Any, b: Any) -> Any:  # pragma: no cover - compiled
    """The high 64 bits of the 128-bit product of two ``uint64`` (one ``mul`` on x86-64)."""
    signature = types.uint64(types.uint64, types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return signature, codegen


@inline
def _pcg64_step(hi: Any, lo: Any, a_hi: Any, a_lo: Any, c_hi: Any, c_lo: Any) -> Any:  # pragma: no cover
    """``(a * state + c) mod 2**128`` on 64-bit halves."""
    low = lo * a_lo
    high = _mulhi(lo, a_lo) + lo * a_hi + hi * a_lo  # type: ignore[call-arg]  # an intrinsic: typingctx is numba's
    new_lo = low + c_lo
    carry = np.uint64(1) if new_lo < low else np.uint64(0)
    return high + c_hi + carry, new_lo


@inline
def _pcg64_output(hi: Any, lo: Any) -> Any:  # pragma: no cover - compiled
    """PCG's XSL-RR output of a state: ``rotr64(hi ^ lo, hi >> 58)``."""
    x = hi ^ lo
    rot = hi >> np.uint64(58)
    return (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))


@njit
def _pcg64_doubles_kernel(out: np.ndarray, hi: Any, lo: Any, jumps: np.ndarray) -> Any:  # pragma: no cover - compiled
    """NumPy's ``random_standard_uniform_fill`` for PCG64 from state ``(hi, lo)``: each number
    steps the state, then outputs ``(xsl_rr(state) >> 11) * 2**-53``. Returns the final state."""
    scale = 1.0 / 9007199254740992.0
    words = np.empty(0, dtype=np.uint64)
    return _pcg64_fill(out, words, True, hi, lo, jumps, scale)


@njit
def _pcg64_words_kernel(out: np.ndarray, hi: Any, lo: Any, jumps: np.ndarray) -> Any:  # pragma: no cover - compiled
    """NumPy's ``random_raw`` for PCG64 (the outputs themselves). Returns the final state."""
    doubles = np.empty(0)
    return _pcg64_fill(doubles, out, False, hi, lo, jumps, 1.0)


@inline
def _pcg64_fill(doubles: np.ndarray, words: np.ndarray, as_doubles: bool, hi: Any, lo: Any, jumps: np.ndarray,
                scale: float) -> Any:  # pragma: no cover - compiled
    """Four lanes hold states t+1..t+4 and jump four steps a time (independent
    multiplications, so they overlap); the last ``n % 4`` numbers come one step at a time."""
    n = doubles.size if as_doubles else words.size
    a1_hi, a1_lo, c1_hi, c1_lo = jumps[0], jumps[1], jumps[2], jumps[3]
    a4_hi, a4_lo, c4_hi, c4_lo = jumps[4], jumps[5], jumps[6], jumps[7]
    h0, l0 = _pcg64_step(hi, lo, a1_hi, a1_lo, c1_hi, c1_lo)
    h1, l1 = _pcg64_step(h0, l0, a1_hi, a1_lo, c1_hi, c1_lo)
    h2, l2 = _pcg64_step(h1, l1, a1_hi, a1_lo, c1_hi, c1_lo)
    h3, l3 = _pcg64_step(h2, l2, a1_hi, a1_lo, c1_hi, c1_lo)
    last_hi, last_lo = hi, lo  # the state after the last number drawn
    eleven = np.uint64(11)
    i = 0
    while i + 4 <= n:
        o0, o1, o2, o3 = _pcg64_output(h0, l0), _pcg64_output(h1, l1), _pcg64_output(h2, l2), _pcg64_output(h3, l3)
        if as_doubles:
            doubles[i] = np.float64(o0 >> eleven) * scale
            doubles[i + 1] = np.float64(o1 >> eleven) * scale
            doubles[i + 2] = np.float64(o2 >> eleven) * scale
            doubles[i + 3] = np.float64(o3 >> eleven) * scale
        else:
            words[i] = o0
            words[i + 1] = o1
            words[i + 2] = o2
            words[i + 3] = o3
        last_hi, last_lo = h3, l3
        h0, l0 = _pcg64_step(h0, l0, a4_hi, a4_lo, c4_hi, c4_lo)
        h1, l1 = _pcg64_step(h1, l1, a4_hi, a4_lo, c4_hi, c4_lo)
        h2, l2 = _pcg64_step(h2, l2, a4_hi, a4_lo, c4_hi, c4_lo)
        h3, l3 = _pcg64_step(h3, l3, a4_hi, a4_lo, c4_hi, c4_lo)
        i += 4
    while i < n:  # lane 0 holds the next state
        o0 = _pcg64_output(h0, l0)
        if as_doubles:
            doubles[i] = np.float64(o0 >> eleven) * scale
        else:
            words[i] = o0
        last_hi, last_lo = h0, l0
        h0, l0 = _pcg64_step(h0, l0, a1_hi, a1_lo, c1_hi, c1_lo)
        i += 1
    return last_hi, last_lo
