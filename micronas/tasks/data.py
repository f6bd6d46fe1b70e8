"""Real train / test data for a task: two built-in datasets and a user's own.

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes; works
  after a plain pip install). It has no official split: a seeded, stratified 80 / 20 split.
- ``fashion-mnist``: 60,000 + 10,000 28x28 grayscale images, 10 classes, read from where
  Debian's ``dataset-fashion-mnist`` installs it (``/usr/share/datasets/fashion-mnist``, or
  ``$MICRONAS_FASHION_MNIST``).
- An image folder ``DIR/CLASS/*.png|jpg|jpeg|bmp`` (or ``DIR/train/CLASS/...`` and
  ``DIR/test/CLASS/...``): grayscale or RGB, resized to the requested input (default: the
  first image's size), classes in sorted folder order; without ``train/`` and ``test/`` a
  seeded, stratified 80 / 20 split.
- A folder of WAV clips ``DIR/CLASS/*.wav`` (or ``DIR/train/CLASS``, ``DIR/test/CLASS``):
  keyword spotting; each clip becomes an int8 MFCC feature map computed with CMSIS-DSP
  (:mod:`micronas.tasks.audio`, :mod:`micronas.tasks.frontend`), e.g. 49x10x1; without
  ``train/`` and ``test/`` a seeded, stratified 80 / 20 split. Such data is not normalised
  again: the front end's feature scaling standardises it, and the board repeats it.
- An ``.npz`` with ``x_train, y_train, x_test, y_test``: ``x`` shaped ``(N, H, W)``,
  ``(N, C, H, W)`` or ``(N, H, W, C)`` (C of 1 or 3 last), e.g. precomputed 49x10 MFCCs;
  labels integers ``0..K-1`` (an optional ``class_names`` array names them). A time series
  (IMU, vibration, ECG) is ``(N, L, C)``: L steps of C channels, read as the 1-D input
  ``(C, L, 1)``. A 3-D ``x`` is a time series when its last axis is under
  :data:`MIN_IMAGE_SIDE` (no image that narrow can be searched) or when the ``.npz`` holds
  ``layout="NLC"``; otherwise (``layout="NHW"`` or a last axis of 8 or more) it is
  ``(N, H, W)`` as before. Every sequence has one length: ragged data (an object array, or
  train and test of different lengths) is refused.

Pixels are scaled to [0, 1] (uint8 data: divided by 255; digits' 0..16 values by 16), then
every channel is normalised with the training set's mean and standard deviation
(:func:`normalise`, float64 arithmetic rounded to float32 once); :attr:`Dataset.mean` / ``std``
and ``raw_divisor`` record them (the deployed model expects normalised input; the bundle's
``mn_preprocess_*`` C functions repeat the same arithmetic bit for bit), and
:attr:`Dataset.raw_test` keeps the test inputs as stored, before any scaling. Every problem
with the data (missing, empty class folder, unreadable image, mismatched shapes, NaN, one
class, labels out of range) raises one :class:`~micronas.errors.DataError` line naming the file.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from micronas.errors import DataError
from micronas.infra.registry import Registry
from micronas.tasks import Task, input_text
from micronas.tasks.frontend import INPUT_STEPS_PER_STD, FeatureScaling, FrontEnd

#: The narrowest image side any space searches (the mcu space's 8x8): a 3-D ``.npz`` array
#: whose last axis is narrower is read as a time series ``(N, L, C)``.
MIN_IMAGE_SIDE = 8
#: The ``layout`` an ``.npz`` may name for its 3-D ``x`` arrays.
NPZ_LAYOUTS = ("NLC", "NHW")

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_INSTALL = "apt-get install --no-install-recommends dataset-fashion-mnist"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: Built-in datasets: name -> (input shape, classes, horizontal flips are label-preserving).
DATASETS: Registry[tuple[tuple[int, int, int], int, bool]] = Registry("dataset")
DATASETS.register("digits", ((1, 8, 8), 10, False),
                  "scikit-learn's 8x8 handwritten digits, 1,797 images", "scikit-learn")
DATASETS.register("fashion-mnist", ((1, 28, 28), 10, True),
                  "Fashion-MNIST 28x28 grayscale, 70,000 images",
                  f"{FASHION_DIR} ({FASHION_INSTALL})")
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle-boot")


@dataclass(frozen=True)
class Dataset:
    """Normalised float32 images ``(N, C, H, W)`` and int64 labels, with where they came from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    flips: bool = False          # horizontal flips keep the label (augmentation may use them)
    meta: dict[str, object] = field(default_factory=dict)
    frontend: FrontEnd | None = None    # audio: the MFCC front end the inputs come from
    #: the test inputs as stored (N, C, H, W), before scaling: ``normalise(raw_test,
    #: raw_divisor, mean, std)`` is ``x_test``
    raw_test: np.ndarray | None = None
    raw_divisor: float = 1.0     # what raw values are divided by first (255 for uint8 data)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def classes(self) -> int:
        return len(self.class_names)

    def task(self) -> Task:
        return Task(self.name, self.input_shape, self.classes, frontend=self.frontend)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "input_shape": list(self.input_shape),
                "classes": self.classes, "class_names": list(self.class_names),
                "train": int(len(self.y_train)), "test": int(len(self.y_test)),
                "mean": list(self.mean), "std": list(self.std), **self.meta}


