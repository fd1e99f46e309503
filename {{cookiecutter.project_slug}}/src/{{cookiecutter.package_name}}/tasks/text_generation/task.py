"""Text generation: a causal language model fine-tuned on prompt/response pairs, answering chats.

Embedded default: a few hundred instructions whose answers can be checked exactly (write a date
as YYYY-MM-DD, convert a unit, name the next day or month, pull a city or a job out of a
sentence), synthesized deterministically; a byte-level BPE tokenizer with a chat template is
trained on them locally and a 2-layer Llama from a config, with the loss on the responses only,
so nothing is downloaded. Setting `model.pretrained` (e.g.
`HuggingFaceTB/SmolLM2-135M-Instruct`, or a local checkpoint folder; `model.gguf_file` for a GGUF
file in that folder) fine-tunes that model with its own chat template, through a LoRA adapter
when `model.lora` is set (PEFT; merged into the saved weights); `data.source` points at a JSON
Lines file in TRL's conventions (a `messages` list, or `prompt`/`completion`), a CSV, or
`hf:<dataset>`. Judged by exact match of greedy generations against the model before
fine-tuning and the most frequent response.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
from pydantic import Field

from ...core.errors import FlywheelError
from ...core.schema import DataSource, Judging, Section
from ...serving import inputs
from .. import text_features
from ..contract import any_text, labels_as_they_are, nothing_skipped, predictions_as_they_are

INPUT_KIND: Final = "text"
INPUTS = inputs.TEXTS
ACCEPTED_INPUT = "a non-blank prompt"
TARGET: Final = "transcript"  # free text: the response
WHY_NO_ONNX = (
    "generation is a loop around the model, not one graph; `export` writes the merged "
    "checkpoint in half precision for vLLM (`serve.engine: vllm`) and llama.cpp instead"
)
EXPORT_FORMAT: Final = "safetensors"
REQUIREMENTS = ("peft",)
REPORT_FILES = ("generations.csv",)
# Drift monitoring reads the prompt as text, and the length of the response.
input_features = text_features.input_features
prepare_labels = labels_as_they_are
# `predict` prints its predictions as they are (no files to write).
PREDICTIONS_OUT = None
write_predictions = predictions_as_they_are
JUDGING = Judging(
    primary_metric="exact_match",
    greater_is_better=True,
    selection_metric="loss",
    baselines={
        "base_model": "the model before fine-tuning, on the same prompts",
        "most_frequent": "the training split's most frequent response for every prompt",
    },
    baseline_to_beat="base_model",
    improvement_hint="model.pretrained (e.g. HuggingFaceTB/SmolLM2-135M-Instruct) with model.lora, "
    "more examples, or a longer train.epochs budget",
)
# The tokens of the small tokenizer's chat template; `<|end|>` closes every turn (the EOS).
ROLES = ("system", "user", "assistant")
PAD, END = "<|pad|>", "<|end|>"
# Jinja, as chat templates are written, spelled with (% %) and (( )) here: this file is itself a
# template of the project generator, which would render Jinja's own brackets away.
CHAT_TEMPLATE = (
    (
        "(% for message in messages %)<|(( message['role'] ))|>(( message['content'] ))<|end|>"
        "(% endfor %)(% if add_generation_prompt %)<|assistant|>(% endif %)"
    )
    .replace("(%", "{" + "%")
    .replace("%)", "%" + "}")
    .replace("((", "{" + "{")
    .replace("))", "}" + "}")
)


class DataParams(DataSource):
    # Prompt and response tokens together; a longer example loses the start of its prompt.
    max_length: int = Field(ge=16, le=32768)
    embedded_size: int = Field(ge=100)


class LoraParams(Section):
    rank: int = Field(ge=1)
    alpha: float = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    # Module names of the base model that get adapters (Llama: q_proj, k_proj, v_proj, o_proj).
    target_modules: list[str] = Field(min_length=1)


class ModelParams(Section):
    # A Hugging Face checkpoint id or a local folder; null builds the tiny model below from scratch.
    pretrained: str | None
    # A GGUF file inside the `pretrained` folder (needs the gguf package); null: safetensors.
    gguf_file: str | None
    # LoRA adapters on the pretrained model (PEFT), merged into the saved weights; null: every
    # weight is trained (full fine-tuning).
    lora: LoraParams | None
    # The most tokens a response may have: `predict`'s length and the API's max_tokens cap.
    max_new_tokens: int = Field(ge=1)
    vocab_size: int = Field(ge=100)
    hidden_size: int = Field(ge=8)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    intermediate_size: int = Field(ge=8)
    dropout: float = Field(ge=0, lt=1)


# --- data --------------------------------------------------------------------------------------

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_NAMES = ["Maria", "Omar", "Lena", "Kenji", "Ana", "Tom", "Priya", "Luca", "Sara", "Ivan", "Nora"]
_CITIES = ["Lisbon", "Oslo", "Cairo", "Lima", "Osaka", "Dublin", "Quito", "Tunis", "Hanoi", "Riga"]
_JOBS = ["nurse", "pilot", "baker", "teacher", "chemist", "farmer", "lawyer", "painter", "dentist"]
_UNITS = [("km", "m"), ("kg", "g"), ("L", "mL")]


def _instruction(rng: random.Random) -> tuple[str, str]:
    """One prompt and its only right answer."""
    kind = rng.randrange(4)
    if kind == 0:
        day, month, year = rng.randint(1, 28), rng.randrange(12), rng.randint(1990, 2030)
        return (
            f"Write {day} {_MONTHS[month]} {year} as YYYY-MM-DD.",
            f"{year}-{month + 1:02d}-{day:02d}",
        )
    if kind == 1:
        amount, (unit, smaller) = rng.randint(1, 99), rng.choice(_UNITS)
        return f"Convert {amount} {unit} to {smaller}.", f"{amount * 1000} {smaller}"
    if kind == 2:
        names = rng.choice([_DAYS, _MONTHS])
        index = rng.randrange(len(names))
        what = "day" if names is _DAYS else "month"
        return f"Which {what} comes after {names[index]}?", names[(index + 1) % len(names)]
    name, city, job = rng.choice(_NAMES), rng.choice(_CITIES), rng.choice(_JOBS)
    sentence = f"{name} lives in {city} and works as a {job}."
    if rng.random() < 0.5:
        return f"Which city does {name} live in? {sentence}", city
    return f"What is the job of {name}? {sentence}", job


def embedded_dataset(params: Any):
    """Instructions with their exact answers, the same for the same seed and size."""
    from datasets import Dataset, Features, Value

    rng = random.Random(params.seed)
    pairs = [_instruction(rng) for _ in range(params.data.embedded_size)]
    features = Features({"input": Value("string"), "label": Value("string")})
    return Dataset.from_dict(
        {"input": [prompt for prompt, _ in pairs], "label": [answer for _, answer in pairs]},
        features=features,
    )


def conversation(prompt: str) -> list[dict[str, str]]:
    """A prepared prompt as chat messages: a JSON list of {role, content} (a conversation with a
    system message or earlier turns), or plain text (one user message)."""
    if prompt.lstrip().startswith("["):
        try:
            messages = json.loads(prompt)
        except ValueError:
            messages = None
        if well_formed(messages):
            return messages
    return [{"role": "user", "content": prompt}]


def well_formed(messages: Any) -> bool:
    """A non-empty list of {role, content} messages, with roles the chat templates know."""
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
            for m in messages
        )
    )


def as_prompt(messages: list[dict[str, str]]) -> str:
    """The inverse of `conversation`: one user message stays plain text."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return json.dumps(messages, ensure_ascii=False)


