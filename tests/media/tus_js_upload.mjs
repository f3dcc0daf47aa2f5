// Copyright 2026 The Outpost Authors.
//
// Interop: uploads FILE to outpostd's media server with tus-js-client (the JavaScript tus client, in its
// Node.js flavour), the way a web or Node app would. The upload is interrupted: the first Upload object is
// aborted once its first chunk was accepted, and a NEW Upload object resumes it from the upload URL (tus
// HEAD, then PATCHes from the server's offset).
//   node tus_js_upload.mjs NPM_DIR ENDPOINT TOKEN FILE CHUNK_BYTES
// NPM_DIR holds node_modules (tools/npm-deps installs it). Prints one JSON line on stdout:
//   {"url": UPLOAD_URL, "interrupted_at": BYTES, "resumed_from": BYTES, "chunks_after": N}
// where resumed_from is the offset the second object started at and chunks_after the chunks it sent.
// Exits non-zero, with the reason on stderr, on any failure; gives up after 60 s.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [npmDir, endpoint, token, file, chunkText] = process.argv.slice(2);
if (!npmDir || !endpoint || !token || !file || !chunkText) {
  console.error('usage: node tus_js_upload.mjs NPM_DIR ENDPOINT TOKEN FILE CHUNK_BYTES');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(npmDir), 'package.json'));
const tus = require('tus-js-client');

const chunkSize = Number(chunkText);
const bytes = fs.readFileSync(file);
setTimeout(() => {
  console.error('tus_js_upload: timed out');
  process.exit(1);
}, 60_000).unref();

function options(extra) {
  return {
    endpoint,
    headers: { Authorization: `Bearer ${token}` },
    chunkSize,
    metadata: { filename: path.basename(file), filetype: 'application/x-test' },
    retryDelays: null,        // a failure is the test's to see, not to retry
    storeFingerprintForResuming: false,
    ...extra,
  };
}

// First object: aborted (without terminating the upload on the server) after its first accepted chunk.
const first = await new Promise((resolve, reject) => {
  let upload = null;
  upload = new tus.Upload(bytes, options({
    onChunkComplete: (_size, accepted) => {
      upload.abort(false).then(() => resolve({ url: upload.url, offset: accepted }), reject);
    },
    onSuccess: () => reject(new Error('the first upload finished before it could be interrupted')),
    onError: reject,
  }));
  upload.start();
}).catch((e) => {
  console.error(`tus_js_upload: first upload: ${e}`);
  process.exit(1);
});
if (!first.url || !(first.offset > 0) || first.offset >= bytes.length) {
  console.error(`tus_js_upload: bad interruption: ${JSON.stringify(first)}`);
  process.exit(1);
}

// Second object: knows only the URL, asks the server where it stands and sends the rest.
let resumedFrom = -1;
let chunksAfter = 0;
const second = await new Promise((resolve, reject) => {
  let upload = null;
  upload = new tus.Upload(bytes, options({
    uploadUrl: first.url,
    onChunkComplete: (size, accepted) => {
      if (resumedFrom < 0) resumedFrom = accepted - size;
      chunksAfter += 1;
    },
    onSuccess: () => resolve(upload),
    onError: reject,
  }));
  upload.start();
}).catch((e) => {
  console.error(`tus_js_upload: resumed upload: ${e}`);
  process.exit(1);
});
if (second.url !== first.url) {
  console.error(`tus_js_upload: the resumed upload went to ${second.url}, not ${first.url}`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({
  url: second.url, interrupted_at: first.offset, resumed_from: resumedFrom, chunks_after: chunksAfter,
})}\n`);
