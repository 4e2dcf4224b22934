"""The named suites and algorithm variants, as data, and the cells a request expands to."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from dataclasses import dataclass
from typing import Any

import softac.algos  # noqa: F401  (registers every algorithm)
from softac import registry
from softac.errors import SoftacError

MUJOCO = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5")
ROBOTICS = ("FetchReach-v4", "FetchPush-v4", "PointMaze_UMaze-v3", "PointMaze_Medium-v3")
# name -> (environments, steps per cell, default algorithm variants)
SUITES: dict[str, tuple[tuple[str, ...], int, tuple[str, ...]]] = {
    "mujoco-100k": (MUJOCO, 100_000, ("sac", "td3", "crossq", "sac-simba")),
    "mujoco-300k": (MUJOCO, 300_000, ("sac", "td3", "crossq", "sac-simba")),
    "mujoco-1m": (MUJOCO, 1_000_000, ("sac",)),
    "classic": (("Pendulum-v1", "CartPole-v1", "LunarLander-v3"), 50_000, ("sac", "dqn", "ppo")),
    # Goal-conditioned tasks (docs/goals.md): the Fetch tasks softac.robotics makes run, and the mazes.
    "robotics": (ROBOTICS, 100_000, ("sac-her",)),
}
# variant -> (registered algorithm, config overrides): "sac-simba" is SAC with the SimBa network
# (Lee et al., ICLR 2025) where this build's config has that field.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sac": ("sac", {}), "td3": ("td3", {}), "ddpg": ("ddpg", {}), "dqn": ("dqn", {}), "ppo": ("ppo", {}),
    "sac-discrete": ("sac-discrete", {}), "crossq": ("crossq", {}), "sac-simba": ("sac", {"network": "simba"}),
    "sac-her": ("sac", {"her": True}),
}  # fmt: skip
# Variants run by another library, not registered in softac: variant -> (module (importable name),
# the line refusing it when that module is missing). Their cells run ``softac.suite.sb3_cell``.
EXTERNAL: dict[str, tuple[str, str]] = {
    "sb3-sac": ("stable_baselines3", "sb3-sac needs stable-baselines3 (pip install 'softac[bench]')"),
    "sb3-sac-her": ("stable_baselines3", "sb3-sac-her needs stable-baselines3 (pip install 'softac[bench]')"),
}
# The flags an external variant adds to its sb3_cell command (sb3-sac-her: SB3's HerReplayBuffer).
EXTERNAL_FLAGS: dict[str, tuple[str, ...]] = {"sb3-sac-her": ("--her",)}
# The action space of every suite task (gymnasium class name): an algorithm runs on a task only if
# its registry entry lists this kind. A named suite's default matrix holds only such pairs.
ACTION_KIND = {**{e: "Box" for e in MUJOCO + ROBOTICS}, "Pendulum-v1": "Box", "CartPole-v1": "Discrete",
               "LunarLander-v3": "Discrete"}  # fmt: skip
# How a report names a variant's rows: by the library that ran it. An SB3 cell's rows said "softac sb3-sac"
# in the report, as if softac had run them.
EXTERNAL_LIBRARY = {"sb3-sac": "SB3 sac", "sb3-sac-her": "SB3 sac-her"}


def label(variant: str) -> str:
    """The report's name for ``variant``: "softac sac", "SB3 sac-her"."""
    return EXTERNAL_LIBRARY.get(variant, f"softac {variant}")


# sb3_cell runs SB3's SAC, which needs a Box action space.
EXTERNAL_KINDS: dict[str, tuple[str, ...]] = {"sb3-sac": ("Box",), "sb3-sac-her": ("Box",)}
# Variants that relabel goals (hindsight replay): they run only on goal-conditioned tasks, a Dict
# observation with observation/achieved_goal/desired_goal and compute_reward (softac.goals). Every
# task a suite may name is known here, and of them only ROBOTICS is goal-conditioned, so a cell of one
# of these variants on another task is skipped with its reason before any cell starts.
GOAL_VARIANTS = ("sac-her", "sb3-sac-her")
# Environments that need an optional package; a cell without it is skipped with this reason.
NEEDS = {"LunarLander-v3": ("Box2D", "LunarLander needs Box2D (pip install 'gymnasium[box2d]')"),
         **{e: ("gymnasium_robotics", f"{e} needs gymnasium-robotics (pip install 'softac[robotics]')")
            for e in ROBOTICS}}  # fmt: skip
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Cell:
    variant: str
    env_id: str

    @property
    def key(self) -> str:
        return _SAFE.sub("_", f"{self.variant}__{self.env_id}")


