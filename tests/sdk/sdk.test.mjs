// The official `cloudflare` npm SDK against allowd, unmodified: once directly
// and once through Prism validating every request and response against
// ../shared/spec/email-security.openapi.json.  See README.md.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import Cloudflare, {
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
} from 'cloudflare';

import {
  assertFailureEnvelope,
  assertPolicyShape,
  assertSuccessEnvelope,
  assertTimestamp,
  mutateLast,
  startEnv,
  stopEnv,
} from './helpers.mjs';

// The seed request of the issue, byte for byte.
const SEED_JSON = '{"is_acceptable_sender":false,"is_exempt_recipient":false,"is_regex":false,' +
  '"is_trusted_sender":true,"pattern":"test@example.com","pattern_type":"EMAIL","verify_sender":true}';
const SEED = JSON.parse(SEED_JSON);

const MIN_PAGINATED = 150; // policies created for the pagination test (>= 120)
const PER_PAGE = 50;
const FIELDS = ['pattern', 'pattern_type', 'is_regex', 'is_trusted_sender', 'is_acceptable_sender',
  'is_exempt_recipient', 'verify_sender', 'comments'];

// Run `fn` over `items` with at most `n` in flight.
async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

// Expect `promise` to reject with SDK error class `Cls` and HTTP `status`;
// returns the error (its `.error` is the parsed response body).
async function expectSdkError(promise, Cls, status) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${Cls.name} (${status}), but the call succeeded`);
  assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err?.constructor?.name}: ${err?.message}`);
  assert.equal(err.status, status, `HTTP status: ${err.message}`);
  return err;
}

function paginationFixtures() {
  const pad = (i) => String(i).padStart(3, '0');
  const out = [];
  for (let i = 0; i < MIN_PAGINATED; i++) {
    const kind = i % 5; // 0,1,2 EMAIL; 3 DOMAIN; 4 IP
    const pattern_type = kind <= 2 ? 'EMAIL' : kind === 3 ? 'DOMAIN' : 'IP';
    let pattern;
    if (pattern_type === 'EMAIL') pattern = `user${pad(i)}@example${i % 7}.com`;
    else if (pattern_type === 'DOMAIN') pattern = `host${pad(i)}.example.net`;
    else if (i % 10 === 4) pattern = `8.8.${i}.0/24`;
    else pattern = `2606:4700:${(0x100 + i).toString(16)}::/48`;
    const is_trusted_sender = i % 2 === 0;
    const body = {
      pattern,
      pattern_type,
      is_regex: false,
      is_trusted_sender,
      is_acceptable_sender: !is_trusted_sender || i % 3 === 0,
      is_exempt_recipient: pattern_type === 'EMAIL' && i % 4 === 1,
      verify_sender: i % 3 !== 0,
    };
    if (i % 6 === 0) body.comments = `Pagination item ${i} MixedCase`;
    out.push(body);
  }
  return out;
}

