"""Packaging glue that pyproject.toml cannot express alone: the C runtime (firmware_export/) and the
device descriptions (targets/) stay at the top of the repository, as the design's layout has them,
and ship inside the wheel as edge_evo/_data/firmware_export and edge_evo/_data/targets."""
from setuptools import find_packages, setup

DATA = {"edge_evo._data.firmware_export": "firmware_export", "edge_evo._data.targets": "targets"}

setup(packages=find_packages(include=["edge_evo", "edge_evo.*"]) + list(DATA), package_dir=DATA)
