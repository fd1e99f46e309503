"""Cookiecutter post-generation hook: apply copier.yml's `_exclude`, write the answers file,
print copier.yml's `_message_after_copy` (the next steps, as copier prints them).

Cookiecutter worked out both while it rendered this script (the `post_generation` filter of
hooks/flywheel_hooks.py), so this process only deletes and writes. It runs in the new project.
"""

import json
import shutil
import sys
from pathlib import Path

PLAN = json.loads(r"""{{ cookiecutter | post_generation | tojson }}""")

if "error" in PLAN:
    sys.exit(f"ERROR: {PLAN['error']}")
for relpath in PLAN["excluded"]:
    path = Path(relpath)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
Path(PLAN["answers_file"]).write_text(PLAN["answers"], encoding="utf-8")
print(PLAN["message"])
