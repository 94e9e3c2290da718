"""Prices of model calls: the ``genai-prices`` package's bundled data, plus the user's price file.

The only module that imports ``genai_prices``. Its data ships inside the package and is all we
read: its auto-update (``UpdatePrices``, which fetches a JSON file over HTTP) is never started,
so nothing is fetched at run time. A model neither the package nor the price file knows has no
price (``None``): never a guess, never a fallback to another model's price.

A price file (``--prices FILE`` or ``$TURNSCOPE_PRICES``) adds or overrides models, in USD per
million tokens::

    [models."my-finetune"]
    input = 0.30          # uncached input tokens
    cached_input = 0.15   # optional; default: the input price
    output = 1.20         # output tokens, reasoning tokens included
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

ENV_PRICES = "TURNSCOPE_PRICES"
MILLION = Decimal(1_000_000)
FILE_KEYS = ("input", "cached_input", "output")


@dataclass(frozen=True, slots=True)
class Call:
    """The tokens of one model call, as the SDK reported them (OpenAI's convention: input
    counts the cached tokens, output counts the reasoning tokens)."""

    model: str | None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    at: datetime | None = None  # when the call started: prices change over time


@dataclass(frozen=True, slots=True)
class Rates:
    """A price file's prices for one model, USD per million tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal

    def price(self, call: Call) -> Decimal:
        """What ``call`` cost at these rates."""
        cached = min(call.cached_tokens, call.input_tokens)
        uncached = call.input_tokens - cached
        return (
            uncached * self.input + cached * self.cached_input + call.output_tokens * self.output
        ) / MILLION


class PriceBook:
    """Prices for model calls: the user's price file first, then genai-prices' bundled data."""

    def __init__(self, overrides: dict[str, Rates] | None = None, source: str | None = None):
        self.overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self.source = source  # the price file, for messages

    def price(self, call: Call) -> Decimal | None:
        """The cost of one call in USD, or None when its model's price is unknown."""
        if not call.model:
            return None
        rates = self.overrides.get(call.model.lower())
        if rates is not None:
            return rates.price(call)
        return _library_price(call)

    def known(self, model: str | None) -> bool:
        """Whether calls of ``model`` can be priced."""
        if not model:
            return False
        return model.lower() in self.overrides or _resolve(model) is not None


def library_version() -> str:
    """The installed genai-prices version (its price data comes with it)."""
    from genai_prices import __version__

    return str(__version__)


def load_book(path: str | os.PathLike[str] | None = None) -> PriceBook:
    """The price book for ``path``, else ``$TURNSCOPE_PRICES``, else the bundled prices only.
    A bad file raises ValueError with one line saying what is wrong and where."""
    chosen = path if path not in (None, "") else os.environ.get(ENV_PRICES) or None
    if chosen is None:
        return PriceBook()
    return PriceBook(read_price_file(chosen), source=str(chosen))


