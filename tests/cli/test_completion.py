"""`aitbc completion bash|zsh`: the script completes commands, options and their choices in a real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from aitbc.cli import main

# Each case: the words typed so far (the last one being completed) and what completing it must offer.
CASES = [
    (["aitbc", "su"], ["submit"]),
    (["aitbc", "keys", ""], ["create", "list", "revoke"]),
    (["aitbc", "submit", "--pri"], ["--priority"]),
    (["aitbc", "submit", "hi", "--priority", ""], ["high", "normal", "low"]),
    (["aitbc", "up", "--backend", ""], ["llama.cpp", "synthetic"]),
    (["aitbc", "miner", "--back"], ["--backend"]),  # the miner's options load only when used; completion has them
    (["aitbc", "client", "watch", "--jo"], ["--job-id"]),
    (["aitbc", "completion", ""], ["bash", "zsh"]),
]


def script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def complete(completion_script: str, words: list[str]) -> list[str]:
    words_literal = " ".join(f"'{word}'" for word in words)
    probe = f"""{completion_script}
COMP_WORDS=({words_literal}); COMP_CWORD={len(words) - 1}
_aitbc
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_options_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    bash = script("bash", capsys)
    assert bash.rstrip().endswith("complete -o default -F _aitbc aitbc")
    for words, expected in CASES:
        assert complete(bash, words) == expected, words


def test_zsh_runs_the_same_script_through_bashcompinit(capsys: pytest.CaptureFixture[str]) -> None:
    bash = script("bash", capsys)
    zsh = script("zsh", capsys)
    assert "autoload -U +X bashcompinit && bashcompinit" in zsh
    assert zsh.endswith(bash)
    if shutil.which("zsh") is not None:
        subprocess.run(["zsh", "-n", "-c", zsh], check=True)
