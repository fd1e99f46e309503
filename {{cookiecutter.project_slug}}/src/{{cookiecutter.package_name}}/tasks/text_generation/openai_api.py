"""The OpenAI API for a text generation model: the endpoints clients of hosted LLMs already call.

`POST /v1/chat/completions` and `POST /v1/completions` (with `stream: true` as server-sent
events), `GET /v1/models`; `usage` counts prompt and completion tokens. The official `openai`
client pointed at `http://HOST:PORT/v1` works unchanged. A request the model cannot answer (too
long, `max_tokens` over the cap, an unknown model, malformed messages) gets a 4xx in OpenAI's
error shape with one line that says why. One generation runs at a time: on a CPU, two would each
take twice as long.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.project import SLUG
from .task import GENERATING, as_prompt, prompt_ids

# OpenAI's limit on stop sequences per request.
MAX_STOPS = 4

# The name clients pass as `model` (and /v1/models lists).
MODEL_NAME = SLUG


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(BaseModel):
    """What both completion endpoints accept besides the prompt (OpenAI's names and ranges)."""

    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = Field(default=1, ge=1, le=1)


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)


class CompletionRequest(Sampling):
    prompt: str


class Refused(Exception):
    """A request answered with a 4xx: its status, the field at fault, OpenAI's error code where
    it has one, and why."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


def error_body(
    message: str,
    param: str | None = None,
    code: str | None = None,
    kind: str = "invalid_request_error",
) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def server_error(error: Exception) -> dict:
    """A failure of the server's own (a bug, memory): OpenAI's shape, one line."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return error_body(f"generation failed: {reason}", kind="server_error")


