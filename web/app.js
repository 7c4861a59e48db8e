/*
 * The model page: runs the export's ONNX model(s) in the page with onnxruntime-web.
 *
 * sentiment: text -> tokenizer.json ids -> model.onnx -> probabilities per label.
 * translation: text -> source_tokenizer.json ids -> encoder.onnx, then greedy decoding with
 * decoder.onnx (one token per step, from [START] until [END] or max_output_length), the ids
 * turned back into text by target_tokenizer.json; the same algorithm as
 * lstm_text.decoding.greedy_decode.
 *
 * Layout (written by export/web.py): EXPORT/web/{index.html, app.js, tokenizer.js, ort/...}
 * beside the export's files. Serve EXPORT over HTTP and open /web/index.html (browsers do not
 * run WebAssembly from file:// URLs).
 *
 * For scripts and tests: `window.kerasLstm.ready` resolves when the model is loaded;
 * `await window.kerasLstm.predict(texts)` gives {task, ids, probabilities, labels} (sentiment)
 * or {task, ids, outputs, translations} (translation).
 */
(function () {
  "use strict";
  const { Tokenizer } = globalThis.KerasLstmTokenizer;
  const status = document.getElementById("status");

  async function fetchJSON(url) {
    const response = await fetch(url);
    if (!response.ok) {
      throw new Error(`${url}: HTTP ${response.status}`);
    }
    return response.json();
  }

  async function tokenizer(name) {
    return Tokenizer.fromJSON(await fetchJSON("../" + name), name);
  }

  function session(file) {
    return ort.InferenceSession.create("../" + file, { executionProviders: ["wasm"] });
  }

  async function load() {
    // One thread: threads need cross-origin isolation headers a plain file server lacks.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = new URL("ort/", document.baseURI).href;
    const metadata = await fetchJSON("../metadata.json");
    const files = (metadata.artifacts && metadata.artifacts.onnx) || {};
    if (metadata.task === "sentiment") {
      return {
        metadata,
        tokenizer: await tokenizer("tokenizer.json"),
        model: await session(files.file || "model.onnx"),
      };
    }
    if (metadata.task === "translation") {
      return {
        metadata,
        source: await tokenizer("source_tokenizer.json"),
        target: await tokenizer("target_tokenizer.json"),
        encoder: await session((files.encoder && files.encoder.file) || "encoder.onnx"),
        decoder: await session((files.decoder && files.decoder.file) || "decoder.onnx"),
      };
    }
    throw new Error(`metadata.json: task '${metadata.task}' is not supported by this page`);
  }

  const ready = load();

  function rows(data, batch, width) {
    const out = [];
    for (let i = 0; i < batch; i++) {
      out.push(Array.from(data.slice(i * width, (i + 1) * width)));
    }
    return out;
  }

  async function classify(loaded, texts) {
    const { metadata, tokenizer, model } = loaded;
    const batch = tokenizer.encodeBatch(texts);
    const feeds = { [model.inputNames[0]]: new ort.Tensor("int32", batch.data, batch.shape) };
    const output = (await model.run(feeds))[model.outputNames[0]];
    return {
      task: "sentiment",
      ids: rows(batch.data, batch.shape[0], batch.shape[1]),
      probabilities: rows(output.data, texts.length, output.dims[1]),
      labels: metadata.labels,
    };
  }

  async function translate(loaded, texts) {
    const { metadata, source, target, encoder, decoder } = loaded;
    const batch = source.encodeBatch(texts);
    const [n, time] = batch.shape;
    const encoded = await encoder.run(
      { [encoder.inputNames[0]]: new ort.Tensor("int32", batch.data, batch.shape) });
    const [outputsName, hName, cName] = encoder.outputNames;
    const encoderOutputs = encoded[outputsName];
    let h = encoded[hName];
    let c = encoded[cName];
    const mask = new ort.Tensor("bool", Uint8Array.from(batch.data, (id) => (id !== 0 ? 1 : 0)),
      [n, time]);
    const start = target.specialIds.start;
    const end = target.specialIds.end;
    let tokens = new Int32Array(n).fill(start);
    const done = new Array(n).fill(false);
    const outputs = Array.from({ length: n }, () => []);
    const [logitsName, hOut, cOut] = decoder.outputNames;
    for (let step = 0; step < metadata.max_output_length; step++) {
      const result = await decoder.run({
        token: new ort.Tensor("int32", tokens, [n, 1]),
        h, c, encoder_outputs: encoderOutputs, source_mask: mask,
      });
      const logits = result[logitsName];
      const vocab = logits.dims[1];
      h = result[hOut];
      c = result[cOut];
      tokens = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let k = 1; k < vocab; k++) {
          if (logits.data[i * vocab + k] > logits.data[i * vocab + best]) best = k;
        }
        tokens[i] = best;
        if (!done[i]) {
          if (best === end) done[i] = true; else outputs[i].push(best);
        }
      }
      if (done.every(Boolean)) break;
    }
    return {
      task: "translation",
      ids: rows(batch.data, n, time),
      outputs,
      translations: outputs.map((ids) => target.decode(ids)),
    };
  }

  async function predict(texts) {
    const loaded = await ready;
    texts = Array.from(texts);
    if (!texts.length) return { task: loaded.metadata.task, ids: [] };
    return loaded.metadata.task === "sentiment" ? classify(loaded, texts) : translate(loaded, texts);
  }

  function show(texts, result) {
    const head = document.querySelector("#results thead tr");
    const columns = result.task === "sentiment" ? ["Text", "Label", "Probabilities"]
      : ["Text", "Translation"];
    head.replaceChildren(...columns.map((name) => {
      const cell = document.createElement("th");
      cell.textContent = name;
      return cell;
    }));
    const body = document.querySelector("#results tbody");
    body.replaceChildren();
    texts.forEach((text, i) => {
      let cells;
      if (result.task === "sentiment") {
        const p = result.probabilities[i];
        const best = p.indexOf(Math.max(...p));
        cells = [text, result.labels[best],
          p.map((v, k) => `${result.labels[k]} ${v.toFixed(3)}`).join(", ")];
      } else {
        cells = [text, result.translations[i]];
      }
      const row = document.createElement("tr");
      for (const value of cells) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.appendChild(cell);
      }
      body.appendChild(row);
    });
    document.getElementById("results").hidden = false;
  }

  const button = document.getElementById("run");
  button.addEventListener("click", async () => {
    const texts = document.getElementById("text").value.split("\n").filter((t) => t.trim());
    if (texts.length) {
      show(texts, await predict(texts));
    }
  });
  ready.then(
    ({ metadata }) => {
      status.textContent = metadata.task === "sentiment"
        ? `Ready: labels ${metadata.labels.join(", ")}.` : "Ready: translation.";
      button.textContent = metadata.task === "sentiment" ? "Classify" : "Translate";
      button.disabled = false;
    },
    (error) => {
      status.textContent = `Could not load the model: ${error.message}`;
    });

  globalThis.kerasLstm = { ready, predict };
})();
