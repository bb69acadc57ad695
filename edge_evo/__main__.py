"""``python -m edge_evo`` runs the ``edge-evo`` command line."""
import sys

from .cli import main

sys.exit(main())
