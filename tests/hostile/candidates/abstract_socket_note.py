# Talks to a concurrent candidate through an abstract unix socket (no file: the name lives in
# the network namespace). Mode "serve" listens and answers for a while; mode "ask" connects.
import json
import socket
import time

MODE, TOKEN = "__MODE__", "__TOKEN__"
NAME = f"\0evolve-{TOKEN}"


def serve():
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(NAME)
    server.listen(4)
    server.settimeout(0.1)
    served = 0
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            conn, _ = server.accept()
        except OSError:
            continue
        conn.sendall(f"note-{TOKEN}".encode())
        conn.close()
        served += 1
    return {"served": served}


def ask():
    deadline = time.time() + 2.5
    while time.time() < deadline:
        try:
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(NAME)
            return {"notes": [client.recv(100).decode()]}
        except OSError:
            time.sleep(0.05)
    return {"notes": []}


def report():
    seen = serve() if MODE == "serve" else ask()
    return {"score": 1.0, "valid": True, "metrics": {}, "feedback": json.dumps(seen)}
