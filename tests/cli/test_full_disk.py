"""Starting on a store that cannot be written: one line saying so, exit 1, no traceback."""

from __future__ import annotations

from pathlib import Path

from tests.coordinator.test_store_faults import fill, small_filesystem

from .conftest import free_port, spawn_aitbc


async def test_a_coordinator_on_a_full_disk_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "home", "1m") as home:
        fill(home)
        env = {"AITBC_HOME": str(home)}
        async with spawn_aitbc("coordinator", "--listen", f"127.0.0.1:{free_port()}", env=env) as spawned:
            status, _, err = await spawned.finish()
    assert status == 1
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("aitbc coordinator:")]
    assert len(lines) == 1, err
    assert "cannot" in lines[0]
    assert "disk" in lines[0]
