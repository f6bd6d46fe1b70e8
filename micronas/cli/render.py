"""Text output of the CLI: tables, one-line summaries, progress bars (on stderr)."""

from __future__ import annotations

import functools
import json
import sys
from collections import defaultdict
from typing import Any


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


# Off a terminal (piped, logged) the bar first shows after PIPED_DELAY_S and then prints a line
# at most every PIPED_INTERVAL_S.
PIPED_DELAY_S = 2.0
PIPED_INTERVAL_S = 5.0


def progress(total: int | None, desc: str, quiet: bool = False, unit: str = "eval"):
    """A progress bar on stderr, none with ``quiet``. On a terminal it is live and cleared
    at the end; otherwise (piped, logged) it prints a line every 5 s and a last one, so a
    long run shows it is alive. It appears only after 1 s (2 s off a terminal): quick
    commands and errors stay one clean line."""
    tty = sys.stderr.isatty()
    return _bar_class()(total=total, desc=desc, unit=unit, file=sys.stderr, disable=quiet,
                        leave=not tty, mininterval=0.1 if tty else PIPED_INTERVAL_S,
                        ascii=not tty, dynamic_ncols=tty, delay=1.0 if tty else PIPED_DELAY_S)


@functools.cache
def _bar_class() -> type:
    from tqdm import tqdm  # imported on first use: it is not needed by quick commands

    class Bar(tqdm):
        def close(self) -> None:
            # tqdm prints a kept bar's last line only if it printed one before, so a run
            # that outlived the delay but ended before the first interval printed nothing.
            if (not self.disable and self.leave and hasattr(self, "last_print_t")
                    and self.last_print_t < self.start_t + self.delay <= self._time()):
                self.last_print_t = self._time()
            super().close()

    return Bar


def arch(info: dict[str, Any]) -> None:
    if info.get("index") is not None:
        print(f"index      {info['index']}")
    print(f"string     {info['arch']}")
    if "op_counts" in info:
        counts = ", ".join(f"{op} {n}" for op, n in info["op_counts"].items() if n)
        print(f"ops        {counts}")
    if "live_edges" in info:
        print(f"live edges {sum(info['live_edges'])} of {len(info['live_edges'])}")
    print(f"iso key    {info['iso_key']}")
    if "stage_ops" in info:  # the nbmacro space
        for i, ops in enumerate(info["stage_ops"], 1):
            print(f"stage {i}    {' '.join(ops)}")
        print(f"flops      {info['flops']:,} (MACs)   params {info['params']:,}")
    if "stages" in info:  # the mcu space
        print(f"input      {info['input']}   width {info['width']:g}   stem {info['stem_channels']} "
              f"channels   head {info['head'] or 'none'}")
        for i, st in enumerate(info["stages"], 1):
            print(f"stage {i}    {st['channels']:>4} channels, stride {st['stride'][0]}x"
                  f"{st['stride'][1]}: {' '.join(st['blocks'])}")


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def listing(res: Any) -> None:
    """``micronas list KIND``: one line per named thing."""
    if res.kind == "devices":
        _table(["name", "core", "clock", "SRAM", "flash", "runtime", "source"],
               [[str(r["name"]), str(r["core"]), f"{float(r['clock_mhz']):g} MHz",
                 f"{int(r['sram_bytes']) // 1024:,} KB", f"{int(r['flash_bytes']) // 1024:,} KB",
                 str(r["runtime"]), str(r["source"])] for r in res.rows])
        grounding: dict[str, dict[str, str]] = {}
        for r in res.rows:
            for item in str(r["runtimes"]).split(", "):
                name, _, how = item.partition(" (")
                if how.rstrip(")") != "calibrated":
                    grounding.setdefault(str(r["core"]), {})[name] = how.rstrip(")")
        names = sorted({n for g in grounding.values() for n in g})
        print("\nlatency constants of each runtime on each core (emulated: kernels run in the "
              "emulator; fitted: fitted to\npublished board medians; extrapolated: scaled from "
              "another runtime; micronas list runtimes says what each is):")
        _table(["core", *names], [[core, *(g.get(n, "-") for n in names)]
                                  for core, g in sorted(grounding.items())])
    elif res.kind == "runtimes":
        _table(["name", "what", "in the bundle"],
               [[str(r["name"]), str(r["summary"]), str(r["ships"])] for r in res.rows])
    elif res.kind == "tasks":
        _table(["name", "input", "classes", "what"],
               [[str(r["name"]), str(r["input"]), str(r["classes"]), str(r["summary"])]
                for r in res.rows])
    else:
        _table(["name", "what", "source"],
               [[str(r["name"]), " ".join(str(r["summary"]).split()), str(r["source"])]
                for r in res.rows])


