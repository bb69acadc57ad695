"""Strategies registry: name -> Strategy class. The registry drives the CLI and the generic tests."""
from .base import Strategy, State

STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls):
    STRATEGIES[cls.name] = cls
    return cls


def get_strategy(name: str) -> type[Strategy]:
    _load_all()
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}") from None


def _load_all():
    # import strategy modules lazily so each registers itself
    import importlib
    for mod in ("genreg", "ga", "openes", "emns"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise


__all__ = ["Strategy", "State", "STRATEGIES", "register", "get_strategy"]
