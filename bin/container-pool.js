#!/usr/bin/env node
'use strict';
// The `container-pool` command: `container-pool serve`, `container-pool image build` (see dist/cli/main.js).
const { join } = require('node:path');

let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write(
      `container-pool: ${join(__dirname, '..', 'dist')} is missing: run \`npm run build\` in ${join(__dirname, '..')}\n`,
    );
    process.exit(1);
  }
  throw err;
}

cli.main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`container-pool: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