def cost(res: Any, layers: bool) -> None:
    r = res.report
    print(f"arch       {res.arch}" + (f"  (index {res.index})" if res.index is not None else ""))
    print(f"device     {r.device} ({r.device_origin})   task {res.task}")
    print(f"MACs       {r.macs:,}   params {r.params:,}")
    if "nb201_flops" in res.info:
        print(f"NB201      {res.info['nb201_flops']:.4f} MFLOPs, {res.info['nb201_params']:.6f} "
              "M params (as trained, every edge)")
    print(f"runtime    {r.runtime_label}  (latency constants: {r.runtime_source})")
    print(f"latency    {r.latency_ms:,.2f} ms on {r.runtime}  ({r.cycles:,.0f} cycles)")
    print(f"peak SRAM  {kb(r.peak_sram_bytes)} of {kb(r.sram_limit_bytes)}  (arena "
          f"{kb(r.arena_bytes)}, scratch {kb(r.scratch_bytes)}, persistent "
          f"{kb(r.persistent_bytes)}, reserved {kb(r.reserved_bytes)})")
    print(f"flash      {kb(r.flash_bytes)} of {kb(r.flash_limit_bytes)}  (runtime code "
          f"{kb(r.runtime_code_bytes)})")
    print(f"fits       {'yes' if r.fits else 'NO'}")
    if layers:
        print(f"\n{'layer':<34} {'op':<17} {'out shape':<13} {'MACs':>12} {'ms':>9}")
        for lc in r.layers:
            shape = "x".join(map(str, lc.output_shape))
            print(f"{lc.name[:34]:<34} {lc.op:<17} {shape:<13} {lc.macs:>12,} "
                  f"{lc.latency_ms:>9.3f}")
        return
    by_op: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for lc in r.layers:
        by_op[lc.op][0] += 1
        by_op[lc.op][1] += lc.macs
        by_op[lc.op][2] += lc.latency_ms
    print(f"\n{'op':<17} {'layers':>6} {'MACs':>13} {'ms':>10} {'share':>6}")
    for op, (n, macs, ms) in sorted(by_op.items(), key=lambda kv: -kv[1][2]):
        print(f"{op:<17} {n:>6} {macs:>13,} {ms:>10.2f} {ms / r.latency_ms:>6.1%}")
    print("(--layers for the per-layer table, --json for everything)")


def score(res: Any) -> None:
    idx = f"  (index {res.index})" if res.index is not None else ""
    print(f"arch  {res.arch}{idx}   task {res.task}   seed {res.seed}")
    for n, sc in res.scores.items():
        if sc is None:
            print(f"{n:<15} (a rank over a set of architectures; see bench correlate)")
            continue
        flags = f"  [{', '.join(sc.flags)}]" if sc.flags else ""
        src = "cache" if sc.cached else f"{sc.seconds:.2f} s"
        print(f"{n:<15} {sc.value:>16.6g}   {src}{flags}")


def correlate(res: dict[str, Any]) -> None:
    where = res.get("executor") or f"process:{res['workers']}"
    classes = f" ({res['classes']:,} isomorphism classes)" if "classes" in res else ""
    print(f"{res.get('space', 'nb201')}: {res['n']:,} architectures{classes}, {res['dataset']} "
          f"test accuracy, seed {res['seed']}, {res['wall_seconds']:.1f} s wall on {where}")
    print(f"{'indicator':<15} {'spearman':>9} {'kendall':>8} {'ndcg@10':>8} {'ndcg@100':>9} "
          f"{'s/arch':>8} {'flagged':>8}")

    def f(v: Any) -> str:
        return "n/a" if v is None or v != v else f"{v:.3f}"

    for name, r in res["indicators"].items():
        print(f"{name:<15} {f(r['spearman']):>9} {f(r['kendall']):>8} {f(r.get('ndcg@10')):>8} "
              f"{f(r.get('ndcg@100')):>9} {r['seconds_per_arch']:>8.3f} {r['flagged']:>8}")
    if res.get("budget"):
        from micronas.bench.budget import text

        print()
        print(text(res["budget"]))


