"""The regaudit lab: real registry deployments (registry, nginx, Apache, TLS, tmpfs, iptables) in
network namespaces. Import with PYTHONPATH=<repo>/tests.

API: `load(variant) -> LabInfo`, `up(variant, content=True)`, `down(variant)`,
`run_in(ns, argv, env=None, timeout=...)`.
"""

from .lifecycle import down, is_up, up
from .netns import LabError, available, run_in
from .state import LabInfo, load
from .variants import VARIANTS

__all__ = ["VARIANTS", "LabError", "LabInfo", "available", "down", "is_up", "load", "run_in", "up"]
