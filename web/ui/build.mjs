// Builds the UI into dist/ (or --out DIR). With --check it builds into a
// temporary directory and fails when that differs from the committed dist/,
// so CI catches a stale build. esbuild output is deterministic for a given
// esbuild version and lock file.
import * as esbuild from 'esbuild';
import { mkdtempSync, rmSync, mkdirSync, copyFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const check = args.includes('--check');
const outArg = args.indexOf('--out');
const dist = join(here, 'dist');
const out = check ? mkdtempSync(join(tmpdir(), 'runnel-ui-')) : (outArg >= 0 ? args[outArg + 1] : dist);

// Files copied as they are, besides the bundle.
const statics = ['index.html', 'favicon.svg'];

async function build(outDir) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'assets'), { recursive: true });
  await esbuild.build({
    absWorkingDir: here,
    entryPoints: ['src/main.js'],
    bundle: true,
    splitting: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    legalComments: 'none',
    outdir: join(outDir, 'assets'),
    entryNames: '[name]',
    chunkNames: 'chunk-[hash]',
    loader: { '.css': 'css' },
    logLevel: 'warning',
  });
  for (const f of statics) {
    copyFileSync(join(here, 'src', f), join(outDir, f === 'index.html' ? f : join('assets', f)));
  }
}

function files(root, dir = root, acc = new Map()) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(root, p, acc);
    else acc.set(relative(root, p), readFileSync(p));
  }
  return acc;
}

await build(out);
if (check) {
  const want = files(out);
  const have = files(dist);
  const problems = [];
  for (const [name, data] of want) {
    if (!have.has(name)) problems.push(`missing in dist: ${name}`);
    else if (!have.get(name).equals(data)) problems.push(`differs: ${name}`);
  }
  for (const name of have.keys()) if (!want.has(name)) problems.push(`extra in dist: ${name}`);
  rmSync(out, { recursive: true, force: true });
  if (problems.length) {
    console.error('web/ui/dist is stale; run `make ui` (or `cd web/ui && npm run build`) and commit it:\n  ' + problems.join('\n  '));
    process.exit(1);
  }
  console.log('web/ui/dist is up to date');
}
