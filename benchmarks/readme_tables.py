"""Render a benchmark run's JSON as the markdown tables of the README's "On this machine".

    python benchmarks/readme_tables.py benchmarks/results/run-<time>.json > tables.md

Every number in the tables comes from the JSON as recorded; nothing is typed by hand, so
the README can be regenerated from any run and checked against it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

try:
    from microgradnet.activation_table import NAMES as ACTIVATION_NAMES
except ImportError:  # run from a source checkout built in place, without `pip install .`
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    from microgradnet.activation_table import NAMES as ACTIVATION_NAMES

# Columns of the peers tables: (backend key, label). Orders given: every framework shuffles
# with numpy's per-epoch permutations; "shuffling inside": JAX draws its own orders in the
# scan, as a JAX user would write it (other orders, so another final loss).
PEER_COLUMNS = [
    ("cython", "microgradnet"), ("eager", "microgradnet eager"), ("numpy", "numpy by hand"),
    ("torch", "PyTorch eager"), ("jax-jit", "JAX jit step"),
    ("jax-scan", "JAX lax.scan, orders given"), ("jax-scan-shuf", "JAX lax.scan, shuffling inside"),
]
PEER_RATIOS = [("torch", "PyTorch"), ("jax-jit", "JAX jit"), ("jax-scan", "JAX scan"),
               ("jax-scan-shuf", "JAX scan, shuffling")]
# Peers that shuffle with other orders than numpy's permutations: their final loss is not
# expected to equal ours to the bit.
OTHER_ORDERS = {"jax-scan-shuf"}
ACT_COLUMNS = [("cython", "microgradnet"), ("numpy", "microgradnet, numpy backend"),
               ("numpy by hand", "numpy by hand"), ("torch", "PyTorch eager"), ("jax", "JAX jit")]
DERIV_COLUMNS = [
    (("kernel from y", "cython"), "kernel from y"), (("kernel from x", "cython"), "kernel from x"),
    (("kernel from y", "numpy"), "from y (numpy ref)"),
    (("kernel from x", "numpy"), "from x (numpy ref)"),
    (("Tensor op (autograd)", "cython"), "Tensor op (autograd)"),
    (("composed ops (autograd)", "cython"), "composed ops (autograd)"),
    (("numpy by hand", "numpy by hand"), "numpy by hand"),
]
# The activations in the order of the table (microgradnet/activation_table.py).
ACTIVATION_ORDER = list(ACTIVATION_NAMES)


def _table(head: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table; the first `left` columns left-aligned, the rest right-aligned."""
    align = ["---"] * left + ["---:"] * (len(head) - left)
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    """`digits` significant digits (whole numbers from 10**digits up, with separators)."""
    if value is None:
        return ""
    if value >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    decimals = digits - 1 - (len(str(int(value))) - 1 if value >= 1 else 0)
    if value < 1:
        return f"{value:.{digits}g}"
    return f"{value:.{decimals}f}"


def _ratio(value: float | None) -> str:
    """Two decimals; two significant digits below 0.1 (0.0042, not 0.00)."""
    if value is None:
        return ""
    return f"{value:.2g}" if value < 0.1 else f"{value:.2f}"


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def _steps(value: int | None) -> str:
    return "not reached" if value is None else f"{value:,}"


def machine_line(info: dict) -> str:
    """Where and how the run was made: date, command, CPU, load, versions."""
    load = info.get("load_average")
    parts = [f"{info['date'][:10]}, `{info.get('command', 'python benchmarks/run.py')}`",
             f"{info.get('cpu_count', '?')}-core {info.get('cpu', info.get('processor', '?'))}"]
    if load:
        parts.append("load average at the end " + " / ".join(f"{x:.2f}" for x in load))
    versions = [f"Python {info['python']}", f"numpy {info['numpy']}"]
    versions += [f"PyTorch {info['torch']}"] if "torch" in info else []
    versions += [f"JAX {info['jax']}"] if "jax" in info else []
    blas = info.get("blas") or []
    versions += [f"{b['internal_api']} {b['version']}" for b in blas[:1]
                 if b.get("internal_api") and b.get("version")]
    return ", ".join(parts) + "; " + ", ".join(versions) + "."


