// sandboxUtils: shell-style chores on workspace files, for a sandbox that has no shell. The
// JavaScript twin of the Python guest's sandbox_utils module, with the same semantics.
//
// A plain script (no import/export) evaluated in the guest before the driver. Its only global
// is sandboxUtils, which must exist before the driver records its baseline of globals, or
// persisted globals would save it as user state (JSON drops the functions: "{}"). It uses
// nothing but QuickJS's `std` and `os` globals, looked up at call time.
// Relative paths resolve against the current directory (os.getcwd()), the workspace. Directory
// walks skip hidden names (starting with ".") unless a pattern spells the dot out, and never
// follow a symlink back into a directory they are already inside.
//
//   find(pattern = "*", path = ".")         sorted paths matching a glob ("**" spans directories)
//   tree(path = ".", maxDepth = 3)          a directory drawn as an indented tree, as one string
//   grep(pattern, path = ".", glob = "*", ignoreCase = false, maxMatches = 200)
//                                           [{path, lineNumber, line}] for each regex match
//   head(path, n = 10), tail(path, n = 10)  the first / last n lines, as one string
//   wc(path)                                {lines, words, bytes}
//   csvToJson(csvPath, jsonPath)            CSV rows as objects, also saved as JSON if jsonPath
//   jsonToCsv(jsonPath, csvPath)            a JSON array of objects saved as CSV; rows written
//   fileInfo(path)                          {size, modified: "2024-05-01T12:00:00Z", isDir}

