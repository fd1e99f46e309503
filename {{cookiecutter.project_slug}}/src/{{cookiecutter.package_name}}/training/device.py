"""Where training runs and which speed-ups it uses: the switches of params.yaml's `train` section,
and the one place the Trainer's arguments are made (train, evaluate and bench call it).

Mixed precision (bf16 where the GPU has it, else fp16), TF32 matmuls (Ampere and newer) and
`torch.compile` apply on CUDA GPUs only; on a CPU they are ignored with one log line, so the
same params.yaml runs on a laptop and on a GPU machine.

`train.batch_size` is the global batch: under torchrun (one machine or several) each of the
WORLD_SIZE processes takes its share, so a step sees as many examples, and a run as many steps,
as with one process, and the learning rate keeps its meaning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from ..core.errors import FlywheelError

logger = logging.getLogger(__name__)


def world_size() -> int:
    """How many training processes torchrun (or accelerate) started: 1 without either."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def per_process_batch(batch_size: int, processes: int) -> int:
    """Each process's share of the global batch `train.batch_size`."""
    if batch_size % processes:
        raise FlywheelError(
            f"train.batch_size: {batch_size} does not split evenly over {processes} training "
            f"processes (WORLD_SIZE); use a multiple of {processes}"
        )
    return batch_size // processes


def accelerator_available() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


@contextlib.contextmanager
def one_line_when_a_peer_stops() -> Iterator[None]:
    """A collective call that lost another process of the job (killed, or its machine stopped)
    ends `train` with one line on the processes still running, instead of the transport's
    traceback; any other error passes as it is."""
    try:
        yield
    except RuntimeError as error:
        reason = _lost_peer(error)
        if reason is None:
            raise
        raise FlywheelError(
            f"train: another process of this {world_size()}-process job stopped ({reason}): "
            "start the job again on every machine; `train` resumes from the last checkpoint"
        ) from None


def same_weights_as_rank_zero(model: Any) -> None:
    """Under DDP, the weights of rank 0 on every process. The Trainer ends by loading the best
    epoch's weights from the checkpoint folder, which holds them only where rank 0 saved them:
    a process on another machine (its own disk) would keep its last epoch's and score its shard
    of the test split with those."""
    import torch.distributed as dist

    if world_size() > 1 and dist.is_available() and dist.is_initialized():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def _lost_peer(error: RuntimeError) -> str | None:
    """What the communication library said, where `error` is its report of a lost peer."""
    import torch.distributed

    text = str(error).strip()
    transport = isinstance(error, torch.distributed.DistError) or "gloo" in text or "NCCL" in text
    if world_size() == 1 or not transport:
        return None
    first = re.sub(r"^\[[^\]]*\]\s*", "", text.splitlines()[0] if text else "")
    return first.split(". ", 1)[0].rstrip(".") or type(error).__name__


def trainer_arguments(train: Any, output_dir: str, speed_ups: bool = True, **fields: Any) -> Any:
    """`TrainingArguments` for the device at hand, from params.yaml's `train` section: what every
    use shares, the speed-up switches (unless `speed_ups` is False: a single evaluation gains
    nothing from them), and the `fields` one use adds (epochs, evaluation, saving)."""
    import torch
    from transformers import TrainingArguments

    shared: dict[str, Any] = {
        "output_dir": output_dir,
        "per_device_train_batch_size": per_process_batch(train.batch_size, world_size()),
        # Evaluation's batching changes no score: each process scores its shard at full size.
        "per_device_eval_batch_size": train.batch_size,
        "learning_rate": train.learning_rate,
        "report_to": "none",
        # The task's collator reads the columns it needs; the Trainer must not drop the others.
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": torch.cuda.is_available(),
        # Without an accelerator, say so: under torchrun this makes the Trainer run DDP over gloo.
        "use_cpu": not accelerator_available(),
        # Losses stay per-sample means under DDP (transformers would scale them by the number
        # of processes), so metrics match a single-process run.
        "average_tokens_across_devices": False,
    }
    switches = _speed_ups(train) if speed_ups else {}
    return TrainingArguments(**(shared | switches | fields))


def _speed_ups(train: Any) -> dict[str, Any]:
    """The switches in `train` that apply to this device; the others are named in a log line."""
    import torch

    arguments: dict[str, Any] = {}
    switches = {
        "mixed_precision": train.mixed_precision,
        "tf32": train.tf32,
        "compile": train.compile,
    }
    if not torch.cuda.is_available():
        wanted = [name for name, on in switches.items() if on]
        if wanted:
            logger.warning("no CUDA GPU: train.%s ignored", ", train.".join(wanted))
        return arguments
    if train.mixed_precision:
        bf16 = torch.cuda.is_bf16_supported()
        arguments["bf16" if bf16 else "fp16"] = True
    if train.tf32 and torch.cuda.get_device_capability()[0] >= 8:
        arguments["tf32"] = True
    if train.compile:
        arguments["torch_compile"] = True
    return arguments
