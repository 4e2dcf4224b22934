"""THE MATH: one small pure function per equation of the specification.

No optimizers, no I/O, no ``.item()``: each function maps tensors to tensors, and its docstring is
the equation it implements, in the notation of the SAC lecture notes softac was specified from.
"""

from softac.losses import common, discrete_sac, dqn, ppo, sac, td3

__all__ = ["common", "discrete_sac", "dqn", "ppo", "sac", "td3"]
