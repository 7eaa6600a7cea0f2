// ledge's Node.js bootstrap: the init phase loads the handler once, then invocations are served
// one at a time over the Unix socket named by LEDGE_SOCKET.
//
// Frames ledge -> worker: u32 LE length, then JSON {"id", "timeout" (ms), "event"}.
// Frames worker -> ledge: u32 LE length, then u8 kind, u32 LE max RSS in KiB, u32 LE duration of
// the invocation in microseconds, u32 LE log length, the captured log text (UTF-8) and the body
// (JSON). Kinds: I init done, X init error, R result, E function error, F fatal error (the
// worker exits after sending it).
//
// The function's console and process.stdout/stderr writes are captured here and travel in the
// reply frame, so the real stdout/stderr stay free for output of native code and children.
'use strict';

const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const util = require('node:util');

const env = process.env;
const LOG_CAP = Number(env.LEDGE_LOG_CAP) || 262144;
const KIND = { I: 0x49, X: 0x58, R: 0x52, E: 0x45, F: 0x46 };

let logParts = [];
let logBytes = 0;
let logTruncated = false;
let currentId = 'undefined';

function appendLog(text) {
  if (logBytes >= LOG_CAP) {
    logTruncated = true;
    return;
  }
  if (logBytes + text.length > LOG_CAP) {
    text = text.slice(0, LOG_CAP - logBytes);
    logTruncated = true;
  }
  logParts.push(text);
  logBytes += text.length;
}

function takeLogs() {
  let text = logParts.length === 1 ? logParts[0] : logParts.join('');
  if (logTruncated) {
    if (text.length > 0 && !text.endsWith('\n')) text += '\n';
    text += '[ledge] log output truncated: more than ' + LOG_CAP + ' bytes in one invocation\n';
  }
  logParts = [];
  logBytes = 0;
  logTruncated = false;
  return text;
}

function consoleLine(level) {
  return function (...args) {
    const message = util.format(...args).replace(/\n/g, '\r');
    appendLog(`${new Date().toISOString()}\t${currentId}\t${level}\t${message}\n`);
  };
}

console.log = consoleLine('INFO');
console.info = consoleLine('INFO');
console.warn = consoleLine('WARN');
console.error = consoleLine('ERROR');
console.debug = consoleLine('DEBUG');
console.trace = consoleLine('TRACE');