def _parse(model: type[BaseModel], raw: bytes) -> Any:
    """The request body as `model`, or a `Refused` naming the first problem."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise Refused(400, "the request body is not JSON: send a JSON object") from None
    if not isinstance(body, dict):
        raise Refused(400, "the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise Refused(400, f"{where}: {first['msg']}", param=where) from None


class Generator:
    """The loaded model and tokenizer, generating one request at a time (with `predict` and
    /predict too: the task's GENERATING lock)."""

    def __init__(self, predictor: Any) -> None:
        self.tokenizer = predictor.processor
        self.model = predictor.model
        self.cap = int(self.model.generation_config.max_new_tokens or 256)
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)

    def prompt_ids(self, messages: list[dict[str, str]] | None, text: str | None) -> list[int]:
        if messages is None:
            return self.tokenizer(text, add_special_tokens=False).input_ids
        from jinja2 import TemplateError

        try:
            return prompt_ids(self.tokenizer, messages)
        except TemplateError as error:  # a chat template refusing, e.g., roles out of turn
            message = f"messages: the chat template refused them: {error}"
            raise Refused(400, message, "messages") from None

    def settings(self, request: Sampling, prompt: list[int]) -> dict[str, Any]:
        """Generation settings from the request, refused where the model cannot meet them."""
        if request.model != MODEL_NAME:
            raise Refused(
                404,
                f"model '{request.model}' does not exist: this server serves '{MODEL_NAME}' "
                "(GET /v1/models)",
                param="model",
                code="model_not_found",
            )
        asked = request.max_completion_tokens or request.max_tokens
        name = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        where = "messages" if isinstance(request, ChatRequest) else "prompt"
        if asked is not None and asked > self.cap:
            raise Refused(
                400,
                f"{name}: {asked} is over this server's cap of {self.cap} "
                "(model.max_new_tokens in params.yaml)",
                param=name,
            )
        room = self.context - len(prompt) if self.context else self.cap
        if room < (asked or 1):
            asking = f" and {name} {asked}" if asked else ""
            raise Refused(
                400,
                f"{where}: the prompt's {len(prompt)} tokens{asking} are over the model's "
                f"context of {self.context} tokens: shorten it",
                param=where,
                code="context_length_exceeded",
            )
        wanted = asked or min(self.cap, room)
        sample = request.temperature > 0
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        if len(stops) > MAX_STOPS or not all(stops):
            raise Refused(400, f"stop: give 1 to {MAX_STOPS} non-empty strings", param="stop")
        settings: dict[str, Any] = {"max_new_tokens": wanted, "do_sample": sample}
        if sample:
            settings |= {"temperature": request.temperature, "top_p": request.top_p, "top_k": 0}
        if stops:
            settings |= {"stop_strings": stops, "tokenizer": self.tokenizer}
        return settings | {"_stops": stops, "_seed": request.seed}

    def _run(
        self,
        prompt: list[int],
        settings: dict[str, Any],
        streamer: Any = None,
        cancelled: threading.Event | None = None,
    ) -> tuple[list[int], float | None]:
        """The new tokens (without the end token) and when the first came (perf_counter);
        generation ends early once `cancelled` is set (a client that went away)."""
        import torch
        from transformers import StoppingCriteriaList, set_seed

        seed = settings["_seed"]
        generation = {key: value for key, value in settings.items() if not key.startswith("_")}
        ids = torch.tensor([prompt], device=self.model.device)
        with GENERATING, torch.inference_mode():
            if seed is not None:
                set_seed(seed)
            output = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                streamer=(timer := FirstToken(streamer)),
                stopping_criteria=StoppingCriteriaList([Cancelled(cancelled)] if cancelled else []),
                **generation,
            )
        new = output[0, len(prompt) :].tolist()
        end = self.model.generation_config.eos_token_id
        ends = set(end if isinstance(end, list) else [end])
        tokens = [
            token for token in new if token not in ends and token != self.tokenizer.pad_token_id
        ]
        return tokens, timer.first

    def complete(self, prompt: list[int], settings: dict[str, Any]) -> tuple[str, int, str, Any]:
        """The response text, its token count, why it ended (`stop` or `length`) and when its
        first token came."""
        stops = settings["_stops"]
        tokens, first = self._run(prompt, settings)
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, stopped = _cut(text, stops)
        finish = "length" if len(tokens) >= settings["max_new_tokens"] and not stopped else "stop"
        return text, len(tokens), finish, first

    def stream(
        self, prompt: list[int], settings: dict[str, Any], cancelled: threading.Event
    ) -> Iterator[tuple[str, Any]]:
        """("text", piece) as tokens arrive, then ("done", (text, token count, finish reason,
        when the first token came))."""
        from transformers import TextIteratorStreamer

        stops = settings["_stops"]
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["tokens"], result["first"] = self._run(prompt, settings, streamer, cancelled)
            except Exception as error:  # surfaced to the client's stream below
                result["error"] = error
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        sent, held, stopped = "", "", False
        hold = max((len(stop) for stop in stops), default=1) - 1
        for piece in streamer:
            held += piece
            text, stopped = _cut(held, stops)
            if stopped:
                held = text
                break
            ready = held[: len(held) - hold] if hold else held
            if ready:
                sent += ready
                held = held[len(ready) :]
                yield "text", ready
        thread.join()
        if "error" in result:
            raise result["error"]
        text, cut = _cut(held, stops)
        if text:
            yield "text", text
        tokens = len(result["tokens"])
        stopped = stopped or cut
        finish = "length" if tokens >= settings["max_new_tokens"] and not stopped else "stop"
        yield "done", (sent + text, tokens, finish, result["first"])


