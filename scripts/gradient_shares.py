"""``python scripts/gradient_shares.py`` is ``srfer gradient-shares``: the gradient shares of hand-set weights.

The code is :mod:`srfer_plugin.tools.gradient_shares`; this file keeps the command of a clone working.
"""

from srfer_plugin.tools.gradient_shares import main, measure_gradients, measure_shares  # noqa: F401

if __name__ == '__main__':
    main()