function captureWrite(chunk, encoding, callback) {
  appendLog(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  const cb = typeof encoding === 'function' ? encoding : callback;
  if (typeof cb === 'function') process.nextTick(cb);
  return true;
}
process.stdout.write = captureWrite;
process.stderr.write = captureWrite;

// ---- errors -------------------------------------------------------------------------------

class RuntimeError extends Error {
  constructor(type, message) {
    super(message);
    this.name = type;
  }
}

function errorType(err) {
  if (err instanceof Error) return err.name || (err.constructor && err.constructor.name) || 'Error';
  return typeof err;
}

function errorMessage(err) {
  if (err instanceof Error) return String(err.message);
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch (_) {
    return String(err);
  }
}

function stackLines(err) {
  if (err instanceof Error && typeof err.stack === 'string') return err.stack.split('\n');
  return [];
}

// The body of the Invoke response (key "trace").
function invokeErrorJson(err) {
  return JSON.stringify({
    errorType: errorType(err),
    errorMessage: errorMessage(err),
    trace: stackLines(err),
  });
}

// The copy written to the function log (own properties, "code", and key "stack").
function logErrorJson(err) {
  const out = { errorType: errorType(err), errorMessage: errorMessage(err) };
  if (err instanceof Error) {
    if (err.code !== undefined) out.code = err.code;
    for (const key of Object.keys(err)) {
      if (!(key in out) && key !== 'stack') out[key] = err[key];
    }
  }
  out.stack = stackLines(err);
  try {
    return JSON.stringify(out);
  } catch (_) {
    return JSON.stringify({ errorType: out.errorType, errorMessage: out.errorMessage, stack: out.stack });
  }
}

function logError(prefix, err) {
  appendLog(`${new Date().toISOString()}\t${currentId}\tERROR\t${prefix} \t${logErrorJson(err)}\n`);
}

// ---- transport ----------------------------------------------------------------------------

const socket = net.createConnection(env.LEDGE_SOCKET);
let inbox = Buffer.alloc(0);
let ready = false;
let pending = [];
let invocation = null;
// Requests that arrived while another ran: ledge may write the next one early (a worker still
// runs one at a time; each one's clock starts when it is taken from here).
const waiting = [];

// The peak RSS is a high-water mark the kernel keeps: read at most once a millisecond (a
// getrusage call costs more than a no-op handler), a later reading still catches every peak.
let rssReadAt = -1;
let rssKib = 0;
function maxRssKib() {
  const now = Date.now();
  if (now !== rssReadAt) {
    rssReadAt = now;
    try {
      rssKib = process.resourceUsage().maxRSS >>> 0;
    } catch (_) {
      rssKib = 0;
    }
  }
  return rssKib;
}

function send(kind, body, done) {
  const logs = takeLogs();
  // One buffer, written in place: a no-op handler's answer costs little more than its copy.
  const logLen = logs.length === 0 ? 0 : Buffer.byteLength(logs, 'utf8');
  const bodyLen = Buffer.byteLength(body, 'utf8');
  // The invocation's own duration: answers can reach ledge together, so their arrival times
  // do not tell how long each one ran.
  const durationUs = startedAt < 0 ? 0 : Math.min(Math.round((performance.now() - startedAt) * 1000), 0xffffffff);
  const frame = Buffer.allocUnsafe(17 + logLen + bodyLen);
  frame.writeUInt32LE(13 + logLen + bodyLen, 0);
  frame.writeUInt8(kind, 4);
  frame.writeUInt32LE(maxRssKib(), 5);
  frame.writeUInt32LE(durationUs, 9);
  frame.writeUInt32LE(logLen, 13);
  if (logLen > 0) frame.write(logs, 17, logLen, 'utf8');
  frame.write(body, 17 + logLen, bodyLen, 'utf8');
  // At once, never held for a batch: ledge starts the next invocation's clock when this
  // answer arrives, and a finished answer held while the next handler runs would wait for
  // it, and die with the worker if that one never returns (held answers measured +3-5 %
  // req/s under load; not worth a runaway handler taking finished invocations down).
  socket.write(frame, done);
}

socket.on('data', (chunk) => {
  inbox = inbox.length === 0 ? chunk : Buffer.concat([inbox, chunk]);
  while (inbox.length >= 4) {
    const len = inbox.readUInt32LE(0);
    if (inbox.length < 4 + len) break;
    const body = inbox.toString('utf8', 4, 4 + len);
    inbox = inbox.subarray(4 + len);
    const request = JSON.parse(body);
    if (ready) waiting.push(request);
    else if (request.load) init(request.load);
    else pending.push(request);
  }
  if (!invocation) next();
});

function next() {
  const request = waiting.shift();
  if (request !== undefined) invoke(request);
}
// ledge went away (or closed this worker): nothing more to serve.
socket.on('close', () => process.exit(0));
socket.on('error', () => process.exit(0));

// ---- handler loading (the init phase) -----------------------------------------------------

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch (_) {
    return false;
  }
}

function nearestPackageIsModule(file, root) {
  let dir = path.dirname(file);
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (isFile(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch (_) {
        return false;
      }
    }
    if (dir === root || dir === path.dirname(dir)) return false;
    dir = path.dirname(dir);
  }
}

async function loadModule(file, esm) {
  if (esm) {
    const { pathToFileURL } = require('node:url');
    return import(pathToFileURL(file).href);
  }
  return require(file);
}

async function loadHandler() {
  const handler = env._HANDLER || '';
  const root = env.LAMBDA_TASK_ROOT;
  if (handler.includes('..')) {
    throw new RuntimeError(
      'Runtime.MalformedHandlerName',
      `'${handler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const slash = handler.lastIndexOf('/');
  const dir = handler.slice(0, slash + 1);
  const rest = handler.slice(slash + 1);
  const dot = rest.indexOf('.');
  if (dot < 1 || dot === rest.length - 1) throw new RuntimeError('Runtime.MalformedHandlerName', 'Bad handler');
  const moduleName = rest.slice(0, dot);
  const exportPath = rest.slice(dot + 1).split('.');
  const base = path.resolve(root, dir, moduleName);

  let file = null;
  let esm = false;
  if (isFile(base)) {
    file = base;
    esm = base.endsWith('.mjs');
  } else if (isFile(base + '.js')) {
    file = base + '.js';
    esm = nearestPackageIsModule(file, root);
  } else if (isFile(base + '.mjs')) {
    file = base + '.mjs';
    esm = true;
  } else if (isFile(base + '.cjs')) {
    file = base + '.cjs';
  }
  if (file === null) {
    throw new RuntimeError(
      'Runtime.ImportModuleError',
      `Error: Cannot find module '${dir}${moduleName}'\nRequire stack:\n- ${__filename}`,
    );
  }

  let mod;
  try {
    mod = await loadModule(file, esm);
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new RuntimeError('Runtime.UserCodeSyntaxError', `${err.name}: ${err.message}`);
    }
    if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new RuntimeError('Runtime.ImportModuleError', `Error: ${err.message}`);
    }
    throw err;
  }

  let target = mod;
  for (const key of exportPath) {
    target = target == null ? undefined : target[key];
  }
  if (target === undefined) {
    throw new RuntimeError('Runtime.HandlerNotFound', `${rest} is undefined or not exported`);
  }
  if (typeof target !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${rest} is not a function`);
  }
  return target;
}

