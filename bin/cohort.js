#!/usr/bin/env node
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
