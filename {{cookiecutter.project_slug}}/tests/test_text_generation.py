"""The text generation task's own parts: TRL's data conventions, the OpenAI API (with the official
client, streaming included), its errors, LoRA on a pretrained checkpoint by config, and export."""

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.checksums import verify
from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import (
    CHECKPOINT_DIR,
    EVALUATE_PLOTS_DIR,
    MODEL_DIR,
    MONITOR_DIR,
)
from {{ cookiecutter.package_name }}.data.prepare import load_prepared, prepare
from {{ cookiecutter.package_name }}.lifecycle.monitor import DRIFT_FILE, monitor
from {{ cookiecutter.package_name }}.serving.bench import running_server
from {{ cookiecutter.package_name }}.serving.predict import Predictor
from {{ cookiecutter.package_name }}.tasks.text_generation.openai_api import MODEL_NAME
from {{ cookiecutter.package_name }}.tasks.text_generation.task import (
    conversation,
    generate,
    token_f1,
)
from {{ cookiecutter.package_name }}.training.train import train


def _prepared(tmp_path: Path, source: Path, **data):
    params = load_params()
    params = params.model_copy(
        update={"data": params.data.model_copy(update={"source": str(source), **data})}
    )
    prepare(params, tmp_path / "prepared")
    return load_prepared(tmp_path / "prepared")


