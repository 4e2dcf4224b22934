"""Training: the shell (``shell.train``) around a per-family step (``offpolicy``, ``onpolicy``)."""

from softac.train.shell import train
from softac.train.signals import Interrupted

__all__ = ["Interrupted", "train"]