def peers_tables(records: list[dict]) -> str:
    """Microseconds per step in each framework with ours / peer, then the final losses."""
    rows: dict[str, dict] = {}
    for r in records:
        rows.setdefault(r["name"], {})[r["backend"]] = r
    cols = [(k, label) for k, label in PEER_COLUMNS if any(k in v for v in rows.values())]
    ratios = [(k, label) for k, label in PEER_RATIOS if any(k in v for v in rows.values())]
    head = ["workload", "steps"] + [label for _, label in cols]
    head += [f"ours / {label}" for _, label in ratios]
    body = []
    for name, v in rows.items():
        ours = v["cython"]["us_per_step"]
        row = [name, f"{v['cython']['steps']:,}"]
        row += [_num(v[k]["us_per_step"]) if k in v else "" for k, _ in cols]
        row += [_ratio(ours / v[k]["us_per_step"]) if k in v else "" for k, _ in ratios]
        body.append(row)
    times = _table(head, body)

    head = ["workload", "target", "steps to target"] + [label for _, label in cols]
    head += ["max rel. diff. to ours (orders given)"]
    body = []
    for name, v in rows.items():
        ours = v["cython"]["final_loss"]
        rel = max(abs(v[k]["final_loss"] - ours) / max(abs(ours), 1e-12)
                  for k, _ in cols if k in v and k not in OTHER_ORDERS)
        same = [v[k]["steps_to_target"] for k, _ in cols if k in v and k not in OTHER_ORDERS]
        steps = (_steps(same[0]) if len(set(same)) == 1
                 else " / ".join(_steps(s) for s in same))
        row = [name, v["cython"]["target"], steps]
        row += [f"{v[k]['final_loss']:.4e}" if k in v else "" for k, _ in cols]
        row.append(f"{rel:.1e}")
        body.append(row)
    return times + "\n\n" + _table(head, body, left=2)


def training_tables(records: list[dict]) -> str:
    """Per workload and hidden activation: us per step; steps (seconds) to the target; and
    the same runs on the numpy reference kernels, as a ratio."""
    ours = [r for r in records if r["backend"] == "cython"]
    ref = {r["name"]: r for r in records if r["backend"] == "numpy"}
    families = list(dict.fromkeys(r["workload"] for r in ours))
    acts = [a for a in ACTIVATION_ORDER if any(r["activation"] == a for r in ours)]
    grid = {(r["workload"], r["activation"]): r for r in ours}

    def cell(r: dict | None, text: str) -> str:
        if r is None:
            return ""
        return f"**{text}**" if r["exact"] else text

    def target(family: str) -> str:
        return next(r["target"] for r in ours if r["workload"] == family)

    head = ["workload (target)"] + acts
    per_step = _table(head, [[f"{f} ({target(f)})"]
                             + [cell(grid.get((f, a)), _num(grid[(f, a)]["us_per_step"]))
                                if (f, a) in grid else "" for a in acts] for f in families])

    def to_target(r: dict) -> str:
        if r["steps_to_target"] is None:
            return "not reached"
        return f"{r['steps_to_target']:,} ({_seconds(r['time_to_target_s'])})"

    steps = _table(head, [[f"{f} ({target(f)})"]
                          + [cell(grid.get((f, a)), to_target(grid[(f, a)]))
                             if (f, a) in grid else "" for a in acts] for f in families])
    body = []
    for r in ours:
        if r["name"] in ref:
            p = ref[r["name"]]["us_per_step"]
            body.append([r["name"], _num(r["us_per_step"]), _num(p), f"{p / r['us_per_step']:.1f}"])
    numpy_ref = _table(["run", "cython kernels", "numpy reference kernels",
                        "numpy reference / cython"], body)
    return per_step + "\n\n" + steps + "\n\n" + numpy_ref


