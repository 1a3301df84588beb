"""What the measuring scripts share: a free port, sha256 digests, and moto_server started
through tests/moto_launcher.py (so its ECR answers as AWS does), stopped when done."""

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def moto(stderr=subprocess.DEVNULL):
    """Yields the port of a running moto_server; it exits when the block ends."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests", "moto_launcher.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        server.stdin.close()
        server.wait(timeout=10)