def test_the_generations_table_shows_each_test_prompt_with_both_models(trained) -> None:
    import csv

    import mlflow

    test = load_prepared()["test"]
    with (EVALUATE_PLOTS_DIR / "generations.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["prompt"] for row in rows] == test["input"]
    assert [row["reference"] for row in rows] == test["label"]
    right = sum(row["fine_tuned"].strip() == row["reference"] for row in rows) / len(rows)
    assert right == pytest.approx(trained.result.metrics["exact_match"], abs=1e-6)
    # The untrained base model's answers are there too (scored as the base_model baseline).
    base = sum(row["base"].strip() == row["reference"] for row in rows) / len(rows)
    assert base == trained.result.metrics["baselines"]["base_model"]["exact_match"]
    logged = mlflow.MlflowClient().list_artifacts(trained.result.run_id)
    assert "generations.json" in {artifact.path for artifact in logged}


def test_jsonl_in_trl_conventions_is_loaded(tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = []
    for i in range(20):
        chat = [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"Echo {i}"},
            {"role": "assistant", "content": str(i)},
        ]
        lines.append({"messages": chat})
        lines.append({"prompt": f"Say {i}", "completion": f"{i}!"})
    source = tmp_path / "chats.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    splits = _prepared(tmp_path, source)
    rows = [row for split in splits.values() for row in split]
    assert len(rows) == 40
    pairs = {(row["input"], row["label"]) for row in rows}
    assert ("Say 7", "7!") in pairs
    # A conversation with a system message stays a conversation: the answer is its last turn.
    chats = [conversation(row["input"]) for row in rows if row["label"] == "7"]
    assert chats == [
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Echo 7"}]
    ]


NOT_A_CONVERSATION = r"row 1: 'messages' must be .* ending with the assistant's answer"


def test_a_bad_line_or_a_conversation_without_an_answer_is_named(tmp_path: Path) -> None:
    source = tmp_path / "chats.jsonl"
    source.write_text('{"prompt": "a", "completion": "b"}\nnot json\n', encoding="utf-8")
    with pytest.raises(FlywheelError, match=r"chats\.jsonl line 2 is not JSON"):
        _prepared(tmp_path, source)
    source.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(FlywheelError, match=NOT_A_CONVERSATION):
        _prepared(tmp_path, source)
    chat = [{"role": "tool", "content": "42"}, {"role": "assistant", "content": "42"}]
    source.write_text(json.dumps({"messages": chat}) + "\n")
    with pytest.raises(FlywheelError, match=NOT_A_CONVERSATION):
        _prepared(tmp_path, source)
    assert not (tmp_path / "prepared").exists()


def test_a_prompt_is_a_conversation_only_when_it_holds_messages() -> None:
    assert conversation("[]") == [{"role": "user", "content": "[]"}]
    assert conversation('[{"role": "tool", "content": "x"}]')[0]["role"] == "user"
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert conversation(json.dumps(chat)) == chat


def test_token_f1_scores_word_overlap() -> None:
    assert token_f1("2021-07-14", "2021-07-14") == 1
    assert token_f1("47000 mL", "47000 L") == pytest.approx(0.5)
    assert token_f1("Lisbon", "") == 0


@pytest.fixture(scope="module")
def server(trained):
    with running_server(MODEL_DIR, trained.params.serve) as url:
        yield url.removesuffix("/predict")


def test_the_openai_client_works_unchanged(server, trained) -> None:
    client = OpenAI(base_url=f"{server}/v1", api_key="unused")
    assert [model.id for model in client.models.list()] == [MODEL_NAME]
    prompts = load_prepared()["test"]["input"][:10]
    chats = [
        client.chat.completions.create(
            model=MODEL_NAME,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=24,
            temperature=0,  # greedy; OpenAI's default (1) samples
        )
        for prompt in prompts
    ]
    # The API answers as `predict` does: the same model, the same greedy decoding.
    predictor = Predictor()
    answers = [predictor.predict([prompt])[0]["text"] for prompt in prompts]
    assert [chat.choices[0].message.content for chat in chats] == answers
    prompt, chat = prompts[0], chats[0]
    assert chat.choices[0].finish_reason == "stop"
    assert chat.usage.prompt_tokens > 5 and 0 < chat.usage.completion_tokens <= 24
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

    stream = client.chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == chat.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == chat.usage.completion_tokens

    text = client.completions.create(model=MODEL_NAME, prompt="Convert 5 km", max_tokens=3)
    assert text.usage.completion_tokens <= 3 and text.choices[0].finish_reason in {"stop", "length"}
    sampled = [
        client.chat.completions.create(
            model=MODEL_NAME,
            messages=[{"role": "user", "content": "Which month"}],
            max_tokens=8,
            temperature=1.5,
            seed=7,
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert sampled[0] == sampled[1]  # the same seed samples the same answer


def test_a_stop_string_ends_the_answer_before_it(server, trained) -> None:
    client = OpenAI(base_url=f"{server}/v1", api_key="unused")
    test = load_prepared()["test"]
    row = next(row for row in test if row["label"].count("-") == 2)  # a date, YYYY-MM-DD
    messages = [{"role": "user", "content": row["input"]}]
    whole = client.chat.completions.create(model=MODEL_NAME, messages=messages, temperature=0)
    cut = client.chat.completions.create(
        model=MODEL_NAME, messages=messages, temperature=0, stop=["-"]
    )
    assert "-" in whole.choices[0].message.content
    assert cut.choices[0].message.content == whole.choices[0].message.content.split("-")[0]
    assert cut.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            404,
            "model 'gpt-4o' does not exist",
        ),
        (
            {
                "model": MODEL_NAME,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 10_000,
            },
            400,
            "max_tokens: 10000 is over",
        ),
        (
            {"model": MODEL_NAME, "messages": [{"role": "user", "content": "word " * 400}]},
            400,
            "over the model's context",
        ),
        (
            {"model": MODEL_NAME, "messages": [{"role": "robot", "content": "hi"}]},
            400,
            "messages.0.role",
        ),
        (
            {"model": MODEL_NAME, "messages": [{"role": "user", "content": "hi"}], "stop": [""]},
            400,
            "stop: give 1 to 4 non-empty strings",
        ),
        (
            {
                "model": MODEL_NAME,
                "messages": [{"role": "user", "content": "hi"}],
                "max_completion_tokens": 10_000,
            },
            400,
            "max_completion_tokens: 10000 is over",
        ),
        ({"model": MODEL_NAME, "messages": []}, 400, "messages"),
        ({"model": MODEL_NAME, "messages": "hi"}, 400, "messages"),
    ],
)
def test_requests_the_model_cannot_answer_get_one_line_in_openai_shape(
    server, body, status, says
) -> None:
    answer = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert says in error["message"] and "\n" not in error["message"]
    assert error["type"] == "invalid_request_error"


