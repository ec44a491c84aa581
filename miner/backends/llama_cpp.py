"""CPU inference with llama.cpp, through llama-cpp-python.

Only the backend registry imports this module, and only when the llama.cpp backend is chosen, so that
`import miner` works where llama-cpp-python is not installed.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import os
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import jinja2
import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_types import ChatCompletionRequestMessage

from miner.backends.base import (
    Backend,
    ChatMessage,
    FinishReason,
    GenerationRequest,
    InvalidRequestError,
    TokenChunk,
)
from miner.backends.stop_strings import StopStringScanner
from miner.backends.thread_bridge import ThreadBridge
from miner.model_files import SMOLLM2_MODEL_ID, resolve_gguf

DEFAULT_CONTEXT_TOKENS = 2048
# Chunks the generation thread may run ahead of the agent before it waits: enough to ride out a slow write,
# few enough that a stalled stream stops the CPU within a fraction of a second.
_BRIDGE_CAPACITY = 64
# Longest piece of text one token decodes to, in bytes, before `_Detokenizer` has to grow its buffer.
_PIECE_BUFFER_BYTES = 256


class LlamaCppBackend(Backend):
    """A GGUF model on the CPU. One model instance, so one generation at a time."""

    def __init__(
        self,
        *,
        model: str | None = None,
        model_name: str = SMOLLM2_MODEL_ID,
        n_ctx: int = DEFAULT_CONTEXT_TOKENS,
        n_threads: int | None = None,
    ) -> None:
        """Load the model, which blocks. `model` is a GGUF path or a known model id; the default is SmolLM2."""
        path = resolve_gguf(model)
        self._model_name = model_name
        self._llama = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(), verbose=False
        )
        vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        template = self._llama.metadata.get("tokenizer.chat_template")
        if vocab is None or template is None:
            self._llama.close()
            raise ValueError(f"{path} has no vocabulary or no chat template (tokenizer.chat_template)")
        self._vocab = vocab
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(vocab, self._llama.token_eos()),
            bos_token=_token_text(vocab, self._llama.token_bos()),
        )
        # A Llama instance is not thread-safe: everything that runs the model goes through this one thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")

    @property
    def backend_name(self) -> str:
        return "llama.cpp"

    @property
    def models(self) -> Sequence[str]:
        return (self._model_name,)

    @property
    def max_concurrency(self) -> int:
        return 1

    async def count_prompt_tokens(self, request: GenerationRequest) -> int:
        self.check_model(request.model)
        # Tokenizing only reads the vocabulary, which llama.cpp allows next to a running generation.
        count = len(await asyncio.to_thread(self._tokenize, self._prompt_text(request)))
        if count >= self._llama.n_ctx():
            raise InvalidRequestError(
                f"prompt is {count} tokens but the model's context holds {self._llama.n_ctx()} in all"
            )
        return count

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[TokenChunk, None]:
        self.check_model(request.model)
        loop = asyncio.get_running_loop()
        bridge: ThreadBridge[TokenChunk] = ThreadBridge(loop, _BRIDGE_CAPACITY)
        work = loop.run_in_executor(self._executor, self._generate_blocking, request, bridge)
        try:
            async for chunk in bridge:
                yield chunk
        except BaseException:
            # Cancelled, closed early, or the consumer failed: the thread notices at its next token. Waiting for
            # it means the model is free (and the CPU idle) once this generator is gone.
            bridge.stop()
            with contextlib.suppress(Exception):
                await work
            raise
        await work

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown)
        self._llama.close()

    def _prompt_text(self, request: GenerationRequest) -> str:
        """The text the model continues: the chat template applied to the conversation, or the raw prompt."""
        if request.raw:
            return request.prompt
        messages = request.messages or (ChatMessage("user", request.prompt),)
        try:
            # The template is the judge of roles (the coordinator allows system, user and assistant), not the
            # Literal role types of llama-cpp-python's OpenAI-shaped TypedDicts.
            conversation = cast(
                "list[ChatCompletionRequestMessage]", [{"role": m.role, "content": m.content} for m in messages]
            )
            formatted = self._formatter(messages=conversation)
        except (jinja2.TemplateError, ValueError) as exc:
            # Templates reject what they cannot format, e.g. roles out of order.
            raise InvalidRequestError(f"the model's chat template rejects these messages: {exc}") from exc
        return formatted.prompt

    def _tokenize(self, text: str) -> list[int]:
        # add_bos only adds BOS where the model asks for it; special=True reads the template's control tokens.
        return self._llama.tokenize(text.encode(), add_bos=True, special=True)

    def _generate_blocking(self, request: GenerationRequest, bridge: ThreadBridge[TokenChunk]) -> None:
        """The generation loop, on the model's thread. Checks `bridge.stopped` at every token."""
        try:
            # The earlier attempt's text goes in as the start of the answer: the model continues after it.
            tokens = self._tokenize(self._prompt_text(request) + request.resume_text)
            budget = min(request.tokens_to_generate, self._llama.n_ctx() - len(tokens))
            detokenizer = _Detokenizer(self._vocab)
            scanner = StopStringScanner(request.stop)
            finish_reason: FinishReason = "length"
            generated = uncounted = 0
            if budget > 0:
                # Only temperature and top_p shape the distribution: top_k, min_p and the repeat penalty are off.
                # llama-cpp-python samples greedily at temperature 0.
                for token in self._llama.generate(
                    tokens, temp=request.temperature, top_p=request.top_p, top_k=0, min_p=0.0, repeat_penalty=1.0
                ):
                    if bridge.stopped:
                        return
                    if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                        finish_reason = "stop"
                        break
                    generated += 1
                    uncounted += 1
                    text, stopped = scanner.feed(detokenizer.feed(token))
                    if stopped:
                        bridge.put(TokenChunk(text, uncounted, "stop"))
                        return
                    if text:
                        if not bridge.put(TokenChunk(text, uncounted)):
                            return
                        uncounted = 0
                    if generated == budget:
                        break
            tail, stopped = scanner.feed(detokenizer.flush())
            if not stopped:
                tail += scanner.flush()
            bridge.put(TokenChunk(tail, uncounted, "stop" if stopped else finish_reason))
        finally:
            bridge.close()


class _Detokenizer:
    """Token ids to text, one token at a time, keeping characters that span tokens whole."""

    def __init__(self, vocab: llama_cpp.llama_vocab_p) -> None:
        self._vocab = vocab
        self._buffer = ctypes.create_string_buffer(_PIECE_BUFFER_BYTES)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        return self._utf8.decode(self._piece(token))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)

    def _piece(self, token: int) -> bytes:
        # Not Llama.detokenize: its 32-byte buffer garbles longer pieces, and SmolLM2 has pieces of 81 bytes.
        size = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, False)
        if size < 0:
            # The piece needs -size bytes.
            self._buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, False)
        return self._buffer.raw[:size]


def _token_text(vocab: llama_cpp.llama_vocab_p, token: int) -> str:
    """A special token's text, for chat templates that write it out; "" when the model has no such token."""
    return llama_cpp.llama_vocab_get_text(vocab, token).decode() if token >= 0 else ""
