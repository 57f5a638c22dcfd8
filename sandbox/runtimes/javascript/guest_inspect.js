// inspect(value): a value as the Node REPL echoes it (util.inspect's defaults, simplified), for
// the echo of a cell's completion value. Part of the driver module: cells cannot reach it.
//
// Strings are quoted, objects show their class name (Foo { a: 1 }), Map and Set their size and
// entries, functions and classes their kind and name; nesting deeper than 2 levels shows as
// [Object] / [Array], more than 100 entries as "... N more items", strings past 10,000
// characters are cut, and a cycle as [Circular *1]. A whole echo stays bounded: past 2,000
// entries, nested objects are no longer opened. Unlike Node, a Promise's state is not shown
// (QuickJS gives scripts no way to read it) and long arrays are packed in lines, not aligned
// in columns.

const inspect = (() => {
  const MAX_DEPTH = 2;
  const MAX_ENTRIES = 100;
  const MAX_STRING = 10000;
  const ENTRY_BUDGET = 2000;
  const LINE_WIDTH = 72;
  const IDENTIFIER = /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u;
  const TYPED_ARRAY = Object.getPrototypeOf(Int8Array);

  function quote(text) {
    const cut = text.length > MAX_STRING ? text.slice(0, MAX_STRING) : text;
    const mark = !cut.includes("'") ? "'" : !cut.includes('"') ? '"' : !cut.includes("`") ? "`" : "'";
    const escaped = cut.replace(/[\\\n\r\t\b\f\v\0-\x1f\x7f]/g, (char) => {
      const known = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\v": "\\v" };
      return known[char] ?? `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
    });
    const quoted = mark + escaped.split(mark).join(`\\${mark}`) + mark;
    const more = text.length - cut.length;
    return more > 0 ? `${quoted}... ${more} more character${more === 1 ? "" : "s"}` : quoted;
  }

  const keyText = (key) =>
    typeof key === "symbol" ? `[${String(key)}]` : IDENTIFIER.test(key) ? key : quote(key);

  function functionText(fn) {
    let source = "";
    try {
      source = Function.prototype.toString.call(fn);
    } catch {
      // a revoked proxy, say
    }
    const name = fn.name ? String(fn.name) : "";
    if (/^class\b/.test(source)) {
      const parent = Object.getPrototypeOf(fn);
      const heritage = parent && parent !== Function.prototype && parent.name ? ` extends ${parent.name}` : "";
      return `[class ${name || "(anonymous)"}${heritage}]`;
    }
    const kind = fn.constructor && fn.constructor.name ? fn.constructor.name : "Function";
    return name ? `[${kind}: ${name}]` : `[${kind} (anonymous)]`;
  }

  function primitive(value) {
    switch (typeof value) {
      case "string":
        return quote(value);
      case "number":
        return Object.is(value, -0) ? "-0" : String(value);
      case "bigint":
        return `${value}n`;
      case "symbol":
        return String(value);
      case "undefined":
        return "undefined";
      default:
        return String(value); // boolean, null
    }
  }

  // "Foo " for an instance of class Foo, "" for a plain object, or a null-prototype note.
  function prefix(value, fallback) {
    const proto = Object.getPrototypeOf(value);
    if (proto === null) return `[${fallback}: null prototype] `;
    const name = proto.constructor && typeof proto.constructor.name === "string" ? proto.constructor.name : "";
    const tag = value[Symbol.toStringTag];
    const tagText = typeof tag === "string" && tag !== "" && tag !== name ? ` [${tag}]` : "";
    return name === fallback && !tagText ? "" : `${name || fallback}${tagText} `;
  }

  class Inspector {
    constructor() {
      this.budget = ENTRY_BUDGET;
      this.stack = [];
      this.refs = new Map(); // object -> its "<ref *N>" number
    }

    format(value, depth) {
      if ((typeof value !== "object" && typeof value !== "function") || value === null) {
        return primitive(value);
      }
      if (this.stack.includes(value)) {
        if (!this.refs.has(value)) this.refs.set(value, this.refs.size + 1);
        return `[Circular *${this.refs.get(value)}]`;
      }
      this.stack.push(value);
      let text;
      try {
        text = this.formatObject(value, depth);
      } catch (error) {
        text = `[object: cannot inspect (${error && error.message})]`;
      }
      this.stack.pop();
      return this.refs.has(value) ? `<ref *${this.refs.get(value)}> ${text}` : text;
    }

    formatObject(value, depth) {
      if (typeof value === "function") {
        const keys = Object.keys(value);
        const head = functionText(value);
        return keys.length && depth <= MAX_DEPTH ? this.braces(`${head} `, this.properties(value, keys, depth), "{", "}") : head;
      }
      if (value instanceof Error) return this.error(value);
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
      if (value instanceof RegExp) return String(value);
      if (value instanceof Promise) return "Promise { <await it to see its value> }";
      if (value instanceof WeakMap || value instanceof WeakSet) return `${value.constructor.name} { <items unknown> }`;
      for (const Box of [Number, String, Boolean, BigInt, Symbol]) {
        if (value instanceof Box) return `[${Box.name}: ${primitive(value.valueOf())}]`;
      }
      if (value instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${value.byteLength} }`;
      const isArray = Array.isArray(value);
      const isTyped = value instanceof TYPED_ARRAY;
      const isMap = value instanceof Map;
      const isSet = value instanceof Set;
      const fallback = isArray ? "Array" : isMap ? "Map" : isSet ? "Set" : "Object";
      let head = isTyped ? `${value.constructor.name}(${value.length}) ` : prefix(value, fallback);
      if (isArray && head) head = `${head.trimEnd()}(${value.length}) `;
      if (isMap || isSet) head = `${head.trimEnd() || fallback}(${value.size}) `;
      const [open, close] = isArray || isTyped ? ["[", "]"] : ["{", "}"];
      if (depth > MAX_DEPTH || this.budget <= 0) {
        return isArray ? "[Array]" : `[${head.trim() || "Object"}]`;
      }
      let entries;
      if (isArray || isTyped) entries = this.items(value, depth);
      else if (isMap) entries = this.collection(value, depth, (k, v) => `${this.format(k, depth + 1)} => ${this.format(v, depth + 1)}`);
      else if (isSet) entries = this.collection(value, depth, (k) => this.format(k, depth + 1));
      else entries = [];
      if (!isTyped) {
        const keys = Reflect.ownKeys(value).filter(
          (key) => Object.getOwnPropertyDescriptor(value, key)?.enumerable && !(isArray && isIndex(key, value.length)),
        );
        entries.push(...this.properties(value, keys, depth));
      }
      return this.braces(head, entries, open, close);
    }

    error(error) {
      const lines = String(error.stack || "")
        .split("\n")
        .filter((line) => line.includes("<evalScript>"))
        .map((line) => line.trimEnd());
      return [`${error.name}: ${error.message}`, ...lines].join("\n");
    }

    items(array, depth) {
      const entries = [];
      const shown = Math.min(array.length, MAX_ENTRIES);
      let holes = 0;
      const flushHoles = () => {
        if (holes) entries.push(`<${holes} empty item${holes === 1 ? "" : "s"}>`);
        holes = 0;
      };
      for (let i = 0; i < shown; i++) {
        if (!(i in array)) {
          holes++;
          continue;
        }
        flushHoles();
        this.budget--;
        entries.push(this.format(array[i], depth + 1));
      }
      flushHoles();
      if (array.length > shown) entries.push(more(array.length - shown, "item"));
      return entries;
    }

    collection(collection, depth, entry) {
      const entries = [];
      for (const [key, value] of collection.entries()) {
        if (entries.length === MAX_ENTRIES) {
          entries.push(more(collection.size - MAX_ENTRIES, "item"));
          break;
        }
        this.budget--;
        entries.push(entry(key, value));
      }
      return entries;
    }

    properties(object, keys, depth) {
      const entries = [];
      for (const key of keys.slice(0, MAX_ENTRIES)) {
        this.budget--;
        const descriptor = Object.getOwnPropertyDescriptor(object, key);
        const shown =
          descriptor && !("value" in descriptor)
            ? descriptor.get && descriptor.set ? "[Getter/Setter]" : descriptor.get ? "[Getter]" : "[Setter]"
            : this.format(object[key], depth + 1);
        entries.push(`${keyText(key)}: ${shown}`);
      }
      if (keys.length > MAX_ENTRIES) entries.push(more(keys.length - MAX_ENTRIES, "property"));
      return entries;
    }

    // One line if it fits, else one entry per line (short items packed, as Node groups them).
    braces(head, entries, open, close) {
      if (!entries.length) return `${head}${open}${close}`;
      const oneLine = `${head}${open} ${entries.join(", ")} ${close}`;
      if (oneLine.length <= LINE_WIDTH && !oneLine.includes("\n")) return oneLine;
      const indent = (text) => text.split("\n").join("\n  ");
      const lines = [];
      const items = entries[entries.length - 1].startsWith("... ") ? entries.slice(0, -1) : entries;
      const packable = items.length > 6 && items.every((entry) => entry.length <= 16 && !entry.includes("\n"));
      if (packable) {
        let line = "";
        for (const entry of entries) {
          if (line && line.length + entry.length + 2 > LINE_WIDTH) {
            lines.push(line);
            line = "";
          }
          line += line ? ` ${entry},` : `${entry},`;
        }
        lines.push(line);
      } else lines.push(...entries.map((entry) => `${indent(entry)},`));
      lines[lines.length - 1] = lines[lines.length - 1].replace(/,$/, "");
      return `${head}${open}\n  ${lines.join("\n  ")}\n${close}`;
    }
  }

  const isIndex = (key, length) => typeof key === "string" && /^(0|[1-9]\d*)$/.test(key) && Number(key) < length;
  const more = (count, noun) =>
    `... ${count} more ${count === 1 ? noun : noun === "property" ? "properties" : `${noun}s`}`;

  return (value) => new Inspector().format(value, 0);
})();
