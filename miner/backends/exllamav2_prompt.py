"""The text a model continues for a request: the model's own chat template from tokenizer_config.json, rendered
with jinja2 the way Hugging Face's apply_chat_template renders it, or the raw prompt."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from miner.backends.base import ChatMessage, GenerationRequest, InvalidRequestError


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    # Whether the tokenizer must put BOS in front: a chat template writes it itself where the model wants it.
    add_bos: bool


class PromptFormat:
    """Turns requests into prompts for one model."""

    def __init__(self, chat_template: str, *, bos_token: str, eos_token: str, raw_bos: bool) -> None:
        """`raw_bos`: whether a raw prompt starts with BOS, as the model's tokenizer would add it."""
        # As transformers sets it up: templates are written for trimmed blocks and may use break and continue.
        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        environment.globals["raise_exception"] = _raise_exception
        environment.globals["strftime_now"] = _strftime_now
        self._template = environment.from_string(chat_template)
        self._special_tokens = {"bos_token": bos_token, "eos_token": eos_token}
        self._raw_bos = raw_bos

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> PromptFormat:
        """Read tokenizer_config.json, and chat_template.jinja where newer transformers saved the template."""
        config_path = model_dir / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        template = _chat_template(config.get("chat_template"))
        template_path = model_dir / "chat_template.jinja"
        if template is None and template_path.is_file():
            template = template_path.read_text(encoding="utf-8")
        if template is None:
            raise ValueError(f"{model_dir} has no chat template (chat_template in tokenizer_config.json)")
        bos_token = _token_text(config.get("bos_token"))
        add_bos_token = config.get("add_bos_token")
        return cls(
            template,
            bos_token=bos_token,
            eos_token=_token_text(config.get("eos_token")),
            # Where the config does not say, a model that has a BOS token expects it (Llama 3 does; Qwen has none).
            raw_bos=bool(add_bos_token) if add_bos_token is not None else bool(bos_token),
        )

    def prompt(self, request: GenerationRequest) -> Prompt:
        """The request's prompt, without the text a resumed attempt continues after. Raises InvalidRequestError when
        the template rejects the conversation."""
        if request.raw:
            return Prompt(request.prompt, add_bos=self._raw_bos)
        messages = request.messages or (ChatMessage("user", request.prompt),)
        try:
            text = self._template.render(
                messages=[{"role": message.role, "content": message.content} for message in messages],
                add_generation_prompt=True,
                **self._special_tokens,
            )
        except jinja2.TemplateError as exc:
            # Templates reject what they cannot format, e.g. roles out of order.
            raise InvalidRequestError(f"the model's chat template rejects these messages: {exc}") from exc
        return Prompt(text, add_bos=False)


def _chat_template(value: object) -> str | None:
    """tokenizer_config.json's chat_template: one template, or named ones of which "default" is the chat one."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {item.get("name"): item.get("template") for item in value if isinstance(item, Mapping)}
        default = named.get("default")
        return default if isinstance(default, str) else None
    return None


def _token_text(value: object) -> str:
    """A special token as tokenizer_config.json writes it: its text, or an object with its text as content."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _raise_exception(message: str) -> NoReturn:
    raise jinja2.TemplateError(message)


def _strftime_now(format_: str) -> str:
    return datetime.datetime.now().strftime(format_)
