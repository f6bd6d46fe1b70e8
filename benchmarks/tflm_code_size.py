"""Per-op, per-core code size of TensorFlow Lite Micro + CMSIS-NN (int8 builds).

Builds TFLM's core, the kernels of the ops micronas emits and CMSIS-NN for each Cortex-M core
with the flags of TFLM's own Makefile (``TARGET=cortex_m_generic OPTIMIZED_KERNEL_DIR=cmsis_nn``,
default ``BUILD_TYPE``: core at -Os, kernels and CMSIS-NN at -O2, ``-ffunction-sections
-fdata-sections``, ``-fno-rtti -fno-exceptions``, linked with ``--gc-sections``), then links a
minimal application (a ``MicroMutableOpResolver``, a ``MicroInterpreter`` over a model array,
``AllocateTensors`` and ``Invoke``) once with no op (the BASE row), once per op (the op's
increment is the difference to BASE) and once with a realistic set of ops (the additivity check:
base + the sum of the increments against the real combined size).

    python benchmarks/tflm_code_size.py --tflm TFLM --cmsis-nn CMSIS_NN \\
        --flatbuffers FLATBUFFERS --gemmlowp GEMMLOWP --ruy RUY

TFLM's Makefile downloads flatbuffers (tag v25.9.23, with TFLM's ``flatbuffers.patch`` applied
to the copy here when it is not yet), gemmlowp and ruy (headers only) itself; give their
checkouts. Writes ``benchmarks/results/tflm_code_size.csv`` and a sidecar
``tflm_code_size.json`` (versions, compiler, flags, the combined-set check).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_CSV = REPO / "benchmarks" / "results" / "tflm_code_size.csv"

# micronas core -> (TFLM TARGET_ARCH, gcc flags as cortex_m_generic_makefile.inc makes them, CORE)
# Every micronas device on an M4/M7/M33 has an FPU, so those use TFLM's "+fp" targets (FLOAT=hard).
CORES = {
    "cortex-m0plus": ("cortex-m0plus", ["-mcpu=cortex-m0plus", "-mfpu=auto", "-mfloat-abi=soft"],
                      "M0plus"),
    "cortex-m4": ("cortex-m4+fp", ["-mcpu=cortex-m4", "-mfpu=auto", "-mfloat-abi=hard"], "M4"),
    "cortex-m7": ("cortex-m7+fp", ["-mcpu=cortex-m7", "-mfpu=auto", "-mfloat-abi=hard"], "M7"),
    "cortex-m33": ("cortex-m33", ["-mcpu=cortex-m33", "-mfpu=auto", "-mfloat-abi=hard"], "M33"),
}

# TFLite builtin -> (MicroMutableOpResolver method, kernel source stem under micro/kernels)
OPS = {
    "CONV_2D": ("AddConv2D", "conv"),
    "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", "depthwise_conv"),
    "FULLY_CONNECTED": ("AddFullyConnected", "fully_connected"),
    "AVERAGE_POOL_2D": ("AddAveragePool2D", "pooling"),
    "MAX_POOL_2D": ("AddMaxPool2D", "pooling"),
    "MEAN": ("AddMean", "reduce"),
    "ADD": ("AddAdd", "add"),
    "CONCATENATION": ("AddConcatenation", "concatenation"),
    "RELU": ("AddRelu", "activations"),
    "RELU6": ("AddRelu6", "activations"),
    "PAD": ("AddPad", "pad"),
    "MUL": ("AddMul", "mul"),
    "RESHAPE": ("AddReshape", "reshape"),
    "SOFTMAX": ("AddSoftmax", "softmax"),
    "QUANTIZE": ("AddQuantize", "quantize"),
    "DEQUANTIZE": ("AddDequantize", "dequantize"),
    "HARD_SWISH": ("AddHardSwish", "hard_swish"),
    "LOGISTIC": ("AddLogistic", "logistic"),
}
COMBINED = ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]
# the stated bounds on (predicted - combined) / combined: base + the sum of the single-op
# increments counts shared helpers once per op (an overestimate); predict_text counts them once
COMBINED_MAX_ERROR = {"sum_of_increments": 0.6, "shared_estimate": 0.05}

# TFLM's Makefile (COMMON_FLAGS, CXXFLAGS, CCFLAGS, cortex_m_generic PLATFORM_FLAGS, cmsis_nn.inc)
COMMON = ["-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-ffunction-sections",
          "-fdata-sections", "-fmessage-length=0", "-DTF_LITE_STATIC_MEMORY",
          "-DTF_LITE_DISABLE_X86_NEON", "-DCMSIS_NN", "-DKERNELS_OPTIMIZED_FOR_SPEED",
          "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0",
          "-DTF_LITE_MCU_DEBUG_LOG", "-mthumb", "-mlittle-endian", "-fomit-frame-pointer",
          "-funsigned-char", "-w"]
CXX_ONLY = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
C_ONLY = ["-std=c17"]
CORE_OPT, KERNEL_OPT, THIRD_PARTY_KERNEL_OPT = "-Os", "-O2", "-O2"
APP_OPT = "-Os"
LDFLAGS = ["-Wl,--gc-sections", "--specs=nano.specs", "--specs=nosys.specs"]
LIBS = ["-lm"]
# core sources the app cannot reach (tests' helpers, recording allocators) or that the app
# replaces (debug_log.cc: a stub DebugLog in the app, as cortex_m_generic leaves it to the board)
CORE_SKIP = {"debug_log.cc", "test_helpers.cc", "test_helper_custom_ops.cc", "fake_micro_context.cc",
             "mock_micro_graph.cc", "recording_micro_allocator.cc", "micro_time.cc",
             "system_setup.cc", "micro_profiler.cc",
             "recording_single_arena_buffer_allocator.cc"}

# The application in units compiled once per core: the runner (interpreter set-up and Invoke),
# one unit per op (its resolver.Add...() call) and, per build, a main without TFLM headers
# that hands the runner the ops of that build (so each build is a link, not a compile).
RESOLVER_SLOTS = 32
RUNNER_CC = r"""
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" void DebugLog(const char* format, va_list args) { (void)format; (void)args; }
extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* format, va_list vlist) {
  (void)buffer; (void)buf_size; (void)format; (void)vlist; return 0;
}

