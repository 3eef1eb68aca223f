// Process and contract helpers for the SDK tests: start allowd on a fresh data
// directory, optionally put Prism in front of it as a validating proxy, record
// every HTTP exchange the tests make, and collect Prism's violations.
//
// Nothing here sleeps to synchronise: allowd reports its port on fd 3, Prism
// is ready when it logs "Prism is listening on …", and the Prism log is
// synchronised with a marker request (see Prism.sync()).  The only timers are
// upper bounds that turn a hang into a failure.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export const ALLOWD_BIN = process.env.ALLOWD_BIN || path.resolve(here, '../../build/allowd');
export const ALLOWD_SPEC =
  process.env.ALLOWD_SPEC || path.resolve(here, '../../../shared/spec/email-security.openapi.json');

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const VERBOSE = !!process.env.ALLOWD_SDK_VERBOSE;

// ---------------------------------------------------------------------------
// Last-resort cleanup: if the test process dies (runner timeout, uncaught
// error), never leave a server or a temp dir behind.
const liveChildren = new Set();
const liveDirs = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of liveDirs) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

// ---------------------------------------------------------------------------
// Output capture with event-driven waiting.

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

class Output {
  constructor(stream, name) {
    this.name = name;
    this.text = '';
    this.waiters = new Set();
    this.ended = false;
    if (!stream) { this.ended = true; return; }
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      this.text += chunk.replace(ANSI, '');
      for (const w of this.waiters) w.check();
    });
    stream.on('end', () => {
      this.ended = true;
      for (const w of this.waiters) w.check();
    });
  }

  lines() { return this.text.split('\n'); }

  tail(n = 60) { return this.lines().slice(-n).join('\n'); }

  // Resolves (true) once the stream has ended, or (false) after `ms`.
  whenEnded(ms) {
    return new Promise((resolve) => {
      const w = { check: () => { if (this.ended) { done(); resolve(true); } } };
      const timer = setTimeout(() => { done(); resolve(false); }, ms);
      const done = () => { clearTimeout(timer); this.waiters.delete(w); };
      this.waiters.add(w);
      w.check();
    });
  }

  // Resolves with the match once `re` matches the captured text (searching
  // from `from`); rejects if the stream ends first or after `ms`.
  waitFor(re, { from = 0, ms = START_TIMEOUT_MS, what = String(re) } = {}) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const m = re.exec(this.text.slice(from));
          if (m) { done(); resolve(m); return; }
          if (this.ended) { done(); reject(new Error(`${this.name} ended before ${what}:\n${this.tail()}`)); }
        },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what} in ${this.name}:\n${this.tail()}`));
      }, ms);
      const done = () => { clearTimeout(timer); this.waiters.delete(w); };
      this.waiters.add(w);
      w.check();
    });
  }
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return once(child, 'exit').then(([code, signal]) => ({ code, signal }));
}

function spawnTracked(cmd, args, opts) {
  const child = spawn(cmd, args, opts);
  liveChildren.add(child);
  child.on('exit', () => liveChildren.delete(child));
  // A spawn failure (ENOENT, EACCES) is reported as 'error', never 'exit'.
  child.spawnError = new Promise((resolve) => child.once('error', resolve));
  return child;
}

// SIGTERM, then wait (bounded); SIGKILL if it does not go.  Returns how the
// process ended and whether it had to be killed.
async function stopChild(child, ms = STOP_TIMEOUT_MS) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return { code: child.exitCode, signal: child.signalCode, killed: false, alreadyExited: true };
  }
  child.kill('SIGTERM');
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), ms); });
  const res = await Promise.race([exited(child), timeout]);
  clearTimeout(timer);
  if (res) return { ...res, killed: false };
  child.kill('SIGKILL');
  const after = await exited(child);
  return { ...after, killed: true };
}

export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

// ---------------------------------------------------------------------------
// allowd

export class Allowd {
  static async start(dataDir) {
    const self = new Allowd();
    self.dataDir = dataDir;
    const args = ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--notify-fd', '3'];
    const child = spawnTracked(ALLOWD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    self.child = child;
    self.stdout = new Output(child.stdout, 'allowd stdout');
    self.stderr = new Output(child.stderr, 'allowd stderr');

    // The port arrives on fd 3 as "<port>\n", then fd 3 is closed.
    const notify = child.stdio[3];
    let got = '';
    notify.setEncoding('utf8');
    const portLine = new Promise((resolve, reject) => {
      notify.on('data', (c) => {
        got += c;
        const nl = got.indexOf('\n');
        if (nl >= 0) resolve(got.slice(0, nl));
      });
      notify.on('end', () => reject(new Error(`fd 3 closed without a port line (got ${JSON.stringify(got)})`)));
      notify.on('error', reject);
    });
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no port on fd 3 within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    });
    try {
      const line = await Promise.race([portLine, timeout]);
      assert.match(line, /^[0-9]{1,5}$/, `fd 3 must carry the bound port, got ${JSON.stringify(line)}`);
      self.port = Number(line);
      assert.ok(self.port > 0 && self.port < 65536, `bad port ${self.port}`);
    } catch (e) {
      // Say why: could not be run, exited (with its log), or is hanging.
      let t2;
      const why = await Promise.race([
        child.spawnError.then((err) => `cannot run ${ALLOWD_BIN}: ${err.message}`),
        exited(child).then(async ({ code, signal }) => {
          await self.stderr.whenEnded(2000);
          return `allowd exited with code ${code}, signal ${signal}`;
        }),
        new Promise((resolve) => { t2 = setTimeout(() => resolve('allowd is still running'), 2000); }),
      ]);
      clearTimeout(t2);
      await stopChild(child);
      throw new Error(`allowd did not report its port: ${e.message}; ${why}\n--- allowd stderr ---\n${self.stderr.tail()}`);
    } finally {
      clearTimeout(timer);
    }

    const credPath = path.join(dataDir, 'credentials.json');
    self.credentials = JSON.parse(await readFile(credPath, 'utf8'));
    const c = self.credentials;
    for (const k of ['account_id', 'api_token', 'email', 'api_key']) {
      assert.equal(typeof c[k], 'string', `credentials.json: ${k} must be a string`);
      assert.ok(c[k].length > 0, `credentials.json: ${k} must not be empty`);
    }
    assert.match(c.account_id, /^[0-9a-f]{32}$/, 'credentials.json: account_id must be 32 hex characters');
    self.origin = `http://127.0.0.1:${self.port}`;
    return self;
  }

  async stop() {
    if (this.stopped) return this.stopped;
    this.stopped = stopChild(this.child);
    return this.stopped;
  }
}

