"""The execution engines moved to `synthloop.agent.engines`; this name stays for existing imports."""

from synthloop.agent.engines.base import Engine, OnResult
from synthloop.agent.engines.local import LocalEngine

__all__ = ["Engine", "LocalEngine", "OnResult"]
