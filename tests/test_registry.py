"""The one registry type and ``micronas list``."""

from __future__ import annotations

import json

import pytest

from micronas.errors import DeviceError, MicronasError
from micronas.infra.registry import Registry, summary_of

pytestmark = pytest.mark.unit


def test_lookup_is_case_folded_and_aliased():
    reg: Registry[int] = Registry("widget", aliases={"one": "Uno"})
    reg.register("Uno", 1, "the first")
    reg.register("dos", 2)
    assert reg["UNO"] == 1 and reg["one"] == 1 and "Dos" in reg and "tres" not in reg
    assert reg.names() == ["Uno", "dos"] and list(reg) == ["Uno", "dos"] and len(reg) == 2
    assert reg.entry("uno").summary == "the first"


def test_unknown_name_is_one_line_with_the_closest_choice():
    reg: Registry[int] = Registry("widget", hint="or build one", error=DeviceError)
    reg.register("stm32f746", 1)
    reg.register("nrf52840", 2)
    with pytest.raises(DeviceError) as e:
        reg["stm32f74"]
    msg = str(e.value)
    assert "\n" not in msg and "did you mean 'stm32f746'" in msg and msg.endswith("or build one")


def test_loader_runs_once_on_first_use():
    calls = []

    def load(r: Registry[str]) -> None:
        calls.append(1)
        r.register("a", "x")

    reg: Registry[str] = Registry("thing", loader=load)
    assert not calls
    assert reg["a"] == "x" and reg.names() == ["a"]
    assert calls == [1]


def test_summary_of_takes_the_first_sentence():
    assert summary_of("Aging evolution (Real et al. 2019) with ``n`` steps. More.") == \
        "Aging evolution (Real et al. 2019) with n steps."
    assert summary_of(None) == ""


@pytest.mark.parametrize("kind", ["spaces", "indicators", "strategies", "devices", "runtimes",
                                  "tasks", "datasets", "references", "executors"])
def test_every_kind_lists(kind, cli):
    code, out, err = cli("list", kind, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and all(r["name"] and "summary" in r and "source" in r for r in rows)
    code, text, _ = cli("list", kind)
    assert code == 0 and all(str(r["name"]) in text for r in rows)


def test_list_of_an_unknown_kind(cli):
    code, _, err = cli("list", "boards")
    assert code == 2 and err.count("\n") == 1 and "choose from spaces" in err


def test_each_registry_names_what_the_code_uses():
    from micronas.hardware import builtin_devices, load_device
    from micronas.search.strategies import STRATEGIES
    from micronas.spaces import get_space

    assert {"prune", "evolution", "random", "exhaustive"} == set(STRATEGIES)
    assert get_space("NB201").name == "nb201"
    assert load_device("STM32F746").name == "stm32f746" and "stm32f746" in builtin_devices()
    with pytest.raises(MicronasError, match="unknown search space"):
        get_space("nb202")
