"""Cookiecutter pre-generation hook: validate the answers with copier.yml's validators."""

import json
import os
import sys
from pathlib import Path

# Cookiecutter keeps a local template path as typed and runs this hook inside the new project, while
# its own working directory (this process's parent's) stays the template root.
TEMPLATE_ROOT = Path(r"""{{ cookiecutter._repo_dir }}""").expanduser()
if not TEMPLATE_ROOT.is_absolute():
    parent_cwd = Path(f"/proc/{os.getppid()}/cwd")
    TEMPLATE_ROOT = (
        parent_cwd.resolve() if parent_cwd.exists() else Path(os.environ["PWD"]) / TEMPLATE_ROOT
    )
sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))

import flywheel_hooks

COOKIECUTTER = json.loads(r"""{{ cookiecutter | tojson }}""")


def main() -> int:
    config = flywheel_hooks.load_config(TEMPLATE_ROOT)
    errors = flywheel_hooks.validation_errors(
        flywheel_hooks.copier_context(COOKIECUTTER, config), config
    )
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
