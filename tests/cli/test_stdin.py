"""`aitbc submit -` reads the prompt from stdin."""

from __future__ import annotations

from aitbc.client import AsyncClient
from tests.conftest import Keys

from .conftest import spawn_aitbc


async def test_a_dash_reads_the_prompt_from_stdin(cli_env: dict[str, str], target: str, keys: Keys) -> None:
    prompt = "Summarise this:\n- a list\n- of two lines"
    async with spawn_aitbc(
        "submit", "-", "--model", "tiny", "--queue", env=cli_env, stdin=(prompt + "\n").encode()
    ) as submit:
        code, out, err = await submit.finish()
    assert (code, err) == (0, "")
    async with AsyncClient(target, keys.client) as client:
        assert (await client.get_job(out.strip())).prompt == prompt


async def test_an_empty_stdin_is_an_error(cli_env: dict[str, str]) -> None:
    async with spawn_aitbc("submit", "-", "--model", "tiny", "--queue", env=cli_env, stdin=b"\n") as submit:
        code, out, err = await submit.finish()
    assert (code, out, err) == (1, "", "error: the prompt read from stdin is empty\n")
