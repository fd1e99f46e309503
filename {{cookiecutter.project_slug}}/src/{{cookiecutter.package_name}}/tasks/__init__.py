"""The task this project was generated for: the only modality-specific code.

Every task module offers the names in `contract.Task`, and the shared data, training,
evaluation and serving code reads the task only through them: `task` is typed as the contract,
so the type checker holds the module to it and reads its facts as the contract declares them.
"""

from . import contract
from .{{ cookiecutter.task | replace('-', '_') }} import task as _module

task: contract.Task = _module
# The task's own params.yaml sections, as classes core/config.py can name in its annotations.
DataParams = _module.DataParams
ModelParams = _module.ModelParams

__all__ = ["DataParams", "ModelParams", "task"]
