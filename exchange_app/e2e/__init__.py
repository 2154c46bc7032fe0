"""The end-to-end benchmark: the exchange next to a bare aiokafka copy and a bare Faust agent.

``exchange bench --e2e`` runs :func:`run_e2e`; ``bench.py`` holds the phases.
"""

from .bench import PHASES, E2EOptions, render, run_e2e

__all__ = ["PHASES", "E2EOptions", "render", "run_e2e"]
