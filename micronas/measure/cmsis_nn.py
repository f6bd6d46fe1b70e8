"""Emulated cycles of CMSIS-NN's int8 kernels, called as TFLite Micro's cmsis_nn kernels call them.

TFLM's ``tflm-cmsis-nn`` runtime runs each int8 operator through one CMSIS-NN entry point:
CONV_2D -> ``arm_convolve_wrapper_s8`` (which dispatches to the 1x1 fast path, the 1x1 strided
kernel or the im2col kernel), DEPTHWISE_CONV_2D (and the 1x1 depthwise an ``affine`` layer
becomes) -> ``arm_depthwise_conv_wrapper_s8`` (3x3 fast path, the DSP kernel, or the generic
one), FULLY_CONNECTED on a vector -> ``arm_fully_connected_wrapper_s8`` (with the kernel sums
TFLM's Prepare computes when the build optimises kernels for speed), AVERAGE_POOL_2D (also the
global average pool, a pool over the whole map) -> ``arm_avgpool_s8``, MAX_POOL_2D ->
``arm_max_pool_s8``, ADD -> ``arm_elementwise_add_s8``, PAD -> ``arm_pad_s8``. RELU / RELU6 and
CONCATENATION run TFLM's own reference kernels, which this module does not build.

A small C harness (written here; it only calls the CMSIS-NN API) reads the operator's
arguments from a parameter block, does the Prepare-time work (``*_get_buffer_size``, the
fully connected kernel sums), fills the CMSIS-NN argument structs as TFLM's Eval does, and
calls the kernel between two ``mn_mark`` calls. It is cross-compiled with the CMSIS-NN sources
(an archive built once per core and checkout, linked with ``--gc-sections``) at TFLM's kernel
optimisation level ``-O2``, run in unicorn, and the executed instructions between the marks
are counted and costed with the per-core cycle tables of :mod:`micronas.measure.emulate`.
The output tensor is read back and compared with the integer reference
(:func:`micronas.deploy.int8.run_layer`, bit-exact with TFLM).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from micronas.deploy.int8 import layer_constants, run_layer
from micronas.deploy.layout import conv_weight, depthwise_weight, fc_weight, from_hwc, to_hwc
from micronas.errors import MicronasError
from micronas.ir import Layer, Network
from micronas.measure.emulate import _LINKER, FLASH_BASE, RAM_BASE, machine, run_marked
from micronas.measure.toolchain import CPU_FLAGS, check_run, toolchain

#: CMSIS-NN source folders the int8 kernels TFLM calls need
SOURCE_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "PoolingFunctions",
               "BasicMathFunctions", "PadFunctions", "NNSupportFunctions")
#: TFLM's KERNEL_OPTIMIZATION_LEVEL / THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL (its Makefile)
OPT = "-O2"
#: TFLM's cortex_m_generic flags that affect code generation (no -ffreestanding: it would
#: turn off GCC's inline expansion of the 4-byte memcpy CMSIS-NN reads words with)
CFLAGS = ("-mthumb", OPT, "-fomit-frame-pointer", "-ffunction-sections", "-fdata-sections",
          "-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-DARM_NN_ENABLE_F16=0",
          "-DARM_NN_ENABLE_F32=0")

#: op codes of the harness, and the CMSIS-NN entry point each calls
OPS = {"conv": (1, "arm_convolve_wrapper_s8"), "depthwise": (2, "arm_depthwise_conv_wrapper_s8"),
       "fully_connected": (3, "arm_fully_connected_wrapper_s8"), "avgpool": (4, "arm_avgpool_s8"),
       "maxpool": (5, "arm_max_pool_s8"), "add": (6, "arm_elementwise_add_s8"),
       "pad": (7, "arm_pad_s8")}
#: op classes TFLM runs with its own reference kernels (not CMSIS-NN): not measured here
REFERENCE_KERNEL_CLASSES = {"relu": "RELU / RELU6 (TFLM reference kernel)",
                            "concat": "CONCATENATION (TFLM reference kernel)",
                            "zeros": "constant zeros (no operator; never exported)"}

_HARNESS = r"""
#include "arm_nnfunctions.h"

