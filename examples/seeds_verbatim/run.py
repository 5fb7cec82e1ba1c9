#!/usr/bin/env python
"""Run a seed's code cells (seed_000.py, ...) as its notebook ran them, headless.

    python examples/seeds_verbatim/run.py seed_000.py [--out DIR]

The cells (`# %%` blocks) run in order in one namespace, in the output folder (--out, else
$MICROGRADNET_SEEDS_OUT, else the current directory), so the files a cell saves (the MP4s)
land there. As `%matplotlib inline` does, every figure open at a cell's end or at
`plt.show()` is shown, here saved as <script>_figNN.png in that folder and closed, and a
cell's last expression is printed (Jupyter displays it).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_CELL = re.compile(r"^# %%.*$", re.M)


def cells(source: str) -> list[tuple[int, str]]:
    """(first line number, code) of each `# %%` cell."""
    marks = [m.start() for m in _CELL.finditer(source)] or [0]
    bounds = [*marks, len(source)]
    return [(source.count("\n", 0, a) + 1, source[a:b]) for a, b in
            zip(bounds[:-1], bounds[1:], strict=True)]


class Notebook:
    """Runs cells in one namespace; shows figures as files, prints last expressions."""

    def __init__(self, script: Path, out: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")  # no window: figures go to files
        import matplotlib.pyplot as plt

        self.plt, self.script, self.out, self.figures = plt, script, out, []

        def show(*args, **kwargs) -> None:  # a function: pyplot gives it a __signature__
            self.show()

        plt.show = show  # what `plt.show()` in a cell does
        self.namespace = {"__name__": "__main__", "__file__": str(script)}

    def show(self) -> None:
        """Save every open figure as the next <script>_figNN.png and close it."""
        for number in self.plt.get_fignums():
            path = self.out / f"{self.script.stem}_fig{len(self.figures) + 1:02d}.png"
            self.plt.figure(number).savefig(path, bbox_inches="tight")  # as inline shows it
            self.figures.append(path)
        self.plt.close("all")

    def run_cell(self, first_line: int, code: str) -> None:
        """Execute a cell; print its last expression's value, as Jupyter displays it."""
        tree = ast.parse("\n" * (first_line - 1) + code, str(self.script))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, str(self.script), "exec"), self.namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), str(self.script), "eval"),
                         self.namespace)
            if value is not None:
                print(repr(value))
        self.show()


def main(argv: list[str] | None = None) -> int:
    """Run one seed script's cells in the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", type=Path, help="seed_000.py, ... (here or a path)")
    parser.add_argument("--out", type=Path,
                        default=Path(os.environ.get("MICROGRADNET_SEEDS_OUT", os.getcwd())),
                        help="where the pictures and videos go (default: "
                             "$MICROGRADNET_SEEDS_OUT, else the current directory)")
    args = parser.parse_args(argv)
    script = args.script if args.script.exists() else HERE / args.script
    script = script.resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    notebook = Notebook(script, out)
    os.chdir(out)
    for first_line, code in cells(script.read_text()):
        notebook.run_cell(first_line, code)
    print(f"{script.name}: {len(notebook.figures)} figures in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
