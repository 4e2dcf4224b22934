"""How an agent's constructor arguments become its config and environment source: the environment
given (an id, an instance, a factory, a vector env), the preset of (algorithm, environment), the
fields given over it, and the options that wrap every environment made (``softac.env_options``).
Kept apart from :mod:`softac.algos.base` so that file holds the agent itself."""

from __future__ import annotations

from typing import Any

from softac import registry
from softac.config import BaseConfig
from softac.config_pixels import with_env_options
from softac.env_sources import EnvSource, source_of
from softac.envs import EnvSpec
from softac.errors import SoftacError
from softac.preset_apply import AppliedPreset
from softac.preset_apply import resolve as resolve_preset


def configure(algo: str, agent_name: str, cfg: BaseConfig, env: Any, eval_env: Any, preset: str | None,
              overrides: dict[str, Any], learners: int) -> tuple[Any, EnvSource, AppliedPreset | None]:  # fmt: skip
    """(config, environment source, preset applied) for ``Agent(env, config, preset=..., **overrides)``."""
    source: EnvSource | None = None
    if env is not None and not isinstance(env, str):
        source = source_of(env, eval_env=eval_env)
        overrides["env_id"] = source.env_id
        if source.vector_env is not None:
            overrides["n_envs"] = max(1, source.vector_env.num_envs // learners)
    elif env is not None:
        overrides["env_id"] = env
    overrides, applied = resolve_preset(algo, overrides.get("env_id", cfg.env_id), preset, overrides)
    try:
        cfg = cfg.replace(**overrides)
    except TypeError as exc:
        raise SoftacError(f"invalid {agent_name} option: {exc}") from None
    if source is None:
        source = source_of(cfg.env_id, cfg.env_kwargs, eval_env)
    elif cfg.env_kwargs:
        raise SoftacError("env_kwargs apply to an environment id; an instance or factory is used as given")
    with_env_options(source, cfg)
    return cfg, source, applied


def check_action_space(algo: str, env_id: str, spec: EnvSpec) -> None:
    """The algorithm takes the environment's action space, or one line naming those that do."""
    info = registry.get(algo)
    if spec.action_kind not in info.action_spaces:
        others = [n for n in registry.for_action_space(spec.action_kind) if n != algo]
        hint = f": use --algo {' or '.join(others)}" if others else ""
        raise SoftacError(
            f"{env_id} has a {spec.action_kind} action space, which {algo} does not support "
            f"(it needs {' or '.join(info.action_spaces)}){hint}"
        )
