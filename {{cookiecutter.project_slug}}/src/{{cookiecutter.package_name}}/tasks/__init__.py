"""The task this project was generated for: the only modality-specific code.

Every task module offers the names in `contract.Task`, and the shared data, training,
evaluation and serving code reads the task only through them.
"""

from . import {{ cookiecutter.task | replace('-', '_') }} as task

__all__ = ["task"]
