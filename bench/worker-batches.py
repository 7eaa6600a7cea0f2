#!/usr/bin/env python3
"""CPU a function worker spends per invocation, by how many requests reach it per wake-up.

    bench/worker-batches.py              # Node.js and Python, batches of 1..64
    bench/worker-batches.py --pin        # this process and the worker on one CPU
    bench/worker-batches.py --runtime node --invocations 40000
    bench/worker-batches.py --root ../old-checkout   # another tree's bootstraps (compare runs)

Plays ledge's side of the worker protocol (crates/ledge-runtime/src/protocol.rs) against the
real bootstrap from the source tree and a no-op viewer-request handler (returns the request),
with an event shaped like those of bench/triggers.sh (one Host header): it writes K requests at
once, reads the K answers, and repeats. The worker's CPU time comes from /proc/<pid>/task/*/schedstat (nanoseconds, every
thread). The reference is the same worker in the same run at the largest batch, where a
wake-up is shared by 64 invocations: "per wake-up" is what each extra wake-up costs
((cpu(K) - cpu(64)) * K), the part that only bigger batches save.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import uuid

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EVENT = {
    "Records": [{"cf": {
        "config": {"distributionDomainName": "vreq-node.ledge.localhost", "distributionId": "EBENCH1",
                   "eventType": "viewer-request", "requestId": "x" * 56},
        "request": {"clientIp": "127.0.0.1", "headers": {"host": [{"key": "Host", "value": "vreq-node.ledge.localhost"}]},
                    "method": "GET", "querystring": "", "uri": "/1k.txt"},
    }}]
}
RUNTIMES = {
    "node": ("index.js", "exports.handler = async (e) => e.Records[0].cf.request;\n", "index.handler",
             ["node", "--max-old-space-size=108", "--single-threaded", "bootstrap.js"]),
    "python": ("lambda_function.py", "def handler(event, context):\n    return event['Records'][0]['cf']['request']\n",
               "lambda_function.handler", ["python3", "-S", "-s", "-B", "bootstrap.py"]),
}


class Worker:
    def __init__(self, runtime, work, tree):
        filename, code, handler, cmd = RUNTIMES[runtime]
        bootstrap = os.path.join(tree, "crates", "ledge-runtime", "src", "bootstrap", cmd[-1])
        cmd = cmd[:-1] + [bootstrap]
        root = os.path.join(work, runtime)
        os.makedirs(root)
        with open(os.path.join(root, filename), "w") as f:
            f.write(code)
        path = os.path.join(work, runtime + ".sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(1)
        env = dict(os.environ, LEDGE_SOCKET=path, _HANDLER=handler, LAMBDA_TASK_ROOT=root,
                   AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_VERSION="1",
                   AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/us-east-1.bench",
                   AWS_LAMBDA_LOG_STREAM_NAME="bench", LEDGE_FUNCTION_ARN="arn:aws:lambda:us-east-1:1:function:bench:1")
        self.proc = subprocess.Popen(cmd, env=env, cwd=root)
        listener.settimeout(30)
        self.sock, _ = listener.accept()
        listener.close()
        self.pending = b""
        kind = self.frame()[0]
        if kind != 0x49:
            sys.exit(f"{runtime}: the init phase failed (frame kind {kind:#x})")

    def frame(self):
        while True:
            if len(self.pending) >= 4:
                n = struct.unpack_from("<I", self.pending)[0]
                if len(self.pending) >= 4 + n:
                    f = self.pending[4:4 + n]
                    self.pending = self.pending[4 + n:]
                    return f
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                sys.exit("the worker went away")
            self.pending += chunk

    def cpu_ns(self):
        total = 0
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except FileNotFoundError:
                pass
        return total

    def run(self, batch, rounds):
        """Writes `batch` requests at once `rounds` times; the worker's CPU ns per invocation."""
        event = json.dumps(EVENT, separators=(",", ":")).encode()
        writes = []
        for _ in range(16):
            frames = []
            for _ in range(batch):
                body = b'{"id":"%s","timeout":3000,"event":%s}' % (str(uuid.uuid4()).encode(), event)
                frames.append(struct.pack("<I", len(body)) + body)
            writes.append(b"".join(frames))
        for i in range(max(8, 400 // batch)):  # warm-up: the handler compiled, buffers grown
            self.sock.sendall(writes[i % 16])
            for _ in range(batch):
                self.frame()
        before = self.cpu_ns()
        for i in range(rounds):
            self.sock.sendall(writes[i % 16])
            for _ in range(batch):
                answer = self.frame()
                if answer[0] != 0x52:
                    sys.exit(f"not a result: {answer[:120]!r}")
        return (self.cpu_ns() - before) / (batch * rounds)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), action="append")
    parser.add_argument("--invocations", type=int, default=30000, help="per batch size")
    parser.add_argument("--pin", action="store_true", help="run this process and the worker on CPU 0")
    parser.add_argument("--root", default=ROOT, help="the source tree whose bootstraps run (default: this one)")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {0})  # the worker inherits it
    batches = [1, 2, 4, 8, 16, 32, 64]
    work = tempfile.mkdtemp()
    try:
        print("| runtime | " + " | ".join(f"K={k}" for k in batches) + " | per wake-up (K=1) |")
        print("|---" * (len(batches) + 2) + "|")
        for runtime in args.runtime or ["node", "python"]:
            worker = Worker(runtime, work, args.root)
            try:
                cpu = {k: worker.run(k, max(1, args.invocations // k)) / 1e3 for k in batches}
            finally:
                worker.close()
            wake = cpu[1] - cpu[64]
            print(f"| {runtime} | " + " | ".join(f"{cpu[k]:.1f}" for k in batches) + f" | {wake:.1f} |")
        print("(worker CPU µs per invocation with K requests per write)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
