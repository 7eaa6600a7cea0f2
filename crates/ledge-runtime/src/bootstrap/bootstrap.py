# ledge's Python bootstrap: the init phase imports the handler once, then invocations are served
# one at a time over the Unix socket named by LEDGE_SOCKET.
#
# Frames ledge -> worker: u32 LE length, then JSON {"id", "timeout" (ms), "event"}.
# Frames worker -> ledge: u32 LE length, then u8 kind, u32 LE max RSS in KiB, u32 LE duration of
# the invocation in microseconds, u32 LE log length, the captured log text (UTF-8) and the body
# (JSON). Kinds: I init done, X init error, R result, E function error, F fatal error (the
# worker exits after sending it).
#
# print() and the logging module are captured here and travel in the reply frame, so the real
# stdout/stderr stay free for output of native code and child processes.
import _socket
import io
import posix
import sys
import time

def _fast_json():
    """JSON from the C accelerator alone: the json package imports re, which costs a cold
    start about 10 ms. Output matches json.dumps (same separators); falls back to json."""
    import _json

    class _Context:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__
        memo = None

    scan = _json.make_scanner(_Context())

    def default(o):
        raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)

    make_encoder = _json.make_encoder
    escape = _json.encode_basestring_ascii

    def loads(data):
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return scan(text, 0)[0]

    # Without json.dumps's check for circular references (it keeps a dict of every container
    # on the way down: a third of the time a small result takes): a result that recurses too
    # deep is encoded again with the check, for json.dumps's own error. No state between
    # calls, so one encoder serves them all.
    def encoder(markers):
        return make_encoder(markers, default, escape, None, ": ", ", ", False, False, True)

    unchecked = encoder(None)

    def dumps(obj):
        try:
            return "".join(unchecked(obj, 0))
        except RecursionError:
            # Fresh markers each time, as json.dumps: a failed call must not poison the next.
            return "".join(encoder({})(obj, 0))

    sample = {"a": [1, 2.5, "\u00e9\n", None, True, {"b": -1}]}
    if loads(b'{"a": [1, 2.5, "\\u00e9\\n", null, true, {"b": -1}]}') != sample:
        raise ValueError("scanner")
    if dumps(sample) != '{"a": [1, 2.5, "\\u00e9\\n", null, true, {"b": -1}]}':
        raise ValueError("encoder")
    return loads, dumps


try:
    _loads, _dumps = _fast_json()
except Exception:
    import json

    _loads, _dumps = json.loads, json.dumps

# The environment read through posix, not os: importing os (and the collections ABCs it pulls
# in) costs a cold start ~1 ms, which a handler that imports os itself pays, and one that does
# not, not at all. A copy with text keys serves the bootstrap's own lookups.
_env = {
    k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
    for k, v in posix.environ.items()
}


def _setenv(name, value):
    """Sets (or with None removes) a variable where os.environ, once imported, and child
    processes will see it."""
    key = name.encode("utf-8", "surrogateescape")
    if value is None:
        _env.pop(name, None)
        posix.environ.pop(key, None)
        posix.unsetenv(key)
    else:
        _env[name] = value
        posix.environ[key] = value.encode("utf-8", "surrogateescape")
        posix.putenv(key, posix.environ[key])
    if "os" in sys.modules:
        os_environ = sys.modules["os"].environ
        if value is None:
            os_environ.pop(name, None)
        else:
            os_environ[name] = value
_LOG_CAP = int(_env.get("LEDGE_LOG_CAP") or 262144)
_NBSP = "\u00a0"


def _header(length, kind, rss_kib, duration_us, log_length):
    """The reply header, <IBIII little-endian, as one int: the struct module would cost every
    cold start its import (~0.3 ms)."""
    return (
        length | kind << 32 | rss_kib << 40 | duration_us << 72 | log_length << 104
    ).to_bytes(17, "little")


class _Logs:
    """The log text of the running invocation, capped."""

    __slots__ = ("parts", "size", "truncated", "request_id")

    def __init__(self):
        self.parts = []
        self.size = 0
        self.truncated = False
        self.request_id = None

    def append(self, text):
        if self.size >= _LOG_CAP:
            self.truncated = True
            return
        if self.size + len(text) > _LOG_CAP:
            text = text[: _LOG_CAP - self.size]
            self.truncated = True
        self.parts.append(text)
        self.size += len(text)

    def take(self):
        text = "".join(self.parts)
        if self.truncated:
            if text and not text.endswith("\n"):
                text += "\n"
            text += "[ledge] log output truncated: more than %d bytes in one invocation\n" % _LOG_CAP
        self.parts = []
        self.size = 0
        self.truncated = False
        return text


