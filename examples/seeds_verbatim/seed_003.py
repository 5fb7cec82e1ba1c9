"""Seed 003: training neural networks, the nitty-gritty (notebook set-up only).

Its code cells as written: only the imports changed (keras -> microgradnet, the original line
kept as a comment), and IPython magics, which are not Python, commented out (README.md lists
every such line). `python run.py seed_003.py` runs the cells as the notebook would.
"""

# %% In [1]
# %run Latex_macros.ipynb  (IPython magic; the notebook is not part of the seed)


# %% In [2]
# My standard magic !  You will see this in almost all my notebooks.

from IPython.core.interactiveshell import InteractiveShell
InteractiveShell.ast_node_interactivity = "all"

# Reload all modules imported with %aimport
# %load_ext autoreload  (IPython magic)
# %autoreload 1  (IPython magic)

# %matplotlib inline  (IPython magic: run.py shows figures as the notebook does)


# %% In [3]
print("Done")