def test_monitor_reports_tokens_latency_and_cost(trained, tmp_path, monkeypatch) -> None:
    (tmp_path / "data").symlink_to(trained.workspace / "data")
    monkeypatch.chdir(tmp_path)  # where the server records
    settings = trained.params.monitor.model_copy(update={"min_records": 5})
    params = trained.params.model_copy(update={"monitor": settings})
    model_dir = trained.workspace / MODEL_DIR
    prompts = load_prepared()["test"]["input"][:4]
    with running_server(model_dir, params.serve, monitoring=settings) as url:
        client = OpenAI(base_url=url.replace("/predict", "/v1"), api_key="unused")
        usages = [
            client.chat.completions.create(
                model=MODEL_NAME, messages=[{"role": "user", "content": prompt}], max_tokens=16
            ).usage
            for prompt in prompts
        ]
        stream = client.completions.create(
            model=MODEL_NAME,
            prompt=prompts[0],
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
        usages.append(list(stream)[-1].usage)
    monitor(params, model_dir)  # the server has stopped: every record is written
    spent = json.loads((tmp_path / MONITOR_DIR / DRIFT_FILE).read_text(encoding="utf-8"))["usage"]
    assert spent["requests"] == 5
    [day] = spent["days"].values()
    prompt_tokens = sum(usage.prompt_tokens for usage in usages)
    completion_tokens = sum(usage.completion_tokens for usage in usages)
    assert (day["prompt_tokens"], day["completion_tokens"]) == (prompt_tokens, completion_tokens)
    price = settings.prompt_token_price * prompt_tokens
    price += settings.completion_token_price * completion_tokens
    assert day["cost"] == spent["cost"] == round(price / 1_000_000, 6) > 0
    assert 0 < spent["ttft_ms"]["p50"] <= spent["latency_ms"]["p50"]


def test_lora_fine_tunes_a_pretrained_checkpoint_by_config(trained, tmp_path, monkeypatch) -> None:
    """The trained small model stands in for a downloaded checkpoint: LoRA adapters on its
    attention, trained for two epochs, merged into the saved weights."""
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(MODEL_DIR, checkpoint)
    params = trained.params
    lora = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    model = type(params.model).model_validate(
        params.model.model_dump() | {"pretrained": str(checkpoint), "lora": lora}
    )
    run = params.model_copy(
        update={"model": model, "train": params.train.model_copy(update={"epochs": 2})}
    )
    result = train(run, tmp_path / "model")
    saved = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    assert "peft_config" not in saved and not (tmp_path / "model" / "adapter_config.json").exists()
    # The base model is the checkpoint as it was: its answers are the trained small model's.
    assert (
        result.metrics["baselines"]["base_model"]["exact_match"]
        == trained.result.metrics["exact_match"]
    )
    assert result.metrics["exact_match"] >= trained.result.metrics["exact_match"] - 0.1


def test_a_lora_target_the_model_lacks_is_named(trained, tmp_path) -> None:
    from {{ cookiecutter.package_name }}.tasks.text_generation.task import build

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(MODEL_DIR, checkpoint)
    params = trained.params
    lora = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query_key_value"]}
    model = type(params.model).model_validate(
        params.model.model_dump() | {"pretrained": str(checkpoint), "lora": lora}
    )
    with pytest.raises(FlywheelError, match=r"model\.lora\.target_modules"):
        build(params.model_copy(update={"model": model}), load_prepared()["train"], [])


@pytest.fixture(scope="module")
def exported(trained) -> dict:
    """`export`, as `make export` runs it, once for the tests below."""
    result = CliRunner().invoke(app, ["export"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"exported {CHECKPOINT_DIR} (bfloat16 safetensors)")
    return json.loads((CHECKPOINT_DIR / "source.json").read_text(encoding="utf-8"))


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.safetensors"))


def test_export_writes_the_checkpoint_vllm_loads_and_it_answers_as_trained(
    trained, exported
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert exported["checksum"] == verify(MODEL_DIR)["checksum"]
    assert exported["dtype"] == "bfloat16" and exported["same_top_prediction"] >= 0.95
    # What vLLM and llama.cpp's converter read: bfloat16 safetensors at half the size, the chat
    # template, and the generation settings (greedy, max_new_tokens as the cap).
    model = AutoModelForCausalLM.from_pretrained(CHECKPOINT_DIR)
    assert model.dtype == torch.bfloat16
    assert _size(CHECKPOINT_DIR) < 0.6 * _size(MODEL_DIR)
    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT_DIR)
    assert tokenizer.chat_template == Predictor().processor.chat_template
    assert model.generation_config.max_new_tokens == trained.params.model.max_new_tokens
    assert not model.generation_config.do_sample
    # Its greedy answers are the trained model's, but for a rare bfloat16 near-tie.
    test = load_prepared()["test"]
    conversations = [conversation(prompt) for prompt in test["input"][:24]]
    predictor = Predictor()
    ours = generate(predictor.processor, predictor.model, conversations)
    theirs = generate(tokenizer, model, conversations)
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) >= 0.9 * len(ours)


def test_onnx_is_refused_in_one_line_that_says_why(trained) -> None:
    from {{ cookiecutter.package_name }}.serving.export import require_exportable

    with pytest.raises(FlywheelError, match="not exported to ONNX: generation is a loop") as error:
        require_exportable()
    assert "\n" not in str(error.value)


def _serve_with_vllm(tmp_path: Path, *options: str):
    params = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    params["serve"]["engine"] = "vllm"
    path = tmp_path / "vllm-params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return CliRunner().invoke(app, ["serve", "--params", str(path), "--port", "8123", *options])


def test_serve_engine_vllm_runs_vllms_server_on_the_current_export(
    exported, tmp_path, monkeypatch
) -> None:
    """vLLM itself needs CUDA, so its command stands in here: `serve` replaces itself with
    `vllm serve` on the export, under this server's model name, once the export is current."""
    from {{ cookiecutter.package_name }}.tasks.text_generation import vllm_server

    tools = tmp_path / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", str(tools))
    result = _serve_with_vllm(tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith("error: serve.engine: vllm needs vLLM's `vllm` command")
    assert result.output.count("\n") == 1

    (tools / "vllm").write_text("#!/bin/sh\n", encoding="utf-8")
    (tools / "vllm").chmod(0o755)
    replaced = []
    monkeypatch.setattr(vllm_server.os, "execv", lambda *call: replaced.append(call))
    result = _serve_with_vllm(tmp_path)
    assert result.exit_code == 0, result.output
    [(executable, argv)] = replaced
    assert executable == str(tools / "vllm")
    assert argv == [
        "vllm", "serve", str(CHECKPOINT_DIR), "--served-model-name", MODEL_NAME,
        "--generation-config", "auto", "--host", "127.0.0.1", "--port", "8123",
    ]  # fmt: skip

    result = _serve_with_vllm(tmp_path, "--model", "models:/elsewhere@champion")
    assert result.exit_code == 1 and "--model is for serve.engine: torch" in result.output
    source = CHECKPOINT_DIR / "source.json"
    kept = source.read_text(encoding="utf-8")
    source.write_text(json.dumps({**exported, "checksum": "another"}), encoding="utf-8")
    try:
        result = _serve_with_vllm(tmp_path)
    finally:
        source.write_text(kept, encoding="utf-8")
    assert result.exit_code == 1
    assert "was exported from another model than models/model: run `export` again" in result.output
    assert len(replaced) == 1