def is_builtin(name: str) -> bool:
    return str(name).strip().lower().replace("_", "-") in DATASETS


def load_dataset(source: str | Path, seed: int = 0, input_shape: tuple[int, int, int] | None = None,
                 frontend: FrontEnd | None = None) -> Dataset:
    """A built-in dataset by name, or a user's image folder / WAV folder / ``.npz`` by path.

    ``seed`` fixes the train / test split where the data has none; ``input_shape`` (C, H, W)
    resizes an image folder (ignored for the others, which must already match it);
    ``frontend``: the MFCC front end of a WAV folder (default :class:`FrontEnd`; with its
    scaling set, that scaling is used instead of one fitted to the training clips)."""
    text = str(source)
    key = text.strip().lower().replace("_", "-")
    if key == "digits":
        ds = _digits(seed)
    elif key == "fashion-mnist":
        ds = _fashion()
    else:
        path = Path(text)
        if not path.exists():
            raise DataError(f"data {text!r} not found: give a built-in dataset "
                            f"({', '.join(DATASETS)}), an image folder DIR/CLASS/*.png or an .npz")
        if path.is_dir():
            from micronas.tasks.audio import is_audio_folder

            ds = (_audio(path, seed, frontend) if is_audio_folder(path)
                  else _folder(path, seed, input_shape))
        elif path.suffix.lower() == ".npz":
            ds = _npz(path)
        else:
            raise DataError(f"data {path}: not a folder or an .npz file; give DIR/CLASS/*.png "
                            "or an .npz with x_train, y_train, x_test, y_test")
    ref = key if key in DATASETS else str(Path(text).resolve())
    ds.meta.update({"ref": ref, "split_seed": int(seed)})
    if input_shape is not None and tuple(input_shape) != ds.input_shape:
        raise DataError(f"data {ds.source} is {input_text(ds.input_shape)}, not the requested "
                        f"{input_text(tuple(input_shape))}")
    return ds


# --- finishing: checks, scaling, normalisation ------------------------------------------

