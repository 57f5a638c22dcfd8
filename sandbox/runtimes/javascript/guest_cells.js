// Re-runnable cells: the top-level let/const/class declarations of a cell become assignments to
// properties of globalThis, so that running a cell again, or declaring a name again in a later
// cell, replaces the binding as in the Node REPL or a browser console, where QuickJS would throw
// "redeclaration of 'x'" (a global script's lexical bindings can never be removed, and
// QuickJS-NG 0.17's evalScript has no REPL mode). Part of the driver module: cells cannot reach
// it. rewriteCell(source) returns {source, names, constants}: the rewritten text (the same lines
// and line breaks, so error positions keep their line numbers) and the names it declares.
//
//   let a = 1, b        ->  void (a = 1, b = undefined)
//   const {x, y} = obj  ->  void ({x, y} = obj, __sandbox_const__("x", "y"))
//   class K {}          ->  void (K = class K {});
//
// __sandbox_const__ turns the names into accessors whose setter throws as QuickJS does for a
// const, so a const stays read-only in its cell and later ones, until a cell declares it again.
// Declarations inside blocks and functions are left alone. Differences from real lexical
// bindings: no temporal dead zone (a name read before its declaration runs is undefined), and
// the names are properties of globalThis. A source the scanner cannot follow (an unterminated
// string, say) is returned unchanged, for QuickJS to report.

