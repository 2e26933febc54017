"""Runs a moto server (DynamoDB, SQS, Scheduler) for shipsync's local stack and tests.

Prints `MOTO_PORT=<port>` once it listens, then serves until its parent process exits, so a
test run or local stack that dies never leaves a server behind.
"""
import logging
import os
import sys
import time

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    parent = os.getppid()
    # One log line per request would drown the output of the tests and the local stack.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"MOTO_PORT={server.get_host_and_port()[1]}", flush=True)
    while os.getppid() == parent:
        time.sleep(0.5)
    server.stop()


if __name__ == "__main__":
    main()
