"""The HTTP API on a real server, through the official ``pusher`` SDK and hand-signed requests."""

from __future__ import annotations

import json
import time
import urllib.parse

import pusher
import pytest
import requests

from panel_pusher import signatures

from .helpers import presence_data, sdk


def signed_url(server, method, path, body=b"", *, params=None, key=None, secret=None,
               timestamp=None, md5=True):
    """Return the URL of a request signed as the HTTP API requires."""
    query = {
        "auth_key": key or server.key,
        "auth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "auth_version": "1.0",
        **(params or {}),
    }
    if md5:
        query["body_md5"] = signatures.body_md5(body)
    query["auth_signature"] = signatures.sign(
        secret or server.secret, signatures.request_string(method, path, query)
    )
    return f"{server.url}{path}?{urllib.parse.urlencode(query)}"


def post(server, path, payload, **kwargs):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    url = signed_url(server, "POST", path, body, **kwargs)
    return requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)


def get(server, path, **kwargs):
    return requests.get(signed_url(server, "GET", path, **kwargs), timeout=5)


def events_path(server):
    return f"/apps/{server.app_id}/events"


def event(data="x", **extra):
    return {"name": "ev", "channels": ["news"], "data": data, **extra}


def test_sdk_trigger_delivered(server, connect):
    client = connect()
    client.subscribe("news")
    assert sdk(server).trigger(["news"], "ev", {"msg": "h\u00e9llo"}) == {}
    assert json.loads(client.receive()["data"]) == {"msg": "h\u00e9llo"}


def test_sdk_trigger_batch(server, connect):
    client = connect()
    client.subscribe("news")
    batch = [{"channel": "news", "name": "ev", "data": str(index)} for index in range(10)]
    assert sdk(server).trigger_batch(batch) == {}
    assert [client.receive()["data"] for _ in range(10)] == [str(index) for index in range(10)]


def test_sdk_channels_info(server, connect):
    first = connect()
    second = connect()
    first.subscribe("news")
    first.subscribe("presence-room", channel_data=presence_data("u1"))
    second.subscribe("presence-room", channel_data=presence_data("u2"))
    client = sdk(server)

    assert client.channels_info() == {"channels": {"news": {}, "presence-room": {}}}
    assert client.channels_info("presence-", ["user_count"]) == {
        "channels": {"presence-room": {"user_count": 2}}
    }
    assert client.channel_info("news", ["subscription_count"]) == {"occupied": True, "subscription_count": 1}
    assert client.channel_info("presence-room", ["user_count"]) == {"occupied": True, "user_count": 2}
    assert client.channel_info("empty") == {"occupied": False}
    assert client.users_info("presence-room") == {"users": [{"id": "u1"}, {"id": "u2"}]}


def test_sdk_authenticate_accepted(server, connect):
    client = connect()
    auth = sdk(server).authenticate("presence-x", client.socket_id, {"user_id": "u1", "user_info": {"a": 1}})
    reply = client.subscribe("presence-x", auth=auth["auth"], channel_data=auth["channel_data"])
    assert reply["event"] == "pusher_internal:subscription_succeeded"


def test_sdk_authenticate_user_accepted(server, connect):
    client = connect()
    auth = sdk(server).authenticate_user(client.socket_id, {"id": "u1"})
    client.send("pusher:signin", auth)
    assert client.receive()["event"] == "pusher:signin_success"


def test_sdk_encrypted_trigger_relayed_untouched(server, connect):
    nacl_secret = pytest.importorskip("nacl.secret")
    import base64
    import hashlib

    master = base64.b64encode(b"k" * 32).decode()
    client = connect()
    api = sdk(server, encryption_master_key_base64=master)
    auth = api.authenticate("private-encrypted-x", client.socket_id)
    client.subscribe("private-encrypted-x", auth=auth["auth"])
    api.trigger("private-encrypted-x", "secret", {"msg": "hi"})

    payload = json.loads(client.receive()["data"])
    key = hashlib.sha256(b"private-encrypted-x" + b"k" * 32).digest()
    box = nacl_secret.SecretBox(key)
    plain = box.decrypt(base64.b64decode(payload["ciphertext"]), base64.b64decode(payload["nonce"]))
    assert json.loads(plain) == {"msg": "hi"}


