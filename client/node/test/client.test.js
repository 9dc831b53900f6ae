// End-to-end test of @simulatord/client against a real simulatord daemon: session, HTTP traffic, watch, wait, list, verify, errors, delete, SIGTERM.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Simulator, fromJsonValue, jsonValue, status, toDate } from '../src/index.js';
import { rejection } from './assertions.js';
import { startDaemon } from './daemon.js';

/** Resolves with the iterator's next value, or rejects after `ms` so a silent stream fails the test instead of hanging it. */
async function nextWithin(iterator, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([iterator.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('simulatord Node client against a real daemon', () => {
  let daemon;
  let sim;
  let session;
  let helloStub;

  before(async () => {
    const started = Date.now();
    daemon = await startDaemon();
    sim = new Simulator(daemon.grpcAddress);
    console.log(`daemon ready in ${Date.now() - started} ms: http=${daemon.httpUrl} grpc=${daemon.grpcAddress}`);
  });

  after(async () => {
    sim?.close();
    // Only reached with a live daemon when an earlier test failed before the SIGTERM test.
    await daemon?.stop();
  });

  test('createSession returns the session with its base URL and stubs', async () => {
    session = await sim.createSession({
      tenant: 'node-client',
      labels: { suite: 'node' },
      ttlSeconds: 600,
      stubs: [
        {
          description: 'hello',
          request: { method: 'GET', path: { exact: '/hello' } },
          responses: [{ status: 200, bodyJson: jsonValue({ greeting: 'hi', n: 1 }) }],
          expect: { atLeast: 1 },
        },
      ],
    });
    assert.match(session.name, /^tenants\/node-client\/sessions\/[a-z0-9-]+$/);
    assert.ok(session.baseUrl.startsWith(daemon.httpUrl), `baseUrl ${session.baseUrl} not below ${daemon.httpUrl}`);
    assert.deepEqual(session.labels, { suite: 'node' });
    assert.equal(session.ttl?.seconds, 600);
    const expiresIn = toDate(session.expireTime).getTime() - Date.now();
    assert.ok(expiresIn > 590_000 && expiresIn <= 601_000, `expire_time is now + ttl (in ${expiresIn} ms)`);
    assert.equal(session.stubs.length, 1);
    helloStub = session.stubs[0];
    assert.ok(helloStub.name.startsWith(`${session.name}/stubs/`), helloStub.name);
    assert.equal(helloStub.description, 'hello');
    assert.equal(fromJsonValue(helloStub.responses[0].bodyJson).greeting, 'hi');
  });

  test('HTTP traffic is served, watched, waited for and listed', async () => {
    // Watch from sequence 1 before sending anything: the stream replays what is kept, then goes live.
    const watch = sim.watchExchanges(session, { startSequence: 1 });
    try {
      const hello = await fetch(`${session.baseUrl}/hello`);
      assert.equal(hello.status, 200);
      assert.match(hello.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await hello.json(), { greeting: 'hi', n: 1 });

      const missing = await fetch(`${session.baseUrl}/missing?x=1`, { method: 'POST', body: 'payload' });
      assert.equal(missing.status, 404);
      await missing.arrayBuffer();

      const first = await nextWithin(watch, 10_000, 'first watched exchange');
      assert.equal(first.done, false);
      assert.equal(first.value.event, 'exchange');
      assert.equal(first.value.exchange.sequence, 1);
      assert.equal(first.value.exchange.name, `${session.name}/exchanges/1`);
      assert.equal(first.value.exchange.request.method, 'GET');
      assert.equal(first.value.exchange.request.path, '/hello');
      assert.equal(first.value.exchange.stub, helloStub.name);
      assert.equal(first.value.exchange.response.status, 200);

      const second = await nextWithin(watch, 10_000, 'second watched exchange');
      const unmatched = second.value.exchange;
      assert.equal(unmatched.sequence, 2);
      assert.equal(unmatched.request.method, 'POST');
      assert.equal(unmatched.request.path, '/missing');
      assert.equal(unmatched.request.queryString, 'x=1');
      assert.equal(Buffer.from(unmatched.request.body).toString(), 'payload');
      assert.equal(unmatched.stub, '');
      assert.equal(unmatched.response.status, 404);
      assert.ok(unmatched.nearMisses.length >= 1, 'an unmatched request lists its near misses');
      assert.equal(unmatched.nearMisses[0].stub, helloStub.name);
    } finally {
      // Leaving early must cancel the server stream cleanly (no unhandled CANCELLED error).
      await watch.return();
    }

    const waited = await sim.waitForExchanges(session, { count: 2, timeoutMs: 5000 });
    assert.equal(waited.satisfied, true);
    assert.equal(waited.count, 2);
    assert.deepEqual(waited.exchanges.map((e) => e.sequence), [1, 2]);

    const matched = await sim.waitForExchanges(session, { filter: { matchState: 'MATCH_STATE_MATCHED' }, count: 1 });
    assert.equal(matched.satisfied, true);
    assert.deepEqual(matched.exchanges.map((e) => e.request.path), ['/hello']);

    // A timeout is an answer, not an error: satisfied is false and the other exchanges show what came instead.
    const started = Date.now();
    const notYet = await sim.waitForExchanges(session, { filter: { path: '/never' }, count: 1, timeoutMs: 300 });
    assert.equal(notYet.satisfied, false);
    assert.equal(notYet.count, 0);
    assert.ok(Date.now() - started >= 250, 'the wait honours its timeout');
    assert.ok(notYet.otherExchanges.length >= 1, 'otherExchanges shows what arrived instead');

    const all = await sim.listExchanges(session);
    assert.deepEqual(all.map((e) => e.sequence), [1, 2]);
    const onlyUnmatched = await sim.listExchanges(session, { filter: { matchState: 'MATCH_STATE_UNMATCHED' } });
    assert.deepEqual(onlyUnmatched.map((e) => e.request.path), ['/missing']);
    const paged = await sim.listExchanges(session, { pageSize: 1 });
    assert.deepEqual(paged.map((e) => e.sequence), [1, 2], 'listExchanges follows next_page_token');
  });

  test('watchExchanges resumes at startSequence and then streams live', async () => {
    const watch = sim.watchExchanges(session, { startSequence: 2 });
    try {
      const replayed = await nextWithin(watch, 10_000, 'replayed exchange');
      assert.equal(replayed.value.exchange.sequence, 2);
      const live = fetch(`${session.baseUrl}/hello`).then((r) => r.arrayBuffer());
      const next = await nextWithin(watch, 10_000, 'live exchange');
      assert.equal(next.value.exchange.sequence, 3);
      assert.equal(next.value.exchange.request.path, '/hello');
      await live;
    } finally {
      await watch.return();
    }
  });

  test('watchExchanges stops on AbortSignal', async () => {
    const controller = new AbortController();
    const events = [];
    const loop = (async () => {
      for await (const event of sim.watchExchanges(session, { startSequence: 0, signal: controller.signal })) events.push(event);
    })();
    setTimeout(() => controller.abort(), 200);
    await loop; // resolves, does not reject: an abort ends the iteration quietly
    assert.deepEqual(events, []);
  });

  test('createStubs adds stubs atomically with chosen ids', async () => {
    const stubs = await sim.createStubs(session, [
      { stubId: 'created', stub: { request: { method: 'POST', path: { template: '/items/{id}' } }, responses: [{ status: 201, bodyText: 'made' }] } },
      { request: { path: { prefix: '/other' } }, responses: [{ status: 204 }], expect: { atMost: 5 } },
    ]);
    assert.equal(stubs.length, 2);
    assert.equal(stubs[0].name, `${session.name}/stubs/created`);
    const made = await fetch(`${session.baseUrl}/items/42`, { method: 'POST' });
    assert.equal(made.status, 201);
    assert.equal(await made.text(), 'made');
  });

  test('verify reports the unmatched request', async () => {
    const report = await sim.verify(session);
    assert.equal(report.ok, false);
    assert.deepEqual(report.unmatchedExchanges.map((e) => e.request.path), ['/missing']);
    assert.ok(report.summary.length > 0, 'a failing verification has a summary');
    assert.ok(!report.unusedStubs.some((s) => s.stub === helloStub.name), 'the used hello stub is not reported unused');
  });

  test('a bad regex is INVALID_ARGUMENT with a field violation', async () => {
    const good = { request: { path: { exact: '/ok' } }, responses: [{ status: 200 }] };
    const bad = { request: { path: { regex: '([unclosed' } }, responses: [{ status: 200 }] };

    const onCreate = await rejection(sim.createSession({ tenant: 'node-client', stubs: [good, bad] }));
    assert.equal(onCreate.code, status.INVALID_ARGUMENT);
    assert.equal(onCreate.codeName, 'INVALID_ARGUMENT');
    assert.equal(onCreate.domain, 'simulatord');
    assert.ok(onCreate.reason, 'ErrorInfo.reason is set');
    assert.ok(
      onCreate.fieldViolations.some((v) => v.field === 'stubs[1].request.path.regex' && v.description),
      `violations: ${JSON.stringify(onCreate.fieldViolations)}`,
    );

    const onBatch = await rejection(sim.createStubs(session, [good, bad]));
    assert.equal(onBatch.code, status.INVALID_ARGUMENT);
    assert.ok(
      onBatch.fieldViolations.some((v) => v.field === 'requests[1].stub.request.path.regex'),
      `violations: ${JSON.stringify(onBatch.fieldViolations)}`,
    );
    // Atomic: the good stub of the failed batch was not created either (3 stubs from before).
    assert.equal((await sim.getSession(session)).stubCount, 3);
  });

  test('an unknown session is NOT_FOUND with reason SESSION_NOT_FOUND', async () => {
    const name = 'tenants/node-client/sessions/does-not-exist';
    const err = await rejection(sim.verify(name));
    assert.equal(err.code, status.NOT_FOUND);
    assert.equal(err.reason, 'SESSION_NOT_FOUND');
    assert.equal(err.domain, 'simulatord');
    assert.match(err.message, /^NOT_FOUND \(SESSION_NOT_FOUND\): /);

    const onWatch = await rejection((async () => {
      for await (const _ of sim.watchExchanges(name)) assert.fail('no event expected');
    })());
    assert.equal(onWatch.reason, 'SESSION_NOT_FOUND');
  });

  test('deleteSession ends watchers with OK and removes the session', async () => {
    // Replaying from 1 and reading one event proves the stream is established
    // server-side, so it is the delete (not a lost race) that ends it.
    const watch = sim.watchExchanges(session, { startSequence: 1 });
    const first = await nextWithin(watch, 10_000, 'first replayed exchange');
    assert.equal(first.value.exchange.sequence, 1);
    await sim.deleteSession(session);
    let result;
    for (let i = 0; i < 100; i++) {
      result = await nextWithin(watch, 10_000, 'end of watch after delete');
      if (result.done) break;
    }
    assert.equal(result.done, true, 'the watch ends (status OK) when its session is deleted');

    const err = await rejection(sim.getSession(session));
    assert.equal(err.reason, 'SESSION_NOT_FOUND');
    await sim.deleteSession(session, { allowMissing: true });
    const again = await rejection(sim.deleteSession(session));
    assert.equal(again.code, status.NOT_FOUND);
  });

  test('a full journal reports evictions to watchers, and header routing works', async () => {
    const small = await sim.createSession({
      tenant: 'node-client',
      journalLimits: { maxExchanges: 2 },
      unmatchedStatus: 418,
      stubs: [{ request: { path: { prefix: '/n/' } }, responses: [{ status: 200, bodyText: 'ok' }] }],
    });
    try {
      for (const n of [1, 2, 3, 4]) {
        const r = await fetch(`${daemon.httpUrl}/n/${n}`, { headers: { 'x-simulatord-session': small.routingHeader } });
        assert.equal(r.status, 200);
        assert.equal(await r.text(), 'ok');
      }
      const teapot = await fetch(`${small.baseUrl}/nothing`);
      assert.equal(teapot.status, 418, 'unmatchedStatus is served for unmatched requests');
      await teapot.arrayBuffer();

      const watch = sim.watchExchanges(small, { startSequence: 1 });
      try {
        const evicted = await nextWithin(watch, 10_000, 'eviction event');
        assert.equal(evicted.value.event, 'evictedCount');
        assert.equal(evicted.value.evictedCount, 3);
        const kept = await nextWithin(watch, 10_000, 'kept exchange');
        assert.equal(kept.value.exchange.sequence, 4);
        assert.equal(kept.value.exchange.request.routing, 'ROUTING_HEADER');
        assert.equal(kept.value.exchange.request.path, '/n/4');
      } finally {
        await watch.return();
      }
      const stats = (await sim.getSession(small)).journalStats;
      assert.deepEqual(
        [stats.totalCount, stats.retainedCount, stats.evictedCount, stats.firstSequence, stats.lastSequence],
        [5, 2, 3, 4, 5],
      );
    } finally {
      await sim.deleteSession(small);
    }
  });

  test('a duplicate session id is ALREADY_EXISTS (SESSION_ALREADY_EXISTS)', async () => {
    const first = await sim.createSession({ tenant: 'node-client', sessionId: 'fixed-id' });
    try {
      const err = await rejection(sim.createSession({ tenant: 'node-client', sessionId: 'fixed-id' }));
      assert.equal(err.code, status.ALREADY_EXISTS);
      assert.equal(err.reason, 'SESSION_ALREADY_EXISTS');
    } finally {
      await sim.deleteSession(first);
    }
  });

  test('SIGTERM stops the daemon gracefully', async () => {
    sim.close();
    const started = Date.now();
    const { code, signal } = await daemon.stop();
    console.log(`daemon stopped in ${Date.now() - started} ms`);
    // A normal exit, not death by the signal (nor by the SIGKILL after the grace period).
    assert.equal(signal, null, `daemon died by ${signal}; stderr:\n${daemon.stderr()}`);
    assert.equal(code, 0, `daemon exit code ${code}; stderr:\n${daemon.stderr()}`);
  });
});
