"""Tasks: datasets (MNIST, Fashion-MNIST, digits, Y = 2X + 3, rendered A-Z) and the problems that
turn a population into per-sample scores. ``get_task(name, **options)`` builds one by name.
"""
from .datasets import (load_mnist, load_digits, make_linear, render_alphabet, shared_data_dir,
                       cache_dir, md5_file)
from .idx import read_idx, write_idx, parse_idx
from .problem import Problem, ClassificationProblem, RegressionProblem, gumbel_lut
from .registry import TASKS, get_task, register_task

__all__ = ["load_mnist", "load_digits", "make_linear", "render_alphabet", "shared_data_dir", "cache_dir",
           "md5_file", "read_idx", "write_idx", "parse_idx", "Problem", "ClassificationProblem",
           "RegressionProblem", "gumbel_lut", "TASKS", "get_task", "register_task"]
