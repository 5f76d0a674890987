// Bundles the trackers for the test page: `node build.mjs OUTDIR`. esbuild inlines every
// module, dynamic imports included, so the page loads nothing but these files.
import { build } from 'esbuild'

const outdir = process.argv[2] ?? 'dist'
await build({
  entryPoints: ['src/segment.js', 'src/rudderstack.js'],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  outdir,
  logLevel: 'warning',
  absWorkingDir: new URL('.', import.meta.url).pathname,
})
