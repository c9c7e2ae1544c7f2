#!/usr/bin/env python3
"""The "remote" host of a NetworkLab (Tests/CorralIntegrationTests/NetworkLab.swift).

Run inside the lab's remote network namespace:

    lab_server.py --cert CERT --key KEY --connections LOG --datagrams LOG

and serves on every address of that namespace (0.0.0.0):

    tcp 80    HTTP   GET /hello -> "hello from <Host header>\\n"
                     POST /echo -> the request body
                     GET /big?n=BYTES -> BYTES bytes ("0123456789" repeated)
    tcp 443   HTTPS  the same handlers, with CERT/KEY
    tcp 7000  echo   every byte back until the client closes
    udp 5353  echo   every datagram back

Each accepted TCP connection is appended to the connections log, and each datagram to
the datagrams log, before it is served: once a client has its answer, its line is in the
log. Lines are JSON objects written with one write(2) on an O_APPEND descriptor, so a
reader never sees half a line. Prints "ready" once every socket listens; runs until
killed or until its stdin ends (the test process closed it, or died). Every connection is served on its own thread.
"""

import argparse
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


class Log:
    """A JSON-lines file, one os.write per record."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def record(self, **fields):
        os.write(self.fd, (json.dumps(fields, sort_keys=True) + "\n").encode())


class LoggingTCPServer(socketserver.ThreadingTCPServer):
    """Logs the peer of every accepted connection, then serves it on a new thread."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, port, handler, log, tls=None):
        self.log = log
        self.tls = tls
        super().__init__(("0.0.0.0", port), handler)

    def get_request(self):
        connection, peer = self.socket.accept()
        local = connection.getsockname()
        self.log.record(peer=peer[0], peerPort=peer[1], local=local[0], localPort=local[1])
        return connection, peer

    def finish_request(self, request, client_address):
        # The TLS handshake runs on the connection's thread, so a client that never
        # finishes one holds up only itself.
        if self.tls is not None:
            request.settimeout(30)
            request = self.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        kind, value = sys.exc_info()[:2]
        print(f"lab_server: port {self.server_address[1]} peer {client_address}: {kind.__name__}: {value}",
              file=sys.stderr, flush=True)


class HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "corral-lab/1"

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/hello":
            self.reply(200, f"hello from {self.headers.get('Host', '')}\n".encode())
        elif url.path == "/big":
            try:
                count = int(parse_qs(url.query).get("n", ["0"])[0])
            except ValueError:
                return self.reply(400, b"n must be a number of bytes\n")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(count))
            self.end_headers()
            block = b"0123456789" * 6554  # 65540 bytes: a multiple of the pattern
            while count > 0:
                piece = block[:min(count, 65530)]
                self.wfile.write(piece)
                count -= len(piece)
        else:
            self.reply(404, b"not found\n")

    def do_POST(self):
        if urlsplit(self.path).path != "/echo":
            return self.reply(404, b"not found\n")
        self.reply(200, self.read_body(), "application/octet-stream")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def reply(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


def serve_udp_echo(sock, log):
    while True:
        data, peer = sock.recvfrom(65536)
        log.record(peer=peer[0], peerPort=peer[1], localPort=sock.getsockname()[1],
                   data=data.decode("utf-8", "backslashreplace"), length=len(data))
        sock.sendto(data, peer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--connections", required=True)
    parser.add_argument("--datagrams", required=True)
    arguments = parser.parse_args()

    connections = Log(arguments.connections)
    datagrams = Log(arguments.datagrams)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(arguments.cert, arguments.key)

    servers = [
        LoggingTCPServer(80, HTTPHandler, connections),
        LoggingTCPServer(443, HTTPHandler, connections, tls),
        LoggingTCPServer(7000, EchoHandler, connections),
    ]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 5353))

    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=serve_udp_echo, args=(udp, datagrams), daemon=True).start()
    print("ready", flush=True)
    # Until the test process closes our stdin (or dies): no server outlives its lab.
    sys.stdin.buffer.read()


if __name__ == "__main__":
    main()