extern const unsigned char g_model[];
extern uint8_t g_arena[];
extern const size_t g_arena_size;

int micronas_run(void (*const* adds)(void*), int n) {
  tflite::MicroMutableOpResolver<SLOTS> resolver;
  for (int i = 0; i < n; ++i) adds[i](&resolver);
  const tflite::Model* model = tflite::GetModel(g_model);
  tflite::MicroInterpreter interpreter(model, resolver, g_arena, g_arena_size);
  if (interpreter.AllocateTensors() != kTfLiteOk) return 1;
  return interpreter.Invoke() == kTfLiteOk ? 0 : 2;
}
""".replace("SLOTS", str(RESOLVER_SLOTS))
ADD_CC = r"""
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
void micronas_add_OP(void* r) { static_cast<tflite::MicroMutableOpResolver<SLOTS>*>(r)->METHOD(); }
""".replace("SLOTS", str(RESOLVER_SLOTS))
MAIN_CC = r"""
int micronas_run(void (*const* adds)(void*), int n);
DECLS
int main() {
  static void (*const adds[])(void*) = {LIST};
  return micronas_run(adds, COUNT);
}
"""
# the model and the arena live in their own unit (so nothing about them is folded into main)
# and are subtracted from the sizes: they are the model's flash and SRAM, not the runtime's
MODEL_CC = r"""
#include <cstddef>
#include <cstdint>
alignas(16) extern const unsigned char g_model[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
alignas(16) uint8_t g_arena[1024];
extern const size_t g_arena_size = sizeof(g_arena);
"""
EMPTY_CC = "int main() { return 0; }\n"


def run(cmd: list[str], cwd: Path | None = None) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)}\n{p.stdout}{p.stderr}")
    return p.stdout


def git_version(path: Path) -> str:
    """``git describe`` of a checkout (a tag, or the commit), else flatbuffers' own version macros."""
    try:
        return run(["git", "-C", str(path), "describe", "--tags", "--always", "--abbrev=12"]).strip()
    except (RuntimeError, FileNotFoundError):
        pass
    base = path / "include" / "flatbuffers" / "base.h"
    if base.is_file():
        v = dict(re.findall(r"#define FLATBUFFERS_VERSION_(MAJOR|MINOR|REVISION) (\d+)", base.read_text()))
        if len(v) == 3:
            return f"v{v['MAJOR']}.{v['MINOR']}.{v['REVISION']}"
    return "unknown"


def ensure_flatbuffers_patch(fb: Path, tflm: Path) -> None:
    """TFLM builds against flatbuffers with its own patch (a default allocator TFLM never
    uses); apply it to the checkout once, as flatbuffers_download.sh does."""
    base = (fb / "include" / "flatbuffers" / "base.h").read_text()
    if "For TFLM" in base:
        return
    run(["patch", "-p1", "-i", str(tflm / "tensorflow/lite/micro/tools/make/flatbuffers.patch")],
        cwd=fb)


def sources(tflm: Path, cmsis_nn: Path) -> dict[str, list[Path]]:
    """The core, kernel and CMSIS-NN sources: sources.inc's MICROLITE_CC_BASE_SRCS (less tests
    and what CORE_SKIP names), the kernels of OPS specialised by kernels/cmsis_nn as
    specialize_files.py does, and CMSIS-NN's int8/int16 sources (cmsis_nn.inc)."""
    micro = tflm / "tensorflow/lite/micro"
    core = [p for d in ("", "arena_allocator", "memory_planner", "tflite_bridge")
            for p in sorted((micro / d).glob("*.cc"))
            if not p.name.endswith("_test.cc") and p.name not in CORE_SKIP]
    lite = tflm / "tensorflow"
    core += sorted(p for p in lite.rglob("*.c*") if p.suffix in (".c", ".cc")
                   and "micro" not in p.relative_to(lite).parts
                   and "experimental" not in p.relative_to(lite).parts
                   and not p.name.endswith("_test.cc") and p.name != "array.cc")
    kdir = micro / "kernels"
    stems = sorted({s for _, s in OPS.values()} | {s + "_common" for _, s in OPS.values()}
                   | {"kernel_util"})
    kernels = []
    for s in stems:
        opt = kdir / "cmsis_nn" / f"{s}.cc"
        ref = kdir / f"{s}.cc"
        if opt.is_file():
            kernels.append(opt)
        elif ref.is_file():
            kernels.append(ref)
    # (the LSTM, SVDF and transpose functions serve kernels outside OPS: not compiled)
    nn = sorted(p for p in (cmsis_nn / "Source").rglob("*.c")
                if not p.name.endswith(("_f16.c", "_f32.c")) and p.name != "arm_nntables_flt.c"
                and p.parent.name not in ("LSTMFunctions", "SVDFunctions", "TransposeFunctions"))
    return {"core": core, "kernel": kernels, "third_party_kernel": nn}


def predict_text(base: int, ops: dict[str, tuple[int, int]]) -> int:
    """Text of a build with these ops from (alone, marginal) per op: alone = the op's build minus
    BASE (its kernel + every helper it pulls in), marginal = all ops minus all ops but this one
    (its own code only). The helpers ops share are counted once, as the largest alone - marginal
    among the ops: base + sum(marginal) + max(alone - marginal)."""
    if not ops:
        return base
    return base + sum(m for _, m in ops.values()) + max(a - m for a, m in ops.values())


def kernel_source(tflm: Path, op: str) -> str:
    stem = OPS[op][1]
    return "cmsis_nn" if (tflm / "tensorflow/lite/micro/kernels/cmsis_nn" / f"{stem}.cc").is_file() \
        else "reference"


def write_if_changed(path: Path, text: str) -> None:
    """(so that a cached object of the same source is reused)"""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


class Build:
    def __init__(self, core: str, args):
        self.core = core
        self.arch, self.cpu, self.cpu_define = CORES[core]
        self.tflm, self.nn = args.tflm, args.cmsis_nn
        self.dir = args.build_dir / core
        self.jobs = args.jobs
        self.includes = [f"-I{args.tflm}", f"-I{args.flatbuffers / 'include'}",
                         f"-I{args.gemmlowp}", f"-I{args.ruy}", f"-I{args.cmsis_nn}",
                         f"-I{args.cmsis_nn / 'Include'}"]
        self.flags = COMMON + self.cpu + [f"-DCPU_{self.cpu_define}=1"]

    def cflags(self, src: Path, opt: str) -> list[str]:
        if src.suffix == ".c":
            return ["arm-none-eabi-gcc"] + C_ONLY + self.flags + [opt] + self.includes
        return ["arm-none-eabi-g++"] + CXX_ONLY + self.flags + [opt] + self.includes

    def compile(self, src: Path, obj: Path, opt: str) -> Path:
        if obj.is_file() and obj.stat().st_mtime >= src.stat().st_mtime:
            return obj
        obj.parent.mkdir(parents=True, exist_ok=True)
        run(self.cflags(src, opt) + ["-c", str(src), "-o", str(obj)])
        return obj

    def library(self, srcs: dict[str, list[Path]]) -> Path:
        lib = self.dir / "libtensorflow-microlite.a"
        opts = {"core": CORE_OPT, "kernel": KERNEL_OPT, "third_party_kernel": THIRD_PARTY_KERNEL_OPT}
        jobs = []
        for kind, files in srcs.items():
            root = self.nn if kind == "third_party_kernel" else self.tflm
            for f in files:
                obj = self.dir / "obj" / kind / f.relative_to(root).with_suffix(".o")
                jobs.append((f, obj, opts[kind]))
        with ThreadPoolExecutor(self.jobs) as ex:
            objs = list(ex.map(lambda j: self.compile(*j), jobs))
        if lib.is_file():
            lib.unlink()
        run(["arm-none-eabi-ar", "-rcs", str(lib)] + [str(o) for o in objs])
        return lib

    def app(self, name: str, ops: list[str], lib: Path | None, empty: bool = False) -> dict:
        d = self.dir / "apps"
        d.mkdir(parents=True, exist_ok=True)
        main = d / f"{name}.cc"
        if empty:
            text = EMPTY_CC
        else:
            text = (MAIN_CC.replace("DECLS", "".join(f"void micronas_add_{o}(void*);\n" for o in ops))
                    .replace("LIST", ", ".join(f"micronas_add_{o}" for o in ops) or "nullptr")
                    .replace("COUNT", str(len(ops))))
        write_if_changed(main, text)
        objs = [self.compile(main, d / f"{name}.o", APP_OPT)]
        if not empty:
            for unit, src in [("model", MODEL_CC), ("runner", RUNNER_CC)] + [
                    (f"add_{o}", ADD_CC.replace("OP", o).replace("METHOD", OPS[o][0])) for o in ops]:
                write_if_changed(d / f"{unit}.cc", src)
                objs.append(self.compile(d / f"{unit}.cc", d / f"{unit}.o", APP_OPT))
        elf = d / f"{name}.elf"
        cmd = ["arm-none-eabi-g++"] + self.cpu + ["-mthumb"] + LDFLAGS + [str(o) for o in objs]
        cmd += ([str(lib)] if lib else []) + LIBS + ["-Wl,-Map=" + str(d / f"{name}.map"),
                                                     "-o", str(elf)]
        run(cmd)
        return self.sizes(elf)

    def sizes(self, elf: Path) -> dict:
        """Berkeley sizes (text = code + read-only data, data = initialised RAM copied from
        flash, bss = zeroed RAM) less the model array and the arena."""
        line = run(["arm-none-eabi-size", "-B", str(elf)]).splitlines()[1].split()
        text, data, bss = int(line[0]), int(line[1]), int(line[2])
        for sym in run(["arm-none-eabi-nm", "-S", str(elf)]).splitlines():
            parts = sym.split()
            if len(parts) == 4 and parts[3] in ("g_model", "g_arena", "g_arena_size"):
                size = int(parts[1], 16)
                if parts[2] in "bB":
                    bss -= size
                elif parts[2] in "dD":
                    data -= size
                else:
                    text -= size
        return {"text_bytes": text, "data_bytes": data, "bss_bytes": bss}


def markdown_table(path: Path) -> str:
    """Text (code + read-only data) in KB, one column per core: BASE, and per op its size alone
    (its build minus BASE) / its marginal size (all ops minus all but this one)."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    cores = [c for c in CORES if any(r["core"] == c for r in rows)]
    by = {(r["core"], r["op"]): r for r in rows}
    ops = ["BASE"] + [o for o in OPS if (cores[0], o) in by]

    def cell(r: dict) -> str:
        alone = f"{int(r['text_bytes']) / 1024:.1f}"
        return alone if not r.get("marginal_text_bytes") else \
            f"{alone} / {int(r['marginal_text_bytes']) / 1024:.1f}"

    lines = ["| op | kernels | " + " | ".join(cores) + " |", "|---|---|" + "---:|" * len(cores)]
    for op in ops:
        src = by[cores[0], op]["kernel_source"] or "-"
        lines.append(f"| {op} | {src} | " + " | ".join(cell(by[c, op]) for c in cores) + " |")
    return "\n".join(lines)


def compiler_version() -> str:
    return run(["arm-none-eabi-gcc", "--version"]).splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tflm", type=Path, help="tflite-micro checkout")
    ap.add_argument("--cmsis-nn", type=Path, help="CMSIS-NN checkout")
    ap.add_argument("--flatbuffers", type=Path, help="flatbuffers v25.9.23 checkout")
    ap.add_argument("--gemmlowp", type=Path, help="gemmlowp checkout (headers)")
    ap.add_argument("--ruy", type=Path, help="ruy checkout (headers)")
    ap.add_argument("--cores", nargs="+", default=list(CORES), choices=list(CORES))
    ap.add_argument("--ops", nargs="+", default=list(OPS), choices=list(OPS))
    ap.add_argument("--build-dir", type=Path, default=None,
                    help="object cache (default: a temporary folder, removed afterwards)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel compiles (default 1)")
    ap.add_argument("--out", type=Path, default=OUT_CSV)
    ap.add_argument("--base-only", action="store_true",
                    help="build and print the BASE sizes only (no files written)")
    ap.add_argument("--table", action="store_true",
                    help="print the committed CSV as a Markdown table (KB per core) and exit")
    ap.add_argument("--write-runtime", action="store_true",
                    help="write the committed CSV's sizes into the tflm-cmsis-nn runtime's "
                         "code.toml (the flash model's runtime code) and exit")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown_table(args.out))
        return 0
    if args.write_runtime:
        print(write_runtime(args.out))
        return 0
    missing = [n for n in ("tflm", "cmsis_nn", "flatbuffers", "gemmlowp", "ruy")
               if getattr(args, n) is None]
    if missing:
        ap.error("these checkouts are needed: " + ", ".join("--" + n.replace("_", "-") for n in missing))
    for name in ("tflm", "cmsis_nn", "flatbuffers", "gemmlowp", "ruy"):
        setattr(args, name, getattr(args, name).resolve())
    ensure_flatbuffers_patch(args.flatbuffers, args.tflm)
    tmp = None
    if args.build_dir is None:
        tmp = tempfile.mkdtemp(prefix="tflm_size_")
        args.build_dir = Path(tmp)
    args.build_dir = args.build_dir.resolve()
    try:
        return _measure(args)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


RUNTIME_CODE = REPO / "micronas" / "hardware" / "runtimes" / "tflm-cmsis-nn" / "code.toml"


def write_runtime(csv_path: Path, out: Path = RUNTIME_CODE) -> Path:
    """code.toml of the tflm-cmsis-nn runtime from the measured sizes: per core, the base
    (text + data of the empty-resolver app) and each op's [alone, marginal] text bytes."""
    import tomli_w

    meta = json.loads(csv_path.with_suffix(".json").read_text())
    by_core: dict[str, dict] = {}
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            c = by_core.setdefault(r["core"], {"ops": {}})
            if r["op"] == "BASE":
                c["base"] = int(r["text_bytes"]) + int(r["data_bytes"])
            else:
                c["ops"][r["op"]] = [int(r["text_bytes"]), int(r["marginal_text_bytes"])]
    for core, c in by_core.items():
        c["source"] = (f"measured builds: TFLM {meta['tflm']} + CMSIS-NN {meta['cmsis_nn']}, "
                       f"{meta['compiler'].split(' (')[0]} {meta['cores'][core]['tflm_target_arch']}"
                       ", TFLM's default build type; benchmarks/tflm_code_size.py")
    head = ("# Code of TFLite Micro + CMSIS-NN per core: the base (an app with an empty op "
            "resolver) and,\n# per TFLite operator, [alone, marginal] bytes (what it adds to the "
            "base alone, and to a build\n# with every other op). Written by python "
            "benchmarks/tflm_code_size.py --write-runtime from\n# benchmarks/results/"
            "tflm_code_size.csv; do not edit by hand.\n")
    out.write_text(head + tomli_w.dumps({k: by_core[k] for k in sorted(by_core)}))
    return out


def measure_core(core: str, args, ops: list[str], srcs=None, base_only: bool = False) -> dict:
    """{"BASE": sizes, "EMPTY_MAIN": sizes, op: sizes of the app with that op, "COMBINED": ...}"""
    b = Build(core, args)
    lib = b.library(srcs or sources(args.tflm, args.cmsis_nn))
    out = {"BASE": b.app("base", [], lib), "EMPTY_MAIN": b.app("empty", [], None, empty=True)}
    if base_only:
        return out
    for op in ops:
        out[op] = b.app(f"op_{op.lower()}", [op], lib)
    out["COMBINED"] = b.app("combined", COMBINED, lib)
    out["ALL"] = b.app("all", ops, lib)
    for op in ops:   # leave one out: what the op adds on top of all the others
        out["ALL-" + op] = b.app(f"all_but_{op.lower()}", [o for o in ops if o != op], lib)
    return out


def _measure(args) -> int:
    srcs = sources(args.tflm, args.cmsis_nn)
    rows, checks, empty = [], {}, {}
    for core in args.cores:
        print(f"[{core}] building {sum(map(len, srcs.values()))} sources", file=sys.stderr, flush=True)
        m = measure_core(core, args, args.ops, srcs, args.base_only)
        base = m["BASE"]
        empty[core] = m["EMPTY_MAIN"]
        if args.base_only:
            print(core, base)
            continue
        rows.append({"core": core, "op": "BASE", **base, "kernel_source": "",
                     "marginal_text_bytes": ""})
        marg = {op: m["ALL"]["text_bytes"] - m["ALL-" + op]["text_bytes"] for op in args.ops}
        for op in args.ops:
            inc = {k: m[op][k] - base[k] for k in base}
            rows.append({"core": core, "op": op, **inc, "kernel_source": kernel_source(args.tflm, op),
                         "marginal_text_bytes": marg[op]})
        comb = m["COMBINED"]
        if all(o in args.ops for o in COMBINED):
            inc = {o: m[o]["text_bytes"] - base["text_bytes"] for o in COMBINED}
            pred = base["text_bytes"] + sum(inc.values())
            pred2 = predict_text(base["text_bytes"], {o: (inc[o], marg[o]) for o in COMBINED})
            real = comb["text_bytes"]
            checks[core] = {"ops": COMBINED, "combined_text_bytes": real,
                            "predicted_text_bytes": pred,
                            "error": round((pred - real) / real, 4),
                            "ops_error": round((pred - real) / (real - base["text_bytes"]), 4),
                            "predicted_shared_text_bytes": pred2,
                            "shared_error": round((pred2 - real) / real, 4),
                            "all_ops_text_bytes": m["ALL"]["text_bytes"],
                            "all_ops_predicted_shared": predict_text(
                                base["text_bytes"], {o: (m[o]["text_bytes"] - base["text_bytes"],
                                                         marg[o]) for o in args.ops})}
        print(f"[{core}] base {base} combined {comb} check {checks.get(core)}", file=sys.stderr)
    if args.base_only:
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        w = csv.DictWriter(f, ["core", "op", "text_bytes", "data_bytes", "bss_bytes", "kernel_source",
                               "marginal_text_bytes"])
        w.writeheader()
        w.writerows(rows)
    meta = {
        "what": "TFLM + CMSIS-NN code size: BASE = minimal app with an empty resolver "
                "(MicroInterpreter over a model array, AllocateTensors, Invoke; crt0 and the "
                "newlib-nano parts it pulls in included, model array and arena excluded); each op row "
                "= the app with that one op minus BASE",
        "tflm": git_version(args.tflm), "cmsis_nn": git_version(args.cmsis_nn),
        "flatbuffers": git_version(args.flatbuffers), "compiler": compiler_version(),
        "build": "TARGET=cortex_m_generic OPTIMIZED_KERNEL_DIR=cmsis_nn BUILD_TYPE=default (no NDEBUG, "
                 "error strings kept)",
        "cores": {c: {"tflm_target_arch": CORES[c][0], "cpu_flags": CORES[c][1]} for c in args.cores},
        "common_flags": COMMON, "cxx_flags": CXX_ONLY, "c_flags": C_ONLY,
        "core_opt": CORE_OPT, "kernel_opt": KERNEL_OPT, "cmsis_nn_opt": THIRD_PARTY_KERNEL_OPT,
        "app_opt": APP_OPT, "ldflags": LDFLAGS + LIBS,
        "empty_main": empty,
        "combined_check": checks, "combined_max_error": COMBINED_MAX_ERROR,
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
