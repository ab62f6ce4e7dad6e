"""The scenario engine's structure: one registry, declarations the rest of mmgym can rely on,
numba-only simulation layer, no import cycles, and kernels the numba cache really serves."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import mmgym
from mmgym.scenarios import REGISTRY, get
from mmgym.sim import ledger

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("env_id", list(REGISTRY))
def test_declaration_is_consistent(env_id):
    sc = get(env_id)
    entry = REGISTRY[env_id]
    assert sc.id == env_id
    module = sys.modules[entry.module]
    assert getattr(module, entry.env).scenario_id == env_id
    assert getattr(module, entry.vector_env).scenario_id == env_id
    assert gym.spec(env_id).entry_point == f"{entry.module}:{entry.env}"
    # every scenario's columns start with the ledger's, at the ledger's offsets
    for mine, base in ((sc.terms, ledger.TERMS), (sc.aux, ledger.AUX), (sc.stats, ledger.STATS),
                       (sc.obs, ledger.OBS)):
        assert mine.names[: len(base)] == base.names
    cfg = sc.default_config()
    assert isinstance(cfg, sc.config_class) and cfg.id == env_id
    assert sc.observation_space(cfg).shape == (len(sc.obs_columns(cfg)),)
    assert sc.obs_columns(cfg).names == sc.obs.names[: len(sc.obs_columns(cfg))]
    assert mmgym.load_env_config({"id": env_id}).__class__ is sc.config_class


def test_one_place_registers():
    """gym ids, config classes and markets all come from the registry."""
    mm_ids = sorted(i for i in gym.registry if i.startswith("mmgym/"))
    assert mm_ids == sorted(REGISTRY)
    with pytest.raises(mmgym.ConfigError, match="registered: "):
        mmgym.load_env_config({"id": "mmgym/Nope-v0"})


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(module-level imports, all imports) of a file, as absolute module names."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    if rel.name == "__init__":
        package = list(rel.parts[:-1])
    top, every = set(), set()

    def name_of(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = package[: len(package) - node.level + 1] if node.level else []
        mod = ".".join(base + ([node.module] if node.module else []))
        if node.module is None:
            return [f"{mod}.{a.name}" for a in node.names]
        return [mod]

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            every.update(name_of(node))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.update(name_of(node))
        elif isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            for sub in node.body:
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    top.update(name_of(sub))
    return top, every


def _modules() -> dict[str, Path]:
    """Module name -> file; the repository's agents/ folder is the package mmgym.agents."""
    out = {}
    for pkg, name in (("mmgym", "mmgym"), ("agents", "mmgym.agents")):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT / pkg).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join((name, *parts))] = path
    return out


def test_simulation_layer_imports_numpy_and_numba_only():
    """mmgym.sim imports numpy and numba (and llvmlite, numba's code generator) only."""
    mods = _modules()
    for name, path in mods.items():
        if name.startswith("mmgym.sim"):
            _, every = _imports(path)
            for imp in every:
                root = imp.split(".")[0]
                assert root in ("numpy", "numba", "llvmlite", "__future__", "typing", "math") or imp.startswith(
                    "mmgym.sim"), f"{name} imports {imp}"


def test_no_import_cycles_and_torch_only_in_agents():
    """Module-level imports form a DAG (function-level imports are deliberate lazy imports), and
    only agents/ (mmgym.agents) imports torch or stable-baselines3."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        top, every = _imports(path)
        deps = set()
        for imp in top:
            while imp and imp not in mods:
                imp = imp.rpartition(".")[0]
            if imp and imp != name:
                deps.add(imp)
        graph[name] = deps
        if not name.startswith("mmgym.agents"):
            assert not {i.split(".")[0] for i in every} & {"torch", "stable_baselines3"}, name
    # a package's __init__ importing its own submodules is not a cycle
    for name in graph:
        graph[name] = {d for d in graph[name] if not (name.startswith(d + ".") and mods[d].name == "__init__.py")}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, dep]))
            if state.get(dep) is None:
                visit(dep, stack + [node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_kernels_load_from_the_numba_cache_in_a_new_process():
    """Each scenario's step and reset kernels compiled once are loaded, not recompiled, by the
    next process (the skeleton pattern is cacheable)."""
    code = (
        "import json, numpy as np, gymnasium as gym, mmgym\n"
        "from mmgym.scenarios import REGISTRY, get\n"
        "out = {}\n"
        "for env_id in REGISTRY:\n"
        "    env = gym.make(env_id); env.reset(seed=0); env.step(env.action_space.sample())\n"
        "    sc = get(env_id)\n"
        "    out[env_id] = [(sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))\n"
        "                   for k in (sc.step_kernel, sc.reset_kernel)]\n"
        "print(json.dumps(out))\n")
    for _ in range(2):  # the first run may compile (a cold cache); the second must not
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 0, res.stderr[-2000:]
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    for env_id, kernels in stats.items():
        for hits, misses in kernels:
            assert misses == 0 and hits >= 1, (env_id, stats)


def test_state_has_an_asset_axis_and_baselines_take_it():
    from mmgym.baselines import make_baseline
    from mmgym.envs.market import BatchMarket

    for env_id in REGISTRY:
        cfg = get(env_id).default_config()
        k = get(env_id).assets(cfg)  # 1, or the portfolio's K
        m = BatchMarket(cfg, 3, raw_depths=True)
        m.seed_rows([0, 1, 2])
        m.reset()
        assert m.inventory.shape == (3, k)
        assert m.track.vol_var.shape == (3, k) and m.track.last_fills.shape == (3, k, 2)
        actions = make_baseline("as", cfg).act(m)
        assert actions.shape == (3, m.action_dim) and np.isfinite(actions).all()
        q = np.repeat(np.array([[1], [0], [-2]]), k, axis=1)
        d_b, d_a = make_baseline("as", cfg).depths(np.array([0, 5, 9]), q)
        assert d_b.shape == (3, k) and d_a.shape == (3, k)
