// ONNX Runtime (onnxruntime-node, CPU) timing of an exported model, for peers.
//
//   node ort-bench.js --model M.onnx --input IN.f32 --res R [--threads T]
//                     [--warmup N] [--iters N] [--labels OUT.u8]
//
// IN.f32 is the normalised input, float32 planar RGB (3, R, R), fed as
// "image" (1, 3, R, R); the output "logits" is (1, K, H, W). Prints one JSON
// line; --labels writes the argmax labels (H x W bytes).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const o = { threads: '2', warmup: '5', iters: '30' };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length)
      throw new Error(`bad argument '${argv[i]}'`);
    o[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['model', 'input', 'res'])
    if (!o[k]) throw new Error(`--${k} is needed`);
  return o;
}

function p50(times) {
  const s = [...times].sort((a, b) => a - b);
  return s[Math.floor(0.5 * (s.length - 1) + 0.5)];
}

function argmax(t) {
  const [, k, h, w] = t.dims, n = h * w, d = t.data;
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (d[c * n + i] > d[best * n + i]) best = c;
    labels[i] = best;
  }
  return labels;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const res = Number(a.res), threads = Number(a.threads);
  const warmup = Number(a.warmup), iters = Number(a.iters);
  const buf = fs.readFileSync(a.input);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  if (data.length !== 3 * res * res)
    throw new Error(`${a.input}: ${data.length} floats, not 3 x ${res} x ${res}`);

  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const feeds = { image: new ort.Tensor('float32', data, [1, 3, res, res]) };
  const times = [];
  let logits;
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = process.hrtime.bigint();
    logits = (await session.run(feeds)).logits;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= warmup) times.push(ms);
  }
  if (a.labels) fs.writeFileSync(a.labels, argmax(logits));
  console.log(JSON.stringify({
    engine: 'onnxruntime', version: ort.env.versions.node, res, out: logits.dims[3],
    threads, ms_p50: Math.round(p50(times) * 1000) / 1000,
  }));
}

main().catch((e) => {
  console.error(`ort-bench: ${e.message}`);
  process.exit(1);
});
