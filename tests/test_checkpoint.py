"""The versioned checkpoint: saved and loaded in one place, other versions refused."""

from __future__ import annotations

import pytest
import torch

from micronas.errors import DataError
from micronas.ship.checkpoint import FORMAT, Checkpoint, DataInfo, Identity
from micronas.tasks import Task

pytestmark = pytest.mark.unit


def _ck(epoch: int = 1, epochs: int = 2) -> Checkpoint:
    ident = Identity("mcu", "w0.2_h512|k3e3|k3e3|k3e3|k3e3|k3e3|k3e3",
                     Task("digits", (1, 8, 8), 10), DataInfo("digits", "digits", 0, 1437, 360),
                     {"epochs": epochs, "lr": 0.003}, 0)
    return Checkpoint(ident, epoch, epochs, {"w": torch.arange(4.0)}, {"state": {}},
                      [{"epoch": 1.0, "test_accuracy": 0.5}], 1.5, "none", (1, 8, 8),
                      (0.5,), (0.25,), tuple(str(i) for i in range(10)), {"micronas": "0.1.0"})


def test_round_trip(tmp_path):
    ck = _ck().save(tmp_path / "checkpoint.pt")
    back = Checkpoint.load(tmp_path)              # the folder works too
    assert back.path == str(tmp_path / "checkpoint.pt") and not back.complete
    assert back.identity == ck.identity and back.identity.to_dict() == ck.identity.to_dict()
    assert torch.equal(back.model["w"], ck.model["w"])
    assert (back.epoch, back.epochs, back.network_input, back.mean, back.class_names) == \
        (1, 2, (1, 8, 8), (0.5,), ck.class_names)
    assert _ck(2, 2).complete


def test_the_recorded_checkpoint_of_format_1_still_loads():
    from pathlib import Path

    ck = Checkpoint.load(Path(__file__).parent / "fixtures" / "bundle" / "checkpoint.pt")
    assert ck.complete and ck.identity.space == "mcu" and ck.identity.task.name == "digits"


def test_other_formats_and_damage_are_one_line(tmp_path):
    state = _ck().to_state()
    torch.save({**state, "format": "micronas-checkpoint-9"}, tmp_path / "future.pt")
    with pytest.raises(DataError, match=f"format 'micronas-checkpoint-9'.*reads {FORMAT}"):
        Checkpoint.load(tmp_path / "future.pt")
    torch.save({k: v for k, v in state.items() if k != "identity"}, tmp_path / "cut.pt")
    with pytest.raises(DataError, match="incomplete or damaged"):
        Checkpoint.load(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        Checkpoint.load(tmp_path / "junk.pt")
    with pytest.raises(DataError, match="not found"):
        Checkpoint.load(tmp_path / "missing.pt")
