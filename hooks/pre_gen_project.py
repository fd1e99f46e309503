"""Cookiecutter pre-generation hook: report the answers copier.yml's validators refuse.

Cookiecutter evaluated the validators while it rendered this script (the `pre_generation` filter
of hooks/flywheel_hooks.py), so this process only prints them.
"""

import json
import sys

ERRORS = json.loads(r"""{{ cookiecutter | pre_generation | tojson }}""")

for error in ERRORS:
    print(f"ERROR: {error}", file=sys.stderr)
sys.exit(1 if ERRORS else 0)
