/*
 * The keras-lstm tokenizer contract (tokenizer.json, format_version 1) in plain JavaScript.
 *
 * A second implementation of lstm_text/contract/encoder.py's TextEncoder, written from
 * docs/tokenizer.md. No dependencies. Works
 *   - as a classic <script>: defines globalThis.KerasLstmTokenizer;
 *   - as an ES module through web/tokenizer.mjs (`import {Tokenizer} from "./tokenizer.mjs"`);
 *   - under Node: require("./tokenizer.js"), or as a command:
 *       node web/tokenizer.js TOKENIZER_JSON < texts.jsonl     # {"text": ...} -> {"ids": [...]}
 *       node web/tokenizer.js --check TOKENIZER_JSON GOLDEN_JSONL
 *
 * Example:
 *   const tok = KerasLstmTokenizer.Tokenizer.fromJSON(documentObject);
 *   tok.encode("I don't like it!!");   // -> [ids]
 */
(function (root, factory) {
  "use strict";
  const api = factory();
  if (typeof module === "object" && module && module.exports) {
    module.exports = api;
  }
  root.KerasLstmTokenizer = api;
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  const FORMAT_VERSION = 1;
  const KIND = "keras-lstm-tokenizer";
  const ROLES = ["text", "source", "target"];

  /** A malformed or unsupported tokenizer.json, golden file or input line. */
  class ContractError extends Error {
    constructor(message) {
      super(message);
      this.name = "ContractError";
    }
  }

  function hex(cp) {
    return "\\u{" + cp.toString(16).toUpperCase() + "}";
  }

  // A regex character class from [[first, last], ...] code points (for the `u` flag).
  function charClass(ranges, negate) {
    let body = "";
    for (const [a, b] of ranges) {
      body += a === b ? hex(a) : hex(a) + "-" + hex(b);
    }
    return "[" + (negate ? "^" : "") + body + "]";
  }

  function isInt(value) {
    return typeof value === "number" && Number.isInteger(value);
  }

  function field(document, name, type, where) {
    if (!(name in document)) {
      throw new ContractError(`${where}: field '${name}' is missing`);
    }
    const value = document[name];
    const ok =
      type === "int" ? isInt(value)
        : type === "list" ? Array.isArray(value)
          : type === "object" ? value !== null && typeof value === "object" && !Array.isArray(value)
            : typeof value === type;
    if (!ok) {
      throw new ContractError(`${where}: field '${name}' has the wrong type`);
    }
    return value;
  }

  function ranges(value, name, where) {
    if (!Array.isArray(value)) {
      throw new ContractError(`${where}: field '${name}' must be a list of [first, last] code points`);
    }
    for (const item of value) {
      if (!Array.isArray(item) || item.length !== 2 || !isInt(item[0]) || !isInt(item[1]) ||
          !(item[0] >= 0 && item[0] <= item[1] && item[1] <= 0x10ffff)) {
        throw new ContractError(`${where}: field '${name}' holds a bad range ${JSON.stringify(item)}`);
      }
    }
    return value;
  }

  // Membership in sorted, disjoint [first, last] ranges by bisection.
  function rangeSet(list) {
    const sorted = list.slice().sort((x, y) => x[0] - y[0]);
    const starts = sorted.map((r) => r[0]);
    return (cp) => {
      let lo = 0;
      let hi = starts.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (starts[mid] <= cp) lo = mid + 1; else hi = mid;
      }
      return lo > 0 && cp <= sorted[lo - 1][1];
    };
  }

  function escapeClassChars(text) {
    return Array.from(text, (ch) => hex(ch.codePointAt(0))).join("");
  }

  /** Text -> token ids by a tokenizer.json document (see docs/tokenizer.md). */
  class Tokenizer {
    constructor(document, source) {
      const where = source || "tokenizer.json";
      if (document === null || typeof document !== "object" || Array.isArray(document)) {
        throw new ContractError(`${where}: not a JSON object`);
      }
      const version = field(document, "format_version", "int", where);
      if (version !== FORMAT_VERSION) {
        throw new ContractError(
          `${where}: field 'format_version' is ${version}; this reader supports ${FORMAT_VERSION}`);
      }
      if (document.kind !== KIND) {
        throw new ContractError(`${where}: field 'kind' must be '${KIND}'`);
      }
      this.role = field(document, "role", "string", where);
      if (!ROLES.includes(this.role)) {
        throw new ContractError(`${where}: field 'role' must be one of ${ROLES.join(", ")}`);
      }
      const unicode = field(document, "unicode", "object", where);
      this.unicodeVersion = field(unicode, "version", "string", `${where}: unicode`);
      const unassigned = ranges(unicode.unassigned, "unicode.unassigned", where);
      if (field(document, "normalization", "string", where) !== "NFKC") {
        throw new ContractError(`${where}: field 'normalization' must be 'NFKC'`);
      }
      this.lowercase = field(document, "lowercase", "boolean", where);
      const sigma = field(document, "final_sigma", "object", where);
      this._cased = rangeSet(ranges(sigma.cased, "final_sigma.cased", where));
      this._ignorable = rangeSet(ranges(sigma.case_ignorable, "final_sigma.case_ignorable", where));
      const classes = field(document, "classes", "object", where);
      const cls = {};
      for (const name of ["removed", "space", "word", "cjk", "digit"]) {
        cls[name] = ranges(classes[name], `classes.${name}`, where);
      }
      const edge = field(document, "strip_from_word_edges", "string", where);
      const mark = document.space_mark === undefined ? null : document.space_mark;
      if (mark !== null && (typeof mark !== "string" || Array.from(mark).length !== 1)) {
        throw new ContractError(`${where}: field 'space_mark' must be one character or null`);
      }
      this.spaceMark = mark;
      this.splitDigits = field(document, "split_digits", "boolean", where);
      this.cjkBigrams = field(document, "cjk_bigrams", "boolean", where);
      this.stopwords = new Set(field(document, "stopwords", "list", where));
      this.tokens = field(document, "vocabulary", "list", where);
      this.index = new Map();
      this.tokens.forEach((token, i) => {
        if (typeof token !== "string" || token === "") {
          throw new ContractError(`${where}: field 'vocabulary' must hold non-empty strings`);
        }
        if (this.index.has(token)) {
          throw new ContractError(`${where}: field 'vocabulary' holds a token twice`);
        }
        this.index.set(token, i);
      });
      const special = field(document, "special_tokens", "object", where);
      this.specialIds = {};
      for (const [name, entry] of Object.entries(special)) {
        const ok = entry !== null && typeof entry === "object" && isInt(entry.id) &&
          entry.id >= 0 && entry.id < this.tokens.length && this.tokens[entry.id] === entry.token;
        if (!ok) {
          throw new ContractError(
            `${where}: field 'special_tokens.${name}' does not match the vocabulary`);
        }
        this.specialIds[name] = entry.id;
      }
      for (const name of ["pad", "oov"]) {
        if (!(name in this.specialIds)) {
          throw new ContractError(`${where}: field 'special_tokens.${name}' is missing`);
        }
      }
      const truncation = field(document, "truncation", "object", where);
      this.maxLength = truncation.max_length === undefined ? null : truncation.max_length;
      if (this.maxLength !== null && !(isInt(this.maxLength) && this.maxLength >= 1)) {
        throw new ContractError(
          `${where}: field 'truncation.max_length' must be a positive integer or null`);
      }
      if (truncation.cut !== "end") {
        throw new ContractError(`${where}: field 'truncation.cut' must be 'end'`);
      }
      this.emptyTextToOov = field(document, "empty_text_to_oov", "boolean", where);
      this.addStartEnd = field(document, "add_start_end", "boolean", where);
      if (this.addStartEnd && !("start" in this.specialIds && "end" in this.specialIds)) {
        throw new ContractError(
          `${where}: field 'special_tokens' needs 'start' and 'end' with add_start_end`);
      }
      const padding = field(document, "padding", "object", where);
      if (padding.side !== "right" || padding.id !== this.specialIds.pad) {
        throw new ContractError(`${where}: field 'padding' must be right padding with the pad id`);
      }
      this.document = document;
      this.source = where;

      // Splitting with a capturing group keeps the unassigned code points at odd indices.
      this._unassigned = unassigned.length ? new RegExp("(" + charClass(unassigned) + ")", "u") : null;
      this._lowerStops = new RegExp(charClass(unassigned.concat([[0x3a3, 0x3a3]])), "gu");
      this._removed = new RegExp(charClass(cls.removed), "gu");
      const space = charClass(cls.space);
      this._space = new RegExp(space + "+", "gu");
      this._edgeSpace = new RegExp("^" + space + "+|" + space + "+$", "gu");
      this._single = new RegExp(
        "(" + charClass(cls.cjk) + "|" +
        charClass(cls.word.concat(cls.space, cls.cjk, cls.removed), true) + ")", "gu");
      this._digit = new RegExp("(" + charClass(cls.digit) + ")", "gu");
      this._cjk = new RegExp("^" + charClass(cls.cjk) + "$", "u");
      this._edges = edge ? new RegExp("^[" + escapeClassChars(edge) + "]+|[" +
        escapeClassChars(edge) + "]+$", "gu") : null;
    }

    /** A Tokenizer from a parsed document, a JSON string, or (Node only) a file path. */
    static fromJSON(documentOrText, source) {
      if (typeof documentOrText === "string") {
        let document;
        try {
          document = JSON.parse(documentOrText);
        } catch (error) {
          throw new ContractError(`${source || "tokenizer.json"}: not valid JSON (${error.message})`);
        }
        return new Tokenizer(document, source);
      }
      return new Tokenizer(documentOrText, source);
    }

    /**
     * NFKC, then lower-casing (if the document says so), as docs/tokenizer.md defines them.
     * Code points unassigned in the document's Unicode pass through unchanged; a capital
     * sigma becomes final by the document's final_sigma sets, not by the engine's tables.
     */
    fold(text) {
      if (this._unassigned !== null && this._unassigned.test(text)) {
        const parts = text.split(this._unassigned); // unassigned code points at odd indices
        for (let i = 0; i < parts.length; i += 2) {
          parts[i] = parts[i].normalize("NFKC");
        }
        text = parts.join("");
      } else {
        text = text.normalize("NFKC");
      }
      if (!this.lowercase) {
        return text;
      }
      let out = "";
      let last = 0;
      for (const match of text.matchAll(this._lowerStops)) {
        out += text.slice(last, match.index).toLowerCase();
        out += match[0] === "\u03a3" ? this._sigma(text, match.index) : match[0];
        last = match.index + match[0].length;
      }
      return out + text.slice(last).toLowerCase();
    }

    // Final "ς" if a cased letter precedes and none follows, case-ignorables skipped.
    _sigma(text, i) {
      let j = i;
      let cp = null;
      while (j > 0) {
        cp = text.codePointAt(j - 1);
        // A low surrogate: step back over the whole pair.
        if (cp >= 0xdc00 && cp <= 0xdfff && j >= 2) {
          const pair = text.codePointAt(j - 2);
          if (pair > 0xffff) {
            cp = pair;
          }
        }
        j -= cp > 0xffff ? 2 : 1;
        if (!this._ignorable(cp)) {
          break;
        }
        cp = null;
      }
      if (cp === null || !this._cased(cp)) {
        return "\u03c3";
      }
      j = i + 1;
      while (j < text.length) {
        cp = text.codePointAt(j);
        if (!this._ignorable(cp)) {
          return this._cased(cp) ? "\u03c3" : "\u03c2";
        }
        j += cp > 0xffff ? 2 : 1;
      }
      return "\u03c2";
    }

    /** The tokens of `text` (after bigrams and stop words, before the vocabulary). */
    tokenize(text) {
      text = text.replace(this._removed, "");
      text = this.fold(text);
      text = text.replace(this._removed, "");
      if (this.spaceMark !== null) {
        const mark = " " + this.spaceMark + " ";
        text = text.replace(this._edgeSpace, "").replace(this._space, () => mark);
      }
      text = text.replace(this._single, " $1 ");
      if (this.splitDigits) {
        text = text.replace(this._digit, " $1 ");
      }
      text = text.replace(this._space, " ");
      let tokens = text.split(" ");
      if (this._edges !== null) {
        tokens = tokens.map((t) => t.replace(this._edges, ""));
      }
      tokens = tokens.filter((t) => t !== "");
      if (this.cjkBigrams) {
        tokens = this._bigrams(tokens);
      }
      return tokens.filter((t) => !this.stopwords.has(t));
    }

    _bigrams(tokens) {
      const cjk = tokens.map((t) => this._cjk.test(t));
      const out = [];
      for (let i = 0; i < tokens.length; i++) {
        const after = i + 1 < tokens.length && cjk[i + 1];
        if (cjk[i] && after) {
          out.push(tokens[i] + tokens[i + 1]);
        } else if (!(cjk[i] && i > 0 && cjk[i - 1])) {
          out.push(tokens[i]);
        }
      }
      return out;
    }

    /** The ids of `text`: cut to max_length; an empty text -> [OOV] (or wrapped in START/END). */
    encode(text) {
      const oov = this.specialIds.oov;
      let ids = this.tokenize(text).map((t) => (this.index.has(t) ? this.index.get(t) : oov));
      if (this.maxLength !== null) {
        ids = ids.slice(0, this.maxLength);
      }
      if (ids.length === 0 && this.emptyTextToOov) {
        ids = [oov];
      }
      if (this.addStartEnd) {
        ids = [this.specialIds.start, ...ids, this.specialIds.end];
      }
      return ids;
    }

    /** {data: Int32Array (batch * time), shape: [batch, time]}, right-padded with the pad id. */
    encodeBatch(texts) {
      const rows = Array.from(texts, (t) => this.encode(t));
      const time = rows.reduce((m, r) => Math.max(m, r.length), 0);
      const data = new Int32Array(rows.length * time).fill(this.specialIds.pad);
      rows.forEach((row, i) => data.set(row, i * time));
      return { data, shape: [rows.length, time] };
    }

    /** Ids back to text: tokens joined, space marks -> spaces (else joined by single spaces). */
    decode(ids) {
      const tokens = [];
      for (const id of ids) {
        const i = Number(id);
        if (i >= 0 && i < this.tokens.length) {
          tokens.push(this.tokens[i]);
        }
      }
      if (this.spaceMark !== null) {
        return tokens.join("").split(this.spaceMark).join(" ");
      }
      return tokens.join(" ");
    }
  }

  /** One `{"text": ...}` JSON line -> one `{"ids": [...]}` line (null for a blank line). */
  function encodeJsonLine(tokenizer, line, source, number) {
    if (line.trim() === "") {
      return null;
    }
    let record;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new ContractError(`${source}, line ${number}: not valid JSON (${error.message})`);
    }
    if (record === null || typeof record !== "object" || Array.isArray(record) ||
        typeof record.text !== "string") {
      throw new ContractError(`${source}, line ${number}: field 'text' (a string) is missing`);
    }
    return JSON.stringify({ ids: tokenizer.encode(record.text) });
  }

  return { Tokenizer, ContractError, encodeJsonLine, FORMAT_VERSION };
});