class Cancelled:
    """A stopping criterion: true for every sequence once the event is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


class FirstToken:
    """A generation streamer that notes when the first new token came, passing everything on
    to `inner` (a text streamer) where there is one: generate() puts the prompt, then each
    token."""

    def __init__(self, inner: Any = None) -> None:
        self.inner, self.puts = inner, 0
        self.first: float | None = None

    def put(self, value: Any) -> None:
        self.puts += 1
        if self.puts == 2:
            self.first = time.perf_counter()
        if self.inner is not None:
            self.inner.put(value)

    def end(self) -> None:
        if self.inner is not None:
            self.inner.end()


def _cut(text: str, stops: list[str]) -> tuple[str, bool]:
    """The text before the first stop string (which OpenAI leaves out), and whether one came."""
    positions = [text.find(stop) for stop in stops if stop and stop in text]
    return (text[: min(positions)], True) if positions else (text, False)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def router(state: dict[str, Any]) -> APIRouter:
    # Out of the server's own OpenAPI schema (which the fuzz test reads): these endpoints follow
    # OpenAI's published one, and tests/test_text_generation.py drives them with its client.
    api = APIRouter(prefix="/v1", tags=["OpenAI API"], include_in_schema=False)

    def generator() -> Generator:
        if "generator" not in state:
            state["generator"] = Generator(state["predictor"])
        return state["generator"]

    def refused(error: Refused) -> JSONResponse:
        return JSONResponse(
            error_body(str(error), error.param, error.code), status_code=error.status
        )

    def record(
        prompt_text: str, text: str, usage: dict[str, int], start: float, first: Any
    ) -> None:
        """What `monitor` reads: the prompt and answer as /predict records them, with the tokens
        counted, the latency and the time to the first token."""
        if "recorder" in state:
            timing = {"latency_ms": round((time.perf_counter() - start) * 1000, 3)}
            if first is not None:
                timing["ttft_ms"] = round((first - start) * 1000, 3)
            state["recorder"].record([prompt_text], [{"text": text, "usage": usage | timing}])

    @api.get("/models")
    def models() -> dict[str, Any]:
        model = {"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "ml-flywheel"}
        return {"object": "list", "data": [model]}

    async def answer(request: Request, chat: bool) -> Any:
        start = time.perf_counter()
        try:
            body = _parse(ChatRequest if chat else CompletionRequest, await request.body())
            model = generator()
            if chat:
                messages = [{"role": m.role, "content": m.content} for m in body.messages]
                prompt = model.prompt_ids(messages, None)
                prompt_text = as_prompt(messages)  # recorded as /predict records a conversation
            else:
                if not body.prompt.strip():
                    raise Refused(400, "prompt: the prompt is empty: send non-blank text", "prompt")
                prompt, prompt_text = model.prompt_ids(None, body.prompt), body.prompt
            settings = model.settings(body, prompt)
        except Refused as error:
            return refused(error)
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        kind = "chat.completion" if chat else "text_completion"
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            cancelled = threading.Event()
            pieces = model.stream(prompt, settings, cancelled)
            events = _events(pieces, len(prompt), ident, created, kind, chat, include_usage)

            async def recorded() -> AsyncIterator[str]:
                try:
                    async for event in events:
                        if isinstance(event, tuple):  # the end: what was said, for the recorder
                            text, tokens, first = event
                            record(prompt_text, text, _usage(len(prompt), tokens), start, first)
                            continue
                        yield event
                finally:  # the stream ended, or its client went away: stop generating
                    cancelled.set()

            return StreamingResponse(recorded(), media_type="text/event-stream")
        try:
            text, tokens, finish, first = await asyncio.to_thread(model.complete, prompt, settings)
        except Exception as error:  # the server's own failure, in OpenAI's shape
            return JSONResponse(server_error(error), status_code=500)
        record(prompt_text, text, _usage(len(prompt), tokens), start, first)
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {
            "id": ident,
            "object": kind,
            "created": created,
            "model": MODEL_NAME,
            "choices": [choice],
            "usage": _usage(len(prompt), tokens),
        }

    @api.post("/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await answer(request, chat=True)

    @api.post("/completions")
    async def completions(request: Request) -> Any:
        return await answer(request, chat=False)

    return api


async def _events(
    pieces: Iterator[tuple[str, Any]],
    prompt_tokens: int,
    ident: str,
    created: int,
    kind: str,
    chat: bool,
    include_usage: bool,
) -> AsyncIterator[str | tuple]:
    """Server-sent events as OpenAI streams them: a chunk per piece of text, a last chunk with
    the finish reason (and usage where asked), then `data: [DONE]`."""
    chunk_kind = f"{kind}.chunk" if chat else kind
    done = object()

    def chunk(delta: str | None, finish: str | None, role: bool = False) -> str:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if chat:
            choice["delta"] = ({"role": "assistant"} if role else {}) | (
                {"content": delta} if delta is not None else {}
            )
        else:
            choice["text"] = delta or ""
        body = {"id": ident, "object": chunk_kind, "created": created, "model": MODEL_NAME}
        return f"data: {json.dumps(body | {'choices': [choice]})}\n\n"

    if chat:
        yield chunk("", None, role=True)
    while True:
        try:
            item: Any = await asyncio.to_thread(next, pieces, done)
        except Exception as error:  # after the 200: an error event ends the stream
            yield f"data: {json.dumps(server_error(error))}\n\n"
            break
        if item is done:
            break
        what, value = item
        if what == "text":
            yield chunk(value, None)
            continue
        text, tokens, finish, first = value
        yield chunk(None if chat else "", finish)
        if include_usage:
            last = {"id": ident, "object": chunk_kind, "created": created, "model": MODEL_NAME}
            last |= {"choices": [], "usage": _usage(prompt_tokens, tokens)}
            yield f"data: {json.dumps(last)}\n\n"
        yield text, tokens, first  # not sent: what the recorder keeps
    yield "data: [DONE]\n\n"
