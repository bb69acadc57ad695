"""Record sources and prediction sinks for ``edge-evo adapt``.

A source yields ``(record_bytes, position)``; ``position`` is the byte offset just after the
record for files (stored in checkpoints so a restart continues where the checkpoint was taken)
and None for streams that cannot be replayed (stdin, sockets).

Source specs: ``-`` (stdin), ``PATH`` or ``file:PATH`` (read, optionally follow appends),
``udp://HOST:PORT`` (bind; datagrams of one or more lines), ``tcp://HOST:PORT`` (connect to a
producer; reconnect with back-off when the connection drops), ``tcp-listen://HOST:PORT`` (accept
one producer at a time). Sinks: ``-`` (stdout), ``PATH`` (append), ``udp://``, ``tcp://``, ``none``.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

MAX_RECORD = 1 << 20      # a longer line is not a sample: skipped rather than buffered forever


def _hostport(spec: str, scheme: str) -> tuple[str, int]:
    rest = spec[len(scheme):]
    host, _, port = rest.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise ValueError(f"{spec!r}: expected {scheme}HOST:PORT, e.g. {scheme}127.0.0.1:9000") from None


class Stop:
    """Shared stop flag; sources poll it while they wait for data."""

    def __init__(self):
        self.requested = False


def file_source(path, start: int = 0, follow: bool = False, stop: Stop | None = None, poll_s: float = 0.05):
    """Lines of a file from byte ``start``; with ``follow``, wait for appended lines (tail -f). A
    partial last line is only consumed once its newline arrives (or at EOF without follow)."""
    path = Path(path)
    stop = stop or Stop()
    while not path.exists():
        if not follow:
            raise FileNotFoundError(f"source file {path} does not exist")
        if stop.requested:
            return
        time.sleep(poll_s)
    f = open(path, "rb")
    try:
        size = os.fstat(f.fileno()).st_size
        if start > size:
            log.warning("source %s is shorter (%d bytes) than the checkpoint position %d: it was truncated or "
                        "replaced; reading it from the start", path, size, start)
            start = 0
        f.seek(start)
        pos = start
        while not stop.requested:
            line = f.readline(MAX_RECORD)
            if line.endswith(b"\n") or (line and not follow):
                pos += len(line)
                yield line, pos
                continue
            if line and len(line) >= MAX_RECORD:
                pos += len(line)
                yield b"\x00oversized", pos    # reaches the parser as a bad record
                continue
            f.seek(pos)                        # partial line: re-read it once complete
            if not follow:
                return
            try:
                if os.stat(path).st_size < pos:
                    log.warning("source %s was truncated; reading it from the start", path)
                    f.close()
                    f = open(path, "rb")
                    pos = 0
            except FileNotFoundError:
                pass
            time.sleep(poll_s)
    finally:
        f.close()


def stdin_source(stop: Stop | None = None):
    stop = stop or Stop()
    for line in sys.stdin.buffer:
        if stop.requested:
            return
        yield line, None


def udp_source(spec: str, stop: Stop | None = None, timeout_s: float = 0.2):
    stop = stop or Stop()
    host, port = _hostport(spec, "udp://")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.settimeout(timeout_s)
    log.info("listening for UDP records on %s:%d", host, port)
    try:
        while not stop.requested:
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                continue
            for line in data.splitlines():
                yield line, None
    finally:
        sock.close()


def _lines_from(sock: socket.socket, stop: Stop):
    buf = b""
    while not stop.requested:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            if buf.strip():
                yield buf
            return
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            yield line
        if len(buf) > MAX_RECORD:
            buf = b""
            yield b"\x00oversized"


def tcp_source(spec: str, stop: Stop | None = None, timeout_s: float = 0.2, max_backoff_s: float = 2.0):
    """Connect to a producer; when the connection drops or is refused, retry with back-off."""
    stop = stop or Stop()
    host, port = _hostport(spec, "tcp://")
    backoff = 0.05
    while not stop.requested:
        try:
            sock = socket.create_connection((host, port), timeout=1.0)
        except OSError as e:
            log.warning("tcp source %s:%d unavailable (%s); retrying in %.2f s", host, port, e.strerror or e, backoff)
            time.sleep(backoff)
            backoff = min(max_backoff_s, backoff * 2)
            continue
        backoff = 0.05
        sock.settimeout(timeout_s)
        log.info("connected to %s:%d", host, port)
        try:
            for line in _lines_from(sock, stop):
                yield line, None
        except OSError as e:
            log.warning("tcp source %s:%d dropped (%s); reconnecting", host, port, e)
        finally:
            sock.close()
        if not stop.requested:
            log.warning("tcp source %s:%d closed the connection; reconnecting", host, port)


def tcp_listen_source(spec: str, stop: Stop | None = None, timeout_s: float = 0.2):
    stop = stop or Stop()
    host, port = _hostport(spec, "tcp-listen://")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(timeout_s)
    try:
        while not stop.requested:
            try:
                conn, addr = srv.accept()
            except socket.timeout:
                continue
            conn.settimeout(timeout_s)
            try:
                for line in _lines_from(conn, stop):
                    yield line, None
            except OSError as e:
                log.warning("producer %s dropped (%s); waiting for the next one", addr, e)
            finally:
                conn.close()
    finally:
        srv.close()


def open_source(spec: str, start: int = 0, follow: bool = False, stop: Stop | None = None):
    """The record iterator for a source spec (see the module docstring)."""
    if spec == "-":
        return stdin_source(stop)
    if spec.startswith("udp://"):
        return udp_source(spec, stop)
    if spec.startswith("tcp-listen://"):
        return tcp_listen_source(spec, stop)
    if spec.startswith("tcp://"):
        return tcp_source(spec, stop)
    path = spec[5:] if spec.startswith("file:") else spec
    return file_source(path, start, follow, stop)


def replayable(spec: str) -> bool:
    return not (spec == "-" or "://" in spec)


# ----------------------------------------------------------------------------- sinks
class Sink:
    """Writes ``index,prediction`` lines. Socket sinks never block the loop: a failed send is
    counted and the socket re-opened on the next record."""

    def __init__(self, spec: str | None):
        self.spec = spec or "none"
        self.errors = 0
        self._f = None
        self._sock = None
        self._addr = None
        if self.spec == "-":
            self._f = sys.stdout
        elif self.spec.startswith("udp://"):
            self._addr = _hostport(self.spec, "udp://")
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        elif self.spec.startswith("tcp://"):
            self._addr = _hostport(self.spec, "tcp://")
        elif self.spec != "none":
            self._f = open(self.spec, "a", buffering=1)

    def write(self, index: int, pred) -> None:
        if self.spec == "none":
            return
        text = f"{index},{pred:.6g}\n" if isinstance(pred, float) else f"{index},{pred}\n"
        if self._f is not None:
            self._f.write(text)
            return
        data = text.encode()
        try:
            if self.spec.startswith("udp://"):
                self._sock.sendto(data, self._addr)
            else:
                if self._sock is None:
                    self._sock = socket.create_connection(self._addr, timeout=0.5)
                self._sock.sendall(data)
        except OSError:
            self.errors += 1
            if self.spec.startswith("tcp://") and self._sock is not None:
                self._sock.close()
                self._sock = None

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None and self._f is not sys.stdout:
            self._f.close()
        if self._sock is not None:
            self._sock.close()