def test_data_of_10240_bytes_delivered(server, connect):
    client = connect()
    client.subscribe("news")
    response = post(server, events_path(server), event("x" * 10240))
    assert response.status_code == 200
    assert len(client.receive()["data"]) == 10240


def test_data_of_10241_bytes_rejected_413(server, connect):
    client = connect()
    client.subscribe("news")
    response = post(server, events_path(server), event("x" * 10241))
    assert response.status_code == 413
    assert "10240" in response.json()["error"]
    client.expect_silence()


def test_data_size_counts_utf8_bytes(server):
    response = post(server, events_path(server), event("\u00e9" * 5121))
    assert response.status_code == 413


def test_101_channels_rejected(server):
    response = post(server, events_path(server), event(channels=[f"c{i}" for i in range(101)]))
    assert response.status_code == 400
    assert "101 channels" in response.json()["error"]


def test_100_channels_accepted(server):
    response = post(server, events_path(server), event(channels=[f"c{i}" for i in range(100)]))
    assert response.status_code == 200


def test_201_character_event_name_rejected(server):
    response = post(server, events_path(server), {**event(), "name": "e" * 201})
    assert response.status_code == 400
    assert post(server, events_path(server), {**event(), "name": "e" * 200}).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"channels": ["news"], "data": "x"},
        {"name": 5, "channels": ["news"], "data": "x"},
        {"name": "ev", "data": "x"},
        {"name": "ev", "channels": [], "data": "x"},
        {"name": "ev", "channels": "news", "data": "x"},
        {"name": "ev", "channels": ["bad name"], "data": "x"},
        {"name": "ev", "channels": ["c" * 201], "data": "x"},
        {"name": "ev", "channels": ["news"], "data": {"not": "a string"}},
        {"name": "ev", "channels": ["news"]},
        {"name": "ev", "channels": ["news"], "data": "x", "socket_id": "abc"},
        {"name": "ev", "channels": ["news"], "data": "x", "info": "bogus"},
        {"name": "ev", "channels": ["private-encrypted-a", "private-encrypted-b"], "data": "x"},
        [1, 2],
    ],
)
def test_bad_event_body_rejected_400(server, payload):
    response = post(server, events_path(server), payload)
    assert response.status_code == 400
    assert response.json()["error"]


def test_body_not_json_rejected_400(server):
    response = post(server, events_path(server), b"{not json")
    assert response.status_code == 400


def test_trigger_info_attributes(server, connect):
    client = connect()
    client.subscribe("presence-room", channel_data=presence_data("u1"))
    response = post(
        server, events_path(server),
        {"name": "ev", "channels": ["presence-room", "news"], "data": "x",
         "info": "user_count,subscription_count"},
    )
    assert response.json() == {
        "channels": {
            "presence-room": {"user_count": 1, "subscription_count": 1},
            "news": {"subscription_count": 0},
        }
    }


def test_batch_of_11_rejected(server):
    batch = [{"channel": "news", "name": "ev", "data": "x"}] * 11
    response = post(server, f"/apps/{server.app_id}/batch_events", {"batch": batch})
    assert response.status_code == 400
    assert "11 events" in response.json()["error"]


def test_bad_batch_sends_nothing(server, connect):
    client = connect()
    client.subscribe("news")
    batch = [{"channel": "news", "name": "ev", "data": "x"}, {"channel": "news", "name": "ev", "data": "y" * 10241}]
    response = post(server, f"/apps/{server.app_id}/batch_events", {"batch": batch})
    assert response.status_code == 413
    client.expect_silence()


@pytest.mark.parametrize("payload", [{}, {"batch": "x"}, {"batch": [5]}])
def test_bad_batch_body_rejected_400(server, payload):
    response = post(server, f"/apps/{server.app_id}/batch_events", payload)
    assert response.status_code == 400


