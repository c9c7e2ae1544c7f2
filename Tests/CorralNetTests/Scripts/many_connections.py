#!/usr/bin/env python3
"""500 concurrent CONNECT tunnels through a real corral-egress process, capped at 400.

    many_connections.py CORRAL_EGRESS

Out of the test process on purpose: the 1,800 descriptors this takes (clients, proxy,
upstream) would push the test process past FD_SETSIZE, where Foundation's Process.run
(used by concurrent tests) corrupts memory. Here the proxy is its own process, as in a
run, and this script holds the clients and an echo server (epoll, no fd limit).

Prints exactly: "served N", "refused N", "late ok|late failed", "decisions allow=N error=N",
"exit N" (the proxy's status after end-of-file on its control socket).
"""
import os, selectors, socket, subprocess, sys, threading, time

egress = sys.argv[1]
sel = selectors.DefaultSelector()
echo = socket.socket(); echo.bind(("127.0.0.1", 0)); echo.listen(1024); echo.setblocking(False)
echo_port = echo.getsockname()[1]


def serve_echo():
    sel.register(echo, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    conn, _ = echo.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "peer")
            else:
                try:
                    data = key.fileobj.recv(65536)
                except OSError:
                    data = b""
                if data:
                    key.fileobj.sendall(data)
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()


threading.Thread(target=serve_echo, daemon=True).start()

listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(1024)
port = listener.getsockname()[1]
control, theirs = socket.socketpair()
proxy = subprocess.Popen([egress, "--control-fd", str(theirs.fileno()), "--http-fd", str(listener.fileno()),
                          "--allow", f"127.0.0.1:{echo_port}", "--max-connections", "400"],
                         pass_fds=[listener.fileno(), theirs.fileno()], stdout=subprocess.DEVNULL)
theirs.close(); listener.close()


def head(sock):
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        data += byte
    return data


clients = []
for index in range(500):
    client = socket.create_connection(("127.0.0.1", port))
    client.settimeout(30)
    client.sendall(f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\n\r\n".encode())
    clients.append(client)
served = refused = 0
for index, client in enumerate(clients):
    answer = head(client)
    if answer == b"HTTP/1.1 200 Connection Established\r\n\r\n":
        client.sendall(f"n{index}".encode())
        if client.recv(64) == f"n{index}".encode():
            served += 1
    elif answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"):
        refused += 1
print(f"served {served}")
print(f"refused {refused}")

# With the cap reached, closing tunnels lets another client through.
for client in clients[:10]:
    client.close()
late_ok = False
late_refused = 0
for attempt in range(100):
    late = socket.create_connection(("127.0.0.1", port))
    late.settimeout(30)
    late.sendall(f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\n\r\nlate".encode())
    answer = head(late)
    if answer == b"HTTP/1.1 200 Connection Established\r\n\r\n":
        late_ok = late.recv(4) == b"late"
        break
    late.close()
    late_refused += 1
    time.sleep(0.05)  # the proxy may not have seen the closes yet
print("late ok" if late_ok else "late failed")

for client in clients:
    client.close()
control.shutdown(socket.SHUT_WR)
lines = b""
while True:
    chunk = control.recv(65536)
    if not chunk:
        break
    lines += chunk
proxy.wait(timeout=30)
counts = {}
for line in lines.decode().splitlines():
    counts[line.split("\t")[0]] = counts.get(line.split("\t")[0], 0) + 1
# Every refusal is an error line: the 100, and any late attempt refused before the closes.
print(f"decisions allow={counts.get('allow', 0)} error={counts.get('error', 0) - late_refused}")
print(f"exit {proxy.returncode}")