_logs = _Logs()


class _Capture(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr."""

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        _logs.append(s)
        return len(s)

    def writable(self):
        return True

    @property
    def encoding(self):
        return "utf-8"


sys.stdout = _Capture()
sys.stderr = _Capture()


class _LoggingHook:
    """Configures the logging module the moment user code first imports it (as Lambda's
    preconfigured root logger), so a function that never logs never pays for the import."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_configure(module):
            exec_module(module)
            _setup_logging(module)

        loader.exec_module = exec_and_configure
        return spec


def _setup_logging(logging):
    class _LambdaHandler(logging.Handler):
        def emit(self, record):
            try:
                message = self.format(record).replace("\n", "\r")
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                millis = int(record.msecs)
                _logs.append(
                    "[%s]\t%s.%03dZ\t%s\t%s\n"
                    % (record.levelname, stamp, millis, _logs.request_id, message)
                )
            except Exception:
                self.handleError(record)

    root = logging.getLogger()
    root.handlers[:] = [_LambdaHandler()]


class _FaultError(Exception):
    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class LambdaContext:
    """Lambda's context object."""

    __slots__ = ("aws_request_id", "_deadline_ms")

    identity = None
    client_context = None

    @classmethod
    def configure(cls):
        cls.function_name = _env.get("AWS_LAMBDA_FUNCTION_NAME")
        cls.function_version = _env.get("AWS_LAMBDA_FUNCTION_VERSION")
        cls.invoked_function_arn = _env.get("LEDGE_FUNCTION_ARN")
        cls.memory_limit_in_mb = int(_env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 128)
        cls.log_group_name = _env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        cls.log_stream_name = _env.get("AWS_LAMBDA_LOG_STREAM_NAME")

    def __init__(self, request_id, deadline_ms):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _load_handler():
    handler = _env.get("_HANDLER") or ""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise _FaultError("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    modname = modname.replace("/", ".")
    if modname in sys.builtin_module_names:
        raise _FaultError(
            "Runtime.BuiltInModuleConflict", "Cannot use built-in module %s as a handler module" % modname
        )
    try:
        # __import__ rather than importlib.import_module: importlib pulls in warnings (~0.5 ms
        # of every cold start); for a dotted name the submodule is the one in sys.modules.
        __import__(modname)
        module = sys.modules[modname]
    except ImportError as e:
        raise _FaultError("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        raise _FaultError("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e))
    fn = getattr(module, fname, None)
    if fn is None:
        raise _FaultError("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    return fn


def _error_body(exc, request_id, frames):
    if isinstance(exc, _FaultError):
        body = {"errorMessage": exc.message, "errorType": exc.error_type, "stackTrace": []}
    else:
        body = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": frames}
    if request_id is not None:
        body["requestId"] = request_id
    return _dumps(body)


def _log_exception(exc, frames):
    if isinstance(exc, _FaultError):
        first = "[ERROR] %s: %s" % (exc.error_type, exc.message)
    else:
        first = "[ERROR] %s: %s" % (type(exc).__name__, exc)
    lines = [first, "Traceback (most recent call last):"]
    for frame in frames:
        for line in frame.rstrip("\n").split("\n"):
            stripped = line.lstrip(" ")
            lines.append(_NBSP * (len(line) - len(stripped)) + stripped)
    _logs.append("\r".join(lines) + "\n")


def _frames(tb):
    import traceback

    return traceback.format_list(traceback.extract_tb(tb))


_resource = None
_rss_read_at = -1.0
_rss_kib = 0


def _max_rss_kib():
    # The peak RSS is a high-water mark the kernel keeps: read at most once a millisecond (a
    # getrusage call costs more than a no-op handler), a later reading still catches every peak.
    global _resource, _rss_read_at, _rss_kib
    now = time.monotonic()
    if now - _rss_read_at < 0.001:
        return _rss_kib
    _rss_read_at = now
    try:
        if _resource is None:
            import resource as _resource
        _rss_kib = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss & 0xFFFFFFFF
    except Exception:
        _rss_kib = 0
    return _rss_kib


def main():
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.connect(_env["LEDGE_SOCKET"])
    # With a timeout, CPython waits in poll() for the socket to be readable before each recv.
    # A bare blocking recv also wakes each time ledge reads an answer (a Unix socket tells its
    # writer there is room again): a wake-up of this process for nothing per invocation.
    sock.settimeout(86400.0)
    sendall = sock.sendall
    fd = sock.fileno()
    write = posix.write

    def send_bytes(data):
        # Straight to the socket: with a timeout, sendall polls for room before every send, a
        # syscall per answer for nothing (there is nearly always room). sendall finishes what a
        # full socket buffer leaves.
        try:
            n = write(fd, data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            sendall(memoryview(data)[n:])

    # When the running invocation started (perf_counter seconds); None outside one.
    started = [None]
    perf_counter = time.perf_counter

    def send(kind, body):
        logs = _logs.take().encode("utf-8", "replace")
        payload = body.encode("utf-8")
        # The invocation's own duration: answers can reach ledge together, so their arrival
        # times do not tell how long each one ran.
        since = started[0]
        duration_us = 0 if since is None else min(int((perf_counter() - since) * 1e6), 0xFFFFFFFF)
        # At once, never held for a batch: ledge starts the next invocation's clock when this
        # answer arrives, and a finished answer held while the next handler runs would wait
        # for it, and die with the worker if that one never returns.
        send_bytes(
            _header(13 + len(logs) + len(payload), kind, _max_rss_kib(), duration_us, len(logs))
            + logs
            + payload
        )

    pending = bytearray()

    recv = sock.recv
    loads = _loads

    def read_frame():
        # One recv per frame in the common case; frames may also arrive in pieces.
        while True:
            if len(pending) >= 4:
                n = int.from_bytes(pending[:4], "little")
                if len(pending) >= 4 + n:
                    frame = bytes(pending[4 : 4 + n])
                    del pending[: 4 + n]
                    return frame
            try:
                chunk = recv(65536)
            except _socket.timeout:
                continue
            if not chunk:
                sys.exit(0)
            pending.extend(chunk)

    if _env.get("LEDGE_SPARE") == "1":
        # A spare: started ahead of need, it runs the init phase once ledge assigns it a
        # function with a load frame carrying that function's environment and task root.
        send(0x49, "")
        load = loads(read_frame())["load"]
        _setenv("LEDGE_SPARE", None)
        for name, value in load["env"].items():
            _setenv(name, value)
        posix.chdir(load["root"])
        time.tzset()
    limit = _env.get("LEDGE_AS_LIMIT")
    if limit:
        # Our own memory limit (ledge may not be allowed to set another user's limits).
        try:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            wanted = int(limit)
            if hard == resource.RLIM_INFINITY or wanted < hard:
                resource.setrlimit(resource.RLIMIT_AS, (wanted, wanted))
        except (ImportError, ValueError, OSError):
            pass
    LambdaContext.configure()
    task_root = _env.get("LAMBDA_TASK_ROOT") or posix.getcwd()
    sys.path.insert(0, task_root)
    if "logging" in sys.modules:
        _setup_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _LoggingHook())
    try:
        handler = _load_handler()
    except BaseException as e:
        frames = [] if isinstance(e, _FaultError) else _frames(e.__traceback__.tb_next)
        _log_exception(e, frames)
        send(0x58, _error_body(e, None, frames))
        return
    send(0x49, "")

    dumps = _dumps
    while True:
        request = loads(read_frame())
        started[0] = perf_counter()
        request_id = request["id"]
        _logs.request_id = request_id
        # The clock starts now: ledge may have written this request while another ran.
        context = LambdaContext(request_id, time.time() * 1000 + request["timeout"])
        try:
            result = handler(request["event"], context)
        except MemoryError as e:
            frames = _frames(e.__traceback__.tb_next)
            _log_exception(e, frames)
            body = _dumps(
                {"errorMessage": "Runtime exited with error: out of memory", "errorType": "Runtime.OutOfMemory"}
            )
            send(0x46, body)
            posix._exit(137)
        except Exception as e:
            frames = _frames(e.__traceback__.tb_next)
            _log_exception(e, frames)
            send(0x45, _error_body(e, request_id, frames))
            continue
        try:
            body = dumps(result)
        except Exception as e:
            error = _FaultError("Runtime.MarshalError", "Unable to marshal response: %s" % e)
            _log_exception(error, [])
            send(0x45, _error_body(error, request_id, []))
            continue
        send(0x52, body)


main()