def activations_table(records: list[dict]) -> str:
    """Forward+backward through the Tensor API, ns per element, with ours / PyTorch, JAX."""
    rows: dict[str, dict] = {}
    for r in records:
        rows.setdefault(r["activation"], {})[r["backend"]] = r["median_s"] / r["size"] * 1e9
    cols = [(k, label) for k, label in ACT_COLUMNS if any(k in v for v in rows.values())]
    head = ["activation"] + [label for _, label in cols]
    head += ["ours / PyTorch", "ours / JAX", "at or below both"]
    body = []
    for act in [a for a in ACTIVATION_ORDER if a in rows]:
        v = rows[act]
        ratios = [v["cython"] / v[k] if k in v else None for k in ("torch", "jax")]
        known = [q for q in ratios if q is not None]
        verdict = "" if len(known) < 2 else "yes" if max(known) <= 1 else "no"
        body.append([act] + [_num(v.get(k), 2) for k, _ in cols]
                    + [_ratio(q) for q in ratios] + [verdict])
    return _table(head, body)


def derivatives_table(records: list[dict]) -> str:
    """dx from dy (backward only) at the largest size, ns per element, per formulation."""
    size = max(r["size"] for r in records)
    rows: dict[str, dict] = {}
    for r in records:
        if r["phase"] == "backward" and r["size"] == size:
            rows.setdefault(r["activation"], {})[(r["name"], r["backend"])] = r
    head = ["activation"] + [label for _, label in DERIV_COLUMNS] + ["max abs. diff."]
    body = []
    for act in [a for a in ACTIVATION_ORDER if a in rows]:
        v = rows[act]
        body.append([act] + [_num(v[k]["median_s"] / size * 1e9, 2) if k in v else ""
                             for k, _ in DERIV_COLUMNS]
                    + [f"{max(r['max_abs_diff'] for r in v.values()):.1e}"])
    return _table(head, body)


def overhead_line(records: list[dict]) -> str:
    """Per-op cost on (32, 32) tensors beside PyTorch's, as one sentence."""
    torch_t = {r["name"]: r["median_s"] for r in records if r["backend"] == "torch"}
    parts = []
    for r in records:
        if r["framework"] == "microgradnet" and r["name"] in torch_t:
            t = torch_t[r["name"]]
            parts.append(f"{r['name']} {r['median_s'] * 1e6:.2f} µs vs {t * 1e6:.2f} "
                         f"({r['median_s'] / t:.2f})")
    return "; ".join(parts)


def animation_line(records: list[dict]) -> str:
    """mg.viz.animate_predictions' frames per second, per format, as one sentence."""
    return "; ".join(f"{r['format'].upper()} {r['frames_per_s']:.1f} frames/s "
                     f"({r['frames']} frames in {r['median_s']:.2f} s)" for r in records)


def playground_line(records: list[dict]) -> str:
    """The playground's frames per second on the page and its server's steps per second."""
    parts = []
    for r in records:
        if "frames_per_s" in r:
            cpu = r.get("browser_cpu_ms_per_frame")
            parts.append(f"{r['name']}: {r['frames_per_s']:.1f} frames/s ({r['draw_ms']:.1f} ms "
                         f"per draw, {r['frames_received_per_s']:.1f} frames/s received"
                         + ("" if cpu is None else f", browser CPU {cpu:.1f} ms per frame")
                         + ")")
        else:
            parts.append(f"{r['name']}: {r['steps_per_s']:,.0f} steps/s")
    return "; ".join(parts)


def sweep_tables(records: list[dict]) -> str:
    """Issue 14's S1/S2: us per net-step of each engine, whether ours kept the loop of fit's
    bits; then the share of a many-net W1 sweep's time outside fit, as one sentence."""
    kinds = [k for k in ("S1", "S2") if any(r["sweep"] == k for r in records)]
    rows: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["sweep"] in kinds:
            rows.setdefault(r["how"], {})[r["sweep"]] = r
    head = ["how"] + [f"{k}: µs per net-step" for k in kinds] + ["same bits as the loop"]
    body = []
    for how, v in rows.items():
        same = {r["same_bits"] for r in v.values()}
        body.append([how] + [_num(v[k]["us_per_net_step"]) if k in v else "" for k in kinds]
                    + ["-" if same == {None} else "yes" if same == {True} else "no"])
    text = _table(head, body)
    many = [r for r in records if r["sweep"] == "W1 many"]
    if many:
        text += "\n\n" + "; ".join(
            f"{r['name']}: {r['median_s']:.2f} s, {r['outside_share']:.1%} outside fit"
            for r in many) + "."
    return text


