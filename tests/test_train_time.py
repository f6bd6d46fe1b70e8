"""Training time the user sees before it starts: the timed plan, --max-train-minutes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from micronas.search.config import SearchConfig
from micronas.search.run import run_search
from micronas.ship.build import within_training_time
from micronas.ship.train import Recipe, build_module, time_steps, train
from micronas.spaces import bind, get_space
from micronas.tasks import get_task
from micronas.tasks.data import load_dataset

TINY = "w0.2_h512|k3e3|k3e3|k3e3|k3e3|k3e3|k3e3"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "micronas", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.unit
def test_timing_leaves_the_module_and_the_random_state_alone():
    task = get_task("digits")
    sp = bind(get_space("mcu"), task)
    m = build_module(sp, sp.parse(TINY), task, 0)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x, y = torch.randn(300, 1, 8, 8), torch.randint(0, 10, (300,))
    rng = torch.get_rng_state()
    sps, n = time_steps(m, x, y, Recipe(batch_size=64))
    assert sps > 0 and n == 4  # 5 batches: one warm-up step, then at most 4 timed
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


@pytest.mark.integration
def test_plan_before_training_and_a_cap_that_cuts_epochs(tmp_path):
    ds = load_dataset("digits", 0)
    plans = []
    r = train(TINY, "mcu", ds, tmp_path / "a", Recipe(epochs=2), on_plan=plans.append)
    assert len(plans) == 1 and plans[0] == r.plan
    p = r.plan
    assert p.epochs == 2 and p.steps_per_epoch == 12 and p.epochs_before_cap is None
    assert p.estimated_seconds == pytest.approx(p.seconds_per_step * 2 * 12)
    assert "2 epochs x 12 steps of 128" in p.describe()
    # a cap far below one epoch's time: one epoch, recorded in the recipe
    r = train(TINY, "mcu", ds, tmp_path / "b", Recipe(epochs=50), max_minutes=1e-5)
    assert r.epochs == 1 and r.plan.epochs_before_cap == 50 and r.recipe["epochs"] == 1
    assert "cut 50 epochs to 1" in r.plan.describe()
    # rerunning the same capped command resumes the capped run (nothing left to train)
    again = train(TINY, "mcu", ds, tmp_path / "b", Recipe(epochs=50), max_minutes=1e-5)
    assert again.resumed_from == 1 and again.epochs == 1


@pytest.mark.integration
def test_a_time_budget_trains_a_quicker_network_of_the_front():
    ds = load_dataset("digits", 0)
    cfg = SearchConfig.of(space="mcu", task="digits", device="stm32l4r5", max_latency_ms=50,
                          evaluations=12, seed=0, workers=0)
    res = run_search(cfg)
    assert len(res.pareto) >= 2
    # no time at all: every timed network misses, the quickest timed one is trained
    new, info = within_training_time(res, cfg, ds, Recipe(), 1e-6, tries=3)
    timed = info["timed"]
    assert len(timed) == 3 and timed[0]["arch"] == res.arch
    assert new.arch == min(timed, key=lambda t: t["estimated_seconds"])["arch"]
    assert "--max-train-minutes" in info["why"]
    if new.arch != res.arch:
        assert new.latency_ms < res.latency_ms and new.macs != res.macs
        assert [p["arch"] for p in new.pareto if p["chosen"]] == [new.arch]
    # plenty of time: the search's choice stays
    same, info = within_training_time(res, cfg, ds, Recipe(), 1e6)
    assert same is res and len(info["timed"]) == 1


@pytest.mark.system
@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_bad_training_time_budget_one_line(tmp_path, value):
    out = tmp_path / "o"
    r = cli("train", TINY, "--task", "digits", "--epochs", "1", "--max-train-minutes", value,
            "--out", str(out))
    assert r.returncode == 2
    assert "--max-train-minutes must be a number > 0" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.system
def test_train_prints_its_plan_first(tmp_path):
    r = cli("train", TINY, "--task", "digits", "--epochs", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "micronas: training 1 epochs x 12 steps of 128, about" in r.stderr
    r = cli("train", TINY, "--task", "digits", "--epochs", "1", "--json",
            "--out", str(tmp_path / "p"))
    assert "micronas: training" not in r.stderr
    assert json.loads(r.stdout)["plan"]["timed_steps"] == 5


@pytest.mark.unit
@pytest.mark.parametrize("given, want", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_wait_passively_unless_the_user_says(given, want):
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    r = subprocess.run([sys.executable, "-c", "import micronas, os; "
                        "print(os.environ['OMP_WAIT_POLICY'])"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout.strip() == want, r.stderr
