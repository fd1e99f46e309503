"""Cookiecutter post-generation hook: apply copier.yml's `_exclude`, write the answers file."""

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
    project_dir = Path.cwd()
    config = flywheel_hooks.load_config(TEMPLATE_ROOT)
    context = flywheel_hooks.copier_context(COOKIECUTTER, config)
    try:
        flywheel_hooks.prune(project_dir, flywheel_hooks.exclude_patterns(context, config))
    except flywheel_hooks.HookError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    answers = flywheel_hooks.answers_text(
        context,
        config,
        src_path=flywheel_hooks.src_path_for(COOKIECUTTER["_template"], TEMPLATE_ROOT),
        commit=flywheel_hooks.template_commit(TEMPLATE_ROOT),
    )
    (project_dir / config.get("_answers_file", ".copier-answers.yml")).write_text(
        answers, encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