def _pair(row: dict[str, Any], prompt_column: str, completion_column: str, where: str) -> tuple:
    """One example in TRL's conventions as (prompt text, response text)."""
    if "messages" in row and (prompt_column not in row or completion_column not in row):
        messages = row["messages"]
        if not well_formed(messages) or messages[-1]["role"] != "assistant":
            raise FlywheelError(
                f"{where}: 'messages' must be a list of role/content messages (roles: "
                f"{', '.join(ROLES)}; content: text) ending with the assistant's answer"
            )
        return as_prompt(messages[:-1]), messages[-1]["content"]
    prompt, completion = row.get(prompt_column), row.get(completion_column)
    if isinstance(prompt, list):
        if not well_formed(prompt):
            raise FlywheelError(
                f"{where}: a '{prompt_column}' list must hold role/content messages (roles: "
                f"{', '.join(ROLES)})"
            )
        prompt = as_prompt(prompt)
    if isinstance(completion, list) and completion:
        completion = completion[-1].get("content")
    if not isinstance(prompt, str) or not isinstance(completion, str):
        raise FlywheelError(
            f"{where}: expected a 'messages' list or '{prompt_column}' and '{completion_column}' "
            "text: set data.input_column / data.target_column"
        )
    return prompt, completion


def _pairs_dataset(rows: Any, params: Any, where: str):
    from datasets import Dataset

    prompts, completions = [], []
    prompt_column, completion_column = params.data.input_column, params.data.target_column
    for index, row in enumerate(rows):
        prompt, completion = _pair(
            row, prompt_column, completion_column, f"{where} row {index + 1}"
        )
        prompts.append(prompt)
        completions.append(completion)
    return Dataset.from_dict({prompt_column: prompts, completion_column: completions})