def batched_table(records: list[dict]) -> str:
    """fastpath.fit_many against a loop of fit: µs per net-step (setup: µs per net)."""
    by = {(r["name"].replace(" " + r["how"], ""), r["how"]): r["median_s"] for r in records}
    rows = []
    for case in dict.fromkeys(name for name, _ in by):
        loop, many = by.get((case, "loop of fit")), by.get((case, "fit_many"))
        rows.append([case, _num(None if loop is None else loop * 1e6),
                     _num(None if many is None else many * 1e6),
                     _ratio(None if loop is None or many is None else loop / many)])
    return _table(["nets of W3's shape", "loop of fit (µs)", "fit_many (µs)", "ratio"], rows)


def eager_table(records: list[dict]) -> str:
    """The eager section: us per call of each case, by framework, with ours / numpy."""
    names = list(dict.fromkeys(r["name"] for r in records))
    columns = list(dict.fromkeys(r["framework"] for r in records))
    us = {(r["name"], r["framework"]): r["median_s"] * 1e6 for r in records}
    lines = ["| us per call | " + " | ".join(columns) + " | microgradnet / numpy |",
             "| --- |" + " ---: |" * (len(columns) + 1)]
    for name in names:
        numpy = us.get((name, "numpy by hand"), us.get((name, "numpy")))
        ours = us.get((name, "microgradnet"))
        ratio = _ratio(ours / numpy) if ours and numpy else ""
        lines.append(f"| {name} | " + " | ".join(_num(us.get((name, c))) for c in columns)
                     + f" | {ratio} |")
    return "\n".join(lines)


def elementwise_table(records: list[dict]) -> str:
    """The elementwise section: us per call of each kernel and numpy's own op, with the ratio."""
    us: dict[tuple, dict] = {}
    for r in records:
        us.setdefault((r["name"], r["shape"], r["dtype"]), {})[r["backend"]] = r["median_s"] * 1e6
    rows = [[name, shape, dtype, _num(t.get("cython")), _num(t.get("numpy")),
             _ratio(t["cython"] / t["numpy"] if t.get("cython") and t.get("numpy") else None)]
            for (name, shape, dtype), t in us.items()]
    return _table(["kernel", "shape", "dtype", "ours (µs)", "numpy (µs)", "ours / numpy"], rows,
                  left=3)


def render(data: dict) -> str:
    """All tables of a run, each under a short heading naming its section."""
    by_section: dict[str, list[dict]] = {}
    for r in data["results"]:
        by_section.setdefault(r["section"], []).append(r)
    out = [machine_line(data["machine"])]
    if "peers" in by_section:
        peers = by_section["peers"]
        busy = {}
        for r in peers:
            busy.setdefault(r["backend"], []).append(r["cpu_per_wall"])
        out.append("<!-- peers -->\n" + peers_tables(peers) + "\n\nCores kept busy (CPU / wall "
                   "time, median over workloads): " + ", ".join(
                       f"{dict(PEER_COLUMNS).get(k, k)} {statistics.median(v):.2f}"
                       for k, v in busy.items()) + ".")
    for name, table in (("training", training_tables), ("activations", activations_table),
                        ("derivatives", derivatives_table), ("overhead", overhead_line),
                        ("eager", eager_table), ("animation", animation_line),
                        ("playground", playground_line), ("sweep", sweep_tables),
                        ("batched", batched_table), ("elementwise", elementwise_table)):
        if name in by_section:
            out.append(f"<!-- {name} -->\n" + table(by_section[name]))
    return "\n\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the markdown tables of a run's JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="a JSON file written by benchmarks/run.py")
    args = parser.parse_args(argv)
    sys.stdout.write(render(json.loads(args.json.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