// ---------------------------------------------------------------------------
// Prism

// Prism converts the failure envelope's `result: {type: object, nullable:
// true, enum: [null]}` into `enum: [null, null]`, which ajv refuses to
// compile, and Prism then *silently skips* validating every 4XX response.
// The copy of the spec handed to Prism therefore states the same constraint
// ("result must be null") as plain `enum: [null]`.  That is the only change,
// and it makes the proxy stricter, not looser.
export function prismCompatibleSpec(spec) {
  const copy = structuredClone(spec);
  const patches = [];
  const failure = copy.components?.schemas?.['email-security_api-response-common-failure'];
  const result = failure?.properties?.result;
  if (result && result.nullable === true && Array.isArray(result.enum) &&
      result.enum.length === 1 && result.enum[0] === null) {
    delete result.nullable;
    delete result.type;
    patches.push('components.schemas.email-security_api-response-common-failure.properties.result: ' +
      '{type: object, nullable: true, enum: [null]} -> {enum: [null]} (Prism could not compile it and skipped all 4XX validation)');
  }
  return { spec: copy, patches };
}

function prismBin() {
  const pkgPath = require.resolve('@stoplight/prism-cli/package.json');
  const pkg = require(pkgPath);
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.prism;
  return path.resolve(path.dirname(pkgPath), bin);
}

