"""Connect to 127.0.0.1:HOSTILE_PORT, where the test listens outside the sandbox (only loopback, never
any other address)."""

import os
import socket

port = int(os.environ["HOSTILE_PORT"])
try:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
        connection.sendall(os.environ["HOSTILE_TOKEN"].encode())
    print("connected", flush=True)
except OSError as error:
    print(f"refused: errno {error.errno}", flush=True)
