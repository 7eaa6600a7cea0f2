//! The bootstraps' side of the worker protocol, spoken directly: an answer leaves the worker
//! as soon as its invocation ends, also when ledge wrote the next request with it and that
//! one runs long (or never returns): a finished invocation never waits for the next.
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BOOTSTRAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bootstrap");

/// A handler that blocks its thread for the event's `ms`, then answers with its `n`; one whose
/// `n` is 999 ends the process instead.
const NODE_HANDLER: &str = "const cell = new Int32Array(new SharedArrayBuffer(4));
exports.handler = async (e) => {
  if (e.n === 999) process.exit(3);
  if (e.ms) Atomics.wait(cell, 0, 0, e.ms);
  return { n: e.n };
};\n";
const PYTHON_HANDLER: &str = "import sys, time
def handler(e, context):
    if e['n'] == 999:
        sys.exit(3)
    if e['ms']:
        time.sleep(e['ms'] / 1000)
    return {'n': e['n']}\n";

struct Bootstrap {
    child: Child,
    stream: UnixStream,
    inbox: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Bootstrap {
    fn start(language: &str) -> Bootstrap {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("task");
        std::fs::create_dir(&root).unwrap();
        let socket = dir.path().join("worker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let mut command = if language == "node" {
            std::fs::write(root.join("index.js"), NODE_HANDLER).unwrap();
            let mut c = Command::new("node");
            c.arg(format!("{BOOTSTRAP}/bootstrap.js"))
                .env("_HANDLER", "index.handler");
            c
        } else {
            std::fs::write(root.join("lambda_function.py"), PYTHON_HANDLER).unwrap();
            let mut c = Command::new("python3");
            c.args(["-S", "-s", "-B", &format!("{BOOTSTRAP}/bootstrap.py")])
                .env("_HANDLER", "lambda_function.handler");
            c
        };
        let child = command
            .current_dir(&root)
            .env("LEDGE_SOCKET", &socket)
            .env("LAMBDA_TASK_ROOT", &root)
            .env("AWS_LAMBDA_FUNCTION_NAME", "answers")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/us-east-1.answers")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
            .env(
                "LEDGE_FUNCTION_ARN",
                "arn:aws:lambda:us-east-1:111122223333:function:answers:1",
            )
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut worker = Bootstrap {
            child,
            stream,
            inbox: Vec::new(),
            _dir: dir,
        };
        let (kind, _) = worker.next_answer();
        assert_eq!(kind, b'I', "init done");
        worker
    }

    /// Writes one request per `(n, ms)` in a single write.
    fn write(&mut self, requests: &[(u32, u32)]) {
        let mut out = Vec::new();
        for (n, ms) in requests {
            let body =
                format!(r#"{{"id":"req-{n}","timeout":30000,"event":{{"n":{n},"ms":{ms}}}}}"#);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(body.as_bytes());
        }
        self.stream.write_all(&out).unwrap();
    }

    /// The complete answer frames read so far, as (kind, body), without reading more.
    fn take_buffered(&mut self) -> Vec<(u8, String)> {
        let mut answers = Vec::new();
        while self.inbox.len() >= 4 {
            let len = u32::from_le_bytes(self.inbox[..4].try_into().unwrap()) as usize;
            if self.inbox.len() < 4 + len {
                break;
            }
            let frame: Vec<u8> = self.inbox.drain(..4 + len).skip(4).collect();
            let log_len = u32::from_le_bytes(frame[9..13].try_into().unwrap()) as usize;
            let body = String::from_utf8(frame[13 + log_len..].to_vec()).unwrap();
            answers.push((frame[0], body));
        }
        answers
    }

    /// Reads until at least one answer is complete: every answer that came with it.
    fn read_answers(&mut self) -> Vec<(u8, String)> {
        loop {
            let answers = self.take_buffered();
            if !answers.is_empty() {
                return answers;
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the worker closed its socket");
            self.inbox.extend_from_slice(&chunk[..n]);
        }
    }

    fn next_answer(&mut self) -> (u8, String) {
        let mut answers = self.read_answers();
        let first = answers.remove(0);
        assert!(
            answers.is_empty(),
            "one answer expected, got more: {answers:?}"
        );
        first
    }

    /// Runs `count` quick invocations one at a time: the worker warm and its pace short, as
    /// when ledge writes requests ahead.
    fn settle(&mut self, count: u32) {
        for n in 0..count {
            self.write(&[(n, 0)]);
            let (kind, body) = self.next_answer();
            assert_eq!((kind, number(&body)), (b'R', n), "{body}");
        }
    }
}

/// The `n` an answer carries.
fn number(body: &str) -> u32 {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value["n"].as_u64().unwrap() as u32
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A quick invocation written together with one that blocks for 10 s: the first answer comes
/// at once (the worker is killed without waiting for the second).
fn a_finished_answer_does_not_wait_for_the_next(language: &str) {
    let mut worker = Bootstrap::start(language);
    worker.settle(20);
    let written = Instant::now();
    worker.write(&[(100, 0), (101, 10_000)]);
    let (kind, first) = worker.next_answer();
    assert_eq!((kind, number(&first)), (b'R', 100), "{language}");
    assert!(
        written.elapsed() < Duration::from_secs(5),
        "{language}: the first answer waited for the second invocation ({:?})",
        written.elapsed()
    );
}

/// The same with a handler that ends the process behind a quick one.
fn a_finished_answer_survives_the_next_ending_the_process(language: &str) {
    let mut worker = Bootstrap::start(language);
    worker.settle(20);
    worker.write(&[(100, 0), (999, 0)]);
    let (kind, first) = worker.next_answer();
    assert_eq!((kind, number(&first)), (b'R', 100), "{language}");
    let mut rest = Vec::new();
    worker.stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{language}: nothing after the exit");
}

#[test]
fn node_a_finished_answer_does_not_wait_for_the_next() {
    a_finished_answer_does_not_wait_for_the_next("node");
}

#[test]
fn python_a_finished_answer_does_not_wait_for_the_next() {
    a_finished_answer_does_not_wait_for_the_next("python");
}

#[test]
fn node_a_finished_answer_survives_the_next_ending_the_process() {
    a_finished_answer_survives_the_next_ending_the_process("node");
}

#[test]
fn python_a_finished_answer_survives_the_next_ending_the_process() {
    a_finished_answer_survives_the_next_ending_the_process("python");
}
