"""Simulation backends beside the project's own kernels. ``brian2_backend`` (optional extra
``brian2``) runs the spiking twins as Brian2 networks for validation, ``brian2_enu`` the ENU
networks and cells (``simulate_enu_net_brian2``, ``ENUNetBrian2``, ``simulate_enu_brian2``);
both are imported lazily so ``import edge_evo`` never needs Brian2."""
from __future__ import annotations


def brian2_available() -> bool:
    """True when ``brian2`` imports (it fails with numpy >= 2.4)."""
    try:
        from .brian2_backend import import_brian2
        import_brian2()
    except ImportError:
        return False
    return True


__all__ = ["brian2_available"]
