#!/usr/bin/env -S node --max-semi-space-size=64
// A larger young generation (64 MiB semi-spaces, V8's default is 16): a proxy allocates short-lived
// objects per request; fewer scavenges gave more requests/s and a lower p99 in paired peer-benchmark runs
// (docs/performance.md). Run as `node bin/cohort.js`, add the flag yourself (or NODE_OPTIONS).
// The `cohort` command. The implementation is compiled TypeScript in dist/.
import('../dist/src/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .catch((err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
      console.error('cohort: not built yet — run `npm run build` (or `npm ci`, then `npm run build`).');
      process.exit(1);
    }
    console.error(err);
    process.exit(1);
  });
