"""Spiking layers."""

from .lif import LIF

__all__ = ["LIF"]