def load_source(source: Path, params: Any):
    """A JSON Lines file in TRL's conventions (`messages`, or `prompt`/`completion`), or a CSV
    with a prompt column and a response column."""
    if source.suffix not in {".jsonl", ".csv"}:
        raise FlywheelError(
            f"data.source: {source} is not a .jsonl or .csv file: point it at one, "
            "or use 'embedded' or 'hf:<dataset id>'"
        )
    if source.suffix == ".csv":
        with source.open(newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        return _pairs_dataset(rows, params, f"data.source: {source}")
    rows = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise FlywheelError(
                f"data.source: {source} line {number} is not JSON: one object per line"
            ) from None
    return _pairs_dataset(rows, params, f"data.source: {source}")


def from_hub(dataset: Any, params: Any):
    """A Hub dataset in TRL's conventions, each split as prompt and response text."""
    from datasets import DatasetDict

    return DatasetDict(
        {
            name: _pairs_dataset(split, params, f"data.source {name}")
            for name, split in dataset.items()
        }
    )


def write_examples(dataset: Any, out_dir: Path) -> list[Path]:
    """Prompts are typed on the command line: no example files to write."""
    return []


def example_input(dataset: Any) -> str:
    """One raw input as a client would send it (the MLflow model's input example)."""
    return dataset[0]["input"]


# A byte-level tokenizer reads every character.
skipped_characters = nothing_skipped
input_schema = any_text


def decode_input(raw: str | bytes, name: str = "input") -> list[dict[str, str]]:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if not text.strip():
        raise FlywheelError(f"{name}: the text is empty: send at least one non-blank character")
    return conversation(text)


# --- model -------------------------------------------------------------------------------------


def _train_tokenizer(texts: list[str], vocab_size: int, max_length: int):
    """A byte-level BPE tokenizer (every text encodes, and decodes back exactly) with digits
    kept apart, trained on these texts, with the chat template above."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    specials = [PAD, END, *(f"<|{role}|>" for role in ROLES)]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, eos_token=END, model_max_length=max_length
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def load_pretrained(spec: Any):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(spec.pretrained, **extra)
    if not tokenizer.chat_template:
        raise FlywheelError(
            f"model.pretrained: {spec.pretrained} has no chat template: use an instruction-tuned "
            "checkpoint (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(spec.pretrained, dtype=torch.float32, **extra)
    if spec.gguf_file:
        # Weights dequantized from GGUF refuse save_pretrained; the same weights in a model
        # built from the config (without its quantization entry) save as safetensors.
        vars(model.config).pop("quantization_config", None)
        plain = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        plain.generation_config = model.generation_config
        model = plain
    return tokenizer, model


def build(params: Any, train: Any, labels: list[str]):
    """Tokenizer and causal LM: `model.pretrained` (with LoRA adapters where `model.lora` is
    set), or a tokenizer trained on the training split and a small Llama from a config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = params.model
    if spec.pretrained:
        tokenizer, model = load_pretrained(spec)
    else:
        texts = [
            f"{prompt} {answer}"
            for prompt, answer in zip(train["input"], train["label"], strict=True)
        ]
        tokenizer = _train_tokenizer(texts, spec.vocab_size, params.data.max_length)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            num_key_value_heads=spec.num_heads,
            max_position_embeddings=params.data.max_length,
            attention_dropout=spec.dropout,
            tie_word_embeddings=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
        model = LlamaForCausalLM(config)
    # How long an example may be in training: kept beside the tokenizer, not in its saved
    # model_max_length (the checkpoint's own context stays what it was).
    tokenizer.training_max_length = params.data.max_length
    generation = model.generation_config
    generation.max_new_tokens = spec.max_new_tokens
    generation.do_sample = False
    generation.pad_token_id = tokenizer.pad_token_id
    # A checkpoint's own end tokens stay; the answers end with the tokenizer's (training_features).
    generation.eos_token_id = generation.eos_token_id or tokenizer.eos_token_id
    for name in ("temperature", "top_p", "top_k"):  # greedy: sampling settings would warn
        setattr(generation, name, None)
    if spec.lora is not None:
        from peft import LoraConfig, get_peft_model

        adapters = LoraConfig(
            r=spec.lora.rank,
            lora_alpha=spec.lora.alpha,
            lora_dropout=spec.lora.dropout,
            target_modules=list(spec.lora.target_modules),
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(model, adapters)
        except ValueError as error:
            raise FlywheelError(f"model.lora.target_modules: {error}") from None
    return tokenizer, model


def load(model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)


# --- encoding and batching ---------------------------------------------------------------------


def prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


def preprocess(processor: Any, inputs: list[Any]) -> dict[str, Any]:
    """Conversations to the chat template's token ids, ending where the assistant answers: the
    one function training, `predict` and `serve` all use."""
    ids = [prompt_ids(processor, messages) for messages in inputs]
    return {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}


def augmentation(params: Any) -> Callable[[Any], Any] | None:
    """Examples are trained on as they are: no altered copies."""
    return None


def training_features(processor: Any):
    """Prompt and response tokens, with the loss on the response (and its end token) only; an
    example over the tokenizer's length keeps the end of its prompt."""

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        prompts = preprocess(processor, [conversation(text) for text in batch["input"]])
        rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
        for prompt, answer in zip(prompts["input_ids"], batch["label"], strict=True):
            response = processor(answer, add_special_tokens=False).input_ids
            response = [*response, processor.eos_token_id]
            longest = getattr(processor, "training_max_length", processor.model_max_length)
            room = longest - len(response)
            prompt = prompt[-room:] if room > 0 else []
            ids = (prompt + response)[:longest]
            rows["input_ids"].append(ids)
            rows["attention_mask"].append([1] * len(ids))
            rows["labels"].append(([-100] * len(prompt) + response)[: len(ids)])
        return rows

    return transform


class CausalCollator:
    """Pads training rows on the right (labels with -100) and prompts to generate from on the
    left, so every prompt ends where its answer starts."""

    def __init__(self, tokenizer: Any) -> None:
        self.pad = tokenizer.pad_token_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        labelled = "labels" in rows[0]
        width = max(len(row["input_ids"]) for row in rows)
        names = ["input_ids", "attention_mask", *(["labels"] if labelled else [])]
        fill = {"input_ids": self.pad, "attention_mask": 0, "labels": -100}
        batch = {name: np.full((len(rows), width), fill[name], dtype=np.int64) for name in names}
        for index, row in enumerate(rows):
            size = len(row["input_ids"])
            where = slice(0, size) if labelled else slice(width - size, width)
            for name in names:
                batch[name][index, where] = row[name]
        return {name: torch.as_tensor(values) for name, values in batch.items()}


def collator(processor: Any) -> CausalCollator:
    return CausalCollator(processor)


def reduce_logits(logits: Any, labels: Any) -> Any:
    """The predicted token at each position: evaluation keeps these, not the vocabulary."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(-1)


def compute_metrics(processor: Any):
    """Teacher-forced scores of each epoch (cheap: one forward pass): the share of response
    tokens predicted right, and of responses predicted right in every token."""

    def metrics(prediction: Any) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions)[:, :-1]
        labels = np.asarray(prediction.label_ids)[:, 1:]
        scored = labels != -100
        right = (predicted == labels) | ~scored
        return {
            "token_accuracy": float(((predicted == labels) & scored).sum() / max(scored.sum(), 1)),
            "exact_match": float(right.all(axis=1).mean()),
        }

    return metrics


# --- generation --------------------------------------------------------------------------------


# One generation at a time in a process (`predict`, /predict and the OpenAI API alike): on a CPU,
# two at once would each take twice as long.
GENERATING = threading.Lock()


def run_model(call: Any, batch: dict[str, Any]) -> Any:
    """Greedy generation with the saved generation settings (`model.max_new_tokens`): the new
    tokens of each prompt."""
    with GENERATING:
        sequences = call.generate(**batch)
    return sequences[:, batch["input_ids"].shape[1] :]


def postprocess(processor: Any, model: Any, outputs: Any) -> list[dict[str, Any]]:
    return [{"text": text} for text in processor.batch_decode(outputs, skip_special_tokens=True)]


def generate(
    processor: Any, model: Any, conversations: list[list[dict[str, str]]], batch_size: int = 64
) -> list[str]:
    """Greedy responses to many conversations, a batch at a time (a wide one: each new token is
    one model call for the whole batch, and a small model's call costs about the same for 64
    prompts as for 16)."""
    import torch

    collate = collator(processor)
    texts: list[str] = []
    model.eval()
    for start in range(0, len(conversations), batch_size):
        encoded = preprocess(processor, conversations[start : start + batch_size])
        rows = [
            dict(zip(encoded, values, strict=True))
            for values in zip(*encoded.values(), strict=True)
        ]
        batch = {name: tensor.to(model.device) for name, tensor in collate(rows).items()}
        with torch.inference_mode():
            texts += [row["text"] for row in postprocess(processor, model, run_model(model, batch))]
    return texts


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def token_f1(reference: str, hypothesis: str) -> float:
    """SQuAD's token F1: the overlap of the two answers' words and signs."""
    ref, hyp = _tokens(reference), _tokens(hypothesis)
    common = sum((Counter(ref) & Counter(hyp)).values())
    if not ref or not hyp:
        return float(ref == hyp)
    if common == 0:
        return 0.0
    precision, recall = common / len(hyp), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def scores(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """Exact match (after trimming white space) and token F1, for models and baselines."""
    pairs = list(zip(references, hypotheses, strict=True))
    return {
        "exact_match": float(np.mean([r.strip() == h.strip() for r, h in pairs])),
        "token_f1": float(np.mean([token_f1(r, h) for r, h in pairs])),
    }


# The base model's responses to the test prompts, by prompts: `baselines` makes them, and the
# report's generations table shows the latest beside the fine-tuned model's answers.
_BASE_RESPONSES: dict[tuple[str, ...], list[str]] = {}


def _base_responses(train: Any, test: Any, params: Any) -> list[str]:
    from transformers import set_seed

    prompts = tuple(test["input"])
    set_seed(params.seed)  # the same initial weights as the run's model
    processor, model = build(params, train, [])
    conversations = [conversation(prompt) for prompt in prompts]
    if hasattr(model, "disable_adapter"):  # LoRA: the base model is the model without it
        with model.disable_adapter():
            responses = generate(processor, model, conversations)
    else:
        responses = generate(processor, model, conversations)
    _BASE_RESPONSES[prompts] = responses
    return responses


def baselines(train: Any, test: Any, params: Any) -> dict[str, dict[str, float]]:
    """The model before fine-tuning (as the run's params build it) and the most frequent
    response."""
    references = list(test["label"])
    most_frequent = Counter(train["label"]).most_common(1)[0][0]
    return {
        "base_model": scores(references, _base_responses(train, test, params)),
        "most_frequent": scores(references, [most_frequent] * len(references)),
    }


def report(
    processor: Any, model: Any, prediction: Any, test: Any, plots_dir: Path
) -> dict[str, float]:
    """Exact match and token F1 of greedy generations on the test split, the perplexity of the
    references, and `generations.csv` (prompt, reference, base model, fine-tuned), which the
    run also logs as an MLflow table."""
    prompts, references = list(test["input"]), list(test["label"])
    responses = generate(processor, model, [conversation(p) for p in prompts])
    base = _BASE_RESPONSES.get(tuple(prompts), [""] * len(prompts))
    table = {"prompt": prompts, "reference": references, "base": base, "fine_tuned": responses}
    plots_dir.mkdir(parents=True, exist_ok=True)
    with (plots_dir / "generations.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(list(table))
        writer.writerows(zip(*table.values(), strict=True))
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_table(table, artifact_file="generations.json")
    loss = float(prediction.metrics["test_loss"])
    return scores(references, responses) | {"perplexity": math.exp(min(loss, 50.0))}


def api_router(state: dict[str, Any]) -> Any:
    """The OpenAI API (chat and text completions, models) beside /predict."""
    from .openai_api import router

    return router(state)


def agreement(champion: dict[str, Any], candidate: dict[str, Any]) -> float:
    """Shadow replay: how alike the two answers read, character by character (difflib's ratio:
    1 for the same text, 0 for nothing in common)."""
    import difflib

    return difflib.SequenceMatcher(None, champion["text"], candidate["text"]).ratio()


def output_features(prediction: dict[str, Any]) -> dict[str, Any]:
    return {"transcript_chars": float(len(prediction["text"]))}


def target_features(split: Any) -> Any:
    return lambda label: {"transcript_chars": float(len(label))}