def test_forged_signature_rejected_401(server):
    response = post(server, events_path(server), event(), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {"error": "invalid auth_signature"}


def test_stale_timestamp_rejected_401(server):
    response = post(server, events_path(server), event(), timestamp=int(time.time()) - 601)
    assert response.status_code == 401
    assert "auth_timestamp" in response.json()["error"]


def test_future_timestamp_rejected_401(server):
    assert post(server, events_path(server), event(), timestamp=int(time.time()) + 601).status_code == 401


def test_tampered_body_rejected_401(server):
    body = json.dumps(event("original")).encode()
    url = signed_url(server, "POST", events_path(server), body)
    tampered = json.dumps(event("tampered")).encode()
    response = requests.post(url, data=tampered, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": "body_md5 does not match the body"}


def test_tampered_query_rejected_401(server):
    url = signed_url(server, "GET", f"/apps/{server.app_id}/channels")
    response = requests.get(url + "&filter_by_prefix=private-", timeout=5)
    assert response.status_code == 401


def test_missing_body_md5_with_body_rejected_401(server):
    assert post(server, events_path(server), event(), md5=False).status_code == 401


def test_get_without_body_md5_accepted(server):
    assert get(server, f"/apps/{server.app_id}/channels", md5=False).status_code == 200


def test_wrong_key_rejected_401(server):
    assert post(server, events_path(server), event(), key="other-key").status_code == 401


@pytest.mark.parametrize("version", ["2.0", ""])
def test_wrong_auth_version_rejected_401(server, version):
    query = {"auth_key": server.key, "auth_timestamp": str(int(time.time())), "auth_version": version}
    path = f"/apps/{server.app_id}/channels"
    query["auth_signature"] = signatures.sign(server.secret, signatures.request_string("GET", path, query))
    response = requests.get(f"{server.url}{path}?{urllib.parse.urlencode(query)}", timeout=5)
    assert response.status_code == 401


def test_unsigned_request_rejected_401(server):
    response = requests.post(server.url + events_path(server), json=event(), timeout=5)
    assert response.status_code == 401


def test_unknown_app_id_404(server):
    response = post(server, "/apps/999/events", event())
    assert response.status_code == 404


def test_sdk_reports_bad_auth(server):
    client = pusher.Pusher(app_id=server.app_id, key=server.key, secret="wrong", host="127.0.0.1",
                           port=server.port, ssl=False)
    with pytest.raises(pusher.errors.PusherBadAuth):
        client.trigger("news", "ev", "x")


def test_channels_user_count_needs_presence_prefix(server):
    response = get(server, f"/apps/{server.app_id}/channels", params={"info": "user_count"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("channel", "info"),
    [("news", "user_count"), ("presence-x", "subscription_count"), ("news", "bogus")],
)
def test_channel_info_wrong_attribute_400(server, channel, info):
    response = get(server, f"/apps/{server.app_id}/channels/{channel}", params={"info": info})
    assert response.status_code == 400


def test_channel_info_bad_name_400(server):
    response = get(server, f"/apps/{server.app_id}/channels/bad%20name")
    assert response.status_code == 400


def test_users_of_non_presence_channel_400(server):
    response = get(server, f"/apps/{server.app_id}/channels/news/users")
    assert response.status_code == 400


def test_channel_info_cache(server):
    sdk(server).trigger("cache-x", "ev", "cached")
    response = get(server, f"/apps/{server.app_id}/channels/cache-x", params={"info": "cache"})
    cache = response.json()["cache"]
    assert cache["data"] == "cached"
    assert 0 < cache["ttl"] <= 3600


def test_terminate_with_app_prefix(server, connect):
    client = connect()
    client.sign_in("u7")
    response = post(server, f"/apps/{server.app_id}/users/u7/terminate_connections", {})
    assert response.json() == {}
    assert client.receive()["data"]["code"] == 4009


def test_unknown_path_404_json(server):
    response = requests.get(server.url + "/nope", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_signature_never_logged(server, caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="panel_pusher"):
        url = signed_url(server, "POST", events_path(server), b"{}", secret="wrong")
        requests.post(url, data=b"{}", timeout=5)
        sdk(server).trigger("news", "ev", "x")

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "auth_signature=" not in text
    assert server.secret not in text
    assert "401 POST /apps/1001/events" in text


def test_body_over_limit_refused(server):
    import socket

    # Only the headers are sent: the server must refuse from Content-Length alone.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            f"POST /apps/{server.app_id}/events HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {2 * 1024 * 1024}\r\n\r\n".encode()
        )
        reply = sock.recv(4096)

    assert reply.startswith(b"HTTP/1.1 400")
    assert requests.get(server.url + "/health", timeout=5).status_code == 200
