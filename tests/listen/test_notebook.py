"""NotifyListen in a real Jupyter kernel (nbclient): callbacks run on the kernel's loop."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    """
import asyncio, json, threading
import panel as pn
from panel_pusher import NotifyListen, notify_entity
pn.extension()

class Room:
    def __init__(self, id):
        self.id = id

runs = []
def reload(notification):
    runs.append({"thread": threading.current_thread().name, "message_id": notification.message_id})

listener = NotifyListen(object=Room(31), actions={"refresh": reload})
listener
""",
    """
listener
""",
    """
for _ in range(500):
    if listener.status == "live":
        break
    await asyncio.sleep(0.02)
sent = notify_entity("Room", 31, "refresh", wait=True)
for _ in range(500):
    if runs:
        break
    await asyncio.sleep(0.02)
await asyncio.sleep(0.3)
print(json.dumps({"status": listener.status, "runs": runs, "sent": sent.message_id,
                  "main": threading.main_thread().name}))
""",
]


def test_notebook_callbacks_run_on_kernel_loop(settings):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    env = {
        "PUSHER_APP_ID": settings.app_id, "PUSHER_APP_KEY": settings.key,
        "PUSHER_APP_SECRET": settings.secret, "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(settings.port), "PUSHER_SCHEME": "http",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    output = json.loads(notebook.cells[2].outputs[-1]["text"])
    assert output["status"] == "live"
    # Displayed twice, the listener still runs its callback once per notification.
    assert [run["message_id"] for run in output["runs"]] == [output["sent"]]
    assert output["runs"][0]["thread"] == output["main"]