def search(res: Any, device: str, out: Any) -> None:
    from micronas.search.report import indicator_text
    from micronas.tasks import is_1d

    print(f"architecture  {res.arch}")
    if res.index is not None:
        print(f"index         {res.index}")
    c, h, w = res.input_shape
    res_note = ""
    if res.network_input and tuple(res.network_input) != tuple(res.input_shape):
        nc, nh, nw = res.network_input
        res_note = f"; the network resizes it to {nh}x{nw}x{nc} itself"
    shape = (f"{h}x{c}: {h} steps x {c} channels" if is_1d((c, h, w)) else f"{h}x{w}x{c}")
    print(f"task          {res.task} ({shape}, {res.classes} classes){res_note}")
    note = getattr(res, "resolution", {}).get("note")
    if note:
        print(f"resolution    {note.removeprefix('resolution ')}")
    print(f"indicators    {indicator_text(res.indicators)}")
    print(f"device        {device} ({res.device_origin}): latency {res.latency_ms:.2f} ms "
          f"({res.runtime}), peak SRAM "
          f"{kb(res.peak_sram_bytes)}, flash {kb(res.flash_bytes)}, "
          f"fits {'yes' if res.fits else 'NO'}")
    if res.frontend:
        f, fc = res.frontend, res.frontend["cost"]
        print(f"front end     {f['description']}: latency {fc['latency_ms']:.2f} ms, SRAM "
              f"{kb(fc['sram_bytes'])}, flash {kb(fc['flash_bytes'])}"
              + (" (extrapolated)" if fc["extrapolated"] else ""))
        print(f"with front end latency {f['total_latency_ms']:.2f} ms, peak SRAM "
              f"{kb(f['total_peak_sram_bytes'])}, flash {kb(f['total_flash_bytes'])} (what the "
              "budgets are checked on)")
    print(f"reserved      {kb(res.reserve_sram_bytes)} SRAM and {kb(res.reserve_flash_bytes)} flash "
          "for the application (--reserve-sram-kb, --reserve-flash-kb)")
    print(f"size          {res.macs:,} MACs, {res.params:,} params")
    pn = (getattr(res, "parsimony", None) or {}).get("note")
    if pn:
        print(f"parsimony     {pn}")
    if res.accuracy is not None:
        print(f"accuracy      {res.accuracy:.2f} % ({res.task} test, ground truth); best under "
              f"the same budgets {res.oracle_accuracy:.2f} %")
    print(f"search        {res.config['strategy']['name']}, {res.evaluations} indicator evaluations, "
          f"{res.search_seconds:.1f} s, seed {res.seed}")
    if len(res.pareto) > 1:
        print(f"pareto        {len(res.pareto)} evaluated architectures on the latency/indicator "
              f"front, {res.pareto[0]['latency_ms']:.1f} to {res.pareto[-1]['latency_ms']:.1f} ms"
              + ("" if out is not None else " (--out or --json lists them)"))
    if out is not None:
        print(f"wrote         {out}/result.json, report.md, pareto.png, config.json")


def export(r: Any) -> None:
    trained = not r.weights.startswith("seeded")
    print(f"wrote {r.path}  ({r.format}, {r.size_bytes:,} bytes"
          + (")" if trained else f", seed {r.seed})"))
    print(f"weights                   {r.weights}"
          + ("" if trained else "; give --weights CHECKPOINT for a trained network"))
    c = r.checks
    if "float_test_accuracy" in c:
        print(f"float test accuracy       {100 * c['float_test_accuracy']:.2f} % (torch; "
              "'micronas deploy' measures int8 in TFLM)")
    if "tflm_equals_int8_model" in c:
        print(f"TFLM vs numpy int8 model  bit-exact on every tensor: "
              f"{'yes' if c['tflm_equals_int8_model'] else 'NO'}")
        print(f"vs fake-quant PyTorch     layer by layer {100 * c['layerwise_within_1lsb']:.2f} % "
              f"within 1 LSB (max {c['layerwise_max_lsb']}); end to end "
              f"{100 * c['output_within_1lsb']:.1f} % (max {c['output_max_lsb']})")
        print(f"arena                     TFLM {c['tflm_arena_head_bytes']:,} B (+ "
              f"{c['tflm_arena_tail_bytes']:,} B x86 host structures), our planner "
              f"{c['planner_arena_bytes']:,} B")
    elif "onnxruntime_max_rel_error" in c:
        print(f"onnxruntime vs PyTorch    max relative error {c['onnxruntime_max_rel_error']:.2e}")