// The command line (Node only): `node web/tokenizer.js TOKENIZER_JSON` and `--check`.
if (typeof require === "function" && typeof module === "object" && require.main === module) {
  (function main() {
    "use strict";
    const fs = require("fs");
    const readline = require("readline");
    const { Tokenizer, ContractError, encodeJsonLine } = module.exports;
    const args = process.argv.slice(2);
    const fail = (message) => {
      process.stderr.write("error: " + message.split("\n")[0] + "\n");
      process.exit(1);
    };
    const usage = "usage: node tokenizer.js TOKENIZER_JSON < texts.jsonl\n" +
      "       node tokenizer.js --check TOKENIZER_JSON GOLDEN_JSONL";
    const check = args[0] === "--check";
    if (args.length !== (check ? 3 : 1) || args[0] === "-h" || args[0] === "--help") {
      process.stderr.write(usage + "\n");
      process.exit(2);
    }
    const path = check ? args[1] : args[0];
    let tokenizer;
    try {
      let text;
      try {
        text = fs.readFileSync(path, "utf8");
      } catch (error) {
        throw new ContractError(`${path}: file not found`);
      }
      tokenizer = Tokenizer.fromJSON(text, path);
    } catch (error) {
      fail(error instanceof ContractError ? error.message : String(error));
    }
    const input = check ? fs.createReadStream(args[2], { encoding: "utf8" }) : process.stdin;
    if (!check) {
      process.stdin.setEncoding("utf8");
    }
    input.on("error", (error) => fail(`${args[2]}: ${error.message}`));
    const lines = readline.createInterface({ input, crlfDelay: Infinity });
    const source = check ? args[2] : "<stdin>";
    let number = 0;
    let count = 0;
    let out = [];
    lines.on("line", (line) => {
      number += 1;
      try {
        if (check) {
          if (line.trim() === "") return;
          let record;
          try {
            record = JSON.parse(line);
          } catch (error) {
            throw new ContractError(`${source}, line ${number}: not a golden record`);
          }
          const got = tokenizer.encode(record.text);
          if (JSON.stringify(got) !== JSON.stringify(record.ids)) {
            throw new ContractError(`${source}, line ${number}: ids ${JSON.stringify(got.slice(0, 8))}` +
              `... differ from ${JSON.stringify((record.ids || []).slice(0, 8))}...`);
          }
          count += 1;
          return;
        }
        const result = encodeJsonLine(tokenizer, line, source, number);
        if (result !== null) {
          out.push(result);
          if (out.length >= 256) {
            process.stdout.write(out.join("\n") + "\n");
            out = [];
          }
        }
      } catch (error) {
        fail(error instanceof ContractError ? error.message : String(error));
      }
    });
    lines.on("close", () => {
      if (check) {
        process.stdout.write(`${source}: ${count} texts, all ids equal\n`);
      } else if (out.length) {
        process.stdout.write(out.join("\n") + "\n");
      }
    });
  })();
}