// Lines Prism prints for a contract problem.  Validation results are logged
// as "[VALIDATOR] ✖  error     Violation: request.body …" (errors) or
// "… ⚠  warning   Violation: request Selected route not found" (warnings);
// both count.  "Request terminated with error" is Prism failing a request.
const VIOLATION_LINE = /Violation:|\[VALIDATOR\]|Request terminated with error/;

export class Prism {
  static async start({ specPath, upstream, workDir }) {
    const raw = JSON.parse(await readFile(specPath, 'utf8'));
    const { spec, patches } = prismCompatibleSpec(raw);
    const specCopy = path.join(workDir, 'prism-spec.json');
    await writeFile(specCopy, JSON.stringify(spec));

    let lastError;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort(); // the port may be taken again before Prism binds: retry
      const self = new Prism();
      self.patches = patches;
      self.upstream = upstream;
      const child = spawnTracked(process.execPath, [
        prismBin(), 'proxy', specCopy, upstream, '--port', String(port), '--host', '127.0.0.1',
      ], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      });
      self.child = child;
      self.stdout = new Output(child.stdout, 'prism stdout');
      self.stderr = new Output(child.stderr, 'prism stderr');
      try {
        const ready = self.stdout.waitFor(/Prism is listening on http:\/\/127\.0\.0\.1:(\d+)/, {
          what: '"Prism is listening"',
        });
        const failed = child.spawnError.then((e) => { throw e; });
        const m = await Promise.race([ready, failed]);
        assert.equal(Number(m[1]), port);
        self.port = port;
        self.origin = `http://127.0.0.1:${port}`;
        // Everything before this offset is Prism's start-up banner.
        self.logStart = self.stdout.text.indexOf(m[0]) + m[0].length;
        return self;
      } catch (e) {
        lastError = new Error(`${e.message}\nprism stderr:\n${self.stderr.tail()}`);
        await stopChild(child);
      }
    }
    throw lastError;
  }

  // Lines of Prism's log (after start-up) that report a violation.
  violationLines() {
    return this.stdout.text.slice(this.logStart).split('\n').filter((l) => VIOLATION_LINE.test(l))
      .concat(this.stderr.lines().filter((l) => l.trim() !== ''));
  }

  // Prism writes its log through an asynchronous stream, so a line can reach
  // us after the response it describes.  Send a contract-valid marker request
  // and wait for it to appear in the log: every earlier line is then in.
  async sync({ accountId, authHeaders }) {
    const marker = `prism-log-marker-${randomUUID()}`;
    const url = `${this.origin}/accounts/${accountId}/email-security/settings/allow_policies?per_page=1&search=${marker}`;
    const from = this.stdout.text.length;
    const res = await fetch(url, { headers: authHeaders });
    await res.arrayBuffer();
    assert.equal(res.status, 200, `marker request answered ${res.status}`);
    await this.stdout.waitFor(new RegExp(marker), { from, ms: 30_000, what: 'the log marker' });
    return { marker, markerViolations: res.headers.get('sl-violations') };
  }

  async stop() {
    if (!this.stopped) this.stopped = stopChild(this.child);
    return this.stopped;
  }
}

// ---------------------------------------------------------------------------
// HTTP recording: every request the tests make (SDK or raw) goes through a
// recording fetch so we can check the credential headers the SDK sent and the
// per-response `sl-violations` header Prism adds when it finds a violation.

export class Recorder {
  constructor() { this.exchanges = []; }

  fetchFor(label) {
    return async (url, init = {}) => {
      const res = await fetch(url, init);
      this.exchanges.push({
        label,
        method: (init.method || 'GET').toUpperCase(),
        url: String(url),
        requestHeaders: new Headers(init.headers),
        requestBody: typeof init.body === 'string' ? init.body : undefined,
        status: res.status,
        contentType: res.headers.get('content-type'),
        violations: res.headers.get('sl-violations'),
      });
      return res;
    };
  }

