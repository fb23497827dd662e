"""Run pusher-js under Node and exchange JSON lines with it.

`PusherJsClient` starts ``pusher_js_client.js`` in a child process and
collects every record it prints. It signs the client's authorization requests
with the ``pusher`` SDK and lets a test wait for a record that matches.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pusher

logger = logging.getLogger(__name__)

CLIENT_SCRIPT = Path(__file__).with_name("pusher_js_client.js")

# Upper bound for one wait; only stops a hung test, no timing is asserted.
DEFAULT_WAIT_SECONDS = 20.0

# Version range installed from npm for the tests.
PUSHER_JS_SPEC = "pusher-js@8"

# Below the suite's 120 s per-test timeout, so that a slow install fails with this message.
NPM_INSTALL_TIMEOUT_SECONDS = 100

Record = dict[str, Any]
Authorizer = Callable[[Record], dict[str, Any]]


class NodeUnavailable(RuntimeError):
    """Node, npm or the pusher-js package cannot be used on this machine."""


def find_node() -> str:
    """Return the path of the ``node`` executable or raise NodeUnavailable."""
    node = shutil.which("node")
    if node is None:
        raise NodeUnavailable("node is not on PATH, so the pusher-js tests cannot run")

    return node


def default_cache_dir() -> Path:
    """Return the npm prefix for the test install, outside the repository."""
    configured = os.environ.get("PANEL_PUSHER_NODE_CACHE")
    if configured:
        return Path(configured)

    return Path.home() / ".cache" / "panel_pusher-tests" / "pusher-js-8"


def installed_pusher_js_version(prefix: Path) -> str | None:
    """Return the pusher-js version installed under prefix, or None."""
    manifest = prefix / "node_modules" / "pusher-js" / "package.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_pusher_js(prefix: Path) -> Path:
    """Install pusher-js 8 under prefix unless it is there, and return node_modules.

    The package goes to a temporary sibling folder first and is renamed into
    place, so an interrupted install never leaves a half-filled cache.
    """
    version = installed_pusher_js_version(prefix)
    if version is not None and version.startswith("8."):
        return prefix / "node_modules"

    npm = shutil.which("npm")
    if npm is None:
        raise NodeUnavailable("npm is not on PATH, so pusher-js cannot be installed")

    prefix.parent.mkdir(parents=True, exist_ok=True)
    staging = prefix.with_name(f"{prefix.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    command = [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(staging), PUSHER_JS_SPEC]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise NodeUnavailable(f"npm install {PUSHER_JS_SPEC} timed out after {NPM_INSTALL_TIMEOUT_SECONDS} s") from exc

    if completed.returncode != 0 or installed_pusher_js_version(staging) is None:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (completed.stderr or completed.stdout).strip()[-800:]
        raise NodeUnavailable(f"npm install {PUSHER_JS_SPEC} failed with exit code {completed.returncode}: {tail}")

    # Another test process may have filled the cache meanwhile; keep its copy.
    if installed_pusher_js_version(prefix) is None:
        shutil.rmtree(prefix, ignore_errors=True)
        os.replace(staging, prefix)
    else:
        shutil.rmtree(staging, ignore_errors=True)

    return prefix / "node_modules"


@dataclass
class SdkAuthorizer:
    """Sign channel subscriptions and user sign-ins with the ``pusher`` SDK.

    ``user_id`` and ``user_info`` make the presence member and the signed-in
    user. ``tamper`` replaces every signature with a wrong one of the same form.
    """

    sdk: pusher.Pusher
    user_id: str = "user-1"
    user_info: dict[str, Any] = field(default_factory=dict)
    tamper: bool = False

    def __call__(self, request: Record) -> dict[str, Any]:
        socket_id = request["socket_id"]

        if request["kind"] == "user":
            user_data = {"id": self.user_id, "user_info": self.user_info}
            response = dict(self.sdk.authenticate_user(socket_id, user_data))
        else:
            channel = request["channel"]
            custom_data = None
            if channel.startswith("presence-"):
                custom_data = {"user_id": self.user_id, "user_info": self.user_info}
            response = dict(self.sdk.authenticate(channel, socket_id, custom_data))

        # pusher 3.3.4 returns the encrypted channel's shared_secret as bytes.
        secret = response.get("shared_secret")
        if isinstance(secret, bytes):
            response["shared_secret"] = secret.decode("ascii")

        if self.tamper:
            key, _, signature = response["auth"].partition(":")
            flipped = "0" if signature[0] != "0" else "1"
            response["auth"] = f"{key}:{flipped}{signature[1:]}"

        return response


class PusherJsClient:
    """One pusher-js client in a Node child process.

    Records printed by the client are kept in ``records`` in arrival order.
    ``authorizer`` is called with each ``auth_request`` record. It returns the
    response dict that pusher-js expects, or raises to make the request fail.
    """

    def __init__(
        self,
        node: str,
        node_modules: Path,
        *,
        key: str,
        port: int,
        authorizer: Authorizer,
        name: str = "client",
        host: str = "127.0.0.1",
    ) -> None:
        self.name = name
        self.authorizer = authorizer
        self.records: list[Record] = []
        self.ended = False  # True once the client's stdout reached end of file
        self.stderr_lines: list[str] = []
        self._arrived: queue.SimpleQueue[Record | None] = queue.SimpleQueue()
        self._send_lock = threading.Lock()

        options = {"key": key, "host": host, "port": port}
        env = dict(os.environ, NODE_PATH=str(node_modules))
        self.process = subprocess.Popen(
            [node, str(CLIENT_SCRIPT), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

        self._reader = threading.Thread(target=self._read_stdout, name=f"{name}-stdout", daemon=True)
        self._reader.start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, name=f"{name}-stderr", daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"type": "unparsed", "line": line.rstrip("\n")}

            if record.get("type") == "auth_request":
                self._resolve_auth(record)

            self._arrived.put(record)

        self._arrived.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def _resolve_auth(self, request: Record) -> None:
        try:
            response = self.authorizer(request)
        except Exception as exc:  # the test's authorizer decided to fail this request
            self.send({"op": "auth", "id": request["id"], "error": str(exc) or type(exc).__name__})
            return

        self.send({"op": "auth", "id": request["id"], "data": response})

    def send(self, command: dict[str, Any]) -> None:
        """Send one command line to the client."""
        assert self.process.stdin is not None
        with self._send_lock:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()

    def mark(self) -> int:
        """Return the number of records received so far, for ``wait_for(since=...)``."""
        self._drain()
        return len(self.records)

    def _drain(self) -> None:
        """Move arrived records into ``records`` and note the end of output."""
        while True:
            try:
                record = self._arrived.get_nowait()
            except queue.Empty:
                return
            if record is None:
                self.ended = True
            else:
                self.records.append(record)

    def wait_for(
        self,
        predicate: Callable[[Record], bool],
        *,
        since: int = 0,
        timeout: float = DEFAULT_WAIT_SECONDS,
        description: str = "record",
    ) -> Record:
        """Return the first record from index ``since`` on that matches predicate.

        Raises AssertionError with the records seen when none arrives within
        timeout (a hang guard) or when the client process ends first.
        """
        deadline = time.monotonic() + timeout
        index = since

        while True:
            self._drain()
            while index < len(self.records):
                record = self.records[index]
                index += 1
                if predicate(record):
                    return record

            if self.ended:
                break

            left = deadline - time.monotonic()
            if left <= 0:
                break

            try:
                record = self._arrived.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if record is None:
                self.ended = True
            else:
                self.records.append(record)

        state = "ended" if self.ended else f"timed out after {timeout} s"
        raise AssertionError(f"{self.name}: no {description} ({state}); records: {self.describe()}")

    def wait_type(self, record_type: str, *, since: int = 0, timeout: float = DEFAULT_WAIT_SECONDS, **fields: Any) -> Record:
        """Wait for a record of this type whose fields equal the keyword arguments."""

        def matches(record: Record) -> bool:
            if record.get("type") != record_type:
                return False
            return all(record.get(name) == value for name, value in fields.items())

        description = record_type + (f" {fields}" if fields else "")
        return self.wait_for(matches, since=since, timeout=timeout, description=description)

    def find(self, record_type: str, **fields: Any) -> list[Record]:
        """Return the records received so far of this type with these field values."""
        self._drain()
        return [
            record
            for record in self.records
            if record.get("type") == record_type and all(record.get(name) == value for name, value in fields.items())
        ]

    def describe(self, limit: int = 40) -> str:
        """Return the last records and stderr lines as text for failure messages."""
        lines = [json.dumps(record) for record in self.records[-limit:]]
        if self.stderr_lines:
            lines.append("stderr: " + " | ".join(self.stderr_lines[-10:]))
        return "\n  " + "\n  ".join(lines)

    def connect(self, *, timeout: float = DEFAULT_WAIT_SECONDS) -> str:
        """Wait until the client is connected and return its socket id."""
        return self.wait_type("connected", timeout=timeout)["socket_id"]

    def subscribe(self, channel: str, *, timeout: float = DEFAULT_WAIT_SECONDS) -> Record:
        """Subscribe and return the ``subscribed`` record; fail on a subscription error."""
        since = self.mark()
        self.send({"op": "subscribe", "channel": channel})

        def settled(record: Record) -> bool:
            return record.get("channel") == channel and record.get("type") in ("subscribed", "subscription_error")

        record = self.wait_for(settled, since=since, timeout=timeout, description=f"subscription result for {channel}")
        assert record["type"] == "subscribed", f"{self.name}: subscribing to {channel} failed: {record}"
        return record

    def close(self, timeout: float = 5.0) -> None:
        """Close stdin so the client exits, and kill it if it does not."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except OSError:
                pass

            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not exit within %s s; killing pid %s", self.name, timeout, self.process.pid)
                self.process.kill()
                self.process.wait(timeout)

        # The readers stop at end of file once the process has exited.
        self._reader.join(timeout)
        self._stderr_reader.join(timeout)
