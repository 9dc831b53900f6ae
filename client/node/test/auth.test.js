// The Node client against a real daemon started with --auth: the token option (and $SIMULATORD_TOKEN) reaches every call, watch streams and raw `.grpc` calls too, and refusals are SimulatorErrors with their reasons.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Simulator, status } from '../src/index.js';
import { rejection } from './assertions.js';
import { startDaemon } from './daemon.js';

const TEAM_A = 'node-team-a-token-0123456789';
const TEAM_B = 'node-team-b-token-0123456789';

describe('simulatord Node client with tokens, against a daemon started with --auth', () => {
  let daemon;
  let dir;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'simulatord-auth-'));
    const file = join(dir, 'auth.json');
    const teamB = createHash('sha256').update(TEAM_B).digest('hex');
    writeFileSync(file, JSON.stringify({
      tokens: [
        { name: 'team-a', token: TEAM_A, tenants: ['team-a'] },
        { name: 'team-b', sha256: teamB, tenants: ['team-b'] },
      ],
    }));
    daemon = await startDaemon({ args: ['--auth', file] });
  });

  after(async () => {
    await daemon?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without a token every call is UNAUTHENTICATED (TOKEN_MISSING)', async () => {
    const sim = new Simulator(daemon.grpcAddress, { token: '' });
    try {
      const err = await rejection(sim.createSession({ tenant: 'team-a' }));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(err.reason, 'TOKEN_MISSING');
      assert.equal(err.domain, 'simulatord');
      assert.match(err.message, /SIMULATORD_TOKEN/);
    } finally {
      sim.close();
    }
  });

  test('an unknown token is UNAUTHENTICATED (TOKEN_INVALID)', async () => {
    const sim = new Simulator(daemon.grpcAddress, { token: 'not-a-token-anyone-was-given' });
    try {
      const err = await rejection(sim.createSession({ tenant: 'team-a' }));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(err.reason, 'TOKEN_INVALID');
    } finally {
      sim.close();
    }
  });

  test('the token option reaches unary calls, watch streams and raw .grpc calls', async () => {
    const sim = new Simulator(daemon.grpcAddress, { token: TEAM_A });
    try {
      const session = await sim.createSession({
        tenant: 'team-a',
        stubs: [{ request: { method: 'GET', path: { exact: '/hello' } }, responses: [{ status: 200, bodyText: 'hi' }] }],
      });
      assert.match(session.name, /^tenants\/team-a\/sessions\/s-[a-z2-7]{26}$/);
      const watch = sim.watchExchanges(session, { startSequence: 1 });
      const hello = await fetch(`${session.baseUrl}/hello`);
      assert.equal(await hello.text(), 'hi');
      const { value } = await watch.next();
      assert.equal(value.exchange.request.path, '/hello');
      await watch.return(undefined);
      assert.equal((await sim.listExchanges(session)).length, 1);
      const raw = await new Promise((resolve, reject) => {
        sim.grpc.GetSession({ name: session.name }, (err, reply) => (err ? reject(err) : resolve(reply)));
      });
      assert.equal(raw.session.name, session.name);
      await sim.deleteSession(session);
    } finally {
      sim.close();
    }
  });

  test('a token of another tenant is PERMISSION_DENIED (TENANT_FORBIDDEN), and changes nothing', async () => {
    const owner = new Simulator(daemon.grpcAddress, { token: TEAM_A });
    const intruder = new Simulator(daemon.grpcAddress, { token: TEAM_B });
    try {
      const session = await owner.createSession({ tenant: 'team-a' });
      const err = await rejection(intruder.deleteSession(session));
      assert.equal(err.code, status.PERMISSION_DENIED);
      assert.equal(err.reason, 'TENANT_FORBIDDEN');
      assert.equal(err.metadata.tenant, 'team-a');
      const watchErr = await rejection((async () => {
        for await (const _ of intruder.watchExchanges(session, { startSequence: 1 })) assert.fail('no event expected');
      })());
      assert.equal(watchErr.reason, 'TENANT_FORBIDDEN');
      assert.equal((await owner.getSession(session)).name, session.name);
      await owner.deleteSession(session);
    } finally {
      owner.close();
      intruder.close();
    }
  });

  test('the token defaults to $SIMULATORD_TOKEN', async () => {
    const saved = process.env.SIMULATORD_TOKEN;
    process.env.SIMULATORD_TOKEN = TEAM_B;
    let sim;
    try {
      sim = new Simulator(daemon.grpcAddress);
      const session = await sim.createSession({ tenant: 'team-b' });
      await sim.deleteSession(session);
    } finally {
      if (saved === undefined) delete process.env.SIMULATORD_TOKEN;
      else process.env.SIMULATORD_TOKEN = saved;
      sim?.close();
    }
  });
});
