"""Datasets the NB201 networks are built for: input shape and number of classes."""

from __future__ import annotations

from dataclasses import dataclass

from micronas.errors import MicronasError


@dataclass(frozen=True)
class DatasetSpec:
    """Input geometry and classes of a dataset (channels-first, batch excluded)."""

    name: str
    channels: int
    resolution: int
    num_classes: int
    accuracy_column: str  # column of nb201_accuracy.csv holding test accuracy (%)


DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec("cifar10", 3, 32, 10, "cifar10_test"),
    "cifar100": DatasetSpec("cifar100", 3, 32, 100, "cifar100_test"),
    "imagenet16-120": DatasetSpec("imagenet16-120", 3, 16, 120, "imagenet16_120_test"),
}


def get_dataset(name: str) -> DatasetSpec:
    """Look up a dataset by name; raise MicronasError naming the valid choices."""
    key = name.strip().lower().replace("_", "-")
    if key == "imagenet16":
        key = "imagenet16-120"
    if key not in DATASETS:
        raise MicronasError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[key]