function scenario(mode) {
  const viaPrism = mode === 'prism';

  describe(viaPrism ? 'through Prism (validating proxy)' : 'directly against allowd', () => {
    let env;
    let failed = false;
    let tok; // API token client
    let key; // email + Global API key client
    let accountId;
    const model = new Map(); // what the account must contain, id -> policy

    const client = (label, auth) => new Cloudflare({
      baseURL: env.baseURL,
      apiToken: null,
      apiEmail: null,
      apiKey: null,
      userServiceKey: null,
      ...auth,
      maxRetries: 0, // a retry would hide a 409/429/5xx
      timeout: 30_000,
      fetch: env.recorder.fetchFor(label),
    });
    const policies = () => key.emailSecurity.settings.allowPolicies;
    const tokPolicies = () => tok.emailSecurity.settings.allowPolicies;

    // Raw HTTP with the API token, through the same recorder.
    const raw = async (method, pathAndQuery, body, { headers = {}, base = env.baseURL } = {}) => {
      const res = await env.recorder.fetchFor('raw')(`${base}${pathAndQuery}`, {
        method,
        headers: {
          Authorization: `Bearer ${env.credentials.api_token}`,
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      return { status: res.status, headers: res.headers, text, json };
    };
    const acct = () => `/accounts/${accountId}/email-security/settings/allow_policies`;

    // A test that remembers it failed, so teardown can print the server logs.
    const step = (name, fn, opts = {}) => it(name, opts, async (t) => {
      try {
        await fn(t);
      } catch (e) {
        failed = true;
        throw e;
      }
    });

    const listAll = async (params) => {
      const items = [];
      for await (const p of policies().list({ account_id: accountId, per_page: PER_PAGE, ...params })) items.push(p);
      return items;
    };

    // Expected order for a list query.  Ties are broken by id; for `asc` that
    // must be ascending id, for `desc` either direction is accepted (the
    // contract does not say) but it must be one consistent order.
    const expectedOrders = (items, order, direction = 'asc') => {
      const key = order === 'pattern' ? (p) => p.pattern : order === 'created_at' ? (p) => p.created_at : () => '';
      const cmp = (keyDir, idDir) => (a, b) => {
        const ka = key(a); const kb = key(b);
        if (ka !== kb) return (ka < kb ? -1 : 1) * keyDir;
        return (a.id - b.id) * idDir;
      };
      const ids = (c) => [...items].sort(c).map((p) => p.id);
      if (direction === 'asc') return [ids(cmp(1, 1))];
      return [ids(cmp(-1, -1)), ids(cmp(-1, 1))];
    };

    const assertListing = (got, expectedItems, params, what) => {
      const gotIds = got.map((p) => p.id);
      assert.equal(new Set(gotIds).size, gotIds.length, `${what}: duplicate ids across pages`);
      const want = new Set(expectedItems.map((p) => p.id));
      const missing = [...want].filter((id) => !gotIds.includes(id));
      const extra = gotIds.filter((id) => !want.has(id));
      assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${what}: wrong set of policies`);
      const candidates = expectedOrders(expectedItems, params.order, params.direction);
      assert.ok(candidates.some((c) => JSON.stringify(c) === JSON.stringify(gotIds)),
        `${what}: wrong order\n got:  ${gotIds.join(',')}\n want: ${candidates.map((c) => c.join(',')).join('\n   or: ')}`);
      for (const p of got) {
        assertPolicyShape(p, `${what} item ${p.id}`);
        assert.deepEqual(p, model.get(p.id), `${what}: item ${p.id} differs from what the API returned on write`);
      }
    };

    const matches = (p, params) => {
      const f = {
        pattern_type: params.pattern_type,
        pattern: params.pattern,
        is_trusted_sender: params.is_trusted_sender ?? params.is_sender,
        is_acceptable_sender: params.is_acceptable_sender ?? params.is_spoof,
        is_exempt_recipient: params.is_exempt_recipient ?? params.is_recipient,
        verify_sender: params.verify_sender,
      };
      for (const [k, v] of Object.entries(f)) if (v !== undefined && p[k] !== v) return false;
      if (params.search !== undefined) {
        const s = params.search.toLowerCase();
        if (!p.pattern.toLowerCase().includes(s) && !(p.comments ?? '').toLowerCase().includes(s)) return false;
      }
      return true;
    };

    before(async () => {
      env = await startEnv({ prism: viaPrism });
      accountId = env.accountId;
      tok = client('token', { apiToken: env.credentials.api_token });
      key = client('key', { apiEmail: env.credentials.email, apiKey: env.credentials.api_key });
    }, { timeout: 120_000 });

    after(async () => {
      await stopEnv(env, { dumpLogs: failed });
    }, { timeout: 60_000 });

    let seed; // the seed policy as created

    step('create: the seed body answers 201 with every field', async () => {
      const t0 = Date.now();
      const { data: p, response } = await tokPolicies().create({ account_id: accountId, ...SEED }).withResponse();
      const t1 = Date.now();
      assert.equal(response.status, 201);
      const ex = env.recorder.last('token');
      assert.equal(ex.method, 'POST');
      assert.equal(ex.requestBody, SEED_JSON, 'the SDK must send the seed byte for byte');
      assert.match(ex.contentType ?? '', /^application\/json\b/);

      assertPolicyShape(p, 'created seed');
      const { id, created_at, modified_at, last_modified, ...rest } = p;
      assert.deepEqual(rest, {
        pattern: 'test@example.com',
        pattern_type: 'EMAIL',
        is_regex: false,
        is_trusted_sender: true,
        is_acceptable_sender: false,
        is_exempt_recipient: false,
        verify_sender: true,
        comments: null,
        is_sender: true,
        is_recipient: false,
        is_spoof: false,
      });
      for (const [k, v] of Object.entries({ created_at, modified_at, last_modified })) {
        const ms = assertTimestamp(v, k);
        assert.ok(ms >= t0 - 2000 && ms <= t1 + 2000, `${k} ${v} is not the time of the request`);
      }
      seed = p;
      model.set(p.id, p);
    });

    step('get (email + Global API key) returns the same policy', async () => {
      const p = await policies().get(seed.id, { account_id: accountId });
      assert.deepEqual(p, seed);
    });

    step('create: deprecated aliases count as their fields; comments round-trip', async () => {
      const p = await policies().create({
        account_id: accountId,
        pattern: 'alias@example.com',
        pattern_type: 'EMAIL',
        is_regex: false,
        is_trusted_sender: false,
        is_acceptable_sender: true,
        is_exempt_recipient: true,
        verify_sender: false,
        is_recipient: true,
        is_spoof: true,
        comments: 'Exempt recipient created with aliases',
      });
      assertPolicyShape(p);
      assert.equal(p.is_exempt_recipient, true);
      assert.equal(p.is_recipient, true);
      assert.equal(p.is_acceptable_sender, true);
      assert.equal(p.is_spoof, true);
      assert.equal(p.is_trusted_sender, false);
      assert.equal(p.is_sender, false);
      assert.equal(p.comments, 'Exempt recipient created with aliases');
      model.set(p.id, p);

      const err = await expectSdkError(policies().create({
        account_id: accountId,
        pattern: 'alias-conflict@example.com',
        pattern_type: 'EMAIL',
        is_regex: false,
        is_trusted_sender: true,
        is_acceptable_sender: false,
        is_exempt_recipient: false,
        verify_sender: true,
        is_sender: false, // disagrees with is_trusted_sender
      }), BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 1001, pointers: ['/is_sender', '/is_trusted_sender'] });
    });

    step('edit changes only the given fields and moves modified_at', async () => {
      const e1 = await tokPolicies().edit(seed.id, {
        account_id: accountId,
        comments: 'Edited by the SDK test',
        verify_sender: false,
      });
      assertPolicyShape(e1, 'edited');
      assert.deepEqual(
        { ...e1, modified_at: 0, last_modified: 0 },
        { ...seed, comments: 'Edited by the SDK test', verify_sender: false, modified_at: 0, last_modified: 0 },
        'only comments and verify_sender may change');
      assert.equal(e1.created_at, seed.created_at, 'created_at never moves');
      assert.ok(Date.parse(e1.modified_at) > Date.parse(seed.modified_at), 'modified_at must move forward');

      // A deprecated alias on input edits its field.
      const e2 = await policies().edit(seed.id, { account_id: accountId, is_spoof: true });
      assertPolicyShape(e2, 'edited twice');
      assert.deepEqual(
        { ...e2, modified_at: 0, last_modified: 0 },
        { ...e1, is_acceptable_sender: true, is_spoof: true, modified_at: 0, last_modified: 0 });
      assert.ok(Date.parse(e2.modified_at) > Date.parse(e1.modified_at), 'modified_at must move forward again');

      const got = await policies().get(seed.id, { account_id: accountId });
      assert.deepEqual(got, e2);
      seed = e2;
      model.set(e2.id, e2);
    });

    step('delete returns {id}; the policy is gone and its id is never reused', async () => {
      const victim = await tokPolicies().create({
        account_id: accountId,
        pattern: 'delete-me.example.org',
        pattern_type: 'DOMAIN',
        is_regex: false,
        is_trusted_sender: false,
        is_acceptable_sender: true,
        is_exempt_recipient: false,
        verify_sender: true,
      });
      assertPolicyShape(victim);
      const { data: deleted, response } = await tokPolicies().delete(victim.id, { account_id: accountId }).withResponse();
      assert.equal(response.status, 200);
      assert.deepEqual(deleted, { id: victim.id });

      let err = await expectSdkError(policies().get(victim.id, { account_id: accountId }), NotFoundError, 404);
      assertFailureEnvelope(err.error, { code: 1002 });
      err = await expectSdkError(policies().delete(victim.id, { account_id: accountId }), NotFoundError, 404);
      assertFailureEnvelope(err.error, { code: 1002 });

      // Re-creating the same pattern is allowed (the old one is gone) and gets a new id.
      const again = await tokPolicies().create({
        account_id: accountId,
        pattern: 'delete-me.example.org',
        pattern_type: 'DOMAIN',
        is_regex: false,
        is_trusted_sender: false,
        is_acceptable_sender: true,
        is_exempt_recipient: false,
        verify_sender: true,
      });
      assert.ok(again.id > victim.id, `ids are never reused: got ${again.id} after deleting ${victim.id}`);
      model.set(again.id, again);
    });

    step('BadRequestError (400) for invalid input', async () => {
      const base = {
        account_id: accountId,
        is_regex: false,
        is_trusted_sender: true,
        is_acceptable_sender: false,
        is_exempt_recipient: false,
        verify_sender: true,
      };
      let err = await expectSdkError(policies().create({ ...base, pattern: 'not an email', pattern_type: 'EMAIL' }),
        BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 1001, pointer: '/pattern' });
      assert.deepEqual(err.errors, err.error.errors, 'the SDK exposes the errors array');

      err = await expectSdkError(policies().create({
        ...base, pattern: 'nobody@example.com', pattern_type: 'EMAIL', is_trusted_sender: false,
      }), BadRequestError, 400);
      assertFailureEnvelope(err.error, {
        code: 1001, pointers: ['/is_trusted_sender', '/is_acceptable_sender', '/is_exempt_recipient'],
      });

      err = await expectSdkError(policies().create({
        ...base, pattern: 'example.com', pattern_type: 'DOMAIN', is_exempt_recipient: true,
      }), BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 1001, pointer: '/is_exempt_recipient' });

      err = await expectSdkError(tokPolicies().create({ account_id: accountId, ...SEED }), BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 1003 });
      assert.match(err.error.errors[0].message, new RegExp(`\\b${seed.id}\\b`), 'the duplicate error names the existing id');

      err = await expectSdkError(policies().edit(seed.id, { account_id: accountId, pattern: 'not an email', comments: 'x' }),
        BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 1001, pointer: '/pattern' });
      assert.deepEqual(await policies().get(seed.id, { account_id: accountId }), seed, 'a failed edit writes nothing');

      err = await expectSdkError(policies().get(0, { account_id: accountId }), BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 1001, pointer: '/path/policy_id' });

      err = await expectSdkError(policies().get(seed.id, { account_id: 'not-an-account' }), BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 1001, pointer: '/path/account_id' });
    });

    if (!viaPrism) {
      // These requests break the OpenAPI contract on purpose (Prism would log a
      // request violation for each), so they only run directly.
      step('BadRequestError (400) for requests outside the contract (direct only)', async () => {
        const base = { account_id: accountId, ...SEED, pattern: 'x1@example.com' };
        let err = await expectSdkError(policies().create({ ...base, pattern: undefined }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/pattern' });
        err = await expectSdkError(policies().create({ ...base, bogus_field: 1 }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/bogus_field' });
        err = await expectSdkError(policies().create({ ...base, verify_sender: 'yes' }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/verify_sender' });
        err = await expectSdkError(policies().create({ ...base, id: 5 }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/id' });
        err = await expectSdkError(policies().create({ ...base, pattern_type: 'UNKNOWN' }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/pattern_type' });
        err = await expectSdkError(policies().edit(seed.id, { account_id: accountId, pattern: '' }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/pattern' });
        err = await expectSdkError(policies().get('abc', { account_id: accountId }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/path/policy_id' });
        err = await expectSdkError(policies().list({ account_id: accountId, per_page: 0 }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/query/per_page' });
        err = await expectSdkError(policies().list({ account_id: accountId, order: 'id' }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/query/order' });
        err = await expectSdkError(policies().list({ account_id: accountId, is_trusted_sender: 'maybe' }), BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 1001, pointer: '/query/is_trusted_sender' });

        // Missing credentials: 400 6003 with an error_chain.
        const anon = new Cloudflare({
          baseURL: env.baseURL, apiToken: null, apiEmail: null, apiKey: null, userServiceKey: null,
          defaultHeaders: { Authorization: null }, maxRetries: 0, fetch: env.recorder.fetchFor('anonymous'),
        });
        err = await expectSdkError(anon.emailSecurity.settings.allowPolicies.get(seed.id, { account_id: accountId }),
          BadRequestError, 400);
        const ex = env.recorder.last('anonymous');
        for (const h of ['authorization', 'x-auth-email', 'x-auth-key']) assert.equal(ex.requestHeaders.get(h), null);
        assertFailureEnvelope(err.error, { code: 6003 });
        const chain = err.error.errors[0].error_chain;
        assert.ok(Array.isArray(chain) && chain.length >= 1, `6003 must carry an error_chain: ${JSON.stringify(err.error)}`);
        for (const c of chain) {
          assert.ok([6100, 6101, 6102, 6103, 6111].includes(c.code), `error_chain code ${c.code}`);
          assert.equal(typeof c.message, 'string');
        }

        // An email without a key is malformed too.
        const half = new Cloudflare({
          baseURL: env.baseURL, apiToken: null, apiEmail: env.credentials.email, apiKey: null, userServiceKey: null,
          maxRetries: 0, fetch: env.recorder.fetchFor('half'),
        });
        err = await expectSdkError(half.emailSecurity.settings.allowPolicies.get(seed.id, { account_id: accountId }),
          BadRequestError, 400);
        assertFailureEnvelope(err.error, { code: 6003 });
      });
    }

    step('PermissionDeniedError (403) for wrong credentials; the SDK maps 403 there, not to AuthenticationError', async () => {
      const wrong = [
        ['wrong token', { apiToken: mutateLast(env.credentials.api_token) }],
        ['wrong api key', { apiEmail: env.credentials.email, apiKey: mutateLast(env.credentials.api_key) }],
        ['wrong email', { apiEmail: `x${env.credentials.email}`, apiKey: env.credentials.api_key }],
      ];
      for (const [what, auth] of wrong) {
        const c = client(what, auth);
        const err = await expectSdkError(c.emailSecurity.settings.allowPolicies.get(seed.id, { account_id: accountId }),
          PermissionDeniedError, 403);
        assert.ok(!(err instanceof AuthenticationError), `${what}: 403 is not an AuthenticationError (that is 401)`);
        assertFailureEnvelope(err.error, { code: 10000 });
      }
      // Right token, an account it has no permission on.
      const other = mutateLast(accountId);
      const err = await expectSdkError(tokPolicies().list({ account_id: other }), PermissionDeniedError, 403);
      assertFailureEnvelope(err.error, { code: 10000 });
    });

    step('BadRequestError (400, 6003) for a malformed token', async () => {
      // Still "Authorization: Bearer …", so within the contract (Prism only
      // checks the scheme); the token itself has the wrong format.
      const c = client('malformed token', { apiToken: 'not a token!' });
      const err = await expectSdkError(c.emailSecurity.settings.allowPolicies.get(seed.id, { account_id: accountId }),
        BadRequestError, 400);
      assertFailureEnvelope(err.error, { code: 6003 });
      const chain = err.error.errors[0].error_chain;
      assert.ok(Array.isArray(chain) && chain.length >= 1, `6003 must carry an error_chain: ${JSON.stringify(err.error)}`);
      for (const e of chain) assert.ok([6100, 6101, 6102, 6103, 6111].includes(e.code), `error_chain code ${e.code}`);
    });

    step('NotFoundError (404) for an unknown policy', async () => {
      const missing = 2147483647;
      for (const call of [
        () => policies().get(missing, { account_id: accountId }),
        () => policies().edit(missing, { account_id: accountId, comments: 'x' }),
        () => policies().delete(missing, { account_id: accountId }),
      ]) {
        const err = await expectSdkError(call(), NotFoundError, 404);
        assertFailureEnvelope(err.error, { code: 1002 });
      }
    });

    step(`auto-pagination over ${MIN_PAGINATED}+ policies with filters and both orders`, async () => {
      const fixtures = paginationFixtures();
      const created = await pool(fixtures, 8, (body, i) =>
        (i % 2 ? tokPolicies() : policies()).create({ account_id: accountId, ...body }));
      created.forEach((p, i) => {
        assertPolicyShape(p, `fixture ${i}`);
        for (const k of FIELDS) assert.deepEqual(p[k], fixtures[i][k] ?? null, `fixture ${i} ${k}`);
        model.set(p.id, p);
      });
      const all = [...model.values()];
      assert.ok(all.length >= 120);

      const cases = [
        {},
        { order: 'pattern', direction: 'asc' },
        { order: 'pattern', direction: 'desc' },
        { order: 'created_at', direction: 'asc' },
        { order: 'created_at', direction: 'desc' },
        { order: 'created_at' }, // direction defaults to asc
        { pattern_type: 'EMAIL', verify_sender: true, order: 'pattern', direction: 'asc' },
        { pattern_type: 'EMAIL', is_trusted_sender: false, order: 'created_at', direction: 'desc' },
        { is_acceptable_sender: true, order: 'created_at', direction: 'asc' },
        { pattern_type: 'DOMAIN', order: 'pattern', direction: 'desc' },
        { pattern_type: 'IP', is_trusted_sender: true },
        { is_exempt_recipient: true, order: 'pattern' },
        { search: 'MIXEDCASE', order: 'created_at', direction: 'desc' },
        { search: 'Example3.COM' },
        { pattern: 'user007@example0.com' },
        { pattern_type: 'UNKNOWN' }, // a valid filter value that is never written
      ];
      if (!viaPrism) {
        // The deprecated query aliases are in the contract, but Prism warns
        // "Query param is_spoof is deprecated" for each use: direct only.
        cases.push({ is_spoof: true, order: 'pattern' }, { is_sender: false, verify_sender: false }, { is_recipient: true });
      }
      // These filtered listings must cross page boundaries to be worth anything.
      const multiPage = new Set([cases[0], cases[1], cases[4], cases[6], cases[8]]);
      for (const params of cases) {
        const what = `list ${JSON.stringify(params)}`;
        const expected = all.filter((p) => matches(p, params));
        const got = await listAll(params);
        assertListing(got, expected, params, what);
        if (multiPage.has(params)) assert.ok(got.length > PER_PAGE, `${what}: must span several pages (${got.length})`);
      }

      // Page by page: result_info, and the empty page that stops the SDK.
      const params = { pattern_type: 'EMAIL', order: 'pattern', direction: 'desc' };
      const expected = all.filter((p) => matches(p, params));
      let n = 0;
      let seen = 0;
      const firstPage = await policies().list({ account_id: accountId, per_page: PER_PAGE, ...params });
      for await (const page of firstPage.iterPages()) {
        n++;
        const items = page.getPaginatedItems();
        assert.deepEqual(page.result_info, {
          page: n, per_page: PER_PAGE, count: items.length, total_count: expected.length,
        }, `result_info of page ${n}`);
        assert.equal(items.length, Math.max(0, Math.min(PER_PAGE, expected.length - seen)), `size of page ${n}`);
        seen += items.length;
      }
      assert.equal(seen, expected.length);
      assert.equal(n, Math.ceil(expected.length / PER_PAGE) + 1, 'the SDK stops on the first empty page');

      const first = await policies().list({ account_id: accountId });
      assert.equal(first.result.length, 20, 'per_page defaults to 20');
      assert.deepEqual(first.result_info, { page: 1, per_page: 20, count: 20, total_count: all.length });

      const past = await policies().list({ account_id: accountId, page: 999, per_page: PER_PAGE });
      assert.deepEqual(past.result, [], 'a page past the end is empty');
      assert.deepEqual(past.result_info, { page: 999, per_page: PER_PAGE, count: 0, total_count: all.length });
    }, { timeout: 300_000 });

    step('batch via raw fetch: deletes, patches, puts, posts in one transaction', async () => {
      const fixtures = [...model.values()].filter((p) => p.pattern_type === 'DOMAIN' && p.pattern.startsWith('host'));
      const [del, pat, put] = fixtures;
      const beforeCount = model.size;

      const body = {
        deletes: [{ id: del.id }],
        patches: [{ id: pat.id, comments: 'patched in a batch', verify_sender: !pat.verify_sender }],
        puts: [{
          id: put.id,
          pattern: 'replaced.example.net',
          pattern_type: 'DOMAIN',
          is_regex: false,
          is_trusted_sender: true,
          is_acceptable_sender: true,
          is_exempt_recipient: false,
          verify_sender: false,
        }],
        posts: [
          { ...SEED, pattern: 'batch-post-1@example.com' },
          { ...SEED, pattern: '^batch-.*@example\\.com$', is_regex: true, is_exempt_recipient: true, comments: 'regex' },
        ],
      };
      const res = await raw('POST', `${acct()}/batch`, body);
      assert.equal(res.status, 200, res.text);
      assertSuccessEnvelope(res.json);
      const r = res.json.result;
      assert.deepEqual(Object.keys(r).sort(), ['deletes', 'patches', 'posts', 'puts']);
      assert.deepEqual(r.deletes, [{ id: del.id }]);

      assert.equal(r.patches.length, 1);
      assertPolicyShape(r.patches[0], 'patched');
      assert.deepEqual({ ...r.patches[0], modified_at: 0, last_modified: 0 },
        { ...pat, comments: 'patched in a batch', verify_sender: !pat.verify_sender, modified_at: 0, last_modified: 0 });
      assert.ok(r.patches[0].modified_at > pat.modified_at, 'a batch patch moves modified_at');

      assert.equal(r.puts.length, 1);
      assertPolicyShape(r.puts[0], 'put');
      for (const [k, v] of Object.entries(body.puts[0])) assert.deepEqual(r.puts[0][k], v, `put ${k}`);
      assert.equal(r.puts[0].id, put.id);
      assert.equal(r.puts[0].comments, null, 'a put without comments resets them to null');
      assert.equal(r.puts[0].created_at, put.created_at, 'a put keeps created_at');
      assert.ok(r.puts[0].modified_at > put.modified_at, 'a put moves modified_at');

      assert.equal(r.posts.length, 2);
      r.posts.forEach((p, i) => {
        assertPolicyShape(p, `post ${i}`);
        for (const k of FIELDS) assert.deepEqual(p[k], body.posts[i][k] ?? null, `post ${i} ${k}`);
      });

      model.delete(del.id);
      for (const p of [...r.patches, ...r.puts, ...r.posts]) model.set(p.id, p);
      assert.equal(model.size, beforeCount + 1);
      for (const p of [...r.patches, ...r.puts, ...r.posts]) {
        assert.deepEqual(await policies().get(p.id, { account_id: accountId }), p);
      }
      await expectSdkError(policies().get(del.id, { account_id: accountId }), NotFoundError, 404);
    });

    step('batch: one bad item fails the whole batch and names the item', async () => {
      const victim = [...model.values()].find((p) => p.pattern_type === 'IP');
      const body = {
        deletes: [{ id: victim.id }],
        patches: [],
        puts: [],
        posts: [
          { ...SEED, pattern: 'atomic-1@example.com' },
          { ...SEED, pattern: 'not an email' },
        ],
      };
      const res = await raw('POST', `${acct()}/batch`, body);
      assert.equal(res.status, 400, res.text);
      assertFailureEnvelope(res.json, { code: 1001, pointer: '/posts/1/pattern' });
      assert.deepEqual(await policies().get(victim.id, { account_id: accountId }), victim, 'the delete was rolled back');
      const leaked = await listAll({ pattern: 'atomic-1@example.com' });
      assert.deepEqual(leaked, [], 'the first post was rolled back');

      const empty = await raw('POST', `${acct()}/batch`, { deletes: [], patches: [], puts: [], posts: [] });
      assert.equal(empty.status, 200, empty.text);
      assertSuccessEnvelope(empty.json);
      assert.deepEqual(empty.json.result, { deletes: [], patches: [], puts: [], posts: [] });

      if (!viaPrism) { // all four arrays are required: outside the contract, direct only
        const missing = await raw('POST', `${acct()}/batch`, { deletes: [], puts: [], posts: [] });
        assert.equal(missing.status, 400, missing.text);
        assertFailureEnvelope(missing.json, { code: 1001, pointer: '/patches' });
      }
    });

    step('batch via the SDK resource (allowPolicies.batch)', async () => {
      const target = [...model.values()].find((p) => p.pattern_type === 'EMAIL' && p.pattern.startsWith('user'));
      const r = await tokPolicies().batch({
        account_id: accountId,
        deletes: [{ id: target.id }],
        patches: [{ id: seed.id, comments: null }],
        puts: [],
        posts: [{ ...SEED, pattern: 'sdk-batch@example.com', verify_sender: false }],
      });
      assert.deepEqual(r.deletes, [{ id: target.id }]);
      assert.equal(r.patches.length, 1);
      assertPolicyShape(r.patches[0]);
      assert.equal(r.patches[0].comments, null);
      assert.deepEqual(r.puts, []);
      assert.equal(r.posts.length, 1);
      assertPolicyShape(r.posts[0]);
      assert.equal(r.posts[0].pattern, 'sdk-batch@example.com');
      assert.equal(r.posts[0].verify_sender, false);
      model.delete(target.id);
      seed = r.patches[0];
      for (const p of [...r.patches, ...r.posts]) model.set(p.id, p);
    });

    step('the full listing matches every write the tests made', async () => {
      assertListing(await listAll({}), [...model.values()], {}, 'final list');
    });

    if (!viaPrism) {
      step('routes answer without the /client/v4 prefix too; /healthz; 404 and 405 envelopes (direct only)', async () => {
        const prefixed = await raw('GET', `${acct()}/${seed.id}`);
        const bare = await raw('GET', `${acct()}/${seed.id}`, undefined, { base: env.allowd.origin });
        assert.equal(prefixed.status, 200);
        assert.equal(bare.status, 200);
        assertSuccessEnvelope(bare.json);
        assert.deepEqual(bare.json, prefixed.json);
        const res = await fetch(`${env.allowd.origin}/healthz`);
        await res.arrayBuffer();
        assert.equal(res.status, 200);

        const noRoute = await raw('GET', `/accounts/${accountId}/email-security/settings/no_such_thing`);
        assert.equal(noRoute.status, 404, noRoute.text);
        assertFailureEnvelope(noRoute.json, { code: 7003 });
        const wrongMethod = await raw('PUT', `${acct()}/${seed.id}`, {});
        assert.equal(wrongMethod.status, 405, wrongMethod.text);
        assertFailureEnvelope(wrongMethod.json, { code: 10405 });
        const allow = (wrongMethod.headers.get('allow') ?? '').split(',').map((m) => m.trim()).sort();
        assert.deepEqual(allow, ['DELETE', 'GET', 'PATCH'], 'the Allow header of a 405');
      });
    }

    step('each SDK client sent exactly one credential scheme', () => {
      const byLabel = (l) => env.recorder.exchanges.filter((e) => e.label === l);
      const tokenEx = byLabel('token');
      const keyEx = byLabel('key');
      assert.ok(tokenEx.length > 0 && keyEx.length > 0);
      for (const e of tokenEx) {
        assert.equal(e.requestHeaders.get('authorization'), `Bearer ${env.credentials.api_token}`);
        assert.equal(e.requestHeaders.get('x-auth-email'), null, 'token client must not send X-Auth-Email');
        assert.equal(e.requestHeaders.get('x-auth-key'), null, 'token client must not send X-Auth-Key');
      }
      for (const e of keyEx) {
        assert.equal(e.requestHeaders.get('x-auth-email'), env.credentials.email);
        assert.equal(e.requestHeaders.get('x-auth-key'), env.credentials.api_key);
        assert.equal(e.requestHeaders.get('authorization'), null, 'key client must not send Authorization');
      }
    });

    if (viaPrism) {
      step('Prism found no request or response violation', async () => {
        const { markerViolations } = await env.prism.sync({
          accountId, authHeaders: { Authorization: `Bearer ${env.credentials.api_token}` },
        });
        const headers = env.recorder.withViolations()
          .map((e) => `${e.method} ${e.url} -> ${e.status}: ${e.violations}`);
        if (markerViolations) headers.push(`marker: ${markerViolations}`);
        const lines = env.prism.violationLines();
        assert.ok(env.recorder.exchanges.length > 200, 'the scenario went through Prism');
        assert.deepEqual({ logLines: lines, slViolationsHeaders: headers }, { logLines: [], slViolationsHeaders: [] },
          'Prism reported contract violations');
      });
    }

    step('allowd exits cleanly on SIGTERM', async () => {
      if (env.prism) await env.prism.stop();
      const res = await env.allowd.stop();
      assert.deepEqual(res, { code: 0, signal: null, killed: false },
        `allowd did not exit cleanly:\n${env.allowd.stderr.tail(20)}`);
    }, { timeout: 60_000 });
  });
}

scenario('direct');
scenario('prism');