def normalise(x_raw: np.ndarray, divisor: float, mean: tuple[float, ...] | np.ndarray,
              std: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Raw inputs ``(N, C, H, W)`` as the network was trained on them: in float64,
    ``(x / divisor - mean[c]) / std[c]``, rounded once to float32. The bundle's C
    (``mn_preprocess_*``) performs the same IEEE operations in the same order."""
    m = np.asarray(mean, dtype=np.float64)[None, :, None, None]
    s = np.asarray(std, dtype=np.float64)[None, :, None, None]
    x = np.asarray(x_raw).astype(np.float64) / float(divisor)
    return ((x - m) / s).astype(np.float32)


def _finish(name: str, source: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray,
            y_te: np.ndarray, class_names: tuple[str, ...] | None, flips: bool,
            meta: dict[str, object] | None = None, divisor: float | None = None,
            standardise: bool = True, layout: str | None = None) -> Dataset:
    series = _is_series(x_tr, layout)
    x_tr = _as_nchw(x_tr, source, "x_train", series)
    x_te = _as_nchw(x_te, source, "x_test", series)
    if series:
        meta = {**(meta or {}), "kind": "series"}
    y_tr, y_te = _labels(y_tr, source, "y_train"), _labels(y_te, source, "y_test")
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataError(f"data {source}: x_train/y_train have {len(x_tr)}/{len(y_tr)} rows and "
                        f"x_test/y_test {len(x_te)}/{len(y_te)}; they must match")
    if len(x_tr) == 0 or len(x_te) == 0:
        raise DataError(f"data {source}: the training and the test set must both be non-empty")
    if series and x_tr.shape[1:] != x_te.shape[1:]:
        (c1, l1), (c2, l2) = x_tr.shape[1:3], x_te.shape[1:3]
        raise DataError(f"data {source}: training sequences are {l1} steps x {c1} channels but "
                        f"test sequences {l2} x {c2}; resample, pad or crop them to one length "
                        "(and give both the same channels)")
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise DataError(f"data {source}: training samples are {x_tr.shape[1:]} but test samples "
                        f"{x_te.shape[1:]}; they must match")
    scale = divisor or (255.0 if x_tr.dtype == np.uint8 and x_te.dtype == np.uint8 else 1.0)
    raw_te = x_te
    x_tr, x_te = x_tr.astype(np.float64) / scale, x_te.astype(np.float64) / scale
    if not (np.isfinite(x_tr).all() and np.isfinite(x_te).all()):
        raise DataError(f"data {source}: holds NaN or infinite values; clean them first")
    classes = int(y_tr.max()) + 1
    present = np.unique(y_tr)
    if len(present) < 2:
        raise DataError(f"data {source}: the training labels hold one class only; a classifier "
                        "needs at least 2")
    if len(present) != classes:
        missing = sorted(set(range(classes)) - set(present.tolist()))
        raise DataError(f"data {source}: labels must be 0..K-1 with every class in the training "
                        f"set; class {missing[0]} has no training sample")
    if int(y_te.max()) >= classes:
        raise DataError(f"data {source}: test label {int(y_te.max())} is out of range (the "
                        f"training labels are 0..{classes - 1})")
    names = class_names or tuple(str(i) for i in range(classes))
    if len(names) != classes:
        raise DataError(f"data {source}: {len(names)} class names for {classes} classes")
    mean = x_tr.mean(axis=(0, 2, 3))
    std = x_tr.std(axis=(0, 2, 3))
    std = np.where(std > 1e-8, std, 1.0)
    if not standardise:  # already scaled (the audio front end's own scaling)
        mean, std = np.zeros_like(mean), np.ones_like(std)

    return Dataset(name, normalise(x_tr, 1.0, mean, std), y_tr, normalise(x_te, 1.0, mean, std),
                   y_te, tuple(names), tuple(float(v) for v in mean),
                   tuple(float(v) for v in std), source, flips, dict(meta or {}),
                   raw_test=raw_te, raw_divisor=scale)


def _is_series(x: np.ndarray, layout: str | None) -> bool:
    """Whether a 3-D ``x`` is ``(N, L, C)`` (see the module's docstring)."""
    if layout is not None:
        return layout == "NLC"
    x = np.asarray(x)
    return x.ndim == 3 and x.dtype != object and 1 <= x.shape[2] < MIN_IMAGE_SIDE


def _as_nchw(x: np.ndarray, source: str, what: str, series: bool = False) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == object:
        raise DataError(f"data {source}: {what} is an object array (sequences of different "
                        "lengths?); pad, crop or resample every sample to one shape, e.g. "
                        "(N, L, C) for a time series")
    if not (np.issubdtype(x.dtype, np.number)) or x.dtype == np.bool_:
        raise DataError(f"data {source}: {what} must be numeric, not {x.dtype}")
    if series:
        if x.ndim != 3:
            raise DataError(f"data {source}: {what} has shape {x.shape}; a time series is "
                            "(N, L, C): N samples of L steps and C channels")
        if x.shape[1] < 2 or x.shape[2] > 64:
            raise DataError(f"data {source}: {what} has shape {x.shape}, read as (N, L, C); a "
                            "time series needs at least 2 steps and at most 64 channels")
        return np.ascontiguousarray(x.transpose(0, 2, 1))[..., None]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4:
        if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return x
    raise DataError(f"data {source}: {what} has shape {x.shape}; give (N, L, C) for a time "
                    "series, (N, H, W), (N, C, H, W) or (N, H, W, C) for images")


def _labels(y: np.ndarray, source: str, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"data {source}: {what} has shape {y.shape}; give one integer label "
                        "per sample")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.isfinite(y).all() \
                or not np.array_equal(y, np.round(y)):
            raise DataError(f"data {source}: {what} must hold integer class labels 0..K-1")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(f"data {source}: {what} holds label {int(y.min())}; labels are 0..K-1")
    return y


def _split(y: np.ndarray, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, stratified split: indices of the training and the test samples."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(idx) * test_fraction)) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


# --- the built-in datasets -----------------------------------------------------------------

def _digits(seed: int) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits dataset needs scikit-learn; install it with "
                        "'pip install scikit-learn'") from None
    d = load_digits()
    x = d.images.astype(np.uint8)   # values 0..16, scaled by 16 (exact: a power of two)
    y = d.target.astype(np.int64)
    tr, te = _split(y, seed)
    return _finish("digits", "digits (scikit-learn)", x[tr], y[tr], x[te], y[te], None, False,
                   {"split_seed": seed}, divisor=16.0)


def _idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path} ({e}); reinstall with '{FASHION_INSTALL}'") from None
    if len(raw) < 8 or raw[:2] != b"\0\0" or raw[2] != 8:
        raise DataError(f"{path} is not an IDX file of unsigned bytes; reinstall with "
                        f"'{FASHION_INSTALL}'")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated; reinstall with '{FASHION_INSTALL}'")
    return body.reshape(dims)


def _fashion() -> Dataset:
    root = Path(os.environ.get("MICRONAS_FASHION_MNIST", FASHION_DIR))
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    paths = []
    for n in names:
        p = root / (n + ".gz")
        if not p.is_file():
            raise DataError(f"fashion-mnist is not installed ({root / n}.gz missing); install it "
                            f"with '{FASHION_INSTALL}' (as root)")
        paths.append(p)
    arrays = [_idx(p) for p in paths]
    return _finish("fashion-mnist", f"fashion-mnist ({root})", *arrays, FASHION_CLASSES, True)


# --- a user's data --------------------------------------------------------------------------

def _npz(path: Path) -> Dataset:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"data {path}: missing array {missing[0]}; the .npz needs "
                                "x_train, y_train, x_test and y_test")
            arrays = []
            for k in keys:
                try:
                    arrays.append(np.asarray(z[k]))
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
                    raise DataError(f"data {path}: {k} is an object array (sequences of "
                                    "different lengths?); pad, crop or resample every sample "
                                    "to one shape, e.g. (N, L, C) for a time series") from None
            layout = _layout(path, z) if "layout" in z.files else None
            names = _class_names(path, z) if "class_names" in z.files else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"cannot read {path} as an .npz of plain arrays ({e})") from None
    if layout is not None and not all(np.ndim(arrays[i]) == 3 for i in (0, 2)):
        raise DataError(f"data {path}: layout={layout!r} names a 3-D x (N, L, C) or (N, H, W); "
                        f"x_train is {np.shape(arrays[0])}, x_test {np.shape(arrays[2])}")
    return _finish(path.stem, str(path), *arrays, names, False, layout=layout)


