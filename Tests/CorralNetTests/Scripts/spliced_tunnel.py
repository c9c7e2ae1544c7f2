#!/usr/bin/env python3
"""One CONNECT tunnel through a real, hardened corral-egress process (no_new_privs, no
capabilities, Landlock), seen from outside through /proc (which the proxy itself may not
read): while the tunnel is open the proxy holds two pipes (one each way: the tunnel is
spliced; four descriptors), and none once it has ended.

    spliced_tunnel.py CORRAL_EGRESS

Prints exactly: "echo ok|echo failed", "pipes open +N", "pipes after +N", "exit N" (pipe
descriptors beyond those the proxy had before the tunnel: it inherits its parent's
standard error, which may be a pipe).
"""
import hashlib, os, socket, subprocess, sys, threading, time

egress = sys.argv[1]


def echo(conn):
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    conn.close()


server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(16)
echo_port = server.getsockname()[1]
threading.Thread(target=lambda: echo(server.accept()[0]), daemon=True).start()

listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(16)
control, theirs = socket.socketpair()
proxy = subprocess.Popen([egress, "--control-fd", str(theirs.fileno()), "--http-fd", str(listener.fileno()),
                          "--allow", f"127.0.0.1:{echo_port}"],
                         pass_fds=[listener.fileno(), theirs.fileno()], stdout=subprocess.DEVNULL)
theirs.close()
port = listener.getsockname()[1]
listener.close()


def pipes():
    count = 0
    for name in os.listdir(f"/proc/{proxy.pid}/fd"):
        try:
            count += os.readlink(f"/proc/{proxy.pid}/fd/{name}").startswith("pipe:")
        except OSError:
            pass
    return count


time.sleep(0.2)  # the proxy's start-up
baseline = pipes()
client = socket.create_connection(("127.0.0.1", port))
client.settimeout(30)
client.sendall(f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\n\r\n".encode())
head = b""
while not head.endswith(b"\r\n\r\n"):
    byte = client.recv(1)
    if not byte:
        break
    head += byte
payload = os.urandom(4 << 20)
sender = threading.Thread(target=lambda: (client.sendall(payload), client.shutdown(socket.SHUT_WR)))
sender.start()
received = hashlib.sha256()
count = 0
open_pipes = None
while True:
    data = client.recv(1 << 16)
    if not data:
        break
    received.update(data)
    count += len(data)
    if open_pipes is None:
        open_pipes = pipes() - baseline
sender.join()
client.close()
ok = head == b"HTTP/1.1 200 Connection Established\r\n\r\n" and count == len(payload) \
    and received.digest() == hashlib.sha256(payload).digest()
print("echo ok" if ok else "echo failed")
print(f"pipes open +{open_pipes}")
after = pipes() - baseline
for _ in range(100):
    if after == 0:
        break
    time.sleep(0.05)
    after = pipes() - baseline
print(f"pipes after +{after}")
control.shutdown(socket.SHUT_WR)
while control.recv(65536):
    pass
proxy.wait(timeout=30)
print(f"exit {proxy.returncode}")