  last(label) {
    for (let i = this.exchanges.length - 1; i >= 0; i--) {
      if (label === undefined || this.exchanges[i].label === label) return this.exchanges[i];
    }
    return undefined;
  }

  withViolations() { return this.exchanges.filter((e) => e.violations); }
}

// ---------------------------------------------------------------------------
// One test environment: a fresh data dir, allowd, and (optionally) Prism.

export async function startEnv({ prism = false } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'allowd-sdk-'));
  liveDirs.add(dir);
  const env = { dir, recorder: new Recorder(), prism: null, allowd: null };
  try {
    env.allowd = await Allowd.start(path.join(dir, 'data'));
    env.credentials = env.allowd.credentials;
    env.accountId = env.credentials.account_id;
    if (prism) {
      // Prism matches request paths literally against the spec's `paths` and
      // ignores the `servers` base path: a request to /client/v4/accounts/…
      // is "Selected route not found" and goes unvalidated.  So the SDK talks
      // to Prism without the prefix and Prism forwards to allowd *with* it
      // (the upstream URL's path is prepended), i.e. allowd still sees the
      // path the SDK uses against api.cloudflare.com.
      env.prism = await Prism.start({
        specPath: ALLOWD_SPEC,
        upstream: `${env.allowd.origin}/client/v4`,
        workDir: dir,
      });
      env.baseURL = env.prism.origin;
    } else {
      env.baseURL = `${env.allowd.origin}/client/v4`;
    }
  } catch (e) {
    await stopEnv(env);
    throw e;
  }
  return env;
}

export async function stopEnv(env, { dumpLogs = false } = {}) {
  if (!env) return;
  if (dumpLogs || VERBOSE) {
    if (env.allowd) console.error(`--- allowd stderr (tail) ---\n${env.allowd.stderr.tail(80)}`);
    if (env.prism) console.error(`--- prism violations ---\n${env.prism.violationLines().join('\n')}`);
  }
  const results = {};
  if (env.prism) results.prism = await env.prism.stop();
  if (env.allowd) results.allowd = await env.allowd.stop();
  if (env.dir) {
    await rm(env.dir, { recursive: true, force: true });
    liveDirs.delete(env.dir);
  }
  return results;
}

// ---------------------------------------------------------------------------
// Contract assertions shared by the scenarios.

export const POLICY_KEYS = [
  'comments', 'created_at', 'id', 'is_acceptable_sender', 'is_exempt_recipient', 'is_recipient',
  'is_regex', 'is_sender', 'is_spoof', 'is_trusted_sender', 'last_modified', 'modified_at',
  'pattern', 'pattern_type', 'verify_sender',
];
export const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function assertTimestamp(value, what) {
  assert.equal(typeof value, 'string', `${what} must be a string`);
  assert.match(value, TIMESTAMP, `${what} must be RFC 3339 UTC with milliseconds`);
  const ms = Date.parse(value);
  assert.ok(Number.isFinite(ms), `${what} must be a real date: ${value}`);
  assert.equal(new Date(ms).toISOString(), value, `${what} must be a valid calendar time: ${value}`);
  return ms;
}