(() => {
  // wasi-libc's errno values, for the failures QuickJS reports without one.
  const ERRNO_IO = 29;
  const ERRNO_ISDIR = 31;
  const ERRNO_NOSPC = 51;
  const ERRNO_NOTDIR = 54;

  function resolve(path) {
    const text = String(path);
    if (text.startsWith("/")) return text;
    const [cwd] = os.getcwd();
    return cwd.endsWith("/") ? cwd + text : `${cwd}/${text}`;
  }

  const join = (directory, name) =>
    directory === "" ? name : directory.endsWith("/") ? directory + name : `${directory}/${name}`;

  function failure(helper, path, errno) {
    return new Error(`${helper}(${JSON.stringify(path)}): ${std.strerror(errno)}`);
  }

  function statOf(path) {
    const [info, errno] = os.stat(resolve(path));
    return errno ? null : info;
  }

  const isDirInfo = (info) => info !== null && (info.mode & os.S_IFMT) === os.S_IFDIR;
  const isDir = (path) => isDirInfo(statOf(path));
  const isFile = (path) => {
    const info = statOf(path);
    return info !== null && (info.mode & os.S_IFMT) === os.S_IFREG;
  };
  const identity = (path) => {
    const info = statOf(path);
    return `${info.dev}:${info.ino}`;
  };

  function requireDirectory(helper, path) {
    const [info, errno] = os.stat(resolve(path));
    if (errno) throw failure(helper, path, errno);
    if (!isDirInfo(info)) throw failure(helper, path, ERRNO_NOTDIR);
    return String(path);
  }

  function visible(directory, showHidden = false) {
    const [names, errno] = os.readdir(resolve(directory));
    if (errno) throw failure("readdir", directory, errno);
    return names
      .filter((name) => name !== "." && name !== ".." && (showHidden || name[0] !== "."))
      .sort();
  }

  // std.loadFile reports no errno and reads a directory as empty, so stat it first.
  function load(helper, path, binary) {
    const [info, errno] = os.stat(resolve(path));
    if (errno) throw failure(helper, path, errno);
    if (isDirInfo(info)) throw failure(helper, path, ERRNO_ISDIR);
    const resolved = resolve(path);
    const data = binary ? std.loadFile(resolved, { binary: true }) : std.loadFile(resolved);
    if (data === null) throw failure(helper, path, ERRNO_IO);
    return data;
  }

  function save(helper, path, text) {
    const error = {};
    const file = std.open(resolve(path), "w", error);
    if (!file) throw failure(helper, path, error.errno);
    file.puts(text);
    file.flush();
    // stdio buffers writes, so a full disk shows up only as a stream error or a failed close.
    const failed = file.error();
    const closed = file.close();
    if (closed < 0) throw failure(helper, path, -closed);
    if (failed) throw failure(helper, path, ERRNO_NOSPC);
  }

  // fnmatch's syntax for one path segment: * ? [abc] [a-z] [!abc].
  function segmentRegex(segment) {
    let source = "";
    for (let i = 0; i < segment.length; i++) {
      const char = segment[i];
      const close = char === "[" ? segment.indexOf("]", i + 2) : -1;
      if (char === "*") source += ".*";
      else if (char === "?") source += ".";
      else if (close > 0) {
        let body = segment.slice(i + 1, close).replace(/[\\^\]]/g, "\\$&");
        if (body[0] === "!") body = "^" + body.slice(1);
        source += `[${body}]`;
        i = close;
      } else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
    return new RegExp(`^${source}$`, "s");
  }

  function* globWalk(directory, relative, parts, ancestors) {
    const [part, ...rest] = parts;
    if (part === "**" && rest.length) yield* globWalk(directory, relative, rest, ancestors);
    const matcher = part === "**" ? null : segmentRegex(part);
    for (const name of visible(directory, part.startsWith("."))) {
      const child = join(directory, name);
      const childRelative = join(relative, name);
      let nextParts;
      if (matcher === null) nextParts = parts;
      else if (matcher.test(name)) nextParts = rest.length ? rest : null;
      else continue;
      if (!rest.length) yield childRelative;
      if (nextParts !== null && isDir(child)) {
        const key = identity(child);
        if (!ancestors.has(key)) {
          yield* globWalk(child, childRelative, nextParts, new Set([...ancestors, key]));
        }
      }
    }
  }

  // Glob instead of `find`: "*.csv" looks in path only, "**/*.csv" at any depth.
  function find(pattern = "*", path = ".") {
    const root = requireDirectory("find", path);
    const text = String(pattern);
    const parts = text.split("/").filter((part) => part !== "" && part !== ".");
    if (!parts.length || text.startsWith("/")) {
      throw new Error(
        `find(${JSON.stringify(text)}): the pattern must be a relative glob such as '*.csv' ` +
          "or '**/*.py'; pass the directory to search as path",
      );
    }
    const matches = [...new Set(globWalk(root, "", parts, new Set([identity(root)])))].sort();
    return root === "." ? matches : matches.map((match) => join(root, match));
  }

  function draw(directory, prefix, depth, ancestors) {
    const lines = [];
    const names = visible(directory);
    names.forEach((name, index) => {
      const [branch, indent] = index === names.length - 1 ? ["└── ", "    "] : ["├── ", "│   "];
      const child = join(directory, name);
      if (!isDir(child)) {
        lines.push(`${prefix}${branch}${name}`);
        return;
      }
      const key = identity(child);
      if (ancestors.has(key)) {
        lines.push(`${prefix}${branch}${name}/ (link back to an enclosing directory)`);
      } else if (depth === 1) {
        const count = visible(child).length;
        const summary = count ? ` (${count} ${count === 1 ? "entry" : "entries"})` : "";
        lines.push(`${prefix}${branch}${name}/${summary}`);
      } else {
        lines.push(`${prefix}${branch}${name}/`);
        lines.push(...draw(child, prefix + indent, depth - 1, new Set([...ancestors, key])));
      }
    });
    return lines;
  }

  // One call shows the layout; directories past maxDepth show only their entry count.
  function tree(path = ".", maxDepth = 3) {
    const root = requireDirectory("tree", path);
    if (!Number.isInteger(maxDepth) || maxDepth < 1) {
      const where = `tree(${JSON.stringify(root)})`;
      throw new Error(`${where}: maxDepth must be at least 1, got ${maxDepth}`);
    }
    const label = root.endsWith("/") ? root : `${root}/`;
    return [label, ...draw(root, "", maxDepth, new Set([identity(root)]))].join("\n");
  }

  function splitLines(text) {
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop(); // the final newline ends the last line
    return lines;
  }

  // `grep -rn` with a JavaScript regex over files whose name matches glob; binary files are
  // skipped. maxMatches keeps a broad pattern from flooding the output: the search stops there.
  function grep(pattern, path = ".", glob = "*", ignoreCase = false, maxMatches = 200) {
    const where = `grep(${JSON.stringify(String(pattern))})`;
    let regex;
    try {
      regex = new RegExp(pattern, ignoreCase ? "i" : "");
    } catch (error) {
      throw new Error(`${where}: invalid regular expression: ${error.message}`);
    }
    if (!Number.isInteger(maxMatches) || maxMatches < 1) {
      throw new Error(`${where}: maxMatches must be at least 1, got ${maxMatches}`);
    }
    const target = String(path);
    const files = isFile(target)
      ? [target]
      : find(`**/${glob}`, requireDirectory("grep", target)).filter((name) => isFile(name));
    const matches = [];
    for (const name of files) {
      const text = load("grep", name, false);
      if (text.includes("\0")) continue;
      const lines = splitLines(text);
      for (let index = 0; index < lines.length; index++) {
        const line = lines[index].endsWith("\r") ? lines[index].slice(0, -1) : lines[index];
        if (regex.test(line)) {
          matches.push({ path: name, lineNumber: index + 1, line });
          if (matches.length === maxMatches) return matches;
        }
      }
    }
    return matches;
  }

  function readLines(helper, path, n) {
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`${helper}(${JSON.stringify(String(path))}): n must be 0 or more, got ${n}`);
    }
    return load(helper, path, false).match(/[^\n]*\n|[^\n]+$/g) ?? [];
  }

  // The first n lines with their newlines.
  const head = (path, n = 10) => readLines("head", path, n).slice(0, n).join("");

  // The last n lines with their newlines: the usual look at the end of a log.
  function tail(path, n = 10) {
    const lines = readLines("tail", path, n);
    return n === 0 ? "" : lines.slice(-n).join(""); // slice(-0) would keep every line
  }

  // Counts as `wc` makes them: newlines, runs of non-whitespace bytes, size in bytes.
  function wc(path) {
    const bytes = load("wc", path, true);
    let lines = 0;
    let words = 0;
    let inWord = false;
    for (const byte of bytes) {
      if (byte === 10) lines++;
      const space = byte === 32 || (byte >= 9 && byte <= 13);
      if (!space && !inWord) words++;
      inWord = !space;
    }
    return { lines, words, bytes: bytes.length };
  }

  // RFC 4180 as Python's csv module reads it: quotes open only at a field's start, "" inside
  // quotes is one quote, \r\n, \n or \r end a record, blank lines are dropped.
  function parseCsv(text) {
    const records = [];
    let record = [];
    let field = "";
    let atFieldStart = true;
    let quoted = false;
    const endField = () => {
      record.push(field);
      field = "";
      atFieldStart = true;
    };
    const endRecord = () => {
      if (record.length || !atFieldStart) endField();
      if (record.length) records.push(record);
      record = [];
    };
    for (let i = 0; i < text.length; i++) {
      const char = text[i];
      if (quoted) {
        if (char !== '"') field += char;
        else if (text[i + 1] === '"') field += text[++i];
        else quoted = false;
      } else if (char === '"' && atFieldStart) {
        quoted = true;
        atFieldStart = false;
      } else if (char === ",") {
        endField();
      } else if (char === "\n" || char === "\r") {
        if (char === "\r" && text[i + 1] === "\n") i++;
        endRecord();
      } else {
        field += char;
        atFieldStart = false;
      }
    }
    endRecord();
    return records;
  }

  // Rows keyed by the header row. Values stay strings: guessing types would mangle IDs and zip
  // codes with leading zeros; convert the columns you need. Short rows get "".
  function csvToJson(csvPath, jsonPath) {
    const where = `csvToJson(${JSON.stringify(String(csvPath))})`;
    const text = load("csvToJson", csvPath, false).replace(/^\uFEFF/, ""); // Excel's BOM
    const [header = [], ...body] = parseCsv(text);
    const rows = body.map((record, index) => {
      if (record.length > header.length) {
        throw new Error(
          `${where}: data row ${index + 1} has ${record.length} fields but the header has ` +
            `${header.length}`,
        );
      }
      return Object.fromEntries(header.map((name, column) => [name, record[column] ?? ""]));
    });
    if (jsonPath !== undefined && jsonPath !== null) {
      save("csvToJson", jsonPath, JSON.stringify(rows, null, 2) + "\n");
    }
    return rows;
  }

  const isObject = (value) => typeof value === "object" && value !== null && !Array.isArray(value);

  function csvCell(value) {
    if (value === null || value === undefined) return "";
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  // Columns are every key seen, in first-seen order, so ragged records lose nothing. Missing
  // values and null become empty cells; numbers, booleans and nested values are written as
  // JSON text (true, 1.5, {"a":1}) so they read back unambiguously.
  function jsonToCsv(jsonPath, csvPath) {
    const where = `jsonToCsv(${JSON.stringify(String(jsonPath))})`;
    let data;
    try {
      data = JSON.parse(load("jsonToCsv", jsonPath, false));
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new Error(`${where}: not valid JSON: ${error.message}`);
    }
    if (!Array.isArray(data)) throw new Error(`${where}: expected a JSON array of objects`);
    data.forEach((item, index) => {
      if (!isObject(item)) throw new Error(`${where}: item ${index} is not an object`);
    });
    const columns = [...new Set(data.flatMap((item) => Object.keys(item)))];
    const rows = columns.length ? data.map((item) => columns.map((key) => item[key])) : [];
    // A lone empty cell is quoted, as Python's csv does, so the row is not read back as blank.
    const line = (cells) =>
      cells.length === 1 && csvCell(cells[0]) === "" ? '""' : cells.map(csvCell).join(",");
    const text = columns.length ? [columns, ...rows].map((cells) => line(cells) + "\n") : [];
    save("jsonToCsv", csvPath, text.join(""));
    return rows.length;
  }

  // Size, last change (UTC, to the second) and kind, without decoding os.stat's mode bits.
  function fileInfo(path) {
    const [info, errno] = os.stat(resolve(path));
    if (errno) throw failure("fileInfo", path, errno);
    const modified = new Date(info.mtime).toISOString().replace(/\.\d{3}Z$/, "Z");
    return { size: info.size, modified, isDir: isDirInfo(info) };
  }

  globalThis.sandboxUtils = {
    find,
    tree,
    grep,
    head,
    tail,
    wc,
    csvToJson,
    jsonToCsv,
    fileInfo,
  };
})();