volatile int32_t mn_args[64];

void __attribute__((noinline)) mn_mark(int32_t phase) { __asm volatile("" ::: "memory"); }
void __attribute__((noinline)) mn_done(void) { for (;;) { __asm volatile(""); } }

#define A(i) (mn_args[i])
#define PTR(i) ((void *)(uintptr_t)mn_args[i])

static void dims(cmsis_nn_dims *d, int i) { d->n = A(i); d->h = A(i + 1); d->w = A(i + 2); d->c = A(i + 3); }

int32_t mn_run(void)
{
    const int32_t op = A(0);
    if (op < 0) mn_done(); /* keeps mn_done, the return address the emulator stops at */
    cmsis_nn_context ctx;
    cmsis_nn_dims in_d, f_d, b_d, out_d;
    cmsis_nn_per_channel_quant_params pc;
    arm_cmsis_nn_status st = ARM_CMSIS_NN_ARG_ERROR;
    int32_t buf = 0;
    /* Prepare: the scratch size (and, for FC, the kernel sums) as TFLM's Prepare gets them */
    dims(&in_d, 9); dims(&f_d, 13); dims(&out_d, 17);
    b_d.n = 1; b_d.h = 1; b_d.w = 1; b_d.c = out_d.c;
    cmsis_nn_conv_params cp;
    cmsis_nn_dw_conv_params dp;
    cmsis_nn_pool_params pp;
    cmsis_nn_fc_params fp;
    cmsis_nn_quant_params qp;
    cmsis_nn_dims pre, post;
    if (op == OP_CONV) {
        cp.input_offset = A(21); cp.output_offset = A(22);
        cp.stride.h = A(23); cp.stride.w = A(24); cp.padding.h = A(25); cp.padding.w = A(26);
        cp.dilation.h = 1; cp.dilation.w = 1; cp.activation.min = A(27); cp.activation.max = A(28);
        buf = arm_convolve_wrapper_s8_get_buffer_size(&cp, &in_d, &f_d, &out_d);
    } else if (op == OP_DW) {
        dp.input_offset = A(21); dp.output_offset = A(22); dp.ch_mult = 1;
        dp.stride.h = A(23); dp.stride.w = A(24); dp.padding.h = A(25); dp.padding.w = A(26);
        dp.dilation.h = 1; dp.dilation.w = 1; dp.activation.min = A(27); dp.activation.max = A(28);
        buf = arm_depthwise_conv_wrapper_s8_get_buffer_size(&dp, &in_d, &f_d, &out_d);
    } else if (op == OP_FC) {
        fp.input_offset = A(21); fp.filter_offset = 0; fp.output_offset = A(22);
        fp.activation.min = A(27); fp.activation.max = A(28);
        buf = arm_fully_connected_s8_get_buffer_size(&f_d);
        if (buf > 0) /* KERNELS_OPTIMIZED_FOR_SPEED: kernel sums computed once in Prepare */
            arm_vector_sum_s8((int32_t *)PTR(7), f_d.n, out_d.c, (const int8_t *)PTR(2),
                              fp.input_offset, fp.filter_offset, (const int32_t *)PTR(3));
    } else if (op == OP_AVGPOOL || op == OP_MAXPOOL) {
        pp.stride.h = A(23); pp.stride.w = A(24); pp.padding.h = A(25); pp.padding.w = A(26);
        pp.activation.min = A(27); pp.activation.max = A(28);
        if (op == OP_AVGPOOL) buf = arm_avgpool_s8_get_buffer_size(out_d.w, out_d.c);
    } else if (op == OP_PAD) {
        dims(&pre, 40); dims(&post, 44);
    }
    mn_args[61] = buf;
    if (buf > A(8)) { mn_args[60] = -100; return -100; }
    ctx.buf = buf > 0 ? PTR(7) : 0;
    ctx.size = 0;
    pc.multiplier = (int32_t *)PTR(5);
    pc.shift = (int32_t *)PTR(6);
    qp.multiplier = (int32_t *)PTR(5); qp.shift = (int32_t *)PTR(6); qp.is_per_channel = 0;
    mn_mark(1);
    switch (op) {
    case OP_CONV:
        st = arm_convolve_wrapper_s8(&ctx, &cp, &pc, &in_d, (const int8_t *)PTR(1), &f_d,
                                     (const int8_t *)PTR(2), &b_d, (const int32_t *)PTR(3), &out_d,
                                     (int8_t *)PTR(4));
        break;
    case OP_DW:
        st = arm_depthwise_conv_wrapper_s8(&ctx, &dp, &pc, &in_d, (const int8_t *)PTR(1), &f_d,
                                           (const int8_t *)PTR(2), &b_d, (const int32_t *)PTR(3),
                                           &out_d, (int8_t *)PTR(4));
        break;
    case OP_FC:
        st = arm_fully_connected_wrapper_s8(&ctx, &fp, &qp, &in_d, (const int8_t *)PTR(1), &f_d,
                                            (const int8_t *)PTR(2), &b_d, (const int32_t *)PTR(3),
                                            &out_d, (int8_t *)PTR(4));
        break;
    case OP_AVGPOOL:
        st = arm_avgpool_s8(&ctx, &pp, &in_d, (const int8_t *)PTR(1), &f_d, &out_d, (int8_t *)PTR(4));
        break;
    case OP_MAXPOOL:
        st = arm_max_pool_s8(&ctx, &pp, &in_d, (const int8_t *)PTR(1), &f_d, &out_d, (int8_t *)PTR(4));
        break;
    case OP_ADD:
        st = arm_elementwise_add_s8((const int8_t *)PTR(1), (const int8_t *)PTR(39), A(29), A(30),
                                    A(31), A(32), A(33), A(34), A(35), (int8_t *)PTR(4), A(22),
                                    A(36), A(37), A(27), A(28), A(38));
        break;
    case OP_PAD:
        st = arm_pad_s8((const int8_t *)PTR(1), (int8_t *)PTR(4), (int8_t)A(48), &in_d, &pre, &post);
        break;
    default:
        break;
    }
    mn_mark(2);
    mn_args[60] = st;
    return st;
}
"""


def _defines() -> list[str]:
    names = {"conv": "OP_CONV", "depthwise": "OP_DW", "fully_connected": "OP_FC",
             "avgpool": "OP_AVGPOOL", "maxpool": "OP_MAXPOOL", "add": "OP_ADD", "pad": "OP_PAD"}
    return [f"-D{names[k]}={code}" for k, (code, _) in OPS.items()]


def source_tree(path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A CMSIS-NN source tree from ``path``: a checkout, or a bare git repository (its HEAD
    is exported once into the cache directory). A MicronasError when it is neither."""
    p = Path(path)
    if (p / "Include" / "arm_nnfunctions.h").is_file():
        return p
    r = subprocess.run(["git", "-C", str(p), "rev-parse", "--is-bare-repository"],
                       capture_output=True, text=True)
    if p.is_dir() and r.returncode == 0 and r.stdout.strip() == "true":
        ls = subprocess.run(["git", "-C", str(p), "ls-tree", "--name-only", "HEAD", "Include/"],
                            capture_output=True, text=True)
        if "Include/arm_nnfunctions.h" in ls.stdout.split():
            version = cmsis_nn_version(p, check=False)
            dest = Path(cache_dir or default_cache_dir()) / f"src-{version}"
            if not (dest / "Include" / "arm_nnfunctions.h").is_file():
                dest.mkdir(parents=True, exist_ok=True)
                arch = subprocess.run(["git", "-C", str(p), "archive", "HEAD"], capture_output=True)
                subprocess.run(["tar", "-x", "-C", str(dest)], input=arch.stdout, check=True)
                (dest / ".cmsis-nn-version").write_text(version)
            return dest
    raise MicronasError(f"{p} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h); give "
                        "the folder of a CMSIS-NN source tree or git repository")