def variant_problem(variant: str) -> str | None:
    """Why ``variant`` cannot run in this build (None: it can)."""
    if variant in EXTERNAL:
        module, why = EXTERNAL[variant]
        return None if _importable(module) else why
    algo, overrides = VARIANTS[variant]
    if algo not in registry.names():
        return f"algorithm '{algo}' is not registered in this build"
    fields = {f.name for f in dataclasses.fields(registry.get(algo).config_cls)}
    missing = sorted(set(overrides) - fields)
    return f"{algo}'s config has no field {', '.join(missing)} in this build" if missing else None


def _importable(module: str) -> bool:
    # find_spec raises ValueError for a module set to None in sys.modules (an import blocked on purpose).
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def env_problem(env_id: str) -> str | None:
    need = NEEDS.get(env_id)
    if need is not None and importlib.util.find_spec(need[0]) is None:
        return need[1]
    return None


def action_problem(variant: str, env_id: str) -> str | None:
    """Why ``variant`` cannot act in ``env_id``'s action space (None: it can)."""
    kind = ACTION_KIND.get(env_id)
    if variant in EXTERNAL:
        kinds = EXTERNAL_KINDS.get(variant, ("Box",))
    else:
        algo = VARIANTS[variant][0]
        if algo not in registry.names():
            return None  # variant_problem names this
        kinds = registry.get(algo).action_spaces
    if kind is None or kind in kinds:
        return None
    fits = [v for v in VARIANTS if VARIANTS[v][0] in registry.names()
            and kind in registry.get(VARIANTS[v][0]).action_spaces]  # fmt: skip
    return f"{env_id} has a {kind} action space, which {variant} does not support (variants that do: {', '.join(fits)})"


def goal_problem(variant: str, env_id: str) -> str | None:
    """Why ``variant`` cannot relabel goals on ``env_id`` (None: it can, or it does not relabel)."""
    if variant not in GOAL_VARIANTS or env_id in ROBOTICS:
        return None
    return (f"{variant} needs a goal-conditioned task (a Dict observation with observation, achieved_goal and "
            f"desired_goal, and compute_reward); {env_id} is not one (goal tasks: suite robotics)")  # fmt: skip


def _pick(given: list[str] | None, valid: tuple[str, ...] | list[str], what: str) -> list[str]:
    if given is None:
        return list(valid)
    bad = [g for g in given if g not in valid]
    if bad:
        raise SoftacError(f"unknown {what} {', '.join(bad)}: choose from {', '.join(valid)}")
    return list(dict.fromkeys(given))


def expand(name: str, algos: list[str] | None, envs: list[str] | None) -> tuple[list[Cell], dict[str, str]]:
    """The cells of suite ``name`` restricted to ``algos``/``envs``, and {cell key: reason} of
    those skipped because this build or machine cannot run them. A named suite's own matrix (no
    ``algos`` given) holds only the pairs whose action spaces fit (SAC is not on CartPole) and whose
    task has goals where the variant relabels them; a pair asked for by name that cannot act there is
    skipped with its reason."""
    if name not in SUITES:
        raise SoftacError(f"unknown suite '{name}': choose one of {', '.join(SUITES)}")
    suite_envs, _, default_algos = SUITES[name]
    chosen_algos = _pick(algos, (*VARIANTS, *EXTERNAL) if algos else default_algos, "algorithm")
    chosen_envs = _pick(envs, suite_envs, "task")
    cells, skipped = [], {}
    for v in chosen_algos:
        for e in chosen_envs:
            cell = Cell(v, e)
            mismatch = action_problem(v, e) or goal_problem(v, e)
            if mismatch is not None and not algos:
                continue  # not a cell of the named suite
            why = variant_problem(v) or mismatch or env_problem(e)
            if why is None:
                cells.append(cell)
            else:
                skipped[cell.key] = why
    return cells, skipped