// The full policy object of docs/api.md: exactly these fields, these types,
// the deprecated aliases mirroring their fields.
export function assertPolicyShape(p, what = 'policy') {
  assert.equal(typeof p, 'object', `${what} must be an object`);
  assert.notEqual(p, null, `${what} must not be null`);
  assert.deepEqual(Object.keys(p).sort(), POLICY_KEYS, `${what} must have exactly the documented fields`);
  assert.ok(Number.isInteger(p.id) && p.id >= 1 && p.id <= 2147483647, `${what}.id must be a positive int32, got ${JSON.stringify(p.id)}`);
  const created = assertTimestamp(p.created_at, `${what}.created_at`);
  const modified = assertTimestamp(p.modified_at, `${what}.modified_at`);
  assertTimestamp(p.last_modified, `${what}.last_modified`);
  assert.equal(p.last_modified, p.modified_at, `${what}.last_modified must equal modified_at`);
  assert.ok(modified >= created, `${what}.modified_at must not precede created_at`);
  assert.equal(typeof p.pattern, 'string', `${what}.pattern must be a string`);
  assert.ok(p.pattern.length >= 1 && p.pattern.length <= 1024, `${what}.pattern length`);
  assert.ok(['EMAIL', 'DOMAIN', 'IP', 'UNKNOWN'].includes(p.pattern_type), `${what}.pattern_type ${p.pattern_type}`);
  for (const k of ['is_regex', 'is_trusted_sender', 'is_acceptable_sender', 'is_exempt_recipient', 'verify_sender',
    'is_sender', 'is_recipient', 'is_spoof']) {
    assert.equal(typeof p[k], 'boolean', `${what}.${k} must be a boolean`);
  }
  assert.ok(p.comments === null || typeof p.comments === 'string', `${what}.comments must be a string or null`);
  assert.equal(p.is_sender, p.is_trusted_sender, `${what}.is_sender must mirror is_trusted_sender`);
  assert.equal(p.is_recipient, p.is_exempt_recipient, `${what}.is_recipient must mirror is_exempt_recipient`);
  assert.equal(p.is_spoof, p.is_acceptable_sender, `${what}.is_spoof must mirror is_acceptable_sender`);
}

// Cloudflare's failure envelope (docs/api.md "Envelope"), checked by hand:
// see prismCompatibleSpec() for why Prism alone would not check it.
export function assertFailureEnvelope(body, { code, pointer, pointers } = {}) {
  const show = JSON.stringify(body);
  assert.equal(typeof body, 'object', `failure body must be JSON: ${show}`);
  assert.notEqual(body, null, 'failure body must not be null');
  assert.equal(body.success, false, `success must be false: ${show}`);
  assert.ok(Array.isArray(body.errors) && body.errors.length >= 1, `errors must be a non-empty array: ${show}`);
  for (const e of body.errors) {
    assert.ok(Number.isInteger(e.code) && e.code >= 1000, `error code must be an integer >= 1000: ${show}`);
    assert.equal(typeof e.message, 'string', `error message must be a string: ${show}`);
    assert.ok(e.message.length > 0, `error message must not be empty: ${show}`);
    if ('source' in e) {
      assert.equal(typeof e.source, 'object', `error source must be an object: ${show}`);
      assert.equal(typeof e.source.pointer, 'string', `error source.pointer must be a string: ${show}`);
    }
  }
  assert.ok(Array.isArray(body.messages), `messages must be an array: ${show}`);
  assert.ok('result' in body, `result must be present: ${show}`);
  assert.equal(body.result, null, `result must be null: ${show}`);
  if (code !== undefined) assert.equal(body.errors[0].code, code, `error code: ${show}`);
  if (pointer !== undefined) assert.equal(body.errors[0].source?.pointer, pointer, `source.pointer: ${show}`);
  if (pointers !== undefined) {
    assert.ok(pointers.includes(body.errors[0].source?.pointer), `source.pointer must be one of ${pointers.join(', ')}: ${show}`);
  }
}

export function assertSuccessEnvelope(body) {
  const show = JSON.stringify(body).slice(0, 500);
  assert.equal(body.success, true, `success must be true: ${show}`);
  assert.deepEqual(body.errors, [], `errors must be []: ${show}`);
  assert.deepEqual(body.messages, [], `messages must be []: ${show}`);
  assert.ok('result' in body, `result must be present: ${show}`);
}

// Same-format wrong credential: change the last character within its class.
export function mutateLast(s) {
  const last = s.at(-1);
  let alt;
  if (/[0-9]/.test(last)) alt = last === '0' ? '1' : '0';
  else if (/[a-z]/.test(last)) alt = last === 'a' ? 'b' : 'a';
  else if (/[A-Z]/.test(last)) alt = last === 'A' ? 'B' : 'A';
  else alt = last === '_' ? '-' : '_';
  return s.slice(0, -1) + alt;
}
