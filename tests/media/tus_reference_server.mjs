// Copyright 2026 The Outpost Authors.
//
// The tus reference server (@tus/server with @tus/file-store), for tus_transport_tests: an implementation of
// tus 1.0.0 that is not ours, to upload to.
//   node tus_reference_server.mjs NPM_DIR STORE_DIR
// NPM_DIR holds node_modules (tools/npm-deps installs it); uploads are files in STORE_DIR, named by upload id.
// Listens on 127.0.0.1, port chosen by the OS, and prints "PORT <n>" on stdout once listening. Exits when its
// stdin closes, so that it never outlives the test that started it.
//   /files/  answers absolute Location URLs (the default)
//   /rel/    answers relative ones (relativeLocation), to test their resolution
// Both share one store. GET /files/ID serves a finished upload whole (200; @tus/server ignores Range).
import { createRequire } from 'node:module';
import http from 'node:http';
import path from 'node:path';

const [npmDir, storeDir] = process.argv.slice(2);
if (!npmDir || !storeDir) {
  console.error('usage: node tus_reference_server.mjs NPM_DIR STORE_DIR');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(npmDir), 'package.json'));
const { Server } = require('@tus/server');
const { FileStore } = require('@tus/file-store');

const datastore = new FileStore({ directory: storeDir });
const absolute = new Server({ path: '/files', datastore });
const relative = new Server({ path: '/rel', datastore, relativeLocation: true });

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/rel')) return relative.handle(req, res);
  if (req.url.startsWith('/files')) return absolute.handle(req, res);
  res.writeHead(404, { 'Content-Length': 0 });
  res.end();
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
