"""``POST /slack/events`` under attack, over real sockets to the app served by waitress as
``dbops serve --http`` serves it: nothing a stranger sends is recorded or read beyond a fixed
cap, and what Slack signed is still accepted once and only once."""

from __future__ import annotations

import secrets
import socket
import time

import pytest

from bot.slack.http import MAX_BODY_BYTES, MAX_HEADER_BYTES
from bot.slack.replay import ReplayGuard
from tests.slack_bed import SECRET, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import sign, slash_command_body

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY);", "1_users.down.sql": "DROP TABLE users;"}


@pytest.fixture
def scenario(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"])
        with serving(bed, fake, control_url) as scenario:
            yield scenario


def _read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body the server sent before it closed the connection."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:  # it closed with our unread bytes still queued: its answer came first
        pass
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One POST on its own connection, sent as raw bytes (header sizes no client library allows)."""
    lines = ["POST /slack/events HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             f"Content-Length: {len(body)}"] + [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return _read_answer(sock)


def test_forged_requests_with_huge_signature_headers_leave_the_replay_guard_empty(scenario):
    body = slash_command_body("/migrate", "up", response_url=scenario.fake.response_url())
    now = str(int(time.time()))
    form = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": now}

    for _ in range(150):  # just under the header cap: each reaches the signature check
        forged = f"v0={secrets.token_hex(32)}" + secrets.token_hex(MAX_HEADER_BYTES // 2 - 600)
        assert _post(scenario.port, body.encode(), {**form, "X-Slack-Signature": forged}) == (
            401, b"invalid signature\n")
    for _ in range(150):  # the 200 KB headers: refused before the app sees them
        status, answer = _post(scenario.port, body.encode(), {**form, "X-Slack-Signature": "v0=" + "f" * 200_000})
        assert status == 431 and b"Request Header Fields Too Large" in answer
    wrong_secret = sign("not-the-signing-secret", body)
    assert _post(scenario.port, body.encode(), wrong_secret)[0] == 401

    assert len(scenario.http.replays) == 0  # nothing unverified was kept
    assert scenario.bed.state() is None  # and nothing ran


def test_a_genuine_request_is_recorded_once_and_its_replay_refused(scenario):
    body = slash_command_body("/migrate", "status", response_url=scenario.fake.response_url())
    headers = sign(SECRET, body)

    assert _post(scenario.port, body.encode(), headers)[0] == 200
    assert len(scenario.http.replays) == 1
    assert _post(scenario.port, body.encode(), headers) == (401, b"replayed request\n")
    assert len(scenario.http.replays) == 1
    scenario.fake.wait_for_response(lambda r: "1 pending" in text_of(r.body))
    assert len(scenario.fake.responses) == 1  # answered once


def test_a_declared_body_over_the_cap_gets_413_before_a_byte_of_it_is_sent(scenario):
    head = (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'0' * 64}\r\n"
            f"Content-Length: {150 * 1024 * 1024}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", scenario.port), timeout=30) as sock:
        sock.sendall(head.encode())  # the 150 MB body is never sent: the answer cannot wait for it
        status, answer = _read_answer(sock)

    assert status == 413 and b"Request Entity Too Large" in answer
    assert len(scenario.http.replays) == 0


def test_a_chunked_body_is_cut_off_with_413_once_it_passes_the_cap(scenario):
    piece = b"x" * 4096
    framed = b"%x\r\n" % len(piece) + piece + b"\r\n"
    with socket.create_connection(("127.0.0.1", scenario.port), timeout=30) as sock:
        sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while sent <= MAX_BODY_BYTES:  # no last chunk: the body would go on for ever
            sock.sendall(framed)
            sent += len(framed)
        status, answer = _read_answer(sock)

    assert status == 413 and b"Request Entity Too Large" in answer
    assert sent < MAX_BODY_BYTES + 2 * len(framed)


def test_a_signed_request_as_large_as_the_cap_is_still_answered(scenario):
    url = scenario.fake.response_url()
    body = slash_command_body("/migrate", "status", response_url=url) + "&padding="
    body += "p" * (MAX_BODY_BYTES - len(body))  # an interactive payload carrying a large modal, say

    assert _post(scenario.port, body.encode(), sign(SECRET, body))[0] == 200
    scenario.fake.wait_for_response(lambda r: r.url_id == url.rsplit("/", 1)[1] and "1 pending" in text_of(r.body))


def test_the_replay_guard_keeps_at_most_its_cap_and_forgets_what_can_no_longer_verify():
    now = [0.0]
    guard = ReplayGuard(clock=lambda: now[0], max_entries=100)
    signatures = [f"v0={secrets.token_hex(32)}" for _ in range(300)]

    assert all(guard.first_time(s) for s in signatures)
    assert len(guard) == 100  # the newest hundred
    assert not guard.first_time(signatures[-1])

    now[0] = ReplayGuard.WINDOW_SECONDS - 1  # a timestamp five minutes ahead still verifies here
    assert not guard.first_time(signatures[-1])
    now[0] = ReplayGuard.WINDOW_SECONDS
    assert guard.first_time(signatures[-1])  # Slack's clock check refuses it by now
    assert len(guard) == 1
