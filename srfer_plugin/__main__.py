"""``python -m srfer_plugin <command> ...``: the ``srfer`` command (:mod:`srfer_plugin.cli`)."""

import sys

from srfer_plugin.cli import main

sys.exit(main())