def read_price_file(path: str | os.PathLike[str]) -> dict[str, Rates]:
    """Read and check a TOML price file (format: this module's docstring)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read price file {where}: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"price file {where} is not valid TOML: {exc}") from None
    extra = sorted(set(doc) - {"models"})
    if extra:
        raise ValueError(f"price file {where}: unknown table {extra[0]!r} (expected [models.NAME])")
    models = doc.get("models", {})
    if not isinstance(models, dict) or not models:
        raise ValueError(f'price file {where}: no [models."NAME"] table with prices')
    out: dict[str, Rates] = {}
    for name, table in models.items():
        out[name] = _rates(where, name, table)
    return out


def _rates(where: str, name: str, table: Any) -> Rates:
    here = f"price file {where}, model {name!r}"
    if not isinstance(table, dict):
        raise ValueError(f"{here}: expected a table with input, cached_input and output")
    unknown = sorted(set(table) - set(FILE_KEYS))
    if unknown:
        raise ValueError(f"{here}: unknown key {unknown[0]!r} (use {', '.join(FILE_KEYS)})")
    values: dict[str, Decimal] = {}
    for key in FILE_KEYS:
        if key not in table:
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"{here}: {key} must be a number (USD per million tokens)")
        if value < 0 or value == float("inf"):
            raise ValueError(f"{here}: {key} must be a finite number >= 0")
        values[key] = Decimal(str(value))
    for key in ("input", "output"):
        if key not in values:
            raise ValueError(f"{here}: {key} is missing (USD per million tokens)")
    return Rates(values["input"], values.get("cached_input", values["input"]), values["output"])


# --- genai-prices ---------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _resolve(model: str) -> tuple[str | None, str] | None:
    """(provider id or None, model reference) that genai-prices knows ``model`` by, or None.
    ``anthropic/claude-…`` (LiteLLM's names) is tried as provider/model, then as the bare
    name; nothing broader, so an unknown name stays unknown."""
    from genai_prices import Usage, calc_price

    probe = Usage(input_tokens=1, output_tokens=1)
    candidates: list[tuple[str | None, str]] = [(None, model)]
    if "/" in model:
        head, _, tail = model.rpartition("/")
        candidates += [(head.rpartition("/")[2], tail), (None, tail)]
    for provider, ref in candidates:
        try:
            calc_price(probe, ref, provider_id=provider)
        except Exception:  # LookupError for an unknown name; nothing else may break a page
            continue
        return provider, ref
    return None


def _library_price(call: Call) -> Decimal | None:
    assert call.model is not None
    found = _resolve(call.model)
    if found is None:
        return None
    when = call.at or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    rates = _token_rates(found, when.replace(second=0, microsecond=0))
    if rates is not None:
        # plain per-token prices: the library's own rates, applied without its per-call
        # bookkeeping (~0.5 ms a call, too slow for a list of runs)
        return rates.price(call)
    from genai_prices import Usage, calc_price

    provider, ref = found
    cached = min(call.cached_tokens, call.input_tokens)
    usage = Usage(
        input_tokens=call.input_tokens,
        cache_read_tokens=cached or None,
        output_tokens=call.output_tokens,
        output_reasoning_tokens=min(call.reasoning_tokens, call.output_tokens) or None,
    )
    try:
        return calc_price(
            usage, ref, provider_id=provider, genai_request_timestamp=when
        ).total_price
    except Exception:  # a price we cannot compute is unknown, never an error on a page
        return None


# price keys whose tokens a Call carries; a model priced by anything else that a Call can
# have (tiers, reasoning or modality prices) goes through the library's own calculation
_LINEAR_KEYS = frozenset({"input_mtok", "cache_read_mtok", "output_mtok"})


@lru_cache(maxsize=4096)
def _token_rates(found: tuple[str | None, str], minute: datetime) -> Rates | None:
    from genai_prices.data_snapshot import get_snapshot

    provider, ref = found
    try:
        _prov, model = get_snapshot().find_provider_model(ref, None, provider, None)
        prices = model.get_prices(minute)
    except Exception:
        return None
    token_keys = {k: v for k, v in vars(prices).items() if v is not None and k.endswith("_mtok")}
    if not set(token_keys) <= _LINEAR_KEYS | {"cache_write_mtok"}:
        return None
    if not all(isinstance(v, Decimal) for v in token_keys.values()):
        return None  # tiered by context size
    if "input_mtok" not in token_keys or "output_mtok" not in token_keys:
        return None
    return Rates(
        token_keys["input_mtok"],
        token_keys.get("cache_read_mtok", token_keys["input_mtok"]),
        token_keys["output_mtok"],
    )


def money(usd: float | Decimal | None, partial: bool = False) -> str:
    """``$0.0119``, ``≥ $0.0119`` for a partial total, ``—`` for none: cents from ten cents
    up, three significant figures below."""
    if usd is None:
        return "—"
    value = float(usd)
    if value >= 0.1:
        text = f"${value:,.2f}"
    elif value == 0:
        text = "$0"
    elif value < 1e-8:
        text = "<$0.00000001"
    else:
        digits = 2 - math.floor(math.log10(value))  # three significant figures
        text = "$" + f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return ("≥ " if partial else "") + text
