"""`leadbot sandbox` as a subprocess: URL on the first line, serves, stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_prints_the_base_url_first_serves_and_stops_on_ctrl_c() -> None:
    process = start_cli("--port", "0", "--leads", "30", "--hopper-size", "5", "--csv-dialect", "semicolon")
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert int(base_url.rsplit(":", 1)[1]) > 0
        banner: list[str] = []
        for line in process.stdout:  # the human lines, up to "Stop with Ctrl-C."
            banner.append(line)
            if line.startswith("Stop with Ctrl-C") or len(banner) > 20:
                break
        assert any("curl" in line for line in banner)
        assert banner[-1].startswith("Stop with Ctrl-C")
        form = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
        token = httpx.post(f"{base_url}/oauth/token", data=form).json()["access_token"]
        lists = httpx.get(f"{base_url}/api/v2/outbound/lists", headers={"Authorization": f"Bearer {token}"})
        assert {item["name"]: item["count"] for item in lists.json()["items"]}["Spring leads"] == 30
        spring = next(item["id"] for item in lists.json()["items"] if item["name"] == "Spring leads")
        exported = httpx.get(
            f"{base_url}/api/v2/outbound/lists/{spring}/leads",
            params={"format": "csv"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert exported.text.startswith("id;uid;number;")  # --csv-dialect semicolon
        assert any("--csv-dialect semicolon --csv-headers babelforce" in line for line in banner)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "empty", "--leads", "5"], "--leads"),
        (["--port", "70000"], "--port"),
        (["--hopper-size", "0"], "--hopper-size"),
        (["--seed", "lots"], "--seed"),
    ],
)
def test_cli_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sandbox", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