def cmsis_nn_version(root: str | Path, check: bool = True) -> str:
    """``git describe`` of a CMSIS-NN checkout (or its ARM.CMSIS-NN.pdsc version); raises a
    MicronasError when ``root`` is not a CMSIS-NN checkout."""
    p = Path(root)
    if (p / ".cmsis-nn-version").is_file():
        return (p / ".cmsis-nn-version").read_text().strip()
    if check and (not (p / "Include" / "arm_nnfunctions.h").is_file()
                  or not (p / "Source").is_dir()):
        raise MicronasError(f"{p} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h); "
                            "give the folder of a CMSIS-NN source tree")
    r = subprocess.run(["git", "-C", str(p), "describe", "--tags", "--always"],
                       capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip()
    pdsc = p / "ARM.CMSIS-NN.pdsc"
    if pdsc.is_file():
        import re

        m = re.search(r'<release version="([^"]+)"', pdsc.read_text(errors="replace"))
        if m:
            return "v" + m.group(1)
    return "unknown"


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for d in ("Include", *(f"Source/{s}" for s in SOURCE_DIRS)):
        for f in sorted((root / d).rglob("*")):
            if f.is_file() and f.suffix in (".c", ".h"):
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "micronas-cmsis-nn"


@dataclass
class Kernels:
    """CMSIS-NN built for one core: the static archive and the linked harness."""

    core: str
    root: Path
    version: str
    archive: Path
    elf: Path
    image: bytes
    symbols: dict[str, int]
    key: str  # hash of sources + harness + flags + cycle table: the result-cache key


def _sources(root: Path) -> list[Path]:
    out = []
    for d in SOURCE_DIRS:
        out += [f for f in sorted((root / "Source" / d).glob("*.c"))
                if not f.stem.endswith(("_f16", "_f32"))]
    return out


def build(root: str | Path, core: str, cache_dir: str | Path | None = None) -> Kernels:
    """Compile CMSIS-NN (the int8 kernel folders) for ``core`` into an archive, once per
    checkout and core, and link the harness against it."""
    if core not in CPU_FLAGS:
        raise MicronasError(f"no emulation support for core {core!r}; supported: "
                            f"{', '.join(CPU_FLAGS)}")
    root = source_tree(root, cache_dir).resolve()
    version = cmsis_nn_version(root)
    gcc = toolchain()
    flags = [CPU_FLAGS[core], *CFLAGS]
    h = hashlib.sha256((_tree_hash(root) + " ".join(flags) + _HARNESS + _LINKER).encode())
    h.update((resources.files("micronas.measure") / "cycles.toml").read_bytes())
    h.update(core.encode())
    key = h.hexdigest()[:16]
    d = Path(cache_dir or default_cache_dir()) / f"{core}-{key}"
    d.mkdir(parents=True, exist_ok=True)
    archive = d / "libcmsisnn.a"
    inc = ["-I", str(root / "Include")]
    if not archive.is_file():
        objs = []
        for src in _sources(root):
            obj = d / (src.stem + ".o")
            check_run([gcc, *flags, *inc, "-c", str(src), "-o", str(obj)],
                      f"compiling CMSIS-NN {src.name} for {core}")
            objs.append(str(obj))
        tmp = d / "libcmsisnn.a.tmp"
        tmp.unlink(missing_ok=True)
        check_run([gcc.replace("gcc", "ar"), "rcs", str(tmp), *objs], "ar")
        tmp.replace(archive)
        for o in objs:
            Path(o).unlink()
    elf = d / "harness.elf"
    if not elf.is_file():
        (d / "harness.c").write_text(_HARNESS)
        (d / "link.ld").write_text(_LINKER.format(flash=FLASH_BASE, ram=RAM_BASE))
        tmp = d / "harness.elf.tmp"
        check_run([gcc, *flags, *_defines(), *inc, "-nostartfiles", "-Wl,--gc-sections",
                   "-T", str(d / "link.ld"), str(d / "harness.c"), str(archive), "-lc", "-lgcc",
                   "-o", str(tmp)], f"linking the CMSIS-NN harness for {core}")
        tmp.replace(elf)
    image, symbols = _image(elf)
    for s in ("mn_run", "mn_mark", "mn_done", "mn_args"):
        if s not in symbols:
            raise MicronasError(f"CMSIS-NN harness for {core}: symbol {s} missing")
    return Kernels(core, root, version, archive, elf, image, symbols, key)


def _image(elf: Path) -> tuple[bytes, dict[str, int]]:
    gcc = toolchain()
    with tempfile.TemporaryDirectory(prefix="micronas-cmsis-") as tmp:
        binary = Path(tmp) / "fw.bin"
        check_run([gcc.replace("gcc", "objcopy"), "-O", "binary", "-j", ".text", str(elf),
                   str(binary)], "objcopy")
        image = binary.read_bytes()
    symbols = {}
    for line in check_run([gcc.replace("gcc", "nm"), str(elf)], "nm").splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    return image, symbols


# --- one layer ------------------------------------------------------------------------------

def kernel_op(layer: Layer) -> str | None:
    """The harness op that runs ``layer`` under TFLM's cmsis_nn kernels, or None (TFLM runs
    it with a reference kernel)."""
    return {"conv2d": "conv", "depthwise_conv2d": "depthwise", "affine": "depthwise",
            "fully_connected": "fully_connected", "avgpool2d": "avgpool",
            "global_avgpool": "avgpool", "maxpool2d": "maxpool", "add": "add",
            "pad": "pad"}.get(layer.op)


@dataclass
class KernelRun:
    cycles: float
    instructions: int
    scratch_bytes: int
    bit_exact: bool
    mismatches: int
    classes: dict[str, int]


DATA_BASE = RAM_BASE + 0x10_0000
RAM_SIZE = 32 << 20
SCRATCH_BYTES = 1 << 20


class _Heap:
    def __init__(self, base: int):
        self.next = base
        self.blocks: list[tuple[int, bytes]] = []

    def put(self, data: bytes | np.ndarray, size: int | None = None) -> int:
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        n = max(len(raw), size or 0)
        addr = self.next
        self.blocks.append((addr, raw))
        self.next += (n + 31) // 32 * 32 + 32
        return addr


def _args(qnet, layer: Layer, x: np.ndarray, heap: _Heap) -> tuple[list[int], int, int]:
    """The harness parameter block for ``layer`` on input ``x`` (C, H, W int8); returns
    (args, output address, output bytes)."""
    net = qnet.net
    op = kernel_op(layer)
    if op is None:
        raise MicronasError(f"layer {layer.name}: op {layer.op} does not run a CMSIS-NN kernel")
    a = [0] * 64
    a[0] = OPS[op][0]
    k = layer_constants(qnet, layer)
    in_shape = net.tensors[layer.inputs[0]].shape
    out_shape = net.tensors[layer.output].shape
    ci, hi, wi = (in_shape + (1, 1))[:3] if len(in_shape) == 1 else in_shape
    co, ho, wo = (out_shape + (1, 1))[:3] if len(out_shape) == 1 else out_shape
    if layer.op == "global_avgpool":
        ho = wo = 1
    a[1] = heap.put(to_hwc(x).astype(np.int8))
    out_bytes = int(np.prod(out_shape))
    out_addr = heap.put(b"", out_bytes)
    a[4] = out_addr
    a[7] = heap.put(b"", SCRATCH_BYTES)
    a[8] = SCRATCH_BYTES
    a[9:13] = [1, hi, wi, ci]
    a[17:21] = [1, ho, wo, co]
    a[21] = k.input_offsets[0] if k.input_offsets else 0
    a[22] = k.output_offset
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    a[23:27] = [sh, sw, ph, pw]
    a[27], a[28] = k.act_min, k.act_max

    def i32(v) -> np.ndarray:
        return np.asarray(v, dtype=np.int64).astype(np.int32)

    if op in ("conv", "depthwise", "fully_connected"):
        qp = qnet.params[layer.name]
        if op == "conv":
            w = conv_weight(qp.weight)
            a[13:17] = [1, layer.kernel[0], layer.kernel[1], ci]
        elif op == "depthwise":
            w = depthwise_weight(qp.weight)
            a[13:17] = [1, layer.kernel[0], layer.kernel[1], co]
        else:
            w = fc_weight(net, layer, qp.weight)
            a[9:13] = [1, 1, 1, int(np.prod(in_shape))]
            a[13:17] = [int(np.prod(in_shape)), 1, 1, co]
            a[17:21] = [1, 1, 1, co]
        a[2] = heap.put(w.astype(np.int8))
        a[3] = heap.put(i32(qp.bias))
        a[5] = heap.put(i32(k.multipliers))
        a[6] = heap.put(i32(k.shifts))
    elif op in ("avgpool", "maxpool"):
        kh, kw = (hi, wi) if layer.op == "global_avgpool" else layer.kernel
        if layer.op == "global_avgpool":
            a[23:27] = [1, 1, 0, 0]
        a[13:17] = [1, kh, kw, 1]
    elif op == "add":
        a[39] = a[1] if layer.inputs[1] == layer.inputs[0] else a[1]
        a[29], a[32] = k.input_offsets
        a[30], a[33], a[36] = k.multipliers
        a[31], a[34], a[37] = k.shifts
        a[35] = k.left_shift
        a[38] = int(np.prod(out_shape))
    elif op == "pad":
        a[40:44] = [0, ph, pw, 0]
        a[44:48] = [0, ho - hi - ph, wo - wi - pw, 0]
        a[48] = k.output_offset
    return a, out_addr, out_bytes


def run_layer_kernel(kern: Kernels, qnet, layer: Layer, x: np.ndarray,
                     max_instructions: int = 3_000_000_000) -> KernelRun:
    """Run ``layer`` (the one layer of the single-layer network ``qnet``; both operands of an
    add read ``x``) through its CMSIS-NN kernel on the emulated core."""
    uc, arm = machine(kern.core, kern.image, RAM_SIZE)
    heap = _Heap(DATA_BASE)
    args, out_addr, out_bytes = _args(qnet, layer, x, heap)
    for addr, raw in heap.blocks:
        if raw:
            uc.mem_write(addr, raw)
    if heap.next > RAM_BASE + RAM_SIZE - (1 << 20):
        raise MicronasError(f"layer {layer.name}: tensors too large for the emulated RAM")
    uc.mem_write(kern.symbols["mn_args"],
                 np.asarray(args, dtype=np.int64).astype(np.int32).tobytes())
    done = kern.symbols["mn_done"] & ~1
    mark = kern.symbols["mn_mark"] & ~1
    uc.reg_write(arm.UC_ARM_REG_SP, RAM_BASE + RAM_SIZE - 16)
    uc.reg_write(arm.UC_ARM_REG_LR, done | 1)

    cycles, classes, n_taken = run_marked(uc, arm, kern.image, kern.core, kern.symbols["mn_run"],
                                          done, mark, max_instructions, layer.name)
    status, scratch = np.frombuffer(bytes(uc.mem_read(kern.symbols["mn_args"] + 240, 8)),
                                    dtype=np.int32)
    if status != 0:
        raise MicronasError(f"layer {layer.name}: the CMSIS-NN kernel returned status {status}")
    instructions = sum(classes.values())
    classes["branches_taken"] = n_taken
    out_shape = qnet.net.tensors[layer.output].shape
    got = from_hwc(np.frombuffer(bytes(uc.mem_read(out_addr, out_bytes)), dtype=np.int8),
                   out_shape)
    xs = [x[None] for _ in layer.inputs]
    ref = run_layer(qnet, layer, xs)[0]
    mismatches = int(np.count_nonzero(got.reshape(-1) != ref.reshape(-1)))
    return KernelRun(cycles, int(instructions), int(scratch), mismatches == 0, mismatches,
                     dict(classes))


def measure(kern: Kernels, net: Network, layer: Layer, seed: int = 0) -> KernelRun:
    """``layer`` of ``net`` alone (quantised with seeded weights and calibration, as
    :func:`micronas.measure.layers.measure_layer` does) through its CMSIS-NN kernel."""
    from micronas.deploy.export import prepare
    from micronas.deploy.quantize import gaussian_batch
    from micronas.measure.layers import single_layer_network

    one = single_layer_network(net, layer)
    q = prepare(one, seed)
    x = q.input_quant.quantize(gaussian_batch(one, 1, seed + 2))[0]
    return run_layer_kernel(kern, q, q.net.layers[-1], x)


# --- code size per op class ----------------------------------------------------------------

#: op class -> the CMSIS-NN entry points TFLM's kernel for it can call
CLASS_ENTRY_POINTS = {
    "conv": ["arm_convolve_wrapper_s8", "arm_convolve_wrapper_s8_get_buffer_size"],
    "conv1x1": ["arm_convolve_wrapper_s8", "arm_convolve_wrapper_s8_get_buffer_size"],
    "depthwise": ["arm_depthwise_conv_wrapper_s8", "arm_depthwise_conv_wrapper_s8_get_buffer_size"],
    "affine": ["arm_depthwise_conv_wrapper_s8", "arm_depthwise_conv_wrapper_s8_get_buffer_size"],
    "fully_connected": ["arm_fully_connected_wrapper_s8", "arm_fully_connected_s8_get_buffer_size",
                        "arm_vector_sum_s8"],
    "pool": ["arm_avgpool_s8", "arm_avgpool_s8_get_buffer_size", "arm_max_pool_s8"],
    "global_pool": ["arm_avgpool_s8", "arm_avgpool_s8_get_buffer_size"],
    "add": ["arm_elementwise_add_s8"],
    "pad": ["arm_pad_s8"],
}


def code_size(kern: Kernels, entry_points: list[str]) -> int:
    """Text + rodata bytes that linking ``entry_points`` from the CMSIS-NN archive pulls in
    (``--gc-sections``; library helpers such as memcpy and libgcc's division included)."""
    from micronas.measure.toolchain import section_sizes

    gcc = toolchain()
    flags = [CPU_FLAGS[kern.core], *CFLAGS]
    with tempfile.TemporaryDirectory(prefix="micronas-cmsis-size-") as tmp:
        d = Path(tmp)

        def link(names: list[str]) -> int:
            refs = "".join(f"extern char {n}[];\n" for n in names)
            table = ", ".join(f"(void *){n}" for n in names) or "0"
            (d / "m.c").write_text(f"{refs}void * volatile mn_keep[] = {{{table}}};\n"
                                   "void *mn_entry(void) { return mn_keep[0]; }\n")
            (d / "link.ld").write_text(_LINKER.format(flash=FLASH_BASE, ram=RAM_BASE)
                                       .replace("ENTRY(mn_run)", "ENTRY(mn_entry)"))
            check_run([gcc, *flags, "-nostartfiles", "-Wl,--gc-sections", "-T",
                       str(d / "link.ld"), str(d / "m.c"), str(kern.archive), "-lc", "-lgcc",
                       "-o", str(d / "m.elf")], "linking for code size")
            out = check_run([gcc.replace("gcc", "size"), "-A", str(d / "m.elf")], "size")
            return section_sizes(out)[0]

        return link(entry_points) - link([])


def dumps_key(kern: Kernels) -> str:
    return json.dumps({"core": kern.core, "key": kern.key, "version": kern.version})
