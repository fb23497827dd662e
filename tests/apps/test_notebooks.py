"""Execute the notebooks with nbclient against an embedded server started here."""

from __future__ import annotations

import ast
import json
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from panel_pusher.server import start_server

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

pytestmark = pytest.mark.slow

# Seconds one cell may run; the cells wait at most 15 s for a callback.
CELL_TIMEOUT = 90

PUSHER_VARIABLES = (
    "PUSHER_APP_ID",
    "PUSHER_APP_KEY",
    "PUSHER_APP_SECRET",
    "PUSHER_APP_CLUSTER",
    "PUSHER_HOST",
    "PUSHER_PORT",
    "PUSHER_SCHEME",
)


@pytest.fixture(scope="module")
def server():
    with start_server(port=0) as server:
        yield server


@pytest.fixture
def kernel_env(server, monkeypatch):
    # The kernel inherits this process's environment.
    for name in PUSHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PANEL_PUSHER_PORT", str(server.port))


def load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def cell_result(cell: nbformat.NotebookNode) -> str:
    """Return the text/plain result of a code cell, or fail with what the cell printed."""
    for output in cell.outputs:
        if output.output_type == "execute_result":
            return output.data["text/plain"]

    raise AssertionError(f"cell has no result; outputs: {cell.outputs!r}")


def code_cell_index(notebook: nbformat.NotebookNode, text: str) -> int:
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and text in cell.source:
            return index

    raise AssertionError(f"no code cell contains {text!r}")


def status_of(server) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/status", timeout=5) as response:
        return json.load(response)


def run_cells(
    notebook: nbformat.NotebookNode, tmp_path: Path, repeat: tuple[int, ...] = (), stop_before: int | None = None
) -> None:
    """Execute the code cells in order, up to ``stop_before``; run the cells at ``repeat`` twice, as a user re-running them."""
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )

    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if index == stop_before:
                break
            client.execute_cell(cell, index)
            if index in repeat:
                client.execute_cell(cell, index)


def summary_of(notebook: nbformat.NotebookNode) -> dict:
    return ast.literal_eval(cell_result(notebook.cells[code_cell_index(notebook, "summary = {")]))


def test_listen_notebook_updates_pane(kernel_env, tmp_path):
    notebook = load("listen.ipynb")

    run_cells(notebook, tmp_path)
    summary = summary_of(notebook)

    assert summary["calls"] == 2
    assert summary["users"] == ["notebook", "cron"]
    assert summary["pane"] == "**Value:** 42 (changed by cron)"
    assert cell_result(notebook.cells[-1]) == "'offline'"


def rerun_indexes(notebook: nbformat.NotebookNode) -> tuple[int, int]:
    return (
        code_cell_index(notebook, "NotifyListen(object=counter"),
        code_cell_index(notebook, "pn.Column(listener, value_pane)"),
    )


def test_rerun_cells_no_stacking(kernel_env, tmp_path):
    notebook = load("listen.ipynb")

    run_cells(
        notebook, tmp_path, repeat=rerun_indexes(notebook),
        stop_before=code_cell_index(notebook, "listener.stop()\nlistener.status"),
    )
    summary = summary_of(notebook)

    assert summary["calls"] == 2
    assert summary["users"] == ["notebook", "cron"]


def test_stop_after_second_display(kernel_env, tmp_path):
    notebook = load("listen.ipynb")

    run_cells(notebook, tmp_path, repeat=rerun_indexes(notebook))

    assert cell_result(notebook.cells[-1]) == "'offline'"


def test_notify_notebook_sends(kernel_env, server, tmp_path):
    notebook = load("notify_from_outside.ipynb")
    before = status_of(server)["http_events"]

    run_cells(notebook, tmp_path)
    results = [cell_result(cell) for cell in notebook.cells if cell.cell_type == "code" and cell.outputs]

    assert "private-Room.1" in results[0]
    assert results[1] == "'private-Room.1'"
    assert results[2] == "'sent'"
    assert status_of(server)["http_events"] >= before + 3
