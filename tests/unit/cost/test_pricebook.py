from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.cost.money import Rates
from services.cost.pricebook import PriceBook, PriceVersion, load_default_prices

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def version(n: int, at: datetime, price: int) -> PriceVersion:
    return PriceVersion("m", n, "USD", Rates(input=price), at)


def test_lookup_uses_the_version_in_effect_at_the_time() -> None:
    book = PriceBook([version(2, T0 + timedelta(days=10), 200), version(1, T0, 100)])
    assert book.at("m", T0 - timedelta(seconds=1)) is None
    assert book.at("m", T0).version == 1  # type: ignore[union-attr]
    assert book.at("m", T0 + timedelta(days=10) - timedelta(microseconds=1)).version == 1  # type: ignore[union-attr]
    assert book.at("m", T0 + timedelta(days=10)).version == 2  # type: ignore[union-attr]


def test_unknown_model_is_none_not_free() -> None:
    assert PriceBook([]).at("nope", T0) is None


def test_default_price_book_lists_the_local_models_as_known_and_free() -> None:
    entries = {e["model"]: e for e in load_default_prices()}
    for local in ("all-minilm-l6-v2", "extractive-v1"):
        assert local in entries
        assert entries[local]["input"] == 0
        assert entries[local]["output"] == 0
    assert entries["gpt-4o-mini"]["input"] > 0
