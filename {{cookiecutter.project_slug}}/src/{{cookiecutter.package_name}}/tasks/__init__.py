"""The task this project was generated for: the only modality-specific code.

Every task module offers the same names, used by the shared data, training, evaluation and
serving code: `INPUT_KIND`, `DataParams`, `ModelParams`, `embedded_dataset`, `load_source`,
`build`, `load`, `preprocess`, `training_features`, `collator`, `compute_metrics`, `postprocess`,
`report`, `decode_input`, `write_examples`.
"""

from ..tasks import {{ cookiecutter.task | replace('-', '_') }} as task

__all__ = ["task"]