const rewriteCell = (() => {
  const NAME = /[\p{ID_Start}$_\\#][\p{ID_Continue}$\u200c\u200d\\]*/uy;
  const NUMBER = /(?:0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y;
  const PUNCTUATOR =
    />>>=|\.\.\.|===|!==|\*\*=|<<=|>>=|>>>|&&=|\|\|=|\?\?=|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.(?!\d)|\+\+|--|\+=|-=|\*=|\/=|%=|&=|\|=|\^=|\*\*|<<|>>|[{}()[\];,<>+\-*/%&|^!~?:=.@]/y;
  // Keywords after which an expression starts, so a "/" there begins a regular expression.
  const OPERATOR_WORDS = new Set([
    "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case",
    "do", "else", "yield", "await", "extends",
  ]);
  const ENDS_EXPRESSION = new Set([")", "]", "}", "++", "--"]);

  function endsExpression(token) {
    if (!token) return false;
    if (token.type === "name") return !OPERATOR_WORDS.has(token.value);
    if (token.type === "punct") return ENDS_EXPRESSION.has(token.value);
    return true; // numbers, strings, templates, regular expressions
  }

  function skipQuoted(source, start) {
    const quote = source[start];
    for (let i = start + 1; i < source.length; i++) {
      if (source[i] === "\\") i++;
      else if (source[i] === quote) return i + 1;
      else if (source[i] === "\n" || source[i] === "\r") break;
    }
    throw new SyntaxError("unterminated string");
  }

  function skipRegex(source, start) {
    let inClass = false;
    for (let i = start + 1; i < source.length; i++) {
      const char = source[i];
      if (char === "\\") i++;
      else if (char === "[") inClass = true;
      else if (char === "]") inClass = false;
      else if (char === "/" && !inClass) {
        NAME.lastIndex = i + 1;
        return NAME.test(source) ? NAME.lastIndex : i + 1; // flags
      } else if (char === "\n") break;
    }
    throw new SyntaxError("unterminated regular expression");
  }

  // Tokens outside template substitutions ("nested" ones are inside `${...}`, which the
  // rewriter never touches), with whether a line break precedes each.
  function tokenize(source) {
    const tokens = [];
    const braces = []; // for each open "{": null, or the start of the template it resumes
    let newline = false;
    let last = null; // the last significant token, for "/" and template resumption
    let i = 0;
    const push = (type, value, start, end) => {
      last = { type, value, start, end, newline, nested: braces.some((b) => b !== null) };
      tokens.push(last);
      newline = false;
    };
    // Scans template text from i (just after "`" or "}"); returns [end, ended].
    const templateText = (from) => {
      for (let j = from; j < source.length; j++) {
        if (source[j] === "\\") j++;
        else if (source[j] === "`") return [j + 1, true];
        else if (source[j] === "$" && source[j + 1] === "{") return [j + 2, false];
      }
      throw new SyntaxError("unterminated template");
    };
    const template = (start, from) => {
      const [end, ended] = templateText(from);
      if (ended) push("template", "`", start, end);
      else {
        braces.push(start);
        last = { type: "punct", value: "${" }; // an expression starts: "/" is a regex
      }
      return end;
    };
    while (i < source.length) {
      const char = source[i];
      if (char === "\n" || char === "\r" || char === "\u2028" || char === "\u2029") {
        newline = true;
        i++;
      } else if (/\s/.test(char)) {
        i++;
      } else if (source.startsWith("//", i)) {
        const end = source.indexOf("\n", i);
        i = end < 0 ? source.length : end;
      } else if (source.startsWith("/*", i)) {
        const end = source.indexOf("*/", i + 2);
        if (end < 0) throw new SyntaxError("unterminated comment");
        if (/[\n\r\u2028\u2029]/.test(source.slice(i, end))) newline = true;
        i = end + 2;
      } else if (char === '"' || char === "'") {
        const end = skipQuoted(source, i);
        push("string", char, i, end);
        i = end;
      } else if (char === "`") {
        i = template(i, i + 1);
      } else if (char === "/" && !endsExpression(last)) {
        const end = skipRegex(source, i);
        push("regex", "/", i, end);
        i = end;
      } else if (char === "}" && braces.length && braces[braces.length - 1] !== null) {
        i = template(braces.pop(), i + 1); // the template resumes after its substitution
      } else {
        let match = null;
        for (const [type, pattern] of [["number", NUMBER], ["name", NAME], ["punct", PUNCTUATOR]]) {
          pattern.lastIndex = i;
          if ((match = pattern.exec(source))) {
            push(type, match[0], i, i + match[0].length);
            break;
          }
        }
        if (!match) throw new SyntaxError(`unexpected character ${JSON.stringify(char)}`);
        if (match[0] === "{") braces.push(null);
        else if (match[0] === "}") braces.pop();
        i += match[0].length;
      }
    }
    if (braces.some((b) => b !== null)) throw new SyntaxError("unterminated template");
    return tokens.filter((token) => !token.nested);
  }

  const OPENERS = { "(": ")", "[": "]", "{": "}" };
  const CLOSERS = new Set([")", "]", "}"]);
  // A token that, after a line break, cannot continue an expression: the statement ended there.
  function startsStatement(token) {
    if (token.type === "name") return token.value !== "in" && token.value !== "instanceof";
    if (token.type === "punct") return ["{", "++", "--", "!", "~", ";"].includes(token.value);
    return token.type !== "template";
  }

  class Parser {
    constructor(tokens) {
      this.tokens = tokens;
    }

    is(index, value) {
      const token = this.tokens[index];
      return token !== undefined && token.type === "punct" && token.value === value;
    }

    // The index just past the bracketed group that opens at index.
    skipGroup(index) {
      let depth = 0;
      for (let i = index; i < this.tokens.length; i++) {
        const token = this.tokens[i];
        if (token.type !== "punct") continue;
        if (token.value in OPENERS) depth++;
        else if (CLOSERS.has(token.value) && --depth === 0) return i + 1;
      }
      throw new SyntaxError("unbalanced brackets");
    }

    // The index just past an expression starting at index: stops at "," or ";" or a closer at
    // its own depth, or where a line break ends the statement.
    skipExpression(index) {
      let i = index;
      while (i < this.tokens.length) {
        const token = this.tokens[i];
        if (i > index && token.newline && endsExpression(this.tokens[i - 1])) {
          if (startsStatement(token)) return i;
        }
        if (token.type === "punct") {
          if (token.value === "," || token.value === ";" || CLOSERS.has(token.value)) return i;
          if (token.value in OPENERS) {
            i = this.skipGroup(i);
            continue;
          }
        }
        i++;
      }
      return i;
    }

    // A binding identifier or pattern at index: [names, index past it].
    binding(index, names) {
      const token = this.tokens[index];
      if (token === undefined) throw new SyntaxError("missing binding");
      if (token.type === "name") {
        names.push(token.value);
        return index + 1;
      }
      if (!this.is(index, "[") && !this.is(index, "{")) throw new SyntaxError("bad binding");
      const object = token.value === "{";
      const close = object ? "}" : "]";
      let i = index + 1;
      while (!this.is(i, close)) {
        if (this.is(i, ",")) {
          i++; // an array hole
          continue;
        }
        if (this.is(i, "...")) i = this.binding(i + 1, names);
        else if (object) {
          const key = this.tokens[i];
          const shorthand = key && key.type === "name" && !this.is(i + 1, ":");
          if (shorthand) i = this.binding(i, names);
          else {
            i = this.is(i, "[") ? this.skipGroup(i) : i + 1; // computed, string or number key
            if (!this.is(i, ":")) throw new SyntaxError("bad object pattern");
            i = this.binding(i + 1, names);
          }
        } else i = this.binding(i, names);
        if (this.is(i, "=")) i = this.skipExpression(i + 1); // a default value
        if (this.is(i, ",")) i++;
        else if (!this.is(i, close)) throw new SyntaxError("bad pattern");
      }
      return i + 1;
    }
  }

  function declarationAt(tokens, index) {
    const token = tokens[index];
    if (token.type !== "name" || !["let", "const", "class"].includes(token.value)) return null;
    const previous = tokens[index - 1];
    // At a statement's start: first, after ";" or a block, or on a new line after a complete
    // expression (not "x =\nclass A {}", whose class is a value).
    const atStatement =
      previous === undefined ||
      (previous.type === "punct" && (previous.value === ";" || previous.value === "}")) ||
      (token.newline && endsExpression(previous));
    const next = tokens[index + 1];
    if (!atStatement || next === undefined) return null;
    if (token.value === "class") {
      return next.type === "name" && next.value !== "extends" ? token.value : null;
    }
    const pattern = next.type === "punct" && (next.value === "[" || next.value === "{");
    return next.type === "name" || pattern ? token.value : null;
  }

  function rewrite(source) {
    const tokens = tokenize(source);
    const parser = new Parser(tokens);
    const edits = []; // [position, text to insert, end of text to drop]
    const names = [];
    const constants = [];
    let depth = 0;
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      if (token.type === "punct" && token.value in OPENERS) depth++;
      else if (token.type === "punct" && CLOSERS.has(token.value)) depth--;
      const kind = depth === 0 ? declarationAt(tokens, i) : null;
      if (kind === null) continue;
      if (kind === "class") {
        let body = i + 2;
        while (body < tokens.length && !parser.is(body, "{")) {
          body = parser.is(body, "(") || parser.is(body, "[") ? parser.skipGroup(body) : body + 1;
        }
        const end = parser.skipGroup(body);
        const name = tokens[i + 1].value;
        names.push(name);
        edits.push([token.start, `void (${name} = `, token.start]);
        edits.push([tokens[end - 1].end, ");", tokens[end - 1].end]);
        i = end - 1;
        continue;
      }
      const declared = [];
      let j = i + 1;
      for (;;) {
        const start = declared.length;
        j = parser.binding(j, declared);
        if (parser.is(j, "=")) j = parser.skipExpression(j + 1);
        else if (declared.length === start + 1 && tokens[j - 1].type === "name") {
          edits.push([tokens[j - 1].end, " = undefined", tokens[j - 1].end]);
        } else throw new SyntaxError("a destructuring declaration needs a value");
        if (!parser.is(j, ",")) break;
        j++;
      }
      const last = tokens[j - 1];
      const lock = kind === "const" ? `, __sandbox_const__(${declared.map((n) => JSON.stringify(n)).join(", ")})` : "";
      edits.push([token.start, "void (", token.end]);
      edits.push([last.end, `${lock})`, last.end]);
      names.push(...declared);
      if (kind === "const") constants.push(...declared);
      i = j - 1;
    }
    let text = "";
    let at = 0;
    for (const [position, insert, dropTo] of edits.sort((a, b) => a[0] - b[0])) {
      text += source.slice(at, position) + insert;
      at = dropTo;
    }
    return { source: text + source.slice(at), names, constants };
  }

  return (source) => {
    try {
      return rewrite(source);
    } catch {
      return { source, names: [], constants: [] };
    }
  };
})();

// Defined before the driver records its baseline of globals, so it is never saved as state;
// cells reach it (their rewritten declarations call it), but it only does what
// Object.defineProperty on globalThis already allows them.
Object.defineProperty(globalThis, "__sandbox_const__", {
  value: (...names) => {
    for (const name of names) {
      const descriptor = Object.getOwnPropertyDescriptor(globalThis, name);
      if (!descriptor || !descriptor.configurable || !("value" in descriptor)) continue;
      const { value } = descriptor;
      Object.defineProperty(globalThis, name, {
        get: () => value,
        set: () => {
          throw new TypeError(`'${name}' is read-only`);
        },
        enumerable: true,
        configurable: true,
      });
    }
  },
});

// Before a cell runs: each name it declares becomes a plain writable property (undefined until
// its declaration runs), so a strict-mode cell can assign it and a const declared again is
// writable again. Names bound by var or function declarations (not configurable) are left alone.
function prepareDeclarations(names) {
  for (const name of names) {
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, name);
    if (descriptor && (!descriptor.configurable || "value" in descriptor)) continue;
    Object.defineProperty(globalThis, name, {
      value: undefined,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
}