def _class_names(path: Path, z: np.lib.npyio.NpzFile) -> tuple[str, ...]:
    """The ``.npz``'s optional ``class_names``: one string per class, in label order."""
    try:
        v = z["class_names"]
    except ValueError:
        v = None
    if v is None or v.ndim != 1 or v.dtype.kind not in "US":
        raise DataError(f"data {path}: class_names must be a 1-D array of strings, one per "
                        "class in label order")
    return tuple(str(n) for n in v)


def _layout(path: Path, z: np.lib.npyio.NpzFile) -> str:
    """The ``.npz``'s ``layout`` entry: ``"NLC"`` or ``"NHW"``."""
    try:
        v = z["layout"]
    except ValueError:
        v = None
    text = str(v.item()).strip().upper() if v is not None and v.size == 1 and v.dtype.kind in "US" \
        else None
    if text not in NPZ_LAYOUTS:
        raise DataError(f"data {path}: layout must be the string 'NLC' (a time series "
                        "(N, L, C)) or 'NHW' (images (N, H, W)), e.g. np.savez(..., layout='NLC')")
    return text


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(f"data {root}: no class folders; lay the images out as "
                        f"{root}/CLASS/*.png")
    return dirs


def _images(d: Path) -> list[Path]:
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"data {d}: class folder is empty (no {'/'.join(IMAGE_SUFFIXES)} files)")
    return files