def measure(r: Any, d: dict[str, Any], layers: bool) -> None:
    print(f"arch       {r.arch}")
    print(f"device     {r.device} ({r.core} @ {r.clock_mhz:g} MHz), emulated ({d['method']}"
          + (f", every tensor bit-exact: {'yes' if d['bit_exact'] else 'NO'}"
             if d["bit_exact"] is not None else "") + ")")
    if layers:
        print(f"{'layer':<34} {'instructions':>13} {'cycles':>14} {'ms':>9}")
        for lay in d["layers"]:
            print(f"{lay['name'][:34]:<34} {lay['instructions']:>13,} {lay['cycles']:>14,.0f} "
                  f"{lay['latency_ms']:>9.3f}")
    print(f"total      {d['instructions']:,} instructions, {d['cycles']:,.0f} cycles, "
          f"{d['latency_ms']:,.2f} ms  (cost model, micronas-c: {d['predicted_latency_ms']:,.2f} ms)")


def calibrate(cal: Any, path: Any) -> None:
    print(cal.summary())
    for cls, st in cal.per_class.items():
        print("  " + cls.ljust(16) + "  ".join(f"{k} {v:.3g}" for k, v in st.items()))
    print(f"wrote {path}  (use it with --device {path})")


def train(res: Any) -> None:
    h = res.history[-1] if res.history else {}
    print(f"arch       {res.arch}  ({res.space})")
    print(f"task       {res.task.describe()}, network input "
          f"{'x'.join(map(str, res.network_input[1:]))}x{res.network_input[0]}")
    resumed = f", resumed after epoch {res.resumed_from}" if res.resumed_from else ""
    print(f"trained    {res.epochs} epochs, seed {res.seed}, {res.train_seconds:.1f} s{resumed}")
    if res.plan is not None and res.plan.timed_steps:
        est = res.plan.estimated_seconds
        cut = (f"; --max-train-minutes {res.plan.max_minutes:g} cut {res.plan.epochs_before_cap} "
               f"epochs to {res.plan.epochs}" if res.plan.epochs_before_cap else "")
        print(f"planned    about {est:.0f} s ({1e3 * res.plan.seconds_per_step:.0f} ms per step, "
              f"timed over {res.plan.timed_steps} steps){cut}")
    if h:
        print(f"train      loss {h['train_loss']:.4f}, accuracy {100 * h['train_accuracy']:.2f} %")
    print(f"test       float accuracy {100 * res.test_accuracy:.2f} %")
    print(f"checkpoint {res.checkpoint}")


def deploy(res: Any) -> None:
    b = res.info
    drop = 100 * (b["float_test_accuracy"] - b["int8_tflm_test_accuracy"])
    print(f"arch       {b['arch']}  ({b['space']})")
    print(f"accuracy   float {100 * b['float_test_accuracy']:.2f} %, int8 in TFLM "
          f"{100 * b['int8_tflm_test_accuracy']:.2f} % ({b['int8_tflm_test_samples']:,} test "
          f"samples; drop {drop:.2f} points)")
    print(f"device     {b['device']}: latency {b['latency_ms']:.2f} ms ({b['latency_runtime']}), "
          f"peak SRAM {kb(b['peak_sram_bytes'])}, flash {kb(b['flash_bytes'])}")
    fe = b.get("frontend")
    if fe:
        fc = fe["cost"]
        print(f"front end  {fe['description']}: latency {fc['latency_ms']:.2f} ms, SRAM "
              f"{kb(fc['sram_bytes'])}, flash {kb(fc['flash_bytes'])}; with the network "
              f"{fe['total_latency_ms']:.2f} ms, {kb(fe['total_peak_sram_bytes'])} SRAM, "
              f"{kb(fe['total_flash_bytes'])} flash (mn_frontend.c)")
    print(f"TFLM arena {kb(b['tflm_arena_bytes_planned'])} (MN_TFLM_ARENA_BYTES in "
          "model_config.h)")
    comp = b.get("compiled")
    if comp:
        print(f"standalone {comp['core']}: flash {kb(comp['standalone_flash_bytes'])}, SRAM "
              f"{kb(comp['standalone_sram_bytes'])} (arm-none-eabi-gcc -O2)")
    else:
        print("standalone not compiled (--no-compile)")
    emu = b.get("emulator")
    if emu:
        print(f"emulated   standalone C equals TFLM on {emu['samples']} test samples: "
              f"{'yes' if emu['standalone_equals_tflm'] else 'NO'}")
    top = sorted({f.split("/", 1)[0] + ("/" if "/" in f else "") for f in res.files})
    print(f"bundle     {res.out}: {', '.join(top)} (bundle.json lists all {len(res.files)} files)")
    fw = res.info.get("firmware")
    if isinstance(fw, dict):
        print(f"firmware   cd {res.out} && {fw['cmake']}  (test sample {fw['sample_index']}, "
              f"label {fw['sample_label']}; TFLM's class {fw['sample_tflm_class']})")
