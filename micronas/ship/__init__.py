"""From a chosen architecture to what goes on the board, each stage taking the previous
stage's typed result in memory:

- ``checkpoint``: :class:`Checkpoint`, the versioned training state (saved and loaded only
  there);
- ``train``: a task's data -> a trained module and its checkpoint (:func:`train`);
- ``int8``: a finished checkpoint -> float IR, calibration, int8, .tflite, TFLM accuracy;
- ``bundle``: an int8 model -> the bundle for the board (templates in ``templates/``);
- ``build``: search -> train -> int8 -> bundle in one call (it sits above the search
  layer, so this face does not import it: ``from micronas.ship.build import build``).
"""

from micronas.ship.bundle import DeployResult, deploy
from micronas.ship.checkpoint import Checkpoint
from micronas.ship.int8 import Int8Model, quantize_checkpoint, tflm_accuracy
from micronas.ship.train import Recipe, TrainResult, train

__all__ = ["Checkpoint", "DeployResult", "Int8Model", "Recipe", "TrainResult", "deploy",
           "quantize_checkpoint", "tflm_accuracy", "train"]
