"""Model specs and genome layouts."""
from .mlp import MLPSpec, Population

__all__ = ["MLPSpec", "Population"]
