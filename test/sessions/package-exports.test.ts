/**
 * The documented imports work from an installed package: `npm pack`, install the tarball into a temporary
 * project, import every documented path at run time, and type-check a sample app that uses the
 * declaration merging (SessionData, Express.Request, FastifyRequest) — and fails to type-check when it
 * misuses a declared attribute, so the types are really there. The package name is package.json's.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cluster-procs.js';

const NAME = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string }).name;
/** The paths the docs use. */
const PATHS = [NAME, `${NAME}/sessions`, `${NAME}/express`, `${NAME}/fastify`];

test('npm pack: every documented import path resolves and the sample app type-checks against the installed package', { timeout: 240_000 }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-pack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed[0]!.files.map((f) => f.path);
  assert.ok(files.includes('types/express.d.ts') && files.includes('dist/src/sessions/http/express-entry.js'), 'the entry files are packed');
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check', private: true, type: 'module' }));
  execFileSync('npm', ['install', join(dir, packed[0]!.filename), '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--no-package-lock'], { cwd: app, stdio: 'pipe' });
  // The frameworks the sample uses, from this checkout (what an app would have installed itself).
  mkdirSync(join(app, 'node_modules', '@types'), { recursive: true });
  for (const dep of ['express', 'express-session', 'fastify', '@types/node', '@types/express', '@types/express-session']) {
    try {
      symlinkSync(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep), 'dir');
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    }
  }

  const run = spawnSync(process.execPath, ['--input-type=module', '-e', `
    const out = {};
    for (const p of ${JSON.stringify(PATHS)}) out[p] = Object.keys(await import(p)).sort();
    console.log(JSON.stringify(out));
  `], { cwd: app, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const exported = JSON.parse(run.stdout) as Record<string, string[]>;
  assert.ok(exported[NAME]!.includes('ReplicatedSessionManager'));
  for (const n of ['cohortStore', 'sessionMiddleware', 'ReplicatedSessionManager', 'RedisSessionManager', 'cohortFastifySessions', 'routedGenid']) assert.ok(exported[`${NAME}/sessions`]!.includes(n), `${NAME}/sessions exports ${n}`);
  for (const n of ['cohortStore', 'sessionMiddleware', 'withSessions', 'routedGenid']) assert.ok(exported[`${NAME}/express`]!.includes(n), `${NAME}/express exports ${n}`);
  for (const n of ['cohortFastifySessions', 'cohortStore']) assert.ok(exported[`${NAME}/fastify`]!.includes(n), `${NAME}/fastify exports ${n}`);

  // An express-session app, one line changed (its types: @types/express-session's).
  const storeApp = `
    import session from 'express-session';
    import { cohortStore, routedGenid, type SessionManager } from '${NAME}/sessions';
    declare module 'express-session' { interface SessionData { user: string } }
    declare const manager: SessionManager;
    const store = new (cohortStore(session.Store))(manager, { ttl: 3600, disableTouch: false });
    export const mw = session({ store, genid: routedGenid(), secret: 'k', resave: false, saveUninitialized: false });
    export const ids: Promise<string[]> | void = store.ids();
  `;
  // Cohort's own req.session, in Express and Fastify (its types: this package's).
  const sample = `
    import express from 'express';
    import Fastify from 'fastify';
    import { ReplicatedSessionManager } from '${NAME}';
    import type { SessionManager } from '${NAME}/sessions';
    import { sessionMiddleware } from '${NAME}/express';
    import { cohortFastifySessions } from '${NAME}/fastify';

    declare module '${NAME}/sessions' {
      interface SessionData { user?: string; cart?: { items: string[] } }
    }
    declare const manager: SessionManager;
    export const M = ReplicatedSessionManager;

    const app = express();
    app.use(sessionMiddleware(manager, { name: 'sid', rolling: true, cookie: { maxAgeMs: 60_000 } }));
    app.get('/', (req, res) => {
      req.session.user = 'bob';
      req.session.cart ??= { items: [] };
      req.session.cart.items.push('x');
      req.session.cookie.maxAge = 1000;
      const who: string | undefined = req.session.user;
      req.session.touch().resetMaxAge();
      res.end(req.sessionID + who);
    });

    const f = Fastify();
    f.register(cohortFastifySessions, { manager });
    f.get('/', async (req) => {
      req.session.set('user', 'x');
      return req.sessionId + String(req.session.get<string>('user'));
    });
  `;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const check = (file: string, text: string) => {
    writeFileSync(join(app, file), text);
    const cfg = { compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, files: [file] };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(cfg));
    return spawnSync(process.execPath, [tsc, '-p', app], { cwd: app, encoding: 'utf8' });
  };
  const st = check('store.ts', storeApp);
  assert.equal(st.status, 0, `the express-session app type-checks:\n${st.stdout}${st.stderr}`);
  const ok = check('sample.ts', sample);
  assert.equal(ok.status, 0, `the sample app type-checks:\n${ok.stdout}${ok.stderr}`);

  // The declared types are real: a number is not a declared string attribute.
  const bad = check('sample.ts', `${sample}\n    app.get('/bad', (req) => { const n: number = req.session.user; return n; });\n`);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /TS2322/, bad.stdout);
});