def _folder(root: Path, seed: int, input_shape: tuple[int, int, int] | None) -> Dataset:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError("image folders need Pillow; install it with 'pip install pillow'") from None
    split = (root / "train").is_dir() and (root / "test").is_dir()
    parts = [root / "train", root / "test"] if split else [root]
    class_names = tuple(d.name for d in _class_dirs(parts[0]))
    if split:
        other = tuple(d.name for d in _class_dirs(parts[1]))
        extra = sorted(set(other) - set(class_names))
        if extra:
            raise DataError(f"data {parts[1] / extra[0]}: class not in {parts[0]}")
    listing = [[(p, class_names.index(d.name)) for d in _class_dirs(part) for p in _images(d)]
               for part in parts]
    first = listing[0][0][0]
    modes = []
    for items in listing:
        for p, _ in items:
            try:
                with Image.open(p) as im:
                    modes.append(im.mode)
            except (OSError, UnidentifiedImageError, ValueError):
                raise DataError(f"data {p}: cannot read the image; remove or replace it") from None
    gray = all(m in ("L", "1", "I;16", "I", "F") for m in modes)
    if input_shape is None:
        with Image.open(first) as im:
            w, h = im.size
        c = 1 if gray else 3
    else:
        c, h, w = input_shape
        if c not in (1, 3):
            raise DataError(f"data {root}: image folders give 1 or 3 channels, not {c}")

    def read(items: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
        xs = np.empty((len(items), h, w, c), dtype=np.uint8)
        for i, (p, _) in enumerate(items):
            try:
                with Image.open(p) as im:
                    im = im.convert("L" if c == 1 else "RGB")
                    if im.size != (w, h):
                        im = im.resize((w, h), Image.Resampling.BILINEAR)
                    xs[i] = np.asarray(im, dtype=np.uint8).reshape(h, w, c)
            except (OSError, UnidentifiedImageError, ValueError):
                raise DataError(f"data {p}: cannot read the image; remove or replace it") from None
        return xs.transpose(0, 3, 1, 2), np.array([lab for _, lab in items], dtype=np.int64)

    x_tr, y_tr, x_te, y_te, meta = _train_test(read, listing, split, seed, root, "images")
    return _finish(root.name, str(root), x_tr, y_tr, x_te, y_te, class_names, False, meta)


def _train_test(read: Any, listing: list[Any], split: bool, seed: int, root: Path,
                what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                    dict[str, object]]:
    """A folder's train and test samples: its train/ and test/ parts as they are, or a
    seeded stratified 80/20 split of its one part (``read``: a part's listing -> x, y)."""
    if split:
        (x_tr, y_tr), (x_te, y_te) = read(listing[0]), read(listing[1])
        return x_tr, y_tr, x_te, y_te, {"split": "train/ and test/ folders"}
    x, y = read(listing[0])
    tr, te = _split(y, seed)
    if len(te) == 0:
        raise DataError(f"data {root}: too few {what} to hold out a test set; add {what} "
                        "or give train/ and test/ folders")
    return x[tr], y[tr], x[te], y[te], {"split": "seeded stratified 80/20", "split_seed": seed}


def _audio(root: Path, seed: int, fe: FrontEnd | None) -> Dataset:
    """A WAV folder through the MFCC front end (its scaling fitted on the training clips
    unless ``fe`` carries one)."""
    from micronas.tasks.audio import read_clips, wav_files

    fe = fe or FrontEnd()
    split = (root / "train").is_dir() and (root / "test").is_dir()
    parts = [root / "train", root / "test"] if split else [root]
    class_names = tuple(d.name for d in _class_dirs(parts[0]))
    if split:
        extra = sorted(set(d.name for d in _class_dirs(parts[1])) - set(class_names))
        if extra:
            raise DataError(f"data {parts[1] / extra[0]}: class not in {parts[0]}")
    listing = [[(p, class_names.index(d.name)) for d in _class_dirs(part) for p in wav_files(d)]
               for part in parts]
    rates: dict[int, Path] = {}
    c_tr, y_tr, c_te, y_te, meta = _train_test(lambda part: read_clips(part, fe, rates),
                                                listing, split, seed, root, "clips")
    m_tr, m_te = fe.mfcc(c_tr), fe.mfcc(c_te)
    if fe.scaling is None:
        fe = replace(fe, scaling=FeatureScaling.fit(m_tr))
    assert fe.scaling is not None
    x_tr = fe.scaling.apply(m_tr).astype(np.float32) / INPUT_STEPS_PER_STD
    x_te = fe.scaling.apply(m_te).astype(np.float32) / INPUT_STEPS_PER_STD
    meta.update({"kind": "audio", "wav_sample_rate_hz": next(iter(rates)),
                 "frontend": fe.to_dict()})
    ds = _finish(root.name, str(root), x_tr, y_tr, x_te, y_te, class_names, False, meta,
                 standardise=False)
    return replace(ds, frontend=fe)


__all__ = ["DATASETS", "MIN_IMAGE_SIDE", "NPZ_LAYOUTS", "Dataset", "is_builtin", "load_dataset",
           "normalise"]