// ---- invocations --------------------------------------------------------------------------

let handlerFn = null;
// The function's facts in each context, read from the environment once the init phase has
// set it (every process.env read is a call into the embedder).
let about = null;

// When the running invocation started (performance.now() ms); -1 outside one.
let startedAt = -1;

function invoke(request) {
  startedAt = performance.now();
  currentId = request.id;
  const deadline = Date.now() + request.timeout;
  const state = { done: false };
  invocation = state;

  const finish = (err, result, viaCallback) => {
    if (state.done) return;
    state.done = true;
    if (viaCallback && context.callbackWaitsForEmptyEventLoop) {
      // Reply once the event loop is empty, as Lambda does: our own socket must not count.
      socket.unref();
      process.once('beforeExit', () => {
        socket.ref();
        reply(err, result);
      });
    } else {
      reply(err, result);
    }
  };

  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: about.functionName,
    functionVersion: about.functionVersion,
    invokedFunctionArn: about.invokedFunctionArn,
    memoryLimitInMB: about.memoryLimitInMB,
    awsRequestId: request.id,
    logGroupName: about.logGroupName,
    logStreamName: about.logStreamName,
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: (err, result) => finish(err, result, true),
    succeed: (result) => finish(null, result, true),
    fail: (err) => finish(err == null ? 'handled' : err, undefined, true),
  };
  const callback = (err, result) => finish(err, result, true);

  let returned;
  try {
    returned = handlerFn(request.event, context, callback);
  } catch (err) {
    finish(err, undefined, false);
    return;
  }
  if (returned && typeof returned.then === 'function') {
    returned.then(
      (result) => finish(null, result, false),
      (err) => finish(err == null ? new Error('Rejected with ' + String(err)) : err, undefined, false),
    );
  }
}

function reply(err, result) {
  answer(err, result);
  invocation = null;
  next();
}

function answer(err, result) {
  if (err != null) {
    logError('Invoke Error', err);
    send(KIND.E, invokeErrorJson(err));
    return;
  }
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch (e) {
    const marshal = new RuntimeError('Runtime.MarshalError', 'Unable to stringify response body: ' + e.message);
    logError('Invoke Error', marshal);
    send(KIND.E, invokeErrorJson(marshal));
    return;
  }
  send(KIND.R, body === undefined ? 'null' : body);
}

// An error outside the handler's promise chain ends the environment, as in Lambda. During an
// invocation it becomes that invocation's error; between invocations nobody is waiting for a
// frame, so it is only logged (on the real stderr, which ledge captures) before the exit.
function fatal(prefix, err) {
  logError(prefix, err);
  if (!invocation) {
    try {
      fs.writeSync(2, takeLogs());
    } catch (_) {
      // Nothing more can be done with the output.
    }
    process.exit(129);
  }
  const type = prefix === 'Unhandled Promise Rejection' ? 'Runtime.UnhandledPromiseRejection' : errorType(err);
  const body = JSON.stringify({ errorType: type, errorMessage: errorMessage(err), trace: stackLines(err) });
  send(KIND.F, body, () => process.exit(129));
}
process.on('uncaughtException', (err) => fatal('Uncaught Exception', err));
process.on('unhandledRejection', (err) => fatal('Unhandled Promise Rejection', err));

// The init phase. A spare (LEDGE_SPARE=1) is an interpreter started ahead of need: it reports
// ready at once and runs the init phase when ledge assigns it a function with a load frame
// carrying that function's environment and task root.
function init(load) {
  if (load) {
    delete env.LEDGE_SPARE;
    Object.assign(env, load.env);
    process.chdir(load.root);
  }
  loadHandler().then(
    (fn) => {
      handlerFn = fn;
      about = {
        functionName: env.AWS_LAMBDA_FUNCTION_NAME,
        functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
        invokedFunctionArn: env.LEDGE_FUNCTION_ARN,
        memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
        logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
        logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      };
      ready = true;
      send(KIND.I, '');
      waiting.push(...pending);
      pending = [];
      next();
    },
    (err) => {
      logError('Uncaught Exception', err);
      send(KIND.X, invokeErrorJson(err));
    },
  );
}

if (env.LEDGE_SPARE === '1') send(KIND.I, '');
else init(null);
